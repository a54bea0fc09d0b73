//! The health judge: turns per-version metrics and alarm states into a verdict that
//! carries the numbers it was based on.
//!
//! Each rule looks at one target and answers pass, fail (with a reason) or no data.
//! Any failure makes the verdict `unhealthy`; otherwise any missing data makes it
//! `inconclusive`; otherwise it is `healthy`. New rules are new entries in [`RULES`].

use serde::{Deserialize, Serialize};

use crate::baseline::History;
use crate::compare::{BaselineKind, Comparison};
use crate::custom::{CustomSample, CustomValue, Kind, MetricRule, Mode};
use crate::ports::{AlarmStatus, AlarmValue, VersionMetrics};
use crate::request::HealthSettings;
use crate::time::Timestamp;

/// The judge's overall answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictStatus {
    /// Every rule passed with enough data.
    Healthy,
    /// At least one rule failed.
    Unhealthy,
    /// No rule failed, but there was not enough data to pass them all.
    Inconclusive,
}

/// One version's numbers over the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionSample {
    /// The version, as its router names it: `version 42`, `green E2…`.
    pub version: String,
    /// Sum of Invocations.
    pub invocations: u64,
    /// Sum of Errors.
    pub errors: u64,
    /// Sum of Throttles.
    pub throttles: u64,
    /// Errors / Invocations in percent, when there were invocations.
    pub error_rate_percent: Option<f64>,
    /// p99 Duration in milliseconds, when there was data (over the minutes read, for
    /// people; the p99 limit itself is judged on `over_limit`).
    pub p99_duration_ms: Option<f64>,
    /// Duration's sample count.
    #[serde(default)]
    pub durations: u64,
    /// Invocations slower than `health.p99_duration.max_ms`.
    #[serde(default)]
    pub over_limit: u64,
}

impl VersionSample {
    /// Summarizes `metrics` of `version`.
    pub fn from_metrics(version: &str, metrics: &VersionMetrics) -> Self {
        let t = metrics.totals();
        Self {
            version: version.to_owned(),
            invocations: t.invocations,
            errors: t.errors,
            throttles: t.throttles,
            error_rate_percent: (t.invocations > 0).then(|| 100.0 * t.errors as f64 / t.invocations as f64),
            p99_duration_ms: metrics.p99_duration_ms,
            durations: t.durations,
            over_limit: t.over_limit,
        }
    }
}

/// One target's numbers: the candidate over the rolling window of the absolute rules,
/// the stable version over the same window while both serve traffic, and the
/// sequential tests against the baseline of every minute so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetSample {
    /// The target, by label: `orders:live`, `www.example.com. A`.
    pub target: String,
    /// The candidate's numbers.
    pub candidate: VersionSample,
    /// The stable version's numbers; absent once the candidate has all traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<VersionSample>,
    /// The error-rate comparison over every minute since the deployment began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// The same test on slow invocations (slower than the history's p99).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<Comparison>,
    /// The stable version's history, the baseline of the minutes at full traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
    /// The stable side in words: `version 41`, `blue E1…`.
    #[serde(default)]
    pub stable_version: String,
    /// The minutes the absolute rules read: the most recent `health.window_seconds`
    /// of delivered data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// A front end's comparison of 4xx responses (green against blue), over the same
    /// minutes as `comparison`; absent for Lambda targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_errors: Option<Comparison>,
    /// The fast path's test of failures, over `tally`'s 10-second counts since the
    /// deployment began; it may only roll back ([`crate::outcomes`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_failures: Option<Comparison>,
    /// The fast path's test of slow invocations, when the history gave a threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_slow: Option<Comparison>,
    /// Each custom rule's numbers (`health.metrics`), in rule order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom: Vec<CustomSample>,
}

impl TargetSample {
    fn tests(&self) -> impl Iterator<Item = &Comparison> {
        [&self.comparison, &self.slow, &self.client_errors, &self.fast_failures, &self.fast_slow]
            .into_iter()
            .flatten()
            .chain(self.custom.iter().filter_map(|c| c.comparison.as_ref()))
    }

