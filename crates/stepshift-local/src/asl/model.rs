//! A state machine definition, loaded strictly: every field this interpreter does not
//! implement is a load-time error, never a silent difference from Step Functions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};
use stepshift_core::Timestamp;

use super::choice::Rule;
use super::intrinsics::{self, Call};
use super::path::{Path, Root};
use super::template::Template;

/// Where a state goes next.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// To the named state.
    To(String),
    /// The execution succeeds with this state's output.
    End,
}

/// `InputPath`/`OutputPath`: absent (`$`), `null` (`{}`), or a path.
#[derive(Clone, Debug, PartialEq)]
pub enum IoPath {
    /// The whole document.
    Whole,
    /// `null`: an empty object.
    Empty,
    /// A path.
    Path(Path),
}

/// `ResultPath`: absent (`$`, replace), `null` (discard the result), or a path.
#[derive(Clone, Debug, PartialEq)]
pub enum ResultPath {
    /// The result replaces the input.
    Replace,
    /// The result is discarded; the output is the input.
    Discard,
    /// The result is placed at this path in the input.
    At(Path),
}

/// A `Retry` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Retrier {
    /// Error names it handles.
    pub error_equals: Vec<String>,
    /// First delay, seconds (default 1).
    pub interval_seconds: f64,
    /// Retries before giving up (default 3).
    pub max_attempts: u32,
    /// Delay multiplier (default 2.0).
    pub backoff_rate: f64,
    /// Cap on a single delay.
    pub max_delay_seconds: Option<f64>,
    /// `JitterStrategy: FULL`: each delay uniform in [0, computed delay].
    pub full_jitter: bool,
}

/// A `Catch` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Catcher {
    /// Error names it handles.
    pub error_equals: Vec<String>,
    /// Where `{Error, Cause}` goes in the state's input.
    pub result_path: ResultPath,
    /// The state to go to.
    pub next: String,
}

/// How long a Task may run.
#[derive(Clone, Debug, PartialEq)]
pub enum Timeout {
    /// A fixed number of seconds.
    Seconds(u64),
    /// Seconds read from the effective input.
    Path(Path),
}

/// How long a Wait state waits.
#[derive(Clone, Debug, PartialEq)]
pub enum WaitFor {
    /// A fixed number of seconds.
    Seconds(u64),
    /// Seconds read from the effective input.
    SecondsPath(Path),
    /// Until a fixed time.
    Timestamp(Timestamp),
    /// Until a time read from the effective input.
    TimestampPath(Path),
}

/// The kind-specific part of a state.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// A Task state.
    Task {
        /// The resource ARN.
        resource: String,
        /// Whether the resource ends in `.waitForTaskToken`.
        wait_for_token: bool,
        /// `Parameters`.
        parameters: Option<Template>,
        /// `ResultSelector`.
        result_selector: Option<Template>,
        /// `ResultPath`.
        result_path: ResultPath,
        /// `Retry`.
        retry: Vec<Retrier>,
        /// `Catch`.
        catch: Vec<Catcher>,
        /// `TimeoutSeconds` or `TimeoutSecondsPath`.
        timeout: Option<Timeout>,
    },
    /// A Pass state.
    Pass {
        /// `Parameters`.
        parameters: Option<Template>,
        /// `Result`.
        result: Option<Value>,
        /// `ResultPath`.
        result_path: ResultPath,
    },
    /// A Wait state.
    Wait(WaitFor),
    /// A Choice state.
    Choice {
        /// The rules, in order, with their targets.
        choices: Vec<(Rule, String)>,
        /// Where to go when none holds.
        default: Option<String>,
    },
    /// A Succeed state.
    Succeed,
    /// A Fail state.
    Fail {
        /// `Error` or `ErrorPath`.
        error: Option<Text>,
        /// `Cause` or `CausePath`.
        cause: Option<Text>,
    },
    /// A Parallel state: every branch runs on the effective input, concurrently.
    Parallel {
        /// `Branches`, each a state machine of its own (without a TimeoutSeconds).
        branches: Vec<Arc<StateMachine>>,
        /// `Parameters`: the branches' input.
        parameters: Option<Template>,
        /// `ResultSelector`, applied to the array of branch outputs.
        result_selector: Option<Template>,
        /// `ResultPath`.
        result_path: ResultPath,
        /// `Retry`: a retry runs every branch again from its start.
        retry: Vec<Retrier>,
        /// `Catch`.
        catch: Vec<Catcher>,
    },
    /// An inline Map state: the processor runs once per item, concurrently.
    Map {
        /// `ItemProcessor` (with `ProcessorConfig.Mode` INLINE) or the legacy `Iterator`.
        processor: Arc<StateMachine>,
        /// `ItemsPath` (default `$`), applied to the effective input.
        items_path: Option<Path>,
        /// `ItemSelector` or the legacy `Parameters`: each iteration's input, with
        /// `$$.Map.Item.Index` and `$$.Map.Item.Value` in the context object.
        item_selector: Option<Template>,
        /// `MaxConcurrency`: iterations running at once; 0 is no limit.
        max_concurrency: u64,
        /// `ResultSelector`, applied to the array of iteration outputs.
        result_selector: Option<Template>,
        /// `ResultPath`.
        result_path: ResultPath,
        /// `Retry`: a retry runs every iteration again.
        retry: Vec<Retrier>,
        /// `Catch`.
        catch: Vec<Catcher>,
    },
}

