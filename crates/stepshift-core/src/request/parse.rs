//! From JSON to the model, in two passes that each report every problem they find.
//!
//! 1. The shape: the request is walked against a table of each object's fields
//!    ([`Field`]), so that a missing or unknown field, or something other than an object
//!    where an object belongs, is reported with its full path (`targets[1].alias`).
//! 2. The types: serde reads the model, and serde_path_to_error's path names the field
//!    whose value has the wrong type. Targets are read one by one, by their kind's reader
//!    ([`TARGET_KINDS`]), so that the path goes on inside a target too.
//!
//! Serde's messages are passed on as they are and never parsed: missing and unknown
//! fields are found by the walk, from the tables, before serde sees the request.

use std::fmt::{self, Write as _};

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::{Map, Value};
use serde_path_to_error::{Path, Segment};

use crate::error::{FieldError, FieldErrors};
use crate::strategy::preset_names;

use super::model::{DeploymentRequest, ROUTE53_KIND, StepSpec, Strategy, Targets};

/// Largest accepted request, in bytes of JSON (Step Functions allows 256 KiB of state).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

impl DeploymentRequest {
    /// Parses and validates a request given as JSON text.
    pub fn from_json(text: &str) -> Result<Self, FieldErrors> {
        if text.len() > MAX_REQUEST_BYTES {
            return Err(too_large(text.len()));
        }
        let value: Value = serde_json::from_str(text)
            .map_err(|e| FieldErrors::from(FieldError::new("request", format!("is not valid JSON: {e}"))))?;
        if let Some(key) = super::first_repeated_key(text) {
            return Err(FieldError::new(key, super::REPEATED_KEY).into());
        }
        Self::from_value(value)
    }

    /// Parses and validates a request given as a JSON value.
    pub fn from_value(value: Value) -> Result<Self, FieldErrors> {
        let size = serde_json::to_vec(&value).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > MAX_REQUEST_BYTES {
            return Err(too_large(size));
        }
        let problems = shape_problems(&value);
        if !problems.is_empty() {
            return Err(FieldErrors(problems));
        }
        let request = read(value)?;
        request.validate()?;
        Ok(request)
    }
}

fn too_large(size: usize) -> FieldErrors {
    FieldError::new("request", format!("is {size} bytes of JSON; at most {MAX_REQUEST_BYTES} are accepted")).into()
}

/// The fields of one kind of JSON object in a request, in the model's order.
pub(super) type Fields = &'static [Field];

/// One field of a JSON object in a request.
#[derive(Debug)]
pub(super) struct Field {
    /// Its name in JSON.
    pub name: &'static str,
    /// Whether serde refuses an object without it.
    pub required: bool,
    /// What the walk looks for in its value.
    pub shape: Shape,
}

/// What a field's value must look like, as far as the walk looks: objects and their
/// fields. Everything else about a value is serde's to check.
#[derive(Debug)]
pub(super) enum Shape {
    /// A value whose type serde checks: a number, a string, a list of strings.
    Value,
    /// An object with these fields, or also `null` when `nullable` (an `Option`).
    Object { fields: Fields, nullable: bool },
    /// When a list (the strategy's steps), a list of objects with these fields.
    List(Fields),
    /// A list of targets, each an object whose `kind` picks its fields from [`TARGET_KINDS`].
    Targets,
    /// An object of any names (a metric's dimensions), whose values serde checks.
    Map,
}

const fn required(name: &'static str) -> Field {
    Field { name, required: true, shape: Shape::Value }
}

const fn optional(name: &'static str) -> Field {
    Field { name, required: false, shape: Shape::Value }
}

/// An optional object (a struct with a default).
const fn object(name: &'static str, fields: Fields) -> Field {
    Field { name, required: false, shape: Shape::Object { fields, nullable: false } }
}

/// [`DeploymentRequest`]. `schema` is optional to serde; validation asks for it, with advice.
pub(super) const REQUEST: Fields = &[
    optional("schema"),
    Field { name: "targets", required: true, shape: Shape::Targets },
    Field { name: "strategy", required: true, shape: Shape::List(STEP) },
    object("health", HEALTH),
    optional("lock_in_seconds"),
    optional("keep_versions"),
    optional("approval_timeout_seconds"),
    optional("pause_timeout"),
    object("hooks", HOOKS),
];