    /// What the tests compared the candidate with, in a few words: `stable, same
    /// minutes`, `history 08:00-09:00`, `both`, or `none (limits only)`.
    pub fn baseline_label(&self) -> String {
        let kinds: Vec<BaselineKind> = self.tests().map(|c| c.baseline).collect();
        let has = |k: BaselineKind| kinds.contains(&k) || kinds.contains(&BaselineKind::ConcurrentAndHistory);
        let history = self.history.as_ref().map_or_else(String::new, |h| format!(" {}-{}", hhmm(h.start), hhmm(h.end)));
        match (has(BaselineKind::Concurrent), has(BaselineKind::History)) {
            (true, true) => format!("same minutes + history{history}"),
            (true, false) => "stable, same minutes".to_owned(),
            (false, true) => format!("history{history}"),
            (false, false) => "none (limits only)".to_owned(),
        }
    }

    /// The strongest evidence of any test against its threshold: `12.5 / 222`.
    pub fn evidence_label(&self) -> String {
        self.tests()
            .max_by(|a, b| (a.evidence / a.threshold).total_cmp(&(b.evidence / b.threshold)))
            .map_or_else(|| "-".to_owned(), |c| format!("{} / {}", evidence_text(c.evidence), c.threshold.round()))
    }
}

/// The judged window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Start, inclusive.
    pub start: Timestamp,
    /// End, exclusive.
    pub end: Timestamp,
}

/// A verdict and everything it was based on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The answer.
    pub status: VerdictStatus,
    /// Why, one sentence per finding: the failures if unhealthy, the gaps if
    /// inconclusive, a summary if healthy.
    pub reasons: Vec<String>,
    /// When the check ran.
    pub checked_at: Timestamp,
    /// The metrics window.
    pub window: Window,
    /// Per-target numbers.
    pub targets: Vec<TargetSample>,
    /// The watched alarms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<AlarmStatus>,
    /// What to know besides the findings: the fast path's state (live, down, not
    /// available for a target, or over).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What the rules in `"mode": "observe"` found, one line each starting
    /// [`OBSERVE_ONLY`]: their failures and gaps, and each custom rule's numbers. They
    /// never change `status`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observed: Vec<String>,
}

/// How every line of [`Verdict::observed`] begins.
pub const OBSERVE_ONLY: &str = "observe-only";

/// What one rule found for one target.
#[derive(Clone, Debug, PartialEq)]
pub enum Finding {
    /// The rule holds.
    Pass,
    /// The rule is broken; the candidate is unhealthy.
    Fail(String),
    /// Not enough data to apply the rule.
    NoData(String),
}

/// A health rule: settings and one target's numbers in, a finding out.
pub type Rule = fn(&HealthSettings, &TargetSample) -> Finding;

/// Which setting's `mode` governs a rule.
pub type ModeOf = fn(&HealthSettings) -> Mode;

fn enforced(_: &HealthSettings) -> Mode {
    Mode::Enforce
}

fn errors_mode(h: &HealthSettings) -> Mode {
    h.error_rate.mode
}

fn latency_mode(h: &HealthSettings) -> Mode {
    h.p99_duration.mode
}

fn throttles_mode(h: &HealthSettings) -> Mode {
    h.throttles.mode
}

/// The rules every check applies, in the order their findings are reported, each with
/// the setting whose `mode` governs it. The invocation minimum is the data gate of them
/// all, and always enforced. Custom rules follow them ([`custom_findings`]).
pub const RULES: [(Rule, ModeOf); 9] = [
    (enough_invocations, enforced),
    (error_rate_increase, errors_mode),
    (slow_increase, latency_mode),
    (fast_failures, errors_mode),
    (fast_slow, latency_mode),
    (client_error_increase, errors_mode),
    (error_rate, errors_mode),
    (p99_duration, latency_mode),
    (throttles, throttles_mode),
];

/// Duration samples the absolute p99 limit needs in its window: enough to expect 5
/// invocations over the limit when exactly 1% are.
pub const P99_LIMIT_MIN_SAMPLES: u64 = 500;

