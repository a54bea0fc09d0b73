//! The rules a request's types cannot express: each problem is a [`FieldError`] naming
//! its field and the reason, and every problem is reported at once.

use std::collections::HashSet;

use crate::error::{FieldError, FieldErrors};
use crate::outcomes::MIN_FAST_CHECK_SECONDS;
use crate::routers::route53::RecordTarget;
use crate::strategy::{Preset, preset_names};

use super::model::{DeploymentRequest, HealthSettings, SCHEMA_VERSION, Strategy, Targets};

/// Most targets in one release. Each costs 8 metrics per health check (of 500 a call).
pub const MAX_TARGETS: usize = 20;
/// Most steps in a custom strategy; keeps executions far below the 25,000-event history limit.
pub const MAX_STEPS: usize = 50;
/// Longest bake of a single step, lock-in window or approval wait: 7 days.
pub const MAX_WAIT_SECONDS: u64 = 7 * 24 * 3600;
/// Longest whole deployment, counting every bake, the lock-in and every approval wait at
/// its limit: 300 days, safely inside Step Functions' one-year execution limit.
pub const MAX_TOTAL_SECONDS: u64 = 300 * 24 * 3600;
/// Step Functions' limit of history events in one execution.
pub const HISTORY_EVENT_LIMIT: u64 = 25_000;
/// History events of one check cycle: Bake (entered, exited), Check health (entered,
/// scheduled, started, succeeded, exited) and Choose next step (entered, exited).
pub const EVENTS_PER_CHECK: u64 = 9;
/// History events a step costs besides its checks: Shift traffic (5) and Choose next
/// step (2), plus 7 for an approval pause.
pub const EVENTS_PER_STEP: u64 = 7;
/// History events of a DNS step's sync loop at its 10-minute limit: 60 polls of 9.
pub const EVENTS_PER_DNS_SYNC: u64 = 540;
/// Events kept free for Begin, promotion, confirmation or rollback, and retries.
pub const RESERVED_EVENTS: u64 = 2_000;
/// The shortest check interval: Lambda's metrics come in 1-minute periods.
pub const MIN_CHECK_INTERVAL_SECONDS: u64 = 60;
/// Most CloudWatch alarms to watch (DescribeAlarms takes 100 names a call).
pub const MAX_ALARMS: usize = 100;

impl DeploymentRequest {
    /// The seconds between checks: `health.check_interval_seconds`, or when that is
    /// `null`, every minute, lengthened by whole minutes only as far as a long deployment
    /// needs to stay within Step Functions' history limit. The error explains the
    /// arithmetic. Only meaningful on a request whose strategy is valid.
    pub fn check_interval(&self) -> Result<u64, FieldError> {
        self.fitting_interval("health.check_interval_seconds", self.health.check_interval_seconds)
    }

    /// The seconds between checks while the fast path is live:
    /// `health.fast_path.check_interval_seconds`, or when that is `null`, every 20 s,
    /// lengthened by 10 s at a time (up to 60 s) only as far as the history limit needs.
    /// The fast cadence lasts at most
    /// [`FAST_PATH_HORIZON_SECONDS`](crate::outcomes::FAST_PATH_HORIZON_SECONDS) of
    /// watching (CloudWatch keeps 10-second data for 3 hours). Its checks are reserved
    /// first; the minute interval ([`check_interval`](Self::check_interval)) fits the rest.
    pub fn fast_check_interval(&self) -> Result<u64, FieldError> {
        let asked = self.health.fast_path.check_interval_seconds;
        let bakes = self.bakes();
        let room = HISTORY_EVENT_LIMIT.saturating_sub(self.base_events() + EVENTS_PER_CHECK * bakes.len() as u64);
        let span = bakes.iter().sum::<u64>().min(crate::outcomes::FAST_PATH_HORIZON_SECONDS);
        let events = |every: u64| EVENTS_PER_CHECK * span.div_ceil(every.max(1));
        let first = asked.unwrap_or(crate::outcomes::DEFAULT_FAST_CHECK_SECONDS);
        let fits = (first..=MIN_CHECK_INTERVAL_SECONDS).step_by(10).find(|every| events(*every) <= room);
        match (asked, fits) {
            (None, Some(every)) => Ok(every),
            (Some(asked), Some(every)) if every == asked => Ok(asked),
            (_, fits) => Err(FieldError::new(
                if asked.is_some() { "health.fast_path.check_interval_seconds" } else { "health.fast_path.enabled" },
                format!(
                    "the fast path's checks over its first {span} s of watching cost {} history events at every {first} s, and the steps, their extensions and one check per bake leave {room} of Step Functions' {HISTORY_EVENT_LIMIT}; {}",
                    events(first),
                    match fits {
                        Some(every) => format!("check every {every} s or more"),
                        None => "use fewer steps or extensions, or leave the fast path off".to_owned(),
                    }
                ),
            )),
        }
    }