/// A Fail state's `Error`/`Cause`: a literal, a path into the input, or (in `ErrorPath`
/// and `CausePath`) an intrinsic call that returns a string.
#[derive(Clone, Debug, PartialEq)]
pub enum Text {
    /// Given literally.
    Literal(String),
    /// Read from the input.
    Path(Path),
    /// Computed from the input by one of [`FAIL_INTRINSICS`].
    Call(Call),
}

/// The intrinsic functions Step Functions accepts in a Fail state's `ErrorPath` and
/// `CausePath` (those that return a string).
pub const FAIL_INTRINSICS: [&str; 7] = [
    "States.Format",
    "States.JsonToString",
    "States.ArrayGetItem",
    "States.Base64Encode",
    "States.Base64Decode",
    "States.Hash",
    "States.UUID",
];

/// One state.
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// Its name.
    pub name: String,
    /// Its `Type` and type-specific fields.
    pub kind: Kind,
    /// `InputPath`.
    pub input_path: IoPath,
    /// `OutputPath`.
    pub output_path: IoPath,
    /// `Next`/`End` (Task, Pass, Wait, Parallel, Map).
    pub next: Option<Next>,
}

impl State {
    /// The `Type` name, as Step Functions spells it in history events.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Task { .. } => "Task",
            Kind::Pass { .. } => "Pass",
            Kind::Wait(_) => "Wait",
            Kind::Choice { .. } => "Choice",
            Kind::Succeed => "Succeed",
            Kind::Fail { .. } => "Fail",
            Kind::Parallel { .. } => "Parallel",
            Kind::Map { .. } => "Map",
        }
    }

    /// Its `Retry` list (empty for the states that have none).
    pub fn retry(&self) -> &[Retrier] {
        match &self.kind {
            Kind::Task { retry, .. } | Kind::Parallel { retry, .. } | Kind::Map { retry, .. } => retry,
            _ => &[],
        }
    }

    /// Its `Catch` list (empty for the states that have none).
    pub fn catch(&self) -> &[Catcher] {
        match &self.kind {
            Kind::Task { catch, .. } | Kind::Parallel { catch, .. } | Kind::Map { catch, .. } => catch,
            _ => &[],
        }
    }

    /// The state machines nested in it: a Parallel's branches, a Map's processor.
    pub fn nested(&self) -> Vec<&Arc<StateMachine>> {
        match &self.kind {
            Kind::Parallel { branches, .. } => branches.iter().collect(),
            Kind::Map { processor, .. } => vec![processor],
            _ => Vec::new(),
        }
    }
}

/// A loaded state machine: the whole definition, or a Parallel branch or Map processor
/// inside it.
#[derive(Clone, Debug, PartialEq)]
pub struct StateMachine {
    /// `StartAt`.
    pub start_at: String,
    /// The states by name (a branch's or processor's own states only).
    pub states: BTreeMap<String, State>,
    /// `TimeoutSeconds` of the whole execution (always `None` for a branch or processor).
    pub timeout_seconds: Option<u64>,
}

/// Replaces every `${Name}` with its substitution; a placeholder without one is an error.
pub fn substitute(definition: &str, substitutions: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(definition.len());
    let mut rest = definition;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').ok_or("unclosed ${ in the definition")? + start;
        let name = &rest[start + 2..end];
        let value = substitutions.get(name).ok_or_else(|| format!("no substitution for ${{{name}}}"))?;
        out.push_str(value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The `${Name}` placeholders of a definition, sorted.
pub fn placeholders(definition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = definition;
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        names.insert(rest[start + 2..start + end].to_owned());
        rest = &rest[start + end + 1..];
    }
    names
}

fn fields(obj: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(format!("{what}: field `{key}` is not supported by stepshift-local"));
        }
    }
    Ok(())
}