/// `orders:live version 42`, `www.example.com. A green E2QWRUHEXAMPLE`: the target
/// and the candidate as its router names it.
fn label(t: &TargetSample) -> String {
    format!("{} {}", t.target, t.candidate.version)
}

fn has_enough(h: &HealthSettings, t: &TargetSample) -> bool {
    t.candidate.invocations >= h.min_invocations.max(1)
}

/// Too few candidate invocations to apply the metric rules.
pub fn enough_invocations(h: &HealthSettings, t: &TargetSample) -> Finding {
    if has_enough(h, t) {
        Finding::Pass
    } else {
        Finding::NoData(format!(
            "{} served {} invocations; {} needed to judge it (health.min_invocations)",
            label(t),
            t.candidate.invocations,
            h.min_invocations.max(1)
        ))
    }
}

/// What a comparison was against, in words.
fn against(t: &TargetSample, c: &Comparison) -> String {
    let stable = stable_name(t);
    match c.baseline {
        BaselineKind::Concurrent => format!("{stable} over the same minutes"),
        BaselineKind::History | BaselineKind::ConcurrentAndHistory => {
            let h = c.history.map_or_else(String::new, |h| format!(" ({} in {})", h.events, h.invocations));
            let when = t.history.as_ref().map_or_else(String::new, |h| format!(" {}-{}", hhmm(h.start), hhmm(h.end)));
            if c.baseline == BaselineKind::History {
                format!("{stable}'s history{when}{h}")
            } else {
                format!("{stable} over the same minutes and its history{when}{h}")
            }
        }
        BaselineKind::None => "nothing (no baseline)".to_owned(),
    }
}

fn stable_name(t: &TargetSample) -> String {
    if t.stable_version.is_empty() { "the stable version".to_owned() } else { t.stable_version.clone() }
}

fn hhmm(t: Timestamp) -> String {
    let text = t.to_rfc3339();
    text.get(11..16).unwrap_or(&text).to_owned()
}

fn since(c: &Comparison) -> String {
    c.since.map_or_else(String::new, |t| format!(" since {}", hhmm(t)))
}

/// The candidate fails more often than its baseline, beyond the tolerance, with the
/// confidence `health.false_alarm_percent` sets (see [`crate::compare`]).
pub fn error_rate_increase(h: &HealthSettings, t: &TargetSample) -> Finding {
    let (Some(tolerance), Some(c)) = (h.error_rate.max_increase_percent, &t.comparison) else {
        return Finding::Pass;
    };
    if !c.regressed() {
        return Finding::Pass;
    }
    let how = match c.ratio {
        Some(r) => format!("fails {}x as often as", round2(r)),
        None => "fails where there were no errors in".to_owned(),
    };
    let worse = if tolerance > 0.0 { format!("more than {}% worse", round2(tolerance)) } else { "worse".to_owned() };
    Finding::Fail(format!(
        "{} {how} {}{} ({} errors in {} invocations; evidence {} against a threshold of {}): {worse}, with {}% confidence",
        label(t),
        against(t, c),
        since(c),
        c.candidate_errors,
        c.candidate_invocations,
        evidence_text(c.evidence),
        round2(c.threshold),
        round2(100.0 - h.false_alarm_percent)
    ))
}

/// More of the candidate's invocations are slow (slower than the stable version's p99
/// over its history) than its baseline's, beyond the tolerance, by the same test.
pub fn slow_increase(h: &HealthSettings, t: &TargetSample) -> Finding {
    let (Some(tolerance), Some(c)) = (h.p99_duration.max_slow_increase_percent, &t.slow) else {
        return Finding::Pass;
    };
    if !c.regressed() {
        return Finding::Pass;
    }
    let threshold = t.history.as_ref().and_then(|h| h.slow_above_ms).map_or(0.0, round2);
    let share = if c.candidate_invocations > 0 {
        100.0 * c.candidate_errors as f64 / c.candidate_invocations as f64
    } else {
        0.0
    };
    let how = match c.ratio {
        Some(r) => format!("{}x as often as", round2(r)),
        None => "where there were none in".to_owned(),
    };
    Finding::Fail(format!(
        "{} is slower than {threshold} ms (the stable p99) {how} {}{} ({}% of {} invocations; evidence {} against a threshold of {}): more than {}% worse, with {}% confidence",
        label(t),
        against(t, c),
        since(c),
        round2(share),
        c.candidate_invocations,
        evidence_text(c.evidence),
        round2(c.threshold),
        round2(tolerance),
        round2(100.0 - h.false_alarm_percent)
    ))
}