    /// The bakes a deployment watches: every step's but the last, and the lock-in.
    fn bakes(&self) -> Vec<u64> {
        let steps = self.steps();
        let watched = steps.split_last().map_or(&[][..], |(_, w)| w);
        watched.iter().map(|s| s.bake_seconds).chain([self.lock_in_seconds]).collect()
    }

    /// History events besides the checks: Begin, the steps with their extensions and
    /// approvals, and the reserve for retries and the ending.
    fn base_events(&self) -> u64 {
        let steps = self.steps();
        let ins = &self.health.insufficient_data;
        let per_step = EVENTS_PER_STEP
            + if crate::routers::kind_of(&self.targets).syncs() { EVENTS_PER_DNS_SYNC } else { 0 }
            + EVENTS_PER_CHECK * u64::from(ins.extensions);
        let approvals = steps.iter().filter(|s| s.approval).count() as u64;
        RESERVED_EVENTS + per_step * steps.len() as u64 + 7 * approvals + self.hook_events()
    }

    /// The hooks' history events: each point that has hooks, each time it runs.
    fn hook_events(&self) -> u64 {
        use crate::hooks::{EVENTS_PER_HOOK, EVENTS_PER_POINT, Point};
        let runs = |p: Point| if p == Point::EachStep { self.steps().len().saturating_sub(1) as u64 } else { 1 };
        let targets = self.targets.len().max(1) as u64;
        Point::ALL
            .iter()
            .map(|p| {
                let hooks = self.hooks.at(*p);
                let invocations: u64 =
                    hooks.iter().map(|h| if h.invoke_candidate.is_some() { targets } else { 1 }).sum();
                if hooks.is_empty() { 0 } else { runs(*p) * (EVENTS_PER_POINT + EVENTS_PER_HOOK * invocations) }
            })
            .sum()
    }

    /// The fast path's checks, when it is on (and fits).
    fn fast_events(&self) -> u64 {
        if !self.health.fast_path.enabled {
            return 0;
        }
        let span = self.bakes().iter().sum::<u64>().min(crate::outcomes::FAST_PATH_HORIZON_SECONDS);
        self.fast_check_interval().map_or(0, |every| EVENTS_PER_CHECK * span.div_ceil(every))
    }

    /// `asked`, if the deployment's checks at that interval fit Step Functions' history
    /// limit (an error naming `field` otherwise); or, when `asked` is `None`, the first
    /// whole minute that fits.
    fn fitting_interval(&self, field: &str, asked: Option<u64>) -> Result<u64, FieldError> {
        let (first, stride) = (MIN_CHECK_INTERVAL_SECONDS, 60);
        let steps = self.steps();
        if steps.is_empty() {
            return Ok(first);
        }
        let ins = &self.health.insufficient_data;
        let (fixed, fast) = (self.base_events(), self.fast_events());
        let bakes = self.bakes();
        let checks = |every: u64| bakes.iter().map(|b| b.div_ceil(every).max(1)).sum::<u64>();
        let events = |every: u64| fixed + fast + EVENTS_PER_CHECK * checks(every);
        if fixed + EVENTS_PER_CHECK * bakes.len() as u64 > HISTORY_EVENT_LIMIT {
            return Err(FieldError::new(
                "health.insufficient_data.extensions",
                format!(
                    "{} steps with up to {} extensions each cost about {fixed} history events before any regular check; Step Functions allows {HISTORY_EVENT_LIMIT} per execution: use fewer steps or extensions",
                    steps.len(),
                    ins.extensions
                ),
            ));
        }
        if let Some(every) = asked {
            if events(every) > HISTORY_EVENT_LIMIT {
                let mut fits = every;
                while events(fits) > HISTORY_EVENT_LIMIT {
                    fits += stride;
                }
                return Err(FieldError::new(
                    field,
                    format!(
                        "checking every {every} s means {} checks of {EVENTS_PER_CHECK} history events each, plus {} for the steps, {}retries and the rest: {} events, and Step Functions allows {HISTORY_EVENT_LIMIT} per execution; check every {fits} s or more, or leave it unset to have stepshift choose",
                        checks(every),
                        fixed + fast,
                        if fast > 0 { "the fast path's checks, " } else { "" },
                        events(every)
                    ),
                ));
            }
            return Ok(every);
        }
        let mut every = first;
        while events(every) > HISTORY_EVENT_LIMIT {
            every += stride;
        }
        Ok(every)
    }