fn string<'a>(obj: &'a Map<String, Value>, key: &str, what: &str) -> Result<Option<&'a str>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{what}: `{key}` must be a string")),
    }
}

fn io_path(obj: &Map<String, Value>, key: &str, what: &str) -> Result<IoPath, String> {
    match obj.get(key) {
        None => Ok(IoPath::Whole),
        Some(Value::Null) => Ok(IoPath::Empty),
        Some(Value::String(s)) => Path::parse(s).map(IoPath::Path).map_err(|e| format!("{what}: {key}: {e}")),
        Some(_) => Err(format!("{what}: `{key}` must be a path or null")),
    }
}

fn result_path(value: Option<&Value>, what: &str) -> Result<ResultPath, String> {
    match value {
        None => Ok(ResultPath::Replace),
        Some(Value::Null) => Ok(ResultPath::Discard),
        Some(Value::String(s)) => {
            let p = Path::parse(s).map_err(|e| format!("{what}: ResultPath: {e}"))?;
            Ok(if p.segments.is_empty() { ResultPath::Replace } else { ResultPath::At(p) })
        }
        Some(_) => Err(format!("{what}: ResultPath must be a path or null")),
    }
}

fn seconds(v: &Value, what: &str) -> Result<u64, String> {
    v.as_u64().ok_or_else(|| format!("{what} must be a non-negative integer"))
}

fn error_names(v: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    let list = v.and_then(Value::as_array).ok_or_else(|| format!("{what}: ErrorEquals must be a non-empty list"))?;
    let names: Vec<String> = list.iter().filter_map(Value::as_str).map(str::to_owned).collect();
    if names.is_empty() || names.len() != list.len() {
        return Err(format!("{what}: ErrorEquals must be a non-empty list of names"));
    }
    if names.contains(&"States.ALL".to_owned()) && names.len() > 1 {
        return Err(format!("{what}: States.ALL must appear alone in ErrorEquals"));
    }
    Ok(names)
}

fn retriers(v: Option<&Value>, what: &str) -> Result<Vec<Retrier>, String> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let list = v.as_array().ok_or_else(|| format!("{what}: Retry must be a list"))?;
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let what = format!("{what}: Retry[{i}]");
        let r = r.as_object().ok_or_else(|| format!("{what} must be an object"))?;
        fields(
            r,
            &[
                "ErrorEquals",
                "IntervalSeconds",
                "MaxAttempts",
                "BackoffRate",
                "MaxDelaySeconds",
                "JitterStrategy",
                "Comment",
            ],
            &what,
        )?;
        let num = |k: &str, default: f64| {
            r.get(k).map_or(Ok(default), |v| v.as_f64().ok_or_else(|| format!("{what}: {k} must be a number")))
        };
        let jitter = match r.get("JitterStrategy").map(|v| v.as_str()) {
            None | Some(Some("NONE")) => false,
            Some(Some("FULL")) => true,
            _ => return Err(format!("{what}: JitterStrategy must be FULL or NONE")),
        };
        let retrier = Retrier {
            error_equals: error_names(r.get("ErrorEquals"), &what)?,
            interval_seconds: num("IntervalSeconds", 1.0)?,
            max_attempts: u32::try_from(num("MaxAttempts", 3.0)? as u64).unwrap_or(u32::MAX),
            backoff_rate: num("BackoffRate", 2.0)?,
            max_delay_seconds: r
                .get("MaxDelaySeconds")
                .map(|v| v.as_f64().ok_or_else(|| format!("{what}: MaxDelaySeconds must be a number")))
                .transpose()?,
            full_jitter: jitter,
        };
        if retrier.backoff_rate < 1.0 || retrier.interval_seconds < 1.0 {
            return Err(format!("{what}: BackoffRate and IntervalSeconds must be at least 1"));
        }
        out.push(retrier);
    }
    Ok(out)
}

