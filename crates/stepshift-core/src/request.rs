//! The execution input: a versioned, strictly validated deployment request.
//!
//! Parsing is two-staged. Serde rejects wrong types and unknown fields, with the path of
//! the offending field (serde_path_to_error). Then [`DeploymentRequest::validate`] checks
//! the rules that types cannot express and reports every problem at once, each naming
//! its field.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::{FieldError, FieldErrors};
use crate::route53::RecordTarget;
use crate::strategy::{Preset, Step, preset_names};

/// The only request schema this version understands.
pub const SCHEMA_VERSION: u32 = 1;
/// Largest accepted request, in bytes of JSON (Step Functions allows 256 KiB of state).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
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

/// One alias to move from its current (stable) version to `version` (the candidate).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Function name (not an ARN).
    pub function: String,
    /// Alias whose traffic moves, e.g. `live`.
    pub alias: String,
    /// The candidate: a published version number. A JSON number is accepted too.
    #[serde(deserialize_with = "version_text")]
    pub version: String,
}

impl Target {
    /// `function:alias`, the way Lambda names an alias (and CloudWatch's Resource dimension).
    pub fn qualified(&self) -> String {
        format!("{}:{}", self.function, self.alias)
    }
}

/// A request's targets: Lambda aliases (the default kind, `{function, alias, version}`)
/// or Route53 records (`{"kind": "route53", ...}`, see [`RecordTarget`]). One release
/// moves one kind: aliases are judged on Lambda's metrics, records on CloudFront's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Targets {
    /// The Lambda aliases, in request order.
    pub aliases: Vec<Target>,
    /// The Route53 records, in request order.
    pub records: Vec<RecordTarget>,
}

impl Targets {
    /// How many targets there are of either kind.
    pub fn len(&self) -> usize {
        self.aliases.len() + self.records.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The `kind` of a Route53 target.
pub const ROUTE53_KIND: &str = "route53";

impl Serialize for Targets {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeSeq};
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for a in &self.aliases {
            seq.serialize_element(a)?;
        }
        for r in &self.records {
            let mut value = serde_json::to_value(r).map_err(S::Error::custom)?;
            if let Some(map) = value.as_object_mut() {
                map.insert("kind".into(), ROUTE53_KIND.into());
            }
            seq.serialize_element(&value)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Targets {
    // By hand, because the default kind has no tag: an internally tagged enum would
    // require `"kind": "lambda"` on every existing request.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TargetsVisitor;
        impl<'de> Visitor<'de> for TargetsVisitor {
            type Value = Targets;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of targets")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Targets, A::Error> {
                let mut targets = Targets::default();
                while let Some(item) = seq.next_element::<AnyTarget>()? {
                    match item {
                        AnyTarget::Alias(t) => targets.aliases.push(t),
                        AnyTarget::Record(r) => targets.records.push(*r),
                    }
                }
                Ok(targets)
            }
        }
        deserializer.deserialize_seq(TargetsVisitor)
    }
}

/// One target of either kind, told apart by `kind`.
enum AnyTarget {
    Alias(Target),
    Record(Box<RecordTarget>),
}

impl<'de> Deserialize<'de> for AnyTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut item = serde_json::Value::deserialize(deserializer)?;
        let kind = item.as_object_mut().and_then(|m| m.remove("kind"));
        match kind.as_ref().map(|k| k.as_str()) {
            None | Some(Some("lambda")) => nested(item).map(AnyTarget::Alias),
            Some(Some(ROUTE53_KIND)) => nested(item).map(|r| AnyTarget::Record(Box::new(r))),
            Some(_) => Err(de::Error::custom(format!(
                "@kind: {} is not a target kind; use \"lambda\" (the default) or \"route53\"",
                kind.unwrap_or_default()
            ))),
        }
    }
}

/// Deserializes one target, keeping the path inside it: the message starts with
/// `@path: ` for [`path_error`] to append to the target's own path.
fn nested<T: serde::de::DeserializeOwned, E: de::Error>(item: serde_json::Value) -> Result<T, E> {
    serde_path_to_error::deserialize(item).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        if path == "." { E::custom(message) } else { E::custom(format!("@{path}: {message}")) }
    })
}

fn version_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct VersionVisitor;
    impl Visitor<'_> for VersionVisitor {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a published version number such as \"42\"")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    deserializer.deserialize_any(VersionVisitor)
}

/// How traffic moves: a preset name, or a list of custom steps.
#[derive(Clone, Debug, PartialEq)]
pub enum Strategy {
    /// One of [`crate::strategy::PRESETS`], by name.
    Preset(String),
    /// Custom steps, the last of which must be 100%.
    Steps(Vec<StepSpec>),
}