/// The fast path: the candidate fails more often than its baseline in `tally`'s
/// 10-second counts, by the same test and confidence as [`error_rate_increase`]. It
/// only ever fails or passes (never "no data"), so it can roll back and never holds up a
/// promotion: the minute metrics alone decide that.
pub fn fast_failures(h: &HealthSettings, t: &TargetSample) -> Finding {
    fast_finding(h, t, t.fast_failures.as_ref(), "fails", "failures")
}

/// The fast path's slow invocations (REPORT durations above the stable p99), as
/// [`fast_failures`].
pub fn fast_slow(h: &HealthSettings, t: &TargetSample) -> Finding {
    fast_finding(h, t, t.fast_slow.as_ref(), "is slow", "slow invocations")
}

fn fast_finding(h: &HealthSettings, t: &TargetSample, c: Option<&Comparison>, verb: &str, events: &str) -> Finding {
    let Some(c) = c.filter(|c| c.regressed()) else { return Finding::Pass };
    let how = match c.ratio {
        Some(r) => format!("{verb} {}x as often as", round2(r)),
        None => format!("{verb} where there were none in"),
    };
    Finding::Fail(format!(
        "{} {how} {}{} in the fast path's 10-second counts ({} {events} in {} invocations; evidence {} against a threshold of {}), with {}% confidence",
        label(t),
        against(t, c).replace("the same minutes", "the same seconds"),
        since(c),
        c.candidate_errors,
        c.candidate_invocations,
        evidence_text(c.evidence),
        round2(c.threshold),
        round2(100.0 - h.false_alarm_percent)
    ))
}

/// A front end answers 4xx more often than blue, with the same confidence as
/// [`error_rate_increase`]. Files missing from a new build answer 403 or 404 where blue
/// served them. There is no absolute 4xx limit: bots and stale links keep a site's 4xx
/// rate at several percent whatever the release does.
pub fn client_error_increase(h: &HealthSettings, t: &TargetSample) -> Finding {
    let Some(c) = t.client_errors.as_ref().filter(|c| c.regressed()) else {
        return Finding::Pass;
    };
    let blue = if t.stable_version.is_empty() { "blue" } else { t.stable_version.as_str() };
    let how = match c.ratio {
        Some(r) => format!("{}x as often as {blue}", round2(r)),
        None => format!("where {blue} did not"),
    };
    Finding::Fail(format!(
        "{} answers 4xx {how} ({} in {} requests against {} in {}), with {}% confidence",
        label(t),
        c.candidate_errors,
        c.candidate_invocations,
        c.stable_errors,
        c.stable_invocations,
        round2(100.0 - h.false_alarm_percent)
    ))
}

/// The absolute limit: error rate above X%, once the candidate has served enough
/// invocations to expect 5 errors at X% (100 at 5%), so that a few unlucky requests
/// cannot trip it.
pub fn error_rate(h: &HealthSettings, t: &TargetSample) -> Finding {
    let (Some(max), Some(rate)) = (h.error_rate.max_percent, t.candidate.error_rate_percent) else {
        return Finding::Pass;
    };
    let needed = if max > 0.0 { (500.0 / max).ceil() as u64 } else { 1 };
    if has_enough(h, t) && t.candidate.invocations >= needed && rate > max {
        Finding::Fail(format!(
            "{} error rate {}% is above {}% ({} errors in {} invocations{})",
            label(t),
            round2(rate),
            round2(max),
            t.candidate.errors,
            t.candidate.invocations,
            window_text(t)
        ))
    } else {
        Finding::Pass
    }
}

