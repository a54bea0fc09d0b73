//! Custom metrics: a team's own per-version CloudWatch metrics (handled 5xx responses,
//! orders placed per request, a custom p99), judged beside Lambda's.
//!
//! A web framework turns an exception into a 500 response, and Lambda counts a
//! successful invocation: only the function's own metrics see it. Each rule in
//! `health.metrics` names its series with `${version}` (and `${function}`,
//! `${alias}`) in a dimension, filled in per version, so that the candidate and the
//! stable version are read apart in the check's one GetMetricData request.
//!
//! - **A rate** (`bad` or `good` over `all`, `Sum` only) is judged like errors: the
//!   sequential test of [`crate::compare`] against the stable version over the same
//!   minutes and, once the candidate has all traffic, against the stable version's
//!   history, with a share of the false-alarm budget; and an absolute limit over the
//!   window. For `good` (higher is better) the test looks for a drop.
//! - **A gauge** (`value`, any statistic) is compared by tolerance: the mean of its
//!   per-minute values over the window against the stable version's. It is a guard with
//!   no false-alarm guarantee, outside the budget.
//!
//! Any rule, custom or built in, may be `"mode": "observe"`: evaluated and reported
//! ([`crate::judge::Verdict::observed`]), never rolling back nor holding up a promotion.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::compare::{BaselineRate, Comparison};
use crate::error::FieldError;
use crate::ports::{BUILT_IN_QUERIES, CustomPoint, CustomSeries, MAX_METRIC_QUERIES, MinuteCounts};
use crate::request::{HealthSettings, Targets};
use crate::time::Timestamp;

/// Whether a rule may roll back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A failure rolls back; missing data holds up the promotion (the default).
    #[default]
    Enforce,
    /// Evaluated and reported only ([`crate::judge::Verdict::observed`]).
    Observe,
}

impl Mode {
    /// Whether it is [`Mode::Enforce`] (serde leaves that out).
    pub fn is_enforce(&self) -> bool {
        *self == Mode::Enforce
    }
}

/// The most custom rules a request may list.
pub const MAX_RULES: usize = 20;

/// The placeholders a dimension value may hold, filled in per version and target.
pub const PLACEHOLDERS: [&str; 3] = ["${version}", "${function}", "${alias}"];

/// The statistic a rate's counts are read with.
pub const SUM: &str = "Sum";

/// The statistic of a gauge that names none.
pub const AVERAGE: &str = "Average";

/// One CloudWatch metric as a request names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    /// Namespace, e.g. `orders`.
    pub namespace: String,
    /// Metric name, e.g. `Http5xx`.
    pub metric: String,
    /// Dimensions; one value at least holds `${version}`.
    pub dimensions: BTreeMap<String, String>,
    /// Statistic: `Sum` (the default, and the only one a rate takes) or, for a gauge,
    /// any CloudWatch statistic (`Average` by default, `p99`, `Maximum`, `tm90`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat: Option<String>,
}

impl MetricSpec {
    /// The series of `version` behind `function:alias`, with `stat` unless the spec
    /// names one.
    pub fn series(&self, function: &str, alias: &str, version: &str, stat: &str) -> CustomSeries {
        let fill =
            |v: &str| v.replace("${version}", version).replace("${function}", function).replace("${alias}", alias);
        CustomSeries {
            namespace: self.namespace.clone(),
            metric: self.metric.clone(),
            dimensions: self.dimensions.iter().map(|(k, v)| (k.clone(), fill(v))).collect(),
            stat: self.stat.clone().unwrap_or_else(|| stat.to_owned()),
        }
    }

    /// `orders/Http5xx`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.namespace, self.metric)
    }
}