/// A custom step as written in a request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// Candidate's share of traffic, 0 < w ≤ 100, strictly increasing across steps.
    pub weight_percent: f64,
    /// How long to watch this step; required for every step but the last (100%) one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_seconds: Option<u64>,
    /// Pause for a human's approval before moving traffic to this step.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approval: bool,
}

impl Serialize for Strategy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Strategy::Preset(name) => serializer.serialize_str(name),
            Strategy::Steps(steps) => steps.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Strategy {
    // Hand-written so that a bad value gets a precise message: an untagged enum would only
    // say "did not match any variant".
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrategyVisitor;
        impl<'de> Visitor<'de> for StrategyVisitor {
            type Value = Strategy;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "a preset name ({}) or a list of steps [{{\"weight_percent\": 10, \"bake_seconds\": 300}}, ...]",
                    preset_names()
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Strategy, E> {
                Ok(Strategy::Preset(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strategy, A::Error> {
                let mut steps = Vec::new();
                while let Some(step) = seq.next_element::<StepSpec>()? {
                    steps.push(step);
                }
                Ok(Strategy::Steps(steps))
            }
        }
        deserializer.deserialize_any(StrategyVisitor)
    }
}

/// What to do when the data stays too thin to judge after every extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenInsufficient {
    /// Roll back: no promotion without evidence (the default).
    RollBack,
    /// Carry on as if healthy.
    Proceed,
}

/// How long to keep waiting for data, and what to do then.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsufficientData {
    /// How many times a step's bake may be extended while data is too thin.
    pub extensions: u32,
    /// Length of one extension.
    pub extension_seconds: u64,
    /// The decision once the extensions are used up.
    pub then: WhenInsufficient,
}

impl Default for InsufficientData {
    fn default() -> Self {
        Self { extensions: 3, extension_seconds: 60, then: WhenInsufficient::RollBack }
    }
}

/// Error-rate rules: a comparison with the stable version, and an absolute limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErrorRateRule {
    /// The candidate may fail this much more often than the stable version, relatively
    /// (20 = 1.2 times as often), before a confident difference rolls it back. `null`
    /// turns the comparison off.
    pub max_increase_percent: Option<f64>,
    /// Candidate's error rate (Errors / Invocations) above this percentage is unhealthy,
    /// once it has served enough invocations to expect 5 errors at this rate. `null`
    /// turns the limit off.
    pub max_percent: Option<f64>,
}

impl Default for ErrorRateRule {
    fn default() -> Self {
        Self { max_increase_percent: Some(0.0), max_percent: Some(5.0) }
    }
}

/// Latency rules: the share of slow invocations compared with the baseline, and an
/// absolute limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyRule {
    /// "Slow" is slower than the stable version's p99 over the baseline history, so 1%
    /// of its invocations are slow. The candidate's share of slow invocations may exceed
    /// the baseline's by this much, relatively (50 = 1.5 times), before a confident
    /// difference rolls it back; judged by the same sequential test as errors. `null`
    /// turns the comparison off.
    pub max_slow_increase_percent: Option<f64>,
    /// Candidate's p99 Duration above this many milliseconds (more than 1% of its
    /// invocations slower, over the rolling window) is unhealthy. Off when `null`.
    pub max_ms: Option<f64>,
}

impl Default for LatencyRule {
    fn default() -> Self {
        Self { max_slow_increase_percent: Some(50.0), max_ms: None }
    }
}

/// The stable version's own history, the baseline once the candidate has all traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineSettings {
    /// How far back "Begin deployment" reads the stable version's metrics through the
    /// alias; 0 reads none, and 100% steps are then judged on the absolute limits only.
    pub history_seconds: u64,
    /// Allowance, in percent, for ordinary drift between the history and now (time of
    /// day, load): the candidate at full traffic is compared with the history's rate
    /// raised by this much.
    pub drift_percent: f64,
}

impl Default for BaselineSettings {
    fn default() -> Self {
        Self { history_seconds: 3600, drift_percent: 25.0 }
    }
}

/// Throttling guard.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleRule {
    /// More throttled requests on the candidate than this in a window is unhealthy. Off when `null`.
    pub max_count: Option<u64>,
}