/// [`crate::hooks::Hooks`]: a list of hooks at each point.
const HOOKS: Fields = &[
    Field { name: "before_traffic", required: false, shape: Shape::List(HOOK) },
    Field { name: "each_step", required: false, shape: Shape::List(HOOK) },
    Field { name: "after_promotion", required: false, shape: Shape::List(HOOK) },
];

/// [`crate::hooks::Hook`]; which of `invoke_candidate` and `function` it has is a rule of
/// validation.
const HOOK: Fields = &[
    optional("name"),
    object(
        "invoke_candidate",
        &[optional("payload"), object("expect", &[optional("status_below"), optional("contains")])],
    ),
    optional("function"),
    optional("payload"),
    optional("timeout_seconds"),
];

/// [`StepSpec`].
const STEP: Fields = &[required("weight_percent"), optional("bake_seconds"), optional("approval")];

/// [`super::HealthSettings`].
const HEALTH: Fields = &[
    optional("min_invocations"),
    object("error_rate", &[optional("max_increase_percent"), optional("max_percent"), optional("mode")]),
    object("p99_duration", &[optional("max_slow_increase_percent"), optional("max_ms"), optional("mode")]),
    object("throttles", &[optional("max_count"), optional("mode")]),
    optional("alarms"),
    optional("false_alarm_percent"),
    optional("metric_lag_seconds"),
    optional("check_interval_seconds"),
    optional("window_seconds"),
    object("baseline", &[optional("history_seconds"), optional("drift_percent")]),
    object("insufficient_data", &[optional("extensions"), optional("extension_seconds"), optional("then")]),
    object("fast_path", &[optional("enabled"), optional("check_interval_seconds"), optional("sources")]),
    Field { name: "metrics", required: false, shape: Shape::List(METRIC_RULE) },
];

/// [`crate::custom::MetricRule`]; which metrics and thresholds it has is a rule of validation.
const METRIC_RULE: Fields = &[
    required("name"),
    optional("mode"),
    spec("bad"),
    spec("good"),
    spec("all"),
    spec("value"),
    optional("max_increase_percent"),
    optional("max_decrease_percent"),
    optional("max_percent"),
    optional("min_percent"),
    optional("max"),
    optional("require_data"),
];

/// [`crate::custom::MetricSpec`]; its dimensions are an object of any names.
const METRIC_SPEC: Fields = &[
    required("namespace"),
    required("metric"),
    Field { name: "dimensions", required: true, shape: Shape::Map },
    optional("stat"),
];

/// An optional [`crate::custom::MetricSpec`].
const fn spec(name: &'static str) -> Field {
    Field { name, required: false, shape: Shape::Object { fields: METRIC_SPEC, nullable: true } }
}

/// [`super::Target`], a Lambda alias.
const LAMBDA_ALIAS: Fields = &[required("function"), required("alias"), required("version")];

/// [`crate::routers::route53::RecordTarget`].
const ROUTE53_RECORD: Fields = &[
    required("hosted_zone_id"),
    required("record_name"),
    required("record_type"),
    Field { name: "blue", required: true, shape: Shape::Object { fields: ROUTE53_ENDPOINT, nullable: false } },
    Field { name: "green", required: true, shape: Shape::Object { fields: ROUTE53_ENDPOINT, nullable: false } },
];

/// [`crate::routers::route53::Endpoint`].
const ROUTE53_ENDPOINT: Fields = &[
    Field {
        name: "alias_target",
        required: false,
        shape: Shape::Object { fields: ROUTE53_ALIAS_TARGET, nullable: true },
    },
    optional("values"),
    optional("ttl"),
    optional("distribution_id"),
];

/// [`crate::routers::route53::AliasTarget`].
const ROUTE53_ALIAS_TARGET: Fields =
    &[required("dns_name"), required("hosted_zone_id"), optional("evaluate_target_health")];

/// The error of one reader: where inside what it read, and serde's reason.
type ReadError = serde_path_to_error::Error<serde_json::Error>;

/// One kind of target: the `kind` that names it, its fields, and how to read one.
pub(super) struct TargetKind {
    /// The value of `kind`.
    pub name: &'static str,
    /// Its fields, besides `kind`.
    pub fields: Fields,
    /// Reads one target of this kind, without its `kind`, into `targets`.
    pub read: fn(Value, &mut Targets) -> Result<(), ReadError>,
}