/// p99 Duration above an absolute limit: more than 1% of the window's invocations took
/// longer than `health.p99_duration.max_ms` (CloudWatch's `TC(max:)`, which unlike a
/// percentile adds up across minutes), once the window holds
/// [`P99_LIMIT_MIN_SAMPLES`].
pub fn p99_duration(h: &HealthSettings, t: &TargetSample) -> Finding {
    let Some(max) = h.p99_duration.max_ms else {
        return Finding::Pass;
    };
    let c = &t.candidate;
    if has_enough(h, t) && c.durations >= P99_LIMIT_MIN_SAMPLES && c.over_limit * 100 > c.durations {
        Finding::Fail(format!(
            "{} p99 duration is above {} ms: {} of {} invocations ({}%) took longer{}",
            label(t),
            round2(max),
            c.over_limit,
            c.durations,
            round2(100.0 * c.over_limit as f64 / c.durations as f64),
            window_text(t)
        ))
    } else {
        Finding::Pass
    }
}

fn window_text(t: &TargetSample) -> String {
    t.window.map_or_else(String::new, |w| format!(" over {}-{}", hhmm(w.start), hhmm(w.end)))
}

/// Throttled requests above a limit. Throttles count in neither Invocations nor Errors,
/// so this rule needs no minimum.
pub fn throttles(h: &HealthSettings, t: &TargetSample) -> Finding {
    match h.throttles.max_count {
        Some(max) if t.candidate.throttles > max => Finding::Fail(format!(
            "{} was throttled {} times; at most {max} allowed (health.throttles.max_count)",
            label(t),
            t.candidate.throttles
        )),
        _ => Finding::Pass,
    }
}

fn alarm_finding(a: &AlarmStatus) -> Finding {
    match a.state {
        Some(AlarmValue::Alarm) => Finding::Fail(match &a.reason {
            Some(r) => format!("alarm {} is in ALARM: {r}", a.name),
            None => format!("alarm {} is in ALARM", a.name),
        }),
        Some(_) => Finding::Pass,
        None => Finding::NoData(format!("alarm {} does not exist any more", a.name)),
    }
}