/// A custom rule (`health.metrics[i]`): a rate (`bad` or `good` over `all`) or a gauge
/// (`value`), its thresholds and its mode.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricRule {
    /// The rule's name in verdicts: `http-5xx`.
    pub name: String,
    /// Enforce (the default) or observe.
    #[serde(default, skip_serializing_if = "Mode::is_enforce")]
    pub mode: Mode,
    /// Events where lower is better: failures, handled 5xx responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad: Option<MetricSpec>,
    /// Events where higher is better: orders placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub good: Option<MetricSpec>,
    /// What `bad` or `good` are out of: requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<MetricSpec>,
    /// A gauge: a custom p99, a queue's age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<MetricSpec>,
    /// A rate of `bad` (or a gauge) may exceed its baseline by this much, relatively,
    /// before it fails. Off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_increase_percent: Option<f64>,
    /// A rate of `good` may fall below its baseline by this much, relatively (0-100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_decrease_percent: Option<f64>,
    /// A rate of `bad` above this percentage over the window fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_percent: Option<f64>,
    /// A rate of `good` below this percentage over the window fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_percent: Option<f64>,
    /// A gauge above this value over the window fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Refuse the deployment when the stable version has no data for the metric over
    /// its history (likely a typo); a warning and a note otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_data: bool,
}

/// What a rule judges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind<'a> {
    /// `events` over `all`; `higher_is_better` for `good`.
    Rate { events: &'a MetricSpec, all: &'a MetricSpec, higher_is_better: bool },
    /// A gauge.
    Gauge(&'a MetricSpec),
}

impl MetricRule {
    /// What it judges; `None` on a rule validation refuses.
    pub fn kind(&self) -> Option<Kind<'_>> {
        match (&self.bad, &self.good, &self.all, &self.value) {
            (Some(events), None, Some(all), None) => Some(Kind::Rate { events, all, higher_is_better: false }),
            (None, Some(events), Some(all), None) => Some(Kind::Rate { events, all, higher_is_better: true }),
            (None, None, None, Some(v)) => Some(Kind::Gauge(v)),
            _ => None,
        }
    }

    /// The series it reads for one version: `[events, all]` for a rate, `[value]` for a gauge.
    pub fn series(&self, function: &str, alias: &str, version: &str) -> Vec<CustomSeries> {
        match self.kind() {
            Some(Kind::Rate { events, all, .. }) => {
                vec![events.series(function, alias, version, SUM), all.series(function, alias, version, SUM)]
            }
            Some(Kind::Gauge(v)) => vec![v.series(function, alias, version, AVERAGE)],
            None => Vec::new(),
        }
    }

    /// The relative change tolerated before the comparison fails, in percent, if it compares.
    pub fn tolerance(&self) -> Option<f64> {
        match self.kind() {
            Some(Kind::Rate { higher_is_better: true, .. }) => self.max_decrease_percent,
            Some(_) => self.max_increase_percent,
            None => None,
        }
    }

    /// Whether it is a sequential test with a share of the false-alarm budget: a rate
    /// with a comparison threshold (observe rules too, so that one shows the verdict it
    /// would give enforced).
    pub fn is_test(&self) -> bool {
        matches!(self.kind(), Some(Kind::Rate { .. })) && self.tolerance().is_some()
    }

    /// How many series it reads per version: the length of [`Self::series`].
    pub fn series_count(&self) -> usize {
        match self.kind() {
            Some(Kind::Rate { .. }) => 2,
            Some(Kind::Gauge(_)) => 1,
            None => 0,
        }
    }

    /// The metric whose absence means "no data" (a rate's `all`, a gauge's `value`), with
    /// its field's name.
    pub fn data_metric(&self) -> Option<(&'static str, &MetricSpec)> {
        match self.kind()? {
            Kind::Rate { all, .. } => Some(("all", all)),
            Kind::Gauge(v) => Some(("value", v)),
        }
    }
}

/// Every custom series of one version, in rule order (each rule's [`MetricRule::series`]).
pub fn series_of(rules: &[MetricRule], function: &str, alias: &str, version: &str) -> Vec<CustomSeries> {
    rules.iter().flat_map(|r| r.series(function, alias, version)).collect()
}