fn catchers(v: Option<&Value>, what: &str) -> Result<Vec<Catcher>, String> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let list = v.as_array().ok_or_else(|| format!("{what}: Catch must be a list"))?;
    let mut out = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let what = format!("{what}: Catch[{i}]");
        let c = c.as_object().ok_or_else(|| format!("{what} must be an object"))?;
        fields(c, &["ErrorEquals", "ResultPath", "Next", "Comment"], &what)?;
        out.push(Catcher {
            error_equals: error_names(c.get("ErrorEquals"), &what)?,
            result_path: result_path(c.get("ResultPath"), &what)?,
            next: string(c, "Next", &what)?.ok_or_else(|| format!("{what}: Next is required"))?.to_owned(),
        });
    }
    Ok(out)
}

fn template(v: Option<&Value>, what: &str) -> Result<Option<Template>, String> {
    v.map(|v| Template::compile(v).map_err(|e| format!("{what}: {e}"))).transpose()
}

fn next(obj: &Map<String, Value>, what: &str) -> Result<Next, String> {
    match (string(obj, "Next", what)?, obj.get("End")) {
        (Some(n), None) => Ok(Next::To(n.to_owned())),
        (None, Some(Value::Bool(true))) => Ok(Next::End),
        _ => Err(format!("{what}: needs exactly one of Next or \"End\": true")),
    }
}

const COMMON: [&str; 4] = ["Type", "Comment", "InputPath", "OutputPath"];