/// Every kind of target, and the only place that maps a `kind` to its fields and its
/// reader. The first is the default, for a target without a `kind`: existing requests
/// name no kind for a Lambda alias.
///
/// A new kind needs its type in `model` (and a list of them in [`Targets`], written back
/// with its `kind`), an entry here, and its rules in `validate`.
pub(super) const TARGET_KINDS: &[TargetKind] = &[
    TargetKind {
        name: "lambda",
        fields: LAMBDA_ALIAS,
        read: |value, targets| {
            targets.aliases.push(serde_path_to_error::deserialize(value)?);
            Ok(())
        },
    },
    TargetKind {
        name: ROUTE53_KIND,
        fields: ROUTE53_RECORD,
        read: |value, targets| {
            targets.records.push(serde_path_to_error::deserialize(value)?);
            Ok(())
        },
    },
    TargetKind {
        name: crate::routers::web::KIND,
        fields: WEB_ENDPOINT,
        read: |value, targets| {
            targets.endpoints.push(serde_path_to_error::deserialize(value)?);
            Ok(())
        },
    },
];

/// [`crate::routers::web::WebTarget`].
const WEB_ENDPOINT: Fields = &[required("function"), required("endpoint"), required("revision")];

/// The kind a target's `kind` names (the default when it has none), or why there is none.
pub(super) fn target_kind(target: &Map<String, Value>) -> Result<&'static TargetKind, String> {
    let Some(kind) = target.get("kind") else { return Ok(&TARGET_KINDS[0]) };
    TARGET_KINDS.iter().find(|k| kind.as_str() == Some(k.name)).ok_or_else(|| {
        let names: Vec<String> = TARGET_KINDS
            .iter()
            .enumerate()
            .map(|(i, k)| if i == 0 { format!("\"{}\" (the default)", k.name) } else { format!("\"{}\"", k.name) })
            .collect();
        format!("{kind} is not a target kind; use {}", one_of(&names, "or"))
    })
}

/// `a`, `a or b`, `a, b or c`.
fn one_of(items: &[String], last_word: &str) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [rest @ .., last] => format!("{} {last_word} {last}", rest.join(", ")),
    }
}

/// Every problem with the request's shape: something other than an object where an
/// object belongs, a required field missing, an unknown field; each with its full path.
pub(super) fn shape_problems(request: &Value) -> Vec<FieldError> {
    let mut problems = Vec::new();
    match request {
        Value::Object(map) => check_object(map, REQUEST, &[], "", &mut problems),
        other => problems.push(not_an_object("request".into(), other)),
    }
    problems
}

/// Checks one object against its `fields`; `also` are names known besides them.
fn check_object(map: &Map<String, Value>, fields: Fields, also: &[&str], at: &str, problems: &mut Vec<FieldError>) {
    for field in fields {
        match map.get(field.name) {
            Some(value) => check_value(value, &field.shape, join(at, field.name), problems),
            None if field.required => problems.push(FieldError::new(join(at, field.name), "is required")),
            None => {}
        }
    }
    let known = |key: &str| fields.iter().any(|f| f.name == key) || also.contains(&key);
    for key in map.keys().filter(|k| !known(k)) {
        let names: Vec<String> =
            fields.iter().map(|f| f.name).chain(also.iter().copied()).map(|n| format!("`{n}`")).collect();
        let expected = if names.len() > 2 { format!("one of {}", names.join(", ")) } else { one_of(&names, "or") };
        problems.push(FieldError::new(join(at, key), format!("is not a known field (expected {expected})")));
    }
}

fn check_value(value: &Value, shape: &Shape, at: String, problems: &mut Vec<FieldError>) {
    match (shape, value) {
        (Shape::Value, _) | (Shape::Map, Value::Object(_)) | (Shape::Object { nullable: true, .. }, Value::Null) => {}
        (Shape::Map, other) => problems.push(not_an_object(at, other)),
        (Shape::Object { fields, .. }, Value::Object(map)) => check_object(map, fields, &[], &at, problems),
        (Shape::Object { .. }, other) => problems.push(not_an_object(at, other)),
        (Shape::List(fields), Value::Array(items)) => {
            for (at, map) in objects(items, &at, problems) {
                check_object(map, fields, &[], &at, problems);
            }
        }
        (Shape::Targets, Value::Array(items)) => {
            for (at, map) in objects(items, &at, problems) {
                match target_kind(map) {
                    Ok(kind) => check_object(map, kind.fields, &["kind"], &at, problems),
                    Err(reason) => problems.push(FieldError::new(join(&at, "kind"), reason)),
                }
            }
        }
        // Not a list at all: serde says what it expected (a preset name or steps, say).
        (Shape::List(_) | Shape::Targets, _) => {}
    }
}