/// The custom rate tests each target's share of the false-alarm budget is split over too.
pub fn tests(rules: &[MetricRule]) -> usize {
    rules.iter().filter(|r| r.is_test()).count()
}

/// The queries one check's GetMetricData request makes for `targets` Lambda aliases:
/// the candidate and the stable version, each [`BUILT_IN_QUERIES`] and one per custom series.
pub fn query_count(targets: usize, rules: &[MetricRule]) -> usize {
    let custom: usize = rules.iter().map(MetricRule::series_count).sum();
    targets * 2 * (BUILT_IN_QUERIES + custom)
}

/// Each rule's series, split out of one version's [`crate::ports::VersionMetrics::custom`].
pub fn split<'a>(rules: &[MetricRule], custom: &'a [Vec<CustomPoint>]) -> Vec<&'a [Vec<CustomPoint>]> {
    let mut out = Vec::with_capacity(rules.len());
    let mut at = 0;
    for r in rules {
        let n = r.series_count();
        out.push(custom.get(at..at + n).unwrap_or(&[]));
        at += n;
    }
    out
}

/// A rate's series as minute counts: `all` as invocations and the events as errors, so
/// that the error tests' pairing, windows and history joining apply unchanged. Sums may
/// be fractional (EMF values are numbers): they are rounded.
pub fn as_counts(series: &[Vec<CustomPoint>]) -> Vec<MinuteCounts> {
    let (Some(events), Some(all)) = (series.first(), series.get(1)) else { return Vec::new() };
    all.iter()
        .map(|(start, n)| {
            let invocations = n.max(0.0).round() as u64;
            let k = events.iter().find(|(t, _)| t == start).map_or(0.0, |(_, k)| *k);
            MinuteCounts {
                start: *start,
                invocations,
                errors: (k.max(0.0).round() as u64).min(invocations),
                ..Default::default()
            }
        })
        .collect()
}

/// The mean of a gauge's values in `[start, end)`, if it had any.
pub fn mean(points: &[CustomPoint], start: Timestamp, end: Timestamp) -> Option<f64> {
    let inside: Vec<f64> = points.iter().filter(|(t, _)| *t >= start && *t < end).map(|(_, v)| *v).collect();
    (!inside.is_empty()).then(|| inside.iter().sum::<f64>() / inside.len() as f64)
}

/// The stable version's history of one rule: the baseline at full traffic, and the
/// proof that the metric exists.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomHistory {
    /// Minutes with a datapoint of `all` (or of the gauge).
    pub minutes: u32,
    /// A rate's events over `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<BaselineRate>,
    /// A gauge's mean of its per-minute values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

impl CustomHistory {
    /// The summary of one rule's series over the history.
    pub fn of(rule: &MetricRule, series: &[Vec<CustomPoint>]) -> Self {
        match rule.kind() {
            Some(Kind::Rate { .. }) => {
                let counts = as_counts(series);
                let rate = BaselineRate {
                    invocations: counts.iter().map(|m| m.invocations).sum(),
                    events: counts.iter().map(|m| m.errors).sum(),
                };
                Self { minutes: counts.len() as u32, rate: Some(rate), value: None }
            }
            _ => {
                let points = series.first().map_or(&[][..], Vec::as_slice);
                let value =
                    (!points.is_empty()).then(|| points.iter().map(|(_, v)| v).sum::<f64>() / points.len() as f64);
                Self { minutes: points.len() as u32, rate: None, value }
            }
        }
    }
}