    /// Advice that does not stop the release, such as a bake shorter than a record's TTL.
    pub fn warnings(&self) -> Vec<String> {
        let steps = self.steps();
        let shortest = steps[..steps.len().saturating_sub(1)].iter().map(|s| s.bake_seconds).min();
        let Some(shortest) = shortest else { return Vec::new() };
        let mut out = Vec::new();
        if self.health.check_interval_seconds.is_none()
            && let Ok(every) = self.check_interval()
            && every > MIN_CHECK_INTERVAL_SECONDS
        {
            out.push(format!(
                "health: checks every {every} s rather than every minute, so that the deployment stays within Step Functions' {HISTORY_EVENT_LIMIT} history events"
            ));
        }
        for (i, r) in self.targets.records.iter().enumerate() {
            out.extend(r.warnings(&format!("targets[{i}]"), shortest));
        }
        out
    }

    /// Checks every rule that serde's types cannot, and reports all problems found.
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut errors = Vec::new();
        match self.schema {
            None => errors.push(FieldError::new("schema", "is required; set \"schema\": 1")),
            Some(SCHEMA_VERSION) => {}
            Some(other) => errors.push(FieldError::new(
                "schema",
                format!("version {other} is not supported; this stepshift reads schema {SCHEMA_VERSION}"),
            )),
        }
        validate_targets(&self.targets, &mut errors);
        if !self.targets.records.is_empty() {
            validate_record_health(&self.targets.records, &self.health, &mut errors);
        }
        if !self.targets.endpoints.is_empty() && self.health.alarms.is_empty() {
            errors.push(FieldError::new(
                "health.alarms",
                "must list at least one CloudWatch alarm to release Lambda Web Function endpoints: their request \
                 metrics (AWS/Lambda/Web) are per endpoint, not per revision, so stepshift judges them on alarms, \
                 for example one on the endpoint's HTTPResponseStatusClass5XX",
            ));
        }
        let strategy_valid = errors.len();
        validate_strategy(&self.strategy, &mut errors);
        if errors.len() == strategy_valid && !self.targets.endpoints.is_empty() {
            errors.extend(crate::routers::web::step_problems(&self.steps()));
        }
        validate_health(&self.health, &mut errors);
        crate::custom::validate(&self.health, &self.targets, &mut errors);
        let aliases: Vec<&str> = self.targets.aliases.iter().map(|a| a.function.as_str()).collect();
        let traffic_steps = if errors.len() == strategy_valid { self.steps().len().saturating_sub(1) } else { 1 };
        crate::hooks::validate(&self.hooks, &aliases, traffic_steps, &mut errors);
        check_wait(&mut errors, "lock_in_seconds", self.lock_in_seconds, 0);
        check_wait(&mut errors, "approval_timeout_seconds", self.approval_timeout_seconds, 1);
        if let Some(keep) = self.keep_versions
            && !(1..=1000).contains(&keep)
        {
            errors.push(FieldError::new("keep_versions", "must be between 1 and 1000"));
        }
        if errors.is_empty()
            && let Err(e) = self.check_interval()
        {
            errors.push(e);
        }
        if self.health.fast_path.enabled {
            if self.targets.aliases.is_empty() {
                errors.push(FieldError::new(
                    "health.fast_path.enabled",
                    "the fast path counts the invocations of Lambda alias targets; Route53 records and Web Function \
                     endpoints have none to count: leave it off",
                ));
            }
            if errors.is_empty()
                && let Err(e) = self.fast_check_interval()
            {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            let steps = self.steps();
            let total = steps.iter().map(|s| s.bake_seconds).sum::<u64>()
                + self.lock_in_seconds
                + steps.iter().filter(|s| s.approval).count() as u64 * self.approval_timeout_seconds;
            if total > MAX_TOTAL_SECONDS {
                errors.push(FieldError::new(
                    "strategy",
                    format!(
                        "bakes, lock-in and approval waits add up to {total} s; at most {MAX_TOTAL_SECONDS} s fit in one Step Functions execution"
                    ),
                ));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(FieldErrors(errors)) }
    }
}

fn check_wait(errors: &mut Vec<FieldError>, field: &str, value: u64, min: u64) {
    if value < min || value > MAX_WAIT_SECONDS {
        errors.push(FieldError::new(field, format!("must be between {min} and {MAX_WAIT_SECONDS} seconds (7 days)")));
    }
}

/// Whether `text` is a Lambda function or alias name of at most `max` characters.
pub fn is_resource_name(text: &str, max: usize) -> bool {
    !text.is_empty() && text.len() <= max && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn validate_targets(all: &Targets, errors: &mut Vec<FieldError>) {
    if all.is_empty() {
        errors.push(FieldError::new(
            "targets",
            "must list at least one {function, alias, version}, {\"kind\": \"route53\", ...} or {\"kind\": \"lambda_web\", ...}",
        ));
        return;
    }
    let kinds = [!all.aliases.is_empty(), !all.records.is_empty(), !all.endpoints.is_empty()];
    if kinds.iter().filter(|k| **k).count() > 1 {
        errors.push(FieldError::new(
            "targets",
            "mixes kinds of target (Lambda aliases, Route53 records, Web Function endpoints); release each kind \
             in its own deployment",
        ));
        return;
    }
    if all.len() > MAX_TARGETS {
        errors.push(FieldError::new(
            "targets",
            format!("lists {}; at most {MAX_TARGETS} can be released together", all.len()),
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    for (i, r) in all.records.iter().enumerate() {
        errors.extend(r.problems(&format!("targets[{i}]")));
        let key = format!("{} in zone {}", r.label(), r.hosted_zone_id.trim_start_matches("/hostedzone/"));
        if let Some(first) = seen.iter().position(|k| *k == key) {
            errors.push(FieldError::new(
                format!("targets[{i}]"),
                format!("{key} is already targets[{first}]; list each record once"),
            ));
        }
        seen.push(key);
    }
    let mut seen: Vec<String> = Vec::new();
    for (i, e) in all.endpoints.iter().enumerate() {
        errors.extend(e.problems(&format!("targets[{i}]")));
        if let Some(first) = seen.iter().position(|k| *k == e.label()) {
            errors.push(FieldError::new(
                format!("targets[{i}]"),
                format!("{} is already targets[{first}]; list each endpoint once", e.label()),
            ));
        }
        seen.push(e.label());
    }
    let targets = &all.aliases[..];
    if targets.is_empty() {
        return;
    }
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let at = |name: &str| format!("targets[{i}].{name}");
        if t.function.starts_with("arn:") {
            errors.push(FieldError::new(at("function"), "give the function name, not its ARN"));
        } else if !is_resource_name(&t.function, 64) {
            errors.push(FieldError::new(at("function"), "must be a function name: 1-64 letters, digits, '-' or '_'"));
        }
        if !is_resource_name(&t.alias, 128) || t.alias.bytes().all(|b| b.is_ascii_digit()) {
            errors.push(FieldError::new(
                at("alias"),
                "must be an alias name: 1-128 letters, digits, '-' or '_', not only digits",
            ));
        }
        if t.version == "$LATEST" {
            errors
                .push(FieldError::new(at("version"), "must be a published version; an alias cannot route to $LATEST"));
        } else if t.version.is_empty()
            || t.version.len() > 10
            || !t.version.bytes().all(|b| b.is_ascii_digit())
            || t.version.starts_with('0')
        {
            errors.push(FieldError::new(
                at("version"),
                format!("`{}` is not a published version number (1, 2, 3, ...)", t.version),
            ));
        }
        if let Some(first) = seen.iter().position(|(f, a)| *f == t.function && *a == t.alias) {
            errors.push(FieldError::new(
                format!("targets[{i}]"),
                format!("{} is already targets[{first}]; list each alias once", t.qualified()),
            ));
        }
        seen.push((&t.function, &t.alias));
    }
}

/// A record release is judged on its distributions' CloudFront metrics, or its alarms;
/// with neither there would be nothing to judge.
fn validate_record_health(records: &[RecordTarget], h: &HealthSettings, errors: &mut Vec<FieldError>) {
    if !h.alarms.is_empty() {
        return;
    }
    for (i, r) in records.iter().enumerate() {
        for (side, e) in [("blue", &r.blue), ("green", &r.green)] {
            if e.distribution_id.is_none() {
                errors.push(FieldError::new(
                    format!("targets[{i}].{side}.distribution_id"),
                    "is required to judge the release on CloudFront's metrics; give it, or list health.alarms",
                ));
            }
        }
    }
}

fn validate_strategy(strategy: &Strategy, errors: &mut Vec<FieldError>) {
    let specs = match strategy {
        Strategy::Preset(name) => {
            if Preset::find(name).is_none() {
                errors.push(FieldError::new(
                    "strategy",
                    format!("unknown preset `{name}`; known presets: {}", preset_names()),
                ));
            }
            return;
        }
        Strategy::Steps(specs) => specs,
    };
    if specs.is_empty() {
        errors.push(FieldError::new("strategy", "lists no steps; give at least [{\"weight_percent\": 100}]"));
        return;
    }
    if specs.len() > MAX_STEPS {
        errors
            .push(FieldError::new("strategy", format!("lists {} steps; at most {MAX_STEPS} are allowed", specs.len())));
    }
    let last = specs.len() - 1;
    let mut previous: Option<f64> = None;
    for (i, s) in specs.iter().enumerate() {
        let at = |name: &str| format!("strategy[{i}].{name}");
        let w = s.weight_percent;
        if !w.is_finite() || w <= 0.0 || w > 100.0 {
            errors.push(FieldError::new(
                at("weight_percent"),
                format!("{w} is out of range; must be above 0 and at most 100"),
            ));
        } else if let Some(p) = previous.filter(|p| w <= *p) {
            errors.push(FieldError::new(
                at("weight_percent"),
                format!("{w} does not increase on the previous step's {p}; weights must strictly increase"),
            ));
        }
        if w.is_finite() {
            previous = Some(w);
        }
        match (i == last, s.bake_seconds) {
            (false, None) => {
                errors.push(FieldError::new(at("bake_seconds"), "is required for every step before the last"))
            }
            (false, Some(b)) if b > MAX_WAIT_SECONDS => errors.push(FieldError::new(
                at("bake_seconds"),
                format!("{b} s is more than the 7-day limit ({MAX_WAIT_SECONDS} s)"),
            )),
            (true, Some(b)) if b > 0 => errors.push(FieldError::new(
                at("bake_seconds"),
                "the final 100% step is watched after promotion for lock_in_seconds; set that instead",
            )),
            _ => {}
        }
    }
    let final_weight = specs[last].weight_percent;
    if final_weight > 0.0 && final_weight < 100.0 {
        errors.push(FieldError::new(
            format!("strategy[{last}].weight_percent"),
            format!("the last step must be 100 so that the candidate is promoted; it is {final_weight}"),
        ));
    }
}

fn validate_health(h: &HealthSettings, errors: &mut Vec<FieldError>) {
    if h.min_invocations > 1_000_000_000 {
        errors.push(FieldError::new("health.min_invocations", "must be at most 1000000000"));
    }
    if let Some(p) = h.error_rate.max_percent
        && (!p.is_finite() || !(0.0..=100.0).contains(&p))
    {
        errors.push(FieldError::new(
            "health.error_rate.max_percent",
            format!("{p} is out of range; must be between 0 and 100"),
        ));
    }
    for (field, value) in [
        ("health.error_rate.max_increase_percent", h.error_rate.max_increase_percent),
        ("health.p99_duration.max_slow_increase_percent", h.p99_duration.max_slow_increase_percent),
    ] {
        if let Some(v) = value
            && (!v.is_finite() || !(0.0..=10_000.0).contains(&v))
        {
            errors.push(FieldError::new(field, format!("{v} is out of range; must be between 0 and 10000")));
        }
    }
    let fa = h.false_alarm_percent;
    if !fa.is_finite() || fa <= 0.0 || fa > 20.0 {
        errors.push(FieldError::new(
            "health.false_alarm_percent",
            format!("{fa} is out of range; must be above 0 and at most 20"),
        ));
    }
    if let Some(ms) = h.p99_duration.max_ms
        && (!ms.is_finite() || ms <= 0.0 || ms > 900_000.0)
    {
        errors.push(FieldError::new(
            "health.p99_duration.max_ms",
            format!("{ms} is out of range; must be above 0 and at most 900000 (Lambda's 15-minute limit)"),
        ));
    }
    if h.alarms.len() > MAX_ALARMS {
        errors.push(FieldError::new(
            "health.alarms",
            format!("lists {}; at most {MAX_ALARMS} alarms can be watched", h.alarms.len()),
        ));
    }
    let mut names = HashSet::new();
    for (i, name) in h.alarms.iter().enumerate() {
        if name.trim().is_empty() || name.len() > 255 {
            errors.push(FieldError::new(format!("health.alarms[{i}]"), "must be an alarm name of 1-255 characters"));
        } else if !names.insert(name) {
            errors.push(FieldError::new(format!("health.alarms[{i}]"), format!("`{name}` is listed twice")));
        }
    }
    if h.metric_lag_seconds > 3600 {
        errors.push(FieldError::new(
            "health.metric_lag_seconds",
            "must be at most 3600; CloudWatch delivers Lambda metrics within minutes",
        ));
    }
    if let Some(every) = h.check_interval_seconds
        && !(MIN_CHECK_INTERVAL_SECONDS..=MAX_WAIT_SECONDS).contains(&every)
    {
        errors.push(FieldError::new(
            "health.check_interval_seconds",
            "must be at least 60 (Lambda metrics come in 1-minute periods) and at most 7 days",
        ));
    }
    let fast = &h.fast_path;
    if let Some(every) = fast.check_interval_seconds
        && !(MIN_FAST_CHECK_SECONDS..=MIN_CHECK_INTERVAL_SECONDS).contains(&every)
    {
        errors.push(FieldError::new(
            "health.fast_path.check_interval_seconds",
            format!(
                "{every} is out of range; must be between {MIN_FAST_CHECK_SECONDS} (the fast path counts in 10-second buckets) and {MIN_CHECK_INTERVAL_SECONDS} (less often is no faster than the minute checks)"
            ),
        ));
    }
    if fast.sources.is_empty() {
        errors.push(FieldError::new("health.fast_path.sources", "must list `logs`, `destinations` or both"));
    }
    for (i, source) in fast.sources.iter().enumerate() {
        if fast.sources[..i].contains(source) {
            errors.push(FieldError::new(
                format!("health.fast_path.sources[{i}]"),
                format!("`{}` is listed twice", source.name()),
            ));
        }
    }
    if !(60..=3600).contains(&h.window_seconds) {
        errors.push(FieldError::new(
            "health.window_seconds",
            format!("{} is out of range; must be between 60 and 3600 (whole minutes of metrics)", h.window_seconds),
        ));
    }
    if h.baseline.history_seconds > 86_400 || (1..300).contains(&h.baseline.history_seconds) {
        errors.push(FieldError::new(
            "health.baseline.history_seconds",
            format!(
                "{} is out of range; must be 0 (no history) or between 300 and 86400 (CloudWatch keeps 1-minute data for 15 days, and a day is plenty)",
                h.baseline.history_seconds
            ),
        ));
    }
    let drift = h.baseline.drift_percent;
    if !drift.is_finite() || !(0.0..=1000.0).contains(&drift) {
        errors.push(FieldError::new(
            "health.baseline.drift_percent",
            format!("{drift} is out of range; must be between 0 and 1000"),
        ));
    }
    let ins = &h.insufficient_data;
    if ins.extensions > 100 {
        errors.push(FieldError::new("health.insufficient_data.extensions", "must be at most 100"));
    }
    if ins.extension_seconds == 0 || ins.extension_seconds > MAX_WAIT_SECONDS {
        errors.push(FieldError::new(
            "health.insufficient_data.extension_seconds",
            "must be between 1 and 604800 seconds",
        ));
    }
}
