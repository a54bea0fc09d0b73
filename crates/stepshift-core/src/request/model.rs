//! The request's types, as serde reads and writes them, and their defaults.
//!
//! Serde's derives here are the last word on types; the objects' field names are also
//! listed in `parse`'s tables, which a test keeps in step with these types.

use serde::{Deserialize, Serialize, Serializer};

use crate::custom::{MetricRule, Mode};
use crate::routers::route53::RecordTarget;
use crate::strategy::{Preset, Step};

/// The only request schema this version understands.
pub const SCHEMA_VERSION: u32 = 1;

/// One alias to move from its current (stable) version to `version` (the candidate).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Function name (not an ARN).
    pub function: String,
    /// Alias whose traffic moves, e.g. `live`.
    pub alias: String,
    /// The candidate: a published version number. A JSON number is accepted too.
    #[serde(deserialize_with = "super::parse::version_text")]
    pub version: String,
}

impl Target {
    /// `function:alias`, the way Lambda names an alias (and CloudWatch's Resource dimension).
    pub fn qualified(&self) -> String {
        format!("{}:{}", self.function, self.alias)
    }
}

/// A request's targets: Lambda aliases (the default kind, `{function, alias, version}`)
/// or Route53 records (`{"kind": "route53", ...}`, see [`RecordTarget`]), or Lambda Web
/// Function endpoints (`{"kind": "lambda_web", ...}`, see
/// [`crate::routers::web::WebTarget`]). One release moves one kind: aliases are judged
/// on Lambda's metrics, records on CloudFront's, endpoints on their alarms.
/// Each kind is read by its entry in `parse`'s table of target kinds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Targets {
    /// The Lambda aliases, in request order.
    pub aliases: Vec<Target>,
    /// The Route53 records, in request order.
    pub records: Vec<RecordTarget>,
    /// The Lambda Web Function endpoints (`{"kind": "lambda_web", ...}`), in request order.
    pub endpoints: Vec<crate::routers::web::WebTarget>,
}

impl Targets {
    /// How many targets there are of any kind.
    pub fn len(&self) -> usize {
        self.aliases.len() + self.records.len() + self.endpoints.len()
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
        for e in &self.endpoints {
            let mut value = serde_json::to_value(e).map_err(S::Error::custom)?;
            if let Some(map) = value.as_object_mut() {
                map.insert("kind".into(), crate::routers::web::KIND.into());
            }
            seq.serialize_element(&value)?;
        }
        seq.end()
    }
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
    /// `observe` reports the rules' findings and never rolls back (also the fast path's
    /// failure test and a front end's 4xx test, which take these thresholds).
    #[serde(skip_serializing_if = "Mode::is_enforce")]
    pub mode: Mode,
}

impl Default for ErrorRateRule {
    fn default() -> Self {
        Self { max_increase_percent: Some(0.0), max_percent: Some(5.0), mode: Mode::Enforce }
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
    /// invocations slower, over the rolling window) is unhealthy, judged once the window
    /// holds [`P99_LIMIT_MIN_SAMPLES`](crate::judge::P99_LIMIT_MIN_SAMPLES) invocations.
    /// Off when `null`.
    pub max_ms: Option<f64>,
    /// `observe` reports the rules' findings (and the fast path's slow test's) and never
    /// rolls back.
    #[serde(skip_serializing_if = "Mode::is_enforce")]
    pub mode: Mode,
}

impl Default for LatencyRule {
    fn default() -> Self {
        Self { max_slow_increase_percent: Some(50.0), max_ms: None, mode: Mode::Enforce }
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
    /// `observe` reports the rule's findings and never rolls back.
    #[serde(skip_serializing_if = "Mode::is_enforce")]
    pub mode: Mode,
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
    /// The real-time outcome signal that may only roll back ([`crate::outcomes`]).
    pub fast_path: FastPathSettings,
    /// The team's own per-version metrics, judged beside Lambda's ([`crate::custom`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricRule>,
}

/// The fast path: invocation outcomes counted within seconds by the `tally` Lambda, and
/// checked between the minute checks. It can roll a deployment back, never promote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FastPathSettings {
    /// Whether to count outcomes in real time. Off by default: it takes one of each
    /// target log group's two subscription filter slots, and it costs (README).
    pub enabled: bool,
    /// Seconds between checks while the fast path is live. `null` (the default) checks
    /// every 20 s, and less often only as far as a long deployment needs to stay within
    /// Step Functions' history limit.
    pub check_interval_seconds: Option<u64>,
    /// The inputs, in order of preference: `logs` (a subscription filter on the target
    /// function's log group) and `destinations` (Lambda Destinations events on
    /// EventBridge, asynchronous invocations only). Each target is judged on the first
    /// that is available, never on both.
    pub sources: Vec<crate::outcomes::Source>,
}

impl Default for FastPathSettings {
    fn default() -> Self {
        Self { enabled: false, check_interval_seconds: None, sources: vec![crate::outcomes::Source::Logs] }
    }
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
            fast_path: FastPathSettings::default(),
            metrics: Vec::new(),
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
    /// What a pause (`stepshift pause`) does when it runs out: roll back (the default)
    /// or go on.
    #[serde(default)]
    pub pause_timeout: crate::control::PauseTimeout,
    /// Tests of the candidate before traffic, at every step and after promotion.
    #[serde(default, skip_serializing_if = "crate::hooks::Hooks::is_empty")]
    pub hooks: crate::hooks::Hooks,
}

impl DeploymentRequest {
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
}