/// The rules whose metric had no datapoint for the stable version over its history,
/// likely a typo in a name or dimension: `(rule index, field, sentence)`, for Begin to
/// refuse (`require_data`) or warn, and for the checks' notes.
pub fn missing_data(rules: &[MetricRule], t: &crate::deployment::PlannedTarget) -> Vec<(usize, String, String)> {
    let (Some(h), crate::routers::Route::Alias(a)) = (&t.history, &t.route) else { return Vec::new() };
    let (target, stable) = (t.qualified(), &t.stable);
    rules
        .iter()
        .enumerate()
        .zip(&h.custom)
        .filter(|(_, c)| c.minutes == 0)
        .filter_map(|((i, r), _)| {
            let (field, spec) = r.data_metric()?;
            let series = spec.series(&a.function, &a.alias, stable, SUM);
            let dims: Vec<String> = series.dimensions.iter().map(|(k, v)| format!("{k}={v}")).collect();
            Some((
                i,
                format!("health.metrics[{i}].{field}"),
                format!(
                    "{} ({}): {target}'s stable version {stable} had no datapoint of {} with {} over its history {}-{}; check the \
                     namespace, metric and dimensions",
                    r.name,
                    if r.mode == Mode::Observe { "observed" } else { "enforced" },
                    spec.label(),
                    dims.join(", "),
                    h.start.to_rfc3339(),
                    h.end.to_rfc3339()
                ),
            ))
        })
        .collect()
}

/// One rule's numbers for one target in a verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomSample {
    /// The rule's name.
    pub name: String,
    /// Its mode (left out when enforced).
    #[serde(default, skip_serializing_if = "Mode::is_enforce")]
    pub mode: Mode,
    /// The candidate over the window.
    pub candidate: CustomValue,
    /// The stable version over the same minutes, while traffic is split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<CustomValue>,
    /// A rate's sequential test over every minute so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// What a gauge was compared with, once the candidate had all traffic: the
    /// stable version's history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_value: Option<f64>,
}

/// A rate (`value` in percent, `events` of `total`) or a gauge (`value`) over a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomValue {
    /// The rate in percent, or the gauge's mean; absent without data.
    pub value: Option<f64>,
    /// A rate's events.
    #[serde(default)]
    pub events: u64,
    /// A rate's `all`.
    #[serde(default)]
    pub total: u64,
}

impl CustomValue {
    /// A rate over `counts`.
    pub fn rate(counts: &[MinuteCounts]) -> Self {
        let total: u64 = counts.iter().map(|m| m.invocations).sum();
        let events: u64 = counts.iter().map(|m| m.errors).sum();
        Self { value: (total > 0).then(|| 100.0 * events as f64 / total as f64), events, total }
    }
}

/// Checks `health.metrics` (and the custom-metric limits) against the request.
pub fn validate(h: &HealthSettings, targets: &Targets, errors: &mut Vec<FieldError>) {
    let rules = &h.metrics;
    if rules.is_empty() {
        return;
    }
    if !targets.records.is_empty() || !targets.endpoints.is_empty() {
        errors.push(FieldError::new(
            "health.metrics",
            "custom metrics are judged per Lambda version, and these targets are not Lambda aliases; watch their \
             metrics with health.alarms",
        ));
    }
    if rules.len() > MAX_RULES {
        errors.push(FieldError::new("health.metrics", format!("lists {} rules; at most {MAX_RULES}", rules.len())));
    }
    let queries = query_count(targets.aliases.len(), rules);
    if queries > MAX_METRIC_QUERIES {
        let custom: usize = rules.iter().map(MetricRule::series_count).sum();
        errors.push(FieldError::new(
            "health.metrics",
            format!(
                "a check would make {} targets × 2 versions × ({BUILT_IN_QUERIES} built-in + {custom} custom) = \
                 {queries} queries, over GetMetricData's {MAX_METRIC_QUERIES} in its one request; release fewer \
                 targets together or judge fewer metrics",
                targets.aliases.len()
            ),
        ));
    }
    for (i, r) in rules.iter().enumerate() {
        let at = format!("health.metrics[{i}]");
        if !is_rule_name(&r.name) {
            errors.push(FieldError::new(
                format!("{at}.name"),
                "must be 1-64 letters, digits, `-`, `_` or `.`, to name the rule in verdicts",
            ));
        } else if rules[..i].iter().any(|o| o.name == r.name) {
            errors.push(FieldError::new(format!("{at}.name"), format!("`{}` is used by another rule", r.name)));
        }
        validate_rule(r, &at, h, errors);
    }
}