/// How the candidate is judged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSettings {
    /// Fewest candidate invocations in a window before the metric rules judge at all;
    /// below it a check is inconclusive (alarms and throttles still count).
    pub min_invocations: u64,
    /// Error-rate guard.
    pub error_rate: ErrorRateRule,
    /// p99 latency guard.
    pub p99_duration: LatencyRule,
    /// Throttle guard.
    pub throttles: ThrottleRule,
    /// CloudWatch alarms; any of them in ALARM makes the candidate unhealthy.
    pub alarms: Vec<String>,
    /// The chance, in percent, that the error-rate comparison rolls back a candidate
    /// that is no worse than tolerated, over the whole deployment however often it is
    /// checked.
    pub false_alarm_percent: f64,
    /// How late CloudWatch delivers Lambda metrics (1-4 minutes). Each check looks back
    /// this far before its step began, so that a short step is judged on the data that
    /// has arrived, and late data from the previous step still counts.
    pub metric_lag_seconds: u64,
    /// Check this often during every bake and the lock-in, and roll back at the first
    /// unhealthy check. `null` (the default) checks every minute, and less often only
    /// when a long deployment would otherwise exceed Step Functions' 25,000 history
    /// events ([`check_interval`](DeploymentRequest::check_interval)).
    pub check_interval_seconds: Option<u64>,
    /// The absolute limits (error rate, p99, throttles) read this many seconds of the
    /// most recent delivered minutes, so that a late regression is not diluted by the
    /// healthy minutes before it.
    pub window_seconds: u64,
    /// The stable version's history, the baseline at full traffic.
    pub baseline: BaselineSettings,
    /// Extensions and policy when data is too thin.
    pub insufficient_data: InsufficientData,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            min_invocations: 5,
            error_rate: ErrorRateRule::default(),
            p99_duration: LatencyRule::default(),
            throttles: ThrottleRule::default(),
            alarms: Vec::new(),
            false_alarm_percent: 1.0,
            metric_lag_seconds: 240,
            check_interval_seconds: None,
            window_seconds: 300,
            baseline: BaselineSettings::default(),
            insufficient_data: InsufficientData::default(),
        }
    }
}

fn default_lock_in_seconds() -> u64 {
    300
}

fn default_approval_timeout_seconds() -> u64 {
    24 * 3600
}

/// The execution input of a deployment (schema 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentRequest {
    /// Must be 1.
    pub schema: Option<u32>,
    /// The aliases (or Route53 records) to move. More than one releases them together.
    pub targets: Targets,
    /// How traffic moves.
    pub strategy: Strategy,
    /// How the candidate is judged.
    #[serde(default)]
    pub health: HealthSettings,
    /// How long to keep watching after promotion (0 = not at all); unhealthy in that window rolls back.
    #[serde(default = "default_lock_in_seconds")]
    pub lock_in_seconds: u64,
    /// Versions to keep when pruning after a successful release; `null` never prunes.
    #[serde(default)]
    pub keep_versions: Option<u32>,
    /// How long an approval pause waits before it counts as rejected.
    #[serde(default = "default_approval_timeout_seconds")]
    pub approval_timeout_seconds: u64,
}