/// The items of the list at `at` that are objects, with their paths; the others are problems.
fn objects<'a>(items: &'a [Value], at: &str, problems: &mut Vec<FieldError>) -> Vec<(String, &'a Map<String, Value>)> {
    let mut objects = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{at}[{i}]");
        match item {
            Value::Object(map) => objects.push((at, map)),
            other => problems.push(not_an_object(at, other)),
        }
    }
    objects
}

/// Serde also reads a struct from a JSON array, field by field in order. A request is
/// written by people and pipelines, so every place that takes an object must get one.
fn not_an_object(at: String, value: &Value) -> FieldError {
    let what = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    FieldError::new(at, format!("must be a JSON object, not {what}"))
}

/// Reads the model from a request of the right shape. Each target is read by its own
/// kind's reader and the rest of the request by serde in one go, so the problems are one
/// per target at most, and one for the rest.
fn read(mut request: Value) -> Result<DeploymentRequest, FieldErrors> {
    let mut problems = Vec::new();
    let mut targets = Targets::default();
    // Taken out (leaving an empty list for serde), unless serde must say it is no list.
    if let Some(Value::Array(items)) = request.get_mut("targets") {
        for (i, item) in std::mem::take(items).into_iter().enumerate() {
            if let Err(e) = read_target(item, &format!("targets[{i}]"), &mut targets) {
                problems.push(e);
            }
        }
    }
    match serde_path_to_error::deserialize::<_, DeploymentRequest>(request) {
        Ok(mut request) if problems.is_empty() => {
            request.targets = targets;
            Ok(request)
        }
        Ok(_) => Err(FieldErrors(problems)),
        Err(e) => {
            let field = field_at("", e.path());
            let field = if field.is_empty() { "request".to_owned() } else { field };
            problems.push(FieldError::new(field, e.into_inner().to_string()));
            Err(FieldErrors(problems))
        }
    }
}

/// Reads one target at `at` into `targets`, by the reader of the kind its `kind` names.
fn read_target(mut target: Value, at: &str, targets: &mut Targets) -> Result<(), FieldError> {
    let kind = match target.as_object_mut() {
        Some(map) => {
            let kind = target_kind(map).map_err(|reason| FieldError::new(join(at, "kind"), reason))?;
            map.remove("kind");
            kind
        }
        None => &TARGET_KINDS[0],
    };
    (kind.read)(target, targets).map_err(|e| FieldError::new(field_at(at, e.path()), e.into_inner().to_string()))
}

/// `at` followed by serde_path_to_error's `path`: `targets[0]` and `blue.ttl`.
fn field_at(at: &str, path: &Path) -> String {
    let mut field = at.to_owned();
    for segment in path {
        match segment {
            Segment::Seq { index } => {
                let _ = write!(field, "[{index}]");
            }
            Segment::Map { key } => field = join(&field, key),
            Segment::Enum { variant } => field = join(&field, variant),
            Segment::Unknown => field = join(&field, "?"),
        }
    }
    field
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() { name.to_owned() } else { format!("{at}.{name}") }
}

impl<'de> Deserialize<'de> for Targets {
    // By hand, because the default kind has no tag: an internally tagged enum would
    // require `"kind": "lambda"` on every existing request. Each item is read by its
    // kind's reader ([`TARGET_KINDS`]); [`DeploymentRequest::from_value`] reads targets
    // itself, and this serves plain serde.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TargetsVisitor;
        impl<'de> Visitor<'de> for TargetsVisitor {
            type Value = Targets;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of targets")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Targets, A::Error> {
                let mut targets = Targets::default();
                while let Some(item) = seq.next_element::<Value>()? {
                    read_target(item, "", &mut targets).map_err(|e| {
                        // Plain serde keeps its own path; this adds the one inside the target.
                        if e.field.is_empty() { de::Error::custom(e.reason) } else { de::Error::custom(e) }
                    })?;
                }
                Ok(targets)
            }
        }
        deserializer.deserialize_seq(TargetsVisitor)
    }
}

/// A target's `version`: a string, or a JSON number.
pub(super) fn version_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
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