fn is_rule_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn validate_rule(r: &MetricRule, at: &str, h: &HealthSettings, errors: &mut Vec<FieldError>) {
    let Some(kind) = r.kind() else {
        errors.push(FieldError::new(
            at,
            "give `bad` and `all` (a rate where lower is better), `good` and `all` (a rate where higher is better), \
             or `value` (a gauge), and no other metric",
        ));
        return;
    };
    let thresholds = match kind {
        Kind::Rate { events, all, higher_is_better } => {
            let name = if higher_is_better { "good" } else { "bad" };
            validate_spec(events, &format!("{at}.{name}"), true, errors);
            validate_spec(all, &format!("{at}.all"), true, errors);
            if higher_is_better {
                let why = "applies to `bad` rates; a `good` rate takes max_decrease_percent and min_percent";
                check_not(errors, at, "max_increase_percent", r.max_increase_percent.is_some(), why);
                check_not(errors, at, "max_percent", r.max_percent.is_some(), why);
                check_range(errors, at, "max_decrease_percent", r.max_decrease_percent, 0.0, 99.0);
                check_range(errors, at, "min_percent", r.min_percent, 0.0, 100.0);
                [r.max_decrease_percent, r.min_percent]
            } else {
                let why = "applies to `good` rates; a `bad` rate takes max_increase_percent and max_percent";
                check_not(errors, at, "max_decrease_percent", r.max_decrease_percent.is_some(), why);
                check_not(errors, at, "min_percent", r.min_percent.is_some(), why);
                check_range(errors, at, "max_increase_percent", r.max_increase_percent, 0.0, 10_000.0);
                check_range(errors, at, "max_percent", r.max_percent, 0.0, 100.0);
                [r.max_increase_percent, r.max_percent]
            }
        }
        Kind::Gauge(v) => {
            validate_spec(v, &format!("{at}.value"), false, errors);
            let why = "applies to rates; a gauge takes max_increase_percent and max";
            check_not(errors, at, "max_decrease_percent", r.max_decrease_percent.is_some(), why);
            check_not(errors, at, "max_percent", r.max_percent.is_some(), why);
            check_not(errors, at, "min_percent", r.min_percent.is_some(), why);
            check_range(errors, at, "max_increase_percent", r.max_increase_percent, 0.0, 10_000.0);
            if r.max.is_some_and(|m| !m.is_finite()) {
                errors.push(FieldError::new(format!("{at}.max"), "must be a finite number"));
            }
            [r.max_increase_percent, r.max]
        }
    };
    if matches!(kind, Kind::Rate { .. }) {
        check_not(errors, at, "max", r.max.is_some(), "applies to gauges (`value`); a rate takes a percentage");
    }
    if thresholds.iter().all(Option::is_none) {
        errors.push(FieldError::new(at, "judges nothing: give a comparison threshold, an absolute limit, or both"));
    }
    if r.require_data && h.baseline.history_seconds == 0 {
        errors.push(FieldError::new(
            format!("{at}.require_data"),
            "needs the stable version's history to look for data in; health.baseline.history_seconds is 0",
        ));
    }
}

fn check_not(errors: &mut Vec<FieldError>, at: &str, field: &str, set: bool, why: &str) {
    if set {
        errors.push(FieldError::new(format!("{at}.{field}"), why.to_owned()));
    }
}

fn check_range(errors: &mut Vec<FieldError>, at: &str, field: &str, value: Option<f64>, min: f64, max: f64) {
    if let Some(v) = value
        && !(v.is_finite() && v >= min && v <= max)
    {
        errors.push(FieldError::new(format!("{at}.{field}"), format!("must be between {min} and {max}")));
    }
}