impl DeploymentRequest {
    /// Parses and validates a request given as JSON text.
    pub fn from_json(text: &str) -> Result<Self, FieldErrors> {
        if text.len() > MAX_REQUEST_BYTES {
            return Err(too_large(text.len()));
        }
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| FieldErrors::from(FieldError::new("request", format!("is not valid JSON: {e}"))))?;
        Self::from_value(value)
    }

    /// Parses and validates a request given as a JSON value.
    pub fn from_value(value: serde_json::Value) -> Result<Self, FieldErrors> {
        let size = serde_json::to_vec(&value).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > MAX_REQUEST_BYTES {
            return Err(too_large(size));
        }
        require_objects(&value)?;
        let request: Self = serde_path_to_error::deserialize(value).map_err(path_error)?;
        request.validate()?;
        Ok(request)
    }

    /// The concrete steps the strategy walks. Only meaningful on a validated request.
    pub fn steps(&self) -> Vec<Step> {
        match &self.strategy {
            Strategy::Preset(name) => Preset::find(name).map(|p| p.steps()).unwrap_or_default(),
            Strategy::Steps(specs) => specs
                .iter()
                .map(|s| Step {
                    weight_percent: s.weight_percent,
                    bake_seconds: s.bake_seconds.unwrap_or(0),
                    approval: s.approval,
                })
                .collect(),
        }
    }

    /// The seconds between checks: `health.check_interval_seconds`, or when that is
    /// `null`, every minute, lengthened by whole minutes only as far as a long deployment
    /// needs to stay within Step Functions' history limit. The error explains the
    /// arithmetic. Only meaningful on a request whose strategy is valid.
    pub fn check_interval(&self) -> Result<u64, FieldError> {
        let steps = self.steps();
        let Some((_, watched)) = steps.split_last() else { return Ok(MIN_CHECK_INTERVAL_SECONDS) };
        let ins = &self.health.insufficient_data;
        let per_step = EVENTS_PER_STEP
            + if self.targets.records.is_empty() { 0 } else { EVENTS_PER_DNS_SYNC }
            + EVENTS_PER_CHECK * u64::from(ins.extensions);
        let approvals = steps.iter().filter(|s| s.approval).count() as u64;
        let fixed = RESERVED_EVENTS + per_step * steps.len() as u64 + 7 * approvals;
        let bakes: Vec<u64> = watched.iter().map(|s| s.bake_seconds).chain([self.lock_in_seconds]).collect();
        let checks = |every: u64| bakes.iter().map(|b| b.div_ceil(every).max(1)).sum::<u64>();
        let events = |every: u64| fixed + EVENTS_PER_CHECK * checks(every);
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
        if let Some(every) = self.health.check_interval_seconds {
            if events(every) > HISTORY_EVENT_LIMIT {
                let mut fits = every;
                while events(fits) > HISTORY_EVENT_LIMIT {
                    fits += 60;
                }
                return Err(FieldError::new(
                    "health.check_interval_seconds",
                    format!(
                        "checking every {every} s means {} checks of {EVENTS_PER_CHECK} history events each, plus {fixed} for the steps, retries and the rest: {} events, and Step Functions allows {HISTORY_EVENT_LIMIT} per execution; check every {fits} s or more, or leave it unset to have stepshift choose",
                        checks(every),
                        events(every)
                    ),
                ));
            }
            return Ok(every);
        }
        let mut every = MIN_CHECK_INTERVAL_SECONDS;
        while events(every) > HISTORY_EVENT_LIMIT {
            every += 60;
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
        validate_strategy(&self.strategy, &mut errors);
        validate_health(&self.health, &mut errors);
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

/// Serde also reads a struct from a JSON array, field by field in order. A request is
/// written by people and pipelines, so every place that takes an object must get one.
fn require_objects(value: &serde_json::Value) -> Result<(), FieldErrors> {
    use serde_json::Value;
    let mut errors = Vec::new();
    let mut expect = |field: String, v: Option<&Value>| {
        if let Some(v) = v.filter(|v| !v.is_object() && !v.is_null()) {
            let kind = match v {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                _ => "a boolean",
            };
            errors.push(FieldError::new(field, format!("must be a JSON object, not {kind}")));
        }
    };
    expect("request".into(), Some(value));
    let items = |name: &str| value.get(name).and_then(Value::as_array).cloned().unwrap_or_default();
    for (i, t) in items("targets").iter().enumerate() {
        expect(format!("targets[{i}]"), Some(t));
    }
    for (i, s) in items("strategy").iter().enumerate() {
        expect(format!("strategy[{i}]"), Some(s));
    }
    expect("health".into(), value.get("health"));
    if let Some(h) = value.get("health").filter(|h| h.is_object()) {
        for rule in ["error_rate", "p99_duration", "throttles", "insufficient_data", "baseline"] {
            expect(format!("health.{rule}"), h.get(rule));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(FieldErrors(errors)) }
}

fn too_large(size: usize) -> FieldErrors {
    FieldError::new("request", format!("is {size} bytes of JSON; at most {MAX_REQUEST_BYTES} are accepted")).into()
}

/// Turns serde's message into a field error that names the field on its own.
fn path_error(e: serde_path_to_error::Error<serde_json::Error>) -> FieldErrors {
    let path = e.path().to_string();
    let message = e.inner().to_string();
    // serde_json appends " at line L column C"; positions mean nothing to a pipeline user.
    let message = match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    };
    // A target's own path, from [`nested`]: `targets[1]` + `@blue.ttl: ...`.
    let (path, message) = match message.strip_prefix('@').and_then(|m| m.split_once(": ")) {
        Some((inner, rest)) => (format!("{path}.{inner}"), rest.to_owned()),
        None => (path, message),
    };
    let join = |name: &str| {
        if path == "." { name.to_owned() } else { format!("{path}.{name}") }
    };
    if let Some(name) = backticked(&message, "missing field `") {
        return FieldError::new(join(name), "is required").into();
    }
    if let Some(name) = backticked(&message, "unknown field `") {
        let expected = message.split_once(", expected ").map(|(_, rest)| rest).unwrap_or("");
        let field = if path.ends_with(name) { path.clone() } else { join(name) };
        return FieldError::new(field, format!("is not a known field (expected {expected})")).into();
    }
    let field = if path == "." { "request".to_owned() } else { path };
    FieldError::new(field, message).into()
}

fn backticked<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
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
            "must list at least one {function, alias, version} or {\"kind\": \"route53\", ...}",
        ));
        return;
    }
    if !all.aliases.is_empty() && !all.records.is_empty() {
        errors.push(FieldError::new(
            "targets",
            "mixes Lambda aliases and Route53 records; release each kind in its own deployment",
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

#[cfg(test)]
mod tests;