/// Evidence for people: two decimals, or powers of ten once it is past a million.
pub fn evidence_text(x: f64) -> String {
    if x >= 1e6 { format!("{x:.1e}") } else { round2(x).to_string() }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Judges the samples and alarms of one check.
pub fn judge(
    settings: &HealthSettings,
    targets: Vec<TargetSample>,
    alarms: Vec<AlarmStatus>,
    window: Window,
    checked_at: Timestamp,
) -> Verdict {
    let mut failures = Vec::new();
    let mut gaps = Vec::new();
    let mut observed = Vec::new();
    let findings = targets
        .iter()
        .flat_map(|t| RULES.iter().map(move |(rule, mode)| (mode(settings), rule(settings, t))))
        .chain(alarms.iter().map(|a| (Mode::Enforce, alarm_finding(a))))
        .chain(targets.iter().flat_map(|t| custom_findings(settings, t)));
    for (mode, finding) in findings {
        match (mode, finding) {
            (_, Finding::Pass) => {}
            (Mode::Enforce, Finding::Fail(r)) => failures.push(r),
            (Mode::Enforce, Finding::NoData(r)) => gaps.push(r),
            (Mode::Observe, Finding::Fail(r)) => observed.push(format!("{OBSERVE_ONLY}, would roll back: {r}")),
            (Mode::Observe, Finding::NoData(r)) => observed.push(format!("{OBSERVE_ONLY}, would wait: {r}")),
        }
    }
    for t in &targets {
        for (rule, s) in settings.metrics.iter().zip(&t.custom).filter(|(r, _)| r.mode == Mode::Observe) {
            observed.push(format!("{OBSERVE_ONLY}: {}", custom_summary(t, rule, s)));
        }
    }
    let (status, reasons) = if !failures.is_empty() {
        (VerdictStatus::Unhealthy, failures)
    } else if !gaps.is_empty() {
        (VerdictStatus::Inconclusive, gaps)
    } else {
        let mut reasons: Vec<String> = targets.iter().map(healthy_summary).collect();
        if !alarms.is_empty() && reasons.is_empty() {
            // Judged on alarms only (a router with no per-version metrics).
            let names: Vec<&str> = alarms.iter().map(|a| a.name.as_str()).collect();
            reasons.push(format!("alarms OK: {}", names.join(", ")));
        }
        (VerdictStatus::Healthy, reasons)
    };
    Verdict { status, reasons, checked_at, window, targets, alarms, notes: Vec::new(), observed }
}

/// Each custom rule's findings for one target, with the rule's mode: no data while the
/// candidate serves traffic, the rate's test, its absolute limit, the gauge's tolerance
/// and limit.
pub fn custom_findings<'a>(h: &'a HealthSettings, t: &'a TargetSample) -> impl Iterator<Item = (Mode, Finding)> + 'a {
    h.metrics
        .iter()
        .zip(&t.custom)
        .flat_map(move |(rule, s)| custom_rule(h, t, rule, s).into_iter().map(move |f| (rule.mode, f)))
}

fn custom_rule(h: &HealthSettings, t: &TargetSample, rule: &MetricRule, s: &CustomSample) -> Vec<Finding> {
    let mut out = Vec::new();
    let what = format!("{} {}", label(t), rule.name);
    let Some(value) = s.candidate.value else {
        if has_enough(h, t) {
            let metric = rule.data_metric().map_or_else(String::new, |(_, spec)| spec.label());
            out.push(Finding::NoData(format!(
                "{what}: no data for {metric}{} while the candidate served {} invocations; is the version dimension \
                 right, and is the metric emitted? (health.metrics)",
                window_text(t),
                t.candidate.invocations
            )));
        }
        return out;
    };
    match rule.kind() {
        Some(Kind::Rate { higher_is_better, .. }) => {
            if let Some(c) = s.comparison.as_ref().filter(|c| c.regressed()) {
                let how = match c.ratio {
                    Some(r) => format!("{}x the rate of", round2(r)),
                    None if higher_is_better => "below the rate of".to_owned(),
                    None => "above none in".to_owned(),
                };
                let tolerance = rule.tolerance().unwrap_or(0.0);
                let worse = if higher_is_better { "lower" } else { "higher" };
                out.push(Finding::Fail(format!(
                    "{what} is {how} {}{} ({} in {}; evidence {} against a threshold of {}): more than {}% {worse}, with {}% confidence",
                    against(t, c),
                    since(c),
                    c.candidate_errors,
                    c.candidate_invocations,
                    evidence_text(c.evidence),
                    round2(c.threshold),
                    round2(tolerance),
                    round2(100.0 - h.false_alarm_percent)
                )));
            }
            let (limit, beyond) = if higher_is_better {
                (rule.min_percent, rule.min_percent.is_some_and(|m| value < m))
            } else {
                (rule.max_percent, rule.max_percent.is_some_and(|m| value > m))
            };
            let needed = limit.map_or(u64::MAX, |m| if m > 0.0 { (500.0 / m).ceil() as u64 } else { 1 });
            if beyond && s.candidate.total >= needed {
                out.push(Finding::Fail(format!(
                    "{what} {}% is {} {}% ({} in {}{})",
                    round2(value),
                    if higher_is_better { "below" } else { "above" },
                    round2(limit.unwrap_or(0.0)),
                    s.candidate.events,
                    s.candidate.total,
                    window_text(t)
                )));
            }
        }
        Some(Kind::Gauge(_)) => {
            let base = s.baseline.and_then(|b| b.value).or(s.history_value);
            if let (Some(tol), Some(base)) = (rule.max_increase_percent, base)
                && base > 0.0
                && value > base * (1.0 + tol / 100.0)
            {
                let of = if s.baseline.is_some() {
                    "the stable version's over the same minutes"
                } else {
                    "the stable version's history"
                };
                out.push(Finding::Fail(format!(
                    "{what} {} is more than {}% above {of}, {}{} (a guard, no false-alarm guarantee)",
                    round2(value),
                    round2(tol),
                    round2(base),
                    window_text(t)
                )));
            }
            if let Some(max) = rule.max.filter(|m| value > *m) {
                out.push(Finding::Fail(format!("{what} {} is above {}{}", round2(value), round2(max), window_text(t))));
            }
        }
        None => {}
    }
    out
}

/// One custom rule's numbers in a few words: `orders:live version 42 http-5xx 0.4% (6
/// in 1500); stable 0.3%; evidence 0.5 of 400`.
pub fn custom_summary(t: &TargetSample, rule: &MetricRule, s: &CustomSample) -> String {
    let value = |v: &CustomValue| match (v.value, rule.kind()) {
        (None, _) => "no data".to_owned(),
        (Some(x), Some(Kind::Rate { .. })) => format!("{}% ({} in {})", round2(x), v.events, v.total),
        (Some(x), _) => round2(x).to_string(),
    };
    let mut text = format!("{} {} {}", label(t), rule.name, value(&s.candidate));
    if let Some(b) = &s.baseline {
        text.push_str(&format!("; stable {}", value(b)));
    } else if let Some(h) = s.history_value {
        text.push_str(&format!("; stable history {}", round2(h)));
    }
    if let Some(c) = &s.comparison {
        text.push_str(&format!("; evidence {} of {}", evidence_text(c.evidence), round2(c.threshold)));
    }
    text
}

fn healthy_summary(t: &TargetSample) -> String {
    let c = &t.candidate;
    let mut text = format!(
        "{} healthy: {}% errors ({} in {} invocations{})",
        label(t),
        round2(c.error_rate_percent.unwrap_or(0.0)),
        c.errors,
        c.invocations,
        window_text(t)
    );
    if let Some(p99) = c.p99_duration_ms {
        text.push_str(&format!(", p99 {} ms", round2(p99)));
    }
    match &t.baseline {
        Some(b) if b.invocations > 0 => text.push_str(&format!(
            "; stable {}: {}% errors ({} in {})",
            b.version,
            round2(b.error_rate_percent.unwrap_or(0.0)),
            b.errors,
            b.invocations
        )),
        Some(b) => text.push_str(&format!("; no data from stable {} yet", b.version)),
        None => {}
    }
    text.push_str(&format!("; {}", baseline_summary(t)));
    for s in t.custom.iter().filter(|s| s.mode == Mode::Enforce) {
        let value = match (s.candidate.value, s.candidate.total) {
            (None, _) => "no data".to_owned(),
            (Some(x), 0) => round2(x).to_string(),
            (Some(x), n) => format!("{}% ({} in {n})", round2(x), s.candidate.events),
        };
        text.push_str(&format!("; {} {value}", s.name));
    }
    text
}

/// What the tests compared with, and how far the evidence has come.
pub fn baseline_summary(t: &TargetSample) -> String {
    let tests = [("errors", &t.comparison), ("slow", &t.slow), ("4xx", &t.client_errors)];
    let found: Vec<String> = tests
        .iter()
        .filter_map(|(name, c)| c.as_ref().map(|c| (name, c)))
        .map(|(name, c)| {
            format!(
                "{name} against {}: evidence {} of {}",
                against(t, c),
                evidence_text(c.evidence),
                round2(c.threshold)
            )
        })
        .collect();
    let none = [&t.comparison, &t.slow, &t.client_errors]
        .iter()
        .all(|c| c.as_ref().is_none_or(|c| c.baseline == BaselineKind::None));
    if none {
        let why = match &t.history {
            Some(h) if !h.usable() => format!(
                "{} served {} invocations over {}-{}, fewer than the {} a baseline needs",
                stable_name(t),
                h.errors.invocations,
                hhmm(h.start),
                hhmm(h.end),
                crate::compare::MIN_HISTORY_INVOCATIONS
            ),
            Some(_) => "no comparable minutes yet".to_owned(),
            None if t.baseline.is_none() => "no stable history was read".to_owned(),
            None => "no comparable minutes yet".to_owned(),
        };
        return format!("no baseline ({why}): judged on the absolute limits only");
    }
    found.join("; ")
}

#[cfg(test)]
mod tests;