/// CloudWatch's statistics, as GetMetricData names them; percentiles and their kin
/// (`p99`, `tm90`, `wm99.9`, `tc90`, `ts90`, `pr(10:)`) are checked by [`is_statistic`].
const STATISTICS: [&str; 6] = ["Sum", "Average", "Minimum", "Maximum", "SampleCount", "IQM"];

/// Whether CloudWatch knows `stat`: a named statistic, or a percentile-like one with a
/// number from 0 to 100 (up to 10 decimals) or a range (`tm(10%:90%)`, `TC(100:)`).
pub fn is_statistic(stat: &str) -> bool {
    if STATISTICS.contains(&stat) {
        return true;
    }
    let lower = stat.to_ascii_lowercase();
    let Some(rest) = ["tm", "wm", "tc", "ts", "pr", "p"].iter().find_map(|p| lower.strip_prefix(p)) else {
        return false;
    };
    if let Some(range) = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        return range.contains(':')
            && range.split(':').all(|b| {
                let b = b.trim_end_matches('%');
                b.is_empty() || b.parse::<f64>().is_ok_and(f64::is_finite)
            });
    }
    !rest.is_empty()
        && rest.split('.').nth(1).is_none_or(|d| d.len() <= 10)
        && rest.parse::<f64>().is_ok_and(|x| (0.0..=100.0).contains(&x))
        && !lower.starts_with("pr")
}

fn validate_spec(spec: &MetricSpec, at: &str, rate: bool, errors: &mut Vec<FieldError>) {
    if !(1..=255).contains(&spec.namespace.len()) || spec.namespace.starts_with(':') {
        errors.push(FieldError::new(format!("{at}.namespace"), "must be a CloudWatch namespace of 1-255 characters"));
    }
    if !(1..=255).contains(&spec.metric.len()) {
        errors.push(FieldError::new(format!("{at}.metric"), "must be a metric name of 1-255 characters"));
    }
    if spec.dimensions.is_empty() || spec.dimensions.len() > 30 {
        errors.push(FieldError::new(
            format!("{at}.dimensions"),
            "must hold 1-30 dimensions, one of them with ${version} in its value",
        ));
    } else if !spec.dimensions.values().any(|v| v.contains("${version}")) {
        errors.push(FieldError::new(
            format!("{at}.dimensions"),
            "has no ${version}: the metric would judge the whole function, both versions mixed; put ${version} in \
             the value of the dimension that carries the version (for example \"Version\": \"${version}\")",
        ));
    }
    for (name, value) in &spec.dimensions {
        if !(1..=255).contains(&name.len()) || !name.is_ascii() || name.starts_with(':') {
            errors.push(FieldError::new(format!("{at}.dimensions"), format!("`{name}` is not a dimension name")));
        }
        let mut rest = value.as_str();
        while let Some(start) = rest.find("${") {
            let tail = &rest[start..];
            let end = tail.find('}').map_or(tail.len(), |e| e + 1);
            if !PLACEHOLDERS.contains(&&tail[..end]) {
                errors.push(FieldError::new(
                    format!("{at}.dimensions.{name}"),
                    format!("`{}` is not a placeholder; use {}", &tail[..end], PLACEHOLDERS.join(", ")),
                ));
            }
            rest = &tail[end..];
        }
        if value.is_empty() || value.len() > 1024 {
            errors.push(FieldError::new(format!("{at}.dimensions.{name}"), "must be a value of 1-1024 characters"));
        }
    }
    match &spec.stat {
        Some(stat) if rate && stat != SUM => errors.push(FieldError::new(
            format!("{at}.stat"),
            format!("a rate adds up its counts: it takes `Sum` only, not `{stat}`"),
        )),
        Some(stat) if !is_statistic(stat) => errors.push(FieldError::new(
            format!("{at}.stat"),
            format!(
                "`{stat}` is not a CloudWatch statistic (Average, Sum, Minimum, Maximum, SampleCount, p99, tm90...)"
            ),
        )),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