fn parse_state(name: &str, value: &Value) -> Result<State, String> {
    let what = format!("state `{name}`");
    let obj = value.as_object().ok_or_else(|| format!("{what} must be an object"))?;
    let ty = string(obj, "Type", &what)?.ok_or_else(|| format!("{what}: Type is required"))?;
    fn with(extra: &[&'static str]) -> Vec<&'static str> {
        COMMON.iter().chain(extra).copied().collect()
    }
    let (kind, next) = match ty {
        "Task" => {
            fields(
                obj,
                &with(&[
                    "Resource",
                    "Parameters",
                    "ResultSelector",
                    "ResultPath",
                    "Retry",
                    "Catch",
                    "TimeoutSeconds",
                    "TimeoutSecondsPath",
                    "Next",
                    "End",
                ]),
                &what,
            )?;
            let resource = string(obj, "Resource", &what)?.ok_or_else(|| format!("{what}: Resource is required"))?;
            let (base, wait_for_token) = match resource.strip_suffix(".waitForTaskToken") {
                Some(b) => (b, true),
                None => (resource, false),
            };
            let lambda_function = base.starts_with("arn:aws:lambda:") && base.contains(":function:");
            let integration = ["arn:aws:states:::lambda:invoke", "arn:aws:states:::events:putEvents"].contains(&base);
            if !lambda_function && !integration || (lambda_function && wait_for_token) {
                return Err(format!(
                    "{what}: resource `{resource}` is not supported by stepshift-local (Lambda function ARNs, lambda:invoke and events:putEvents[.waitForTaskToken])"
                ));
            }
            let timeout = match (obj.get("TimeoutSeconds"), string(obj, "TimeoutSecondsPath", &what)?) {
                (Some(v), None) => Some(Timeout::Seconds(seconds(v, &format!("{what}: TimeoutSeconds"))?)),
                (None, Some(p)) => Some(Timeout::Path(Path::parse(p)?)),
                (None, None) => None,
                _ => {
                    return Err(format!("{what}: TimeoutSeconds and TimeoutSecondsPath are exclusive"));
                }
            };
            let kind = Kind::Task {
                resource: resource.to_owned(),
                wait_for_token,
                parameters: template(obj.get("Parameters"), &what)?,
                result_selector: template(obj.get("ResultSelector"), &what)?,
                result_path: result_path(obj.get("ResultPath"), &what)?,
                retry: retriers(obj.get("Retry"), &what)?,
                catch: catchers(obj.get("Catch"), &what)?,
                timeout,
            };
            (kind, Some(next(obj, &what)?))
        }
        "Pass" => {
            fields(obj, &with(&["Parameters", "Result", "ResultPath", "Next", "End"]), &what)?;
            let kind = Kind::Pass {
                parameters: template(obj.get("Parameters"), &what)?,
                result: obj.get("Result").cloned(),
                result_path: result_path(obj.get("ResultPath"), &what)?,
            };
            (kind, Some(next(obj, &what)?))
        }
        "Wait" => {
            fields(obj, &with(&["Seconds", "SecondsPath", "Timestamp", "TimestampPath", "Next", "End"]), &what)?;
            let given: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
                .into_iter()
                .filter(|k| obj.contains_key(*k))
                .collect();
            let [how] = given.as_slice() else {
                return Err(format!("{what}: needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath"));
            };
            let text =
                || string(obj, how, &what).and_then(|s| s.ok_or_else(|| format!("{what}: {how} must be a string")));
            let wait = match *how {
                "Seconds" => WaitFor::Seconds(seconds(&obj["Seconds"], &format!("{what}: Seconds"))?),
                "SecondsPath" => WaitFor::SecondsPath(Path::parse(text()?)?),
                "Timestamp" => WaitFor::Timestamp(Timestamp::parse_rfc3339(text()?)?),
                _ => WaitFor::TimestampPath(Path::parse(text()?)?),
            };
            (Kind::Wait(wait), Some(next(obj, &what)?))
        }
        "Choice" => {
            fields(obj, &with(&["Choices", "Default"]), &what)?;
            let list = obj
                .get("Choices")
                .and_then(Value::as_array)
                .filter(|l| !l.is_empty())
                .ok_or_else(|| format!("{what}: Choices must be a non-empty list"))?;
            let mut choices = Vec::new();
            for (i, c) in list.iter().enumerate() {
                let c = c.as_object().ok_or_else(|| format!("{what}: Choices[{i}] must be an object"))?;
                let target = string(c, "Next", &what)?.ok_or_else(|| format!("{what}: Choices[{i}] needs Next"))?;
                choices
                    .push((Rule::parse(c, true).map_err(|e| format!("{what}: Choices[{i}]: {e}"))?, target.to_owned()));
            }
            (Kind::Choice { choices, default: string(obj, "Default", &what)?.map(str::to_owned) }, None)
        }
        "Succeed" => {
            fields(obj, &COMMON, &what)?;
            (Kind::Succeed, None)
        }
        "Fail" => {
            fields(obj, &["Type", "Comment", "Error", "ErrorPath", "Cause", "CausePath"], &what)?;
            let text = |lit: &str, path: &str| -> Result<Option<Text>, String> {
                match (string(obj, lit, &what)?, string(obj, path, &what)?) {
                    (Some(s), None) => Ok(Some(Text::Literal(s.to_owned()))),
                    (None, Some(p)) if intrinsics::is_call(p) => {
                        let call = intrinsics::parse(p).map_err(|e| format!("{what}: {path}: {e}"))?;
                        if !FAIL_INTRINSICS.contains(&call.name.as_str()) {
                            return Err(format!(
                                "{what}: {path}: {} does not return a string; Step Functions allows {}",
                                call.name,
                                FAIL_INTRINSICS.join(", ")
                            ));
                        }
                        Ok(Some(Text::Call(call)))
                    }
                    (None, Some(p)) => Ok(Some(Text::Path(Path::parse(p)?))),
                    (None, None) => Ok(None),
                    _ => Err(format!("{what}: {lit} and {path} are exclusive")),
                }
            };
            (Kind::Fail { error: text("Error", "ErrorPath")?, cause: text("Cause", "CausePath")? }, None)
        }
        "Parallel" => {
            fields(
                obj,
                &with(&["Branches", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch", "Next", "End"]),
                &what,
            )?;
            let list = obj
                .get("Branches")
                .and_then(Value::as_array)
                .filter(|l| !l.is_empty())
                .ok_or_else(|| format!("{what}: Branches must be a non-empty list"))?;
            let mut branches = Vec::with_capacity(list.len());
            for (i, b) in list.iter().enumerate() {
                let what = format!("{what}: Branches[{i}]");
                let b = b.as_object().ok_or_else(|| format!("{what} must be an object"))?;
                fields(b, &["StartAt", "States", "Comment"], &what)?;
                branches.push(Arc::new(nested_machine(b, &what)?));
            }
            let kind = Kind::Parallel {
                branches,
                parameters: template(obj.get("Parameters"), &what)?,
                result_selector: template(obj.get("ResultSelector"), &what)?,
                result_path: result_path(obj.get("ResultPath"), &what)?,
                retry: retriers(obj.get("Retry"), &what)?,
                catch: catchers(obj.get("Catch"), &what)?,
            };
            (kind, Some(next(obj, &what)?))
        }
        "Map" => {
            fields(
                obj,
                &with(&[
                    "ItemProcessor",
                    "Iterator",
                    "ItemsPath",
                    "ItemSelector",
                    "Parameters",
                    "MaxConcurrency",
                    "ResultSelector",
                    "ResultPath",
                    "Retry",
                    "Catch",
                    "Next",
                    "End",
                ]),
                &what,
            )
            .map_err(|e| {
                format!(
                    "{e} (an inline Map supports ItemProcessor or Iterator, ItemsPath, ItemSelector or Parameters, MaxConcurrency, ResultSelector, ResultPath, Retry, Catch)"
                )
            })?;
            let processor = match (obj.get("ItemProcessor"), obj.get("Iterator")) {
                (Some(p), None) => {
                    let what = format!("{what}: ItemProcessor");
                    let p = p.as_object().ok_or_else(|| format!("{what} must be an object"))?;
                    fields(p, &["ProcessorConfig", "StartAt", "States", "Comment"], &what)?;
                    if let Some(config) = p.get("ProcessorConfig") {
                        let config =
                            config.as_object().ok_or_else(|| format!("{what}: ProcessorConfig must be an object"))?;
                        fields(config, &["Mode"], &format!("{what}: ProcessorConfig"))?;
                        match config.get("Mode").map(|m| m.as_str()) {
                            None | Some(Some("INLINE")) => {}
                            Some(Some("DISTRIBUTED")) => {
                                return Err(format!(
                                    "{what}: DISTRIBUTED mode is not supported by stepshift-local (INLINE only)"
                                ));
                            }
                            _ => return Err(format!("{what}: ProcessorConfig.Mode must be INLINE or DISTRIBUTED")),
                        }
                    }
                    nested_machine(p, &what)?
                }
                (None, Some(p)) => {
                    let what = format!("{what}: Iterator");
                    let p = p.as_object().ok_or_else(|| format!("{what} must be an object"))?;
                    fields(p, &["StartAt", "States", "Comment"], &what)?;
                    nested_machine(p, &what)?
                }
                _ => return Err(format!("{what}: needs exactly one of ItemProcessor or Iterator")),
            };
            let item_selector = match (obj.get("ItemSelector"), obj.get("Parameters")) {
                (Some(_), Some(_)) => return Err(format!("{what}: ItemSelector and Parameters are exclusive")),
                (selector, parameters) => template(selector.or(parameters), &what)?,
            };
            let items_path = string(obj, "ItemsPath", &what)?
                .map(|p| Path::parse(p).map_err(|e| format!("{what}: ItemsPath: {e}")))
                .transpose()?;
            if items_path.as_ref().is_some_and(|p| p.root == Root::Context) {
                return Err(format!(
                    "{what}: an ItemsPath into the context object is not supported by stepshift-local"
                ));
            }
            let max_concurrency =
                obj.get("MaxConcurrency").map(|v| seconds(v, &format!("{what}: MaxConcurrency"))).transpose()?;
            let kind = Kind::Map {
                processor: Arc::new(processor),
                items_path,
                item_selector,
                max_concurrency: max_concurrency.unwrap_or(0),
                result_selector: template(obj.get("ResultSelector"), &what)?,
                result_path: result_path(obj.get("ResultPath"), &what)?,
                retry: retriers(obj.get("Retry"), &what)?,
                catch: catchers(obj.get("Catch"), &what)?,
            };
            (kind, Some(next(obj, &what)?))
        }
        other => {
            return Err(format!(
                "{what}: Type `{other}` is not supported by stepshift-local (Task, Pass, Wait, Choice, Succeed, Fail, Parallel, Map)"
            ));
        }
    };
    Ok(State {
        name: name.to_owned(),
        kind,
        input_path: io_path(obj, "InputPath", &what)?,
        output_path: io_path(obj, "OutputPath", &what)?,
        next,
    })
}

/// `StartAt` and `States` of a definition, branch or processor, with its graph checked.
fn machine(obj: &Map<String, Value>, what: &str) -> Result<StateMachine, String> {
    let start_at = string(obj, "StartAt", what)?.ok_or_else(|| format!("{what}: StartAt is required"))?.to_owned();
    let states_obj =
        obj.get("States").and_then(Value::as_object).ok_or_else(|| format!("{what}: States must be an object"))?;
    let mut states = BTreeMap::new();
    for (name, value) in states_obj {
        if name.is_empty() || name.len() > 80 {
            return Err(format!("state name `{name}` must be 1-80 characters"));
        }
        states.insert(name.clone(), parse_state(name, value)?);
    }
    let machine = StateMachine { start_at, states, timeout_seconds: None };
    machine.check_graph().map_err(|e| if what == "the definition" { e } else { format!("{what}: {e}") })?;
    Ok(machine)
}

/// A Parallel branch or a Map processor. Its states may only go to each other (the graph
/// check sees only them), and none may wait for a task token: stepshift-local pauses
/// only a whole execution for a token, never one branch of it.
fn nested_machine(obj: &Map<String, Value>, what: &str) -> Result<StateMachine, String> {
    let machine = machine(obj, what)?;
    if let Some(state) = machine.states.values().find(|s| matches!(s.kind, Kind::Task { wait_for_token: true, .. })) {
        return Err(format!(
            "{what}: state `{}`: .waitForTaskToken inside a Parallel branch or a Map is not supported by stepshift-local",
            state.name
        ));
    }
    Ok(machine)
}

impl StateMachine {
    /// Loads a definition after substituting its `${...}` placeholders.
    pub fn load(definition: &str, substitutions: &HashMap<String, String>) -> Result<StateMachine, String> {
        let text = substitute(definition, substitutions)?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| format!("the definition is not JSON: {e}"))?;
        let obj = doc.as_object().ok_or("the definition must be an object")?;
        fields(obj, &["Comment", "StartAt", "States", "TimeoutSeconds", "Version", "QueryLanguage"], "the definition")?;
        if let Some(lang) = obj.get("QueryLanguage")
            && lang != "JSONPath"
        {
            return Err(format!("QueryLanguage {lang} is not supported by stepshift-local (JSONPath only)"));
        }
        let mut machine = machine(obj, "the definition")?;
        machine.timeout_seconds = obj.get("TimeoutSeconds").map(|v| seconds(v, "TimeoutSeconds")).transpose()?;
        let mut names = BTreeSet::new();
        machine.unique_names(&mut names)?;
        Ok(machine)
    }

    /// Every state name must be unique in the whole definition, branches included.
    fn unique_names<'a>(&'a self, names: &mut BTreeSet<&'a str>) -> Result<(), String> {
        for state in self.states.values() {
            if !names.insert(state.name.as_str()) {
                return Err(format!(
                    "state name `{}` is used twice: names must be unique in the whole state machine",
                    state.name
                ));
            }
            for nested in state.nested() {
                nested.unique_names(names)?;
            }
        }
        Ok(())
    }

    /// The states each state can go to.
    pub fn targets(state: &State) -> Vec<&str> {
        let mut out = Vec::new();
        if let Some(Next::To(n)) = &state.next {
            out.push(n.as_str());
        }
        out.extend(state.catch().iter().map(|c| c.next.as_str()));
        if let Kind::Choice { choices, default } = &state.kind {
            out.extend(choices.iter().map(|(_, n)| n.as_str()));
            out.extend(default.as_deref());
        }
        out
    }

    fn check_graph(&self) -> Result<(), String> {
        if !self.states.contains_key(&self.start_at) {
            return Err(format!("StartAt `{}` is not a state", self.start_at));
        }
        for state in self.states.values() {
            for t in Self::targets(state) {
                if !self.states.contains_key(t) {
                    return Err(format!("state `{}` goes to `{t}`, which does not exist", state.name));
                }
            }
        }
        let mut seen = BTreeSet::new();
        let mut todo = vec![self.start_at.as_str()];
        while let Some(name) = todo.pop() {
            if seen.insert(name) {
                todo.extend(Self::targets(&self.states[name]));
            }
        }
        if let Some(lost) = self.states.keys().find(|k| !seen.contains(k.as_str())) {
            return Err(format!("state `{lost}` cannot be reached from StartAt"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn load(v: Value) -> Result<StateMachine, String> {
        StateMachine::load(&v.to_string(), &HashMap::new())
    }

    #[test]
    fn substitutions_and_placeholders() {
        let subs = HashMap::from([("Fn".to_owned(), "arn:aws:lambda:us-east-1:1:function:f".to_owned())]);
        assert_eq!(substitute("a ${Fn} b", &subs).unwrap(), "a arn:aws:lambda:us-east-1:1:function:f b");
        assert!(substitute("${Other}", &subs).unwrap_err().contains("${Other}"));
        assert_eq!(placeholders("${A} x ${B} ${A}").into_iter().collect::<Vec<_>>(), ["A", "B"]);
    }

    #[test]
    fn unsupported_features_are_load_errors() {
        let cases = [
            (json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true}}}), "ItemProcessor or Iterator"),
            (json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true, "Assign": {}}}}), "field `Assign`"),
            (
                json!({"StartAt": "P", "QueryLanguage": "JSONata", "States": {"P": {"Type": "Pass", "End": true}}}),
                "JSONata",
            ),
            (
                json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": true}}}),
                "not supported",
            ),
            (
                json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": "$.a[*]", "End": true}}}),
                "not supported",
            ),
        ];
        for (def, expected) in cases {
            let err = load(def).unwrap_err();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn parallel_and_map_load_strictly() {
        let f = "arn:aws:lambda:us-east-1:1:function:f";
        let pass = json!({"StartAt": "X", "States": {"X": {"Type": "Pass", "End": true}}});
        let map = |extra: Value| {
            let mut m = json!({"Type": "Map", "End": true, "ItemProcessor": pass});
            m.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            json!({"StartAt": "M", "States": {"M": m}})
        };
        let cases = [
            (
                map(
                    json!({"ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "X", "States": {"X": {"Type": "Pass", "End": true}}}}),
                ),
                "ExecutionType",
            ),
            (
                map(
                    json!({"ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "X", "States": {"X": {"Type": "Pass", "End": true}}}}),
                ),
                "DISTRIBUTED",
            ),
            (map(json!({"ItemReader": {}})), "field `ItemReader`"),
            (map(json!({"ResultWriter": {}})), "field `ResultWriter`"),
            (map(json!({"ToleratedFailureCount": 1})), "field `ToleratedFailureCount`"),
            (map(json!({"ToleratedFailurePercentage": 5})), "field `ToleratedFailurePercentage`"),
            (map(json!({"Iterator": pass})), "exactly one of ItemProcessor or Iterator"),
            (map(json!({"ItemSelector": {}, "Parameters": {}})), "exclusive"),
            (map(json!({"MaxConcurrency": -1})), "MaxConcurrency"),
            (map(json!({"ItemsPath": "$$.Execution.Input"})), "context object"),
            (json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": []}}}), "non-empty"),
            (
                json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [{"StartAt": "T", "States": {"T": {
                    "Type": "Task", "Resource": "arn:aws:states:::events:putEvents.waitForTaskToken", "End": true}}}]}}}),
                "waitForTaskToken",
            ),
            (
                // A branch state may not go to a state outside its branch.
                json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Next": "Q", "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Q"}}}]},
                    "Q": {"Type": "Succeed"}}}),
                "`Q`, which does not exist",
            ),
            (
                // Nor may a top-level state go into a branch.
                json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Next": "A", "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}]}}}),
                "`A`, which does not exist",
            ),
            (
                json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}, "Lost": {"Type": "Pass", "End": true}}}]}}}),
                "`Lost` cannot be reached",
            ),
            (
                json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}, {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}]}}}),
                "used twice",
            ),
            (
                json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}, "TimeoutSeconds": 5}]}}}),
                "field `TimeoutSeconds`",
            ),
        ];
        for (def, expected) in cases {
            let err = load(def.clone()).unwrap_err();
            assert!(err.contains(expected), "{def}: {err}");
        }
        let ok = json!({"StartAt": "P", "States": {
            "P": {"Type": "Parallel", "Next": "M", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "M"}], "Branches": [
                {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": f, "Next": "U"}, "U": {"Type": "Succeed"}}}]},
            "M": {"Type": "Map", "Iterator": {"StartAt": "V", "States": {"V": {"Type": "Pass", "End": true}}}, "Parameters": {"v.$": "$$.Map.Item.Value"}, "MaxConcurrency": 2, "End": true}}});
        let machine = load(ok).unwrap();
        let Kind::Map { max_concurrency, item_selector, .. } = &machine.states["M"].kind else { panic!() };
        assert_eq!(*max_concurrency, 2);
        assert!(item_selector.is_some());
        assert_eq!(machine.states["P"].nested()[0].states.len(), 2);
        assert_eq!(StateMachine::targets(&machine.states["P"]), ["M", "M"]);
    }

    #[test]
    fn broken_graphs_are_load_errors() {
        assert!(
            load(json!({"StartAt": "X", "States": {"P": {"Type": "Pass", "End": true}}}))
                .unwrap_err()
                .contains("StartAt")
        );
        assert!(
            load(json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Next": "Q"}}}))
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(
            load(json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}, "Q": {"Type": "Succeed"}}}))
                .unwrap_err()
                .contains("cannot be reached")
        );
        assert!(load(json!({"StartAt": "P", "States": {"P": {"Type": "Pass"}}})).unwrap_err().contains("Next or"));
        let all_not_alone = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f", "End": true,
            "Catch": [{"ErrorEquals": ["States.ALL", "X"], "Next": "T"}]}}});
        assert!(load(all_not_alone).unwrap_err().contains("alone"));
    }
}
