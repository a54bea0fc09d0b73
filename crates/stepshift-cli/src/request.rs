//! Builds a deployment request from a config file and flags, and validates it locally,
//! so that a bad request exits 2 before anything is started.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value, json};
use stepshift_core::hooks::{Hook, Hooks, MAX_TIMEOUT_SECONDS, Point};
use stepshift_core::request::DeploymentRequest;

use crate::error::CliError;

/// The request-shaping flags of `deploy` and `simulate`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RequestArgs {
    /// Function to deploy; repeat for a release of several functions.
    #[arg(long = "function", value_name = "NAME")]
    pub functions: Vec<String>,
    /// Alias whose traffic moves; give one per --function, or one for all.
    #[arg(long = "alias", value_name = "ALIAS")]
    pub aliases: Vec<String>,
    /// Candidate version; one per --function.
    #[arg(long = "version", value_name = "VERSION")]
    pub versions: Vec<String>,
    /// A preset: all-at-once, canary-10-5m|10m|15m|30m, linear-10-every-1m|2m|3m|10m.
    #[arg(long)]
    pub strategy: Option<String>,
    /// Custom steps as weights, e.g. 5,25,50,100 (needs --bake).
    #[arg(long, value_name = "WEIGHTS")]
    pub steps: Option<String>,
    /// How long each custom step bakes, e.g. 5m.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub bake: Option<Duration>,
    /// Pause for approval before the step with this weight (repeatable).
    #[arg(long = "approve-before", value_name = "WEIGHT")]
    pub approve_before: Vec<f64>,
    /// How long to watch after promotion, e.g. 10m (0s to skip).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub lock_in: Option<Duration>,
    /// Versions to keep when pruning after a successful release.
    #[arg(long)]
    pub keep_versions: Option<u32>,
    /// Roll back when the candidate's error rate is above this percentage.
    #[arg(long, value_name = "PERCENT")]
    pub max_error_rate: Option<f64>,
    /// Roll back when the candidate's p99 duration is above this many milliseconds.
    #[arg(long, value_name = "MS")]
    pub max_p99_ms: Option<f64>,
    /// A CloudWatch alarm that rolls back when in ALARM (repeatable).
    #[arg(long = "alarm", value_name = "NAME")]
    pub alarms: Vec<String>,
    /// Turn on the fast path: tally counts invocation outcomes from the functions' logs
    /// within seconds, and checks every 20 s may roll back (never promote) on them.
    #[arg(long)]
    pub fast_path: bool,
    /// Run this test function before any traffic moves; a failure ends the deployment
    /// with nothing moved (repeatable).
    #[arg(long = "test-before", value_name = "FUNCTION")]
    pub test_before: Vec<String>,
    /// Run this test function at every step before promotion, beside its bake; a
    /// failure rolls back (repeatable).
    #[arg(long = "test-each-step", value_name = "FUNCTION")]
    pub test_each_step: Vec<String>,
    /// Run this test function right after promotion, before the lock-in watch; a failure
    /// rolls back (repeatable).
    #[arg(long = "test-after", value_name = "FUNCTION")]
    pub test_after: Vec<String>,
    /// Before any traffic moves, invoke the candidate version itself with this JSON
    /// file's content as the event; a FunctionError fails it (repeatable).
    #[arg(long = "invoke-candidate", value_name = "PAYLOAD_FILE")]
    pub invoke_candidate: Vec<PathBuf>,
    /// How long each hook the flags above add may run, 1s to 900s (default 300s).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub hook_timeout: Option<Duration>,
    /// A request file (JSON, or TOML by extension); flags override its fields, and the
    /// hook flags add to its hooks.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

fn read_config(path: &Path) -> Result<Value, CliError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError::Invalid(format!("--config {}: {e}", path.display())))?;
    let value: Value = if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str::<Value>(&text)
            .map_err(|e| CliError::Invalid(format!("--config {}: not valid TOML: {e}", path.display())))?
    } else {
        let value = serde_json::from_str(&text)
            .map_err(|e| CliError::Invalid(format!("--config {}: not valid JSON: {e}", path.display())))?;
        if let Some(key) = stepshift_core::request::first_repeated_key(&text) {
            return Err(CliError::Invalid(format!(
                "--config {}: {key}: {}",
                path.display(),
                stepshift_core::request::REPEATED_KEY
            )));
        }
        value
    };
    if !value.is_object() {
        return Err(CliError::Invalid(format!("--config {}: the request must be an object", path.display())));
    }
    Ok(value)
}

fn steps(args: &RequestArgs) -> Result<Option<Value>, CliError> {
    let Some(text) = &args.steps else {
        if args.bake.is_some() {
            return Err(CliError::Invalid("--bake: only applies to --steps".into()));
        }
        return Ok(None);
    };
    let bake = args.bake.ok_or_else(|| CliError::Invalid("--steps: give --bake too, e.g. --bake 5m".into()))?;
    let mut out = Vec::new();
    let weights: Vec<&str> = text.split(',').map(str::trim).collect();
    for (i, w) in weights.iter().enumerate() {
        let weight: f64 = w.parse().map_err(|_| CliError::Invalid(format!("--steps: `{w}` is not a percentage")))?;
        let mut step = json!({"weight_percent": weight});
        if i + 1 < weights.len() {
            step["bake_seconds"] = json!(bake.as_secs());
        }
        if args.approve_before.contains(&weight) {
            step["approval"] = json!(true);
        }
        out.push(step);
    }
    Ok(Some(Value::Array(out)))
}

fn targets(args: &RequestArgs) -> Result<Option<Value>, CliError> {
    if args.functions.is_empty() {
        if !args.aliases.is_empty() || !args.versions.is_empty() {
            return Err(CliError::Invalid("--alias and --version need --function".into()));
        }
        return Ok(None);
    }
    let n = args.functions.len();
    if args.versions.len() != n {
        return Err(CliError::Invalid(format!(
            "--version: give one per --function ({n} functions, {} versions)",
            args.versions.len()
        )));
    }
    let aliases = match args.aliases.len() {
        0 => return Err(CliError::Invalid("--alias: which alias moves? e.g. --alias live".into())),
        1 => vec![args.aliases[0].clone(); n],
        m if m == n => args.aliases.clone(),
        m => {
            return Err(CliError::Invalid(format!(
                "--alias: give one for all functions or one per --function ({n} functions, {m} aliases)"
            )));
        }
    };
    let list: Vec<Value> = (0..n)
        .map(|i| json!({"function": args.functions[i], "alias": aliases[i], "version": args.versions[i]}))
        .collect();
    Ok(Some(Value::Array(list)))
}

/// The event an `--invoke-candidate` file holds.
fn read_payload(path: &Path) -> Result<Value, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Invalid(format!("--invoke-candidate {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| CliError::Invalid(format!("--invoke-candidate {}: not valid JSON: {e}", path.display())))
}

/// The hooks the hook flags add.
fn flag_hooks(args: &RequestArgs) -> Result<Hooks, CliError> {
    let tests = [
        (Point::BeforeTraffic, &args.test_before),
        (Point::EachStep, &args.test_each_step),
        (Point::AfterPromotion, &args.test_after),
    ];
    let none = tests.iter().all(|(_, f)| f.is_empty()) && args.invoke_candidate.is_empty();
    let timeout = match args.hook_timeout {
        None => None,
        Some(_) if none => {
            return Err(CliError::Invalid(
                "--hook-timeout: only applies to the hooks of --test-before, --test-each-step, --test-after and \
                 --invoke-candidate (a --config file's hooks set their own timeout_seconds)"
                    .into(),
            ));
        }
        Some(d) if d.subsec_nanos() == 0 && (1..=MAX_TIMEOUT_SECONDS).contains(&d.as_secs()) => Some(d.as_secs()),
        Some(_) => {
            return Err(CliError::Invalid(format!(
                "--hook-timeout: must be whole seconds from 1s to {MAX_TIMEOUT_SECONDS}s (a synchronous Lambda \
                 invocation lasts at most {MAX_TIMEOUT_SECONDS} s), e.g. 30s"
            )));
        }
    };
    let timed = |mut hook: Hook| {
        if let Some(t) = timeout {
            hook.timeout_seconds = t;
        }
        hook
    };
    let mut hooks = Hooks::default();
    for (point, functions) in tests {
        for f in functions {
            hooks.push(point, timed(Hook::function(f.clone())));
        }
    }
    let several = args.invoke_candidate.len() > 1;
    for path in &args.invoke_candidate {
        let mut hook = Hook::invoke_candidate(read_payload(path)?);
        if several {
            // Two hooks named "invoke orders:7" would not say which payload failed.
            let file =
                path.file_name().map_or_else(|| path.display().to_string(), |f| f.to_string_lossy().into_owned());
            hook.name = Some(format!("invoke {file}").chars().take(64).collect());
        }
        hooks.push(Point::BeforeTraffic, timed(hook));
    }
    Ok(hooks)
}

/// Adds the hook flags' hooks after the ones the request already lists. The request
/// stays JSON, so that a config file's own mistakes are reported by the request's
/// validation, naming their fields.
fn add_hooks(obj: &mut Map<String, Value>, args: &RequestArgs) -> Result<(), CliError> {
    let added = flag_hooks(args)?;
    if added.is_empty() {
        return Ok(());
    }
    let Some(hooks) = obj.entry("hooks").or_insert(json!({})).as_object_mut() else {
        return Ok(()); // not an object: the validation says so
    };
    for point in Point::ALL {
        if added.at(point).is_empty() {
            continue;
        }
        let key = point.field().trim_start_matches("hooks.");
        if let Some(list) = hooks.entry(key).or_insert(json!([])).as_array_mut() {
            list.extend(added.at(point).iter().map(|h| serde_json::to_value(h).unwrap_or_default()));
        }
    }
    Ok(())
}

/// The request these flags describe: the config file (if any), then each flag on top.
pub fn build(args: &RequestArgs) -> Result<Value, CliError> {
    let mut request = match &args.config {
        Some(path) => read_config(path)?,
        None => json!({}),
    };
    let obj: &mut Map<String, Value> = request.as_object_mut().expect("an object");
    obj.entry("schema").or_insert(json!(1));
    if let Some(t) = targets(args)? {
        obj.insert("targets".into(), t);
    }
    match (&args.strategy, steps(args)?) {
        (Some(_), Some(_)) => return Err(CliError::Invalid("--strategy and --steps: give one of them".into())),
        (Some(preset), None) => {
            if !args.approve_before.is_empty() {
                return Err(CliError::Invalid("--approve-before: needs --steps (presets have no approvals)".into()));
            }
            obj.insert("strategy".into(), json!(preset));
        }
        (None, Some(steps)) => {
            let known: Vec<f64> =
                steps.as_array().into_iter().flatten().filter_map(|s| s["weight_percent"].as_f64()).collect();
            if let Some(w) = args.approve_before.iter().find(|w| !known.contains(w)) {
                return Err(CliError::Invalid(format!("--approve-before: no step has weight {w}")));
            }
            obj.insert("strategy".into(), steps);
        }
        (None, None) => {}
    }
    if let Some(d) = args.lock_in {
        obj.insert("lock_in_seconds".into(), json!(d.as_secs()));
    }
    if let Some(k) = args.keep_versions {
        obj.insert("keep_versions".into(), json!(k));
    }
    add_hooks(obj, args)?;
    let health = obj.entry("health").or_insert(json!({}));
    if let Some(h) = health.as_object_mut() {
        if let Some(p) = args.max_error_rate {
            h.insert("error_rate".into(), json!({"max_percent": p}));
        }
        if let Some(ms) = args.max_p99_ms {
            h.insert("p99_duration".into(), json!({"max_ms": ms}));
        }
        if !args.alarms.is_empty() {
            h.insert("alarms".into(), json!(args.alarms));
        }
        if args.fast_path {
            let fast = h.entry("fast_path").or_insert(json!({}));
            if let Some(f) = fast.as_object_mut() {
                f.insert("enabled".into(), json!(true));
            }
        }
    }
    Ok(request)
}

/// Builds and validates: any problem is an `Invalid` error naming the fields.
#[cfg_attr(not(feature = "aws"), allow(dead_code))] // `deploy` is an AWS command
pub fn build_valid(args: &RequestArgs) -> Result<(Value, DeploymentRequest), CliError> {
    parse(args, build(args)?)
}

/// Validates a request [`build`] made from `args` (and perhaps edited since).
pub fn parse(args: &RequestArgs, value: Value) -> Result<(Value, DeploymentRequest), CliError> {
    if value.get("targets").is_none() && args.config.is_none() {
        return Err(CliError::Invalid(
            "--function, --alias and --version are required (or a --config file with targets)".into(),
        ));
    }
    if value.get("strategy").is_none() && args.config.is_none() {
        return Err(CliError::Invalid("--strategy or --steps is required (or a --config file with a strategy)".into()));
    }
    match DeploymentRequest::from_value(value.clone()) {
        Ok(r) => Ok((value, r)),
        Err(e) => {
            let lines: Vec<String> = e.0.iter().map(|f| format!("  {f}")).collect();
            Err(CliError::Invalid(format!("invalid deployment request:\n{}", lines.join("\n"))))
        }
    }
}

#[cfg(test)]
mod tests {
    use stepshift_core::hooks::DEFAULT_TIMEOUT_SECONDS;

    use super::*;

    fn args() -> RequestArgs {
        RequestArgs {
            functions: vec!["orders".into()],
            aliases: vec!["live".into()],
            versions: vec!["42".into()],
            strategy: Some("canary-10-5m".into()),
            ..RequestArgs::default()
        }
    }

    #[test]
    fn flags_make_a_request() {
        let (v, r) = build_valid(&args()).unwrap();
        assert_eq!(v["targets"][0]["version"], "42");
        assert_eq!(r.steps().len(), 2);
    }

    #[test]
    fn the_fast_path_flag_turns_it_on() {
        let (v, r) = build_valid(&RequestArgs { fast_path: true, ..args() }).unwrap();
        assert_eq!(v["health"]["fast_path"]["enabled"], true);
        assert!(r.health.fast_path.enabled);
        assert!(!build_valid(&args()).unwrap().1.health.fast_path.enabled);
    }

    #[test]
    fn custom_steps_with_bake_and_approval() {
        let a = RequestArgs {
            strategy: None,
            steps: Some("5,50,100".into()),
            bake: Some(Duration::from_secs(120)),
            approve_before: vec![50.0],
            ..args()
        };
        let (v, _) = build_valid(&a).unwrap();
        assert_eq!(
            v["strategy"],
            json!([
                {"weight_percent": 5.0, "bake_seconds": 120},
                {"weight_percent": 50.0, "bake_seconds": 120, "approval": true},
                {"weight_percent": 100.0}
            ])
        );
    }

    #[test]
    fn one_alias_serves_every_function() {
        let a =
            RequestArgs { functions: vec!["a".into(), "b".into()], versions: vec!["2".into(), "3".into()], ..args() };
        let (v, _) = build_valid(&a).unwrap();
        assert_eq!(v["targets"][1], json!({"function": "b", "alias": "live", "version": "3"}));
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let cases = [
            (
                RequestArgs { steps: Some("5,x".into()), bake: Some(Duration::from_secs(1)), strategy: None, ..args() },
                "--steps",
            ),
            (RequestArgs { steps: Some("5,100".into()), strategy: None, ..args() }, "--bake"),
            (
                RequestArgs { steps: Some("5,100".into()), bake: Some(Duration::from_secs(1)), ..args() },
                "--strategy and --steps",
            ),
            (RequestArgs { versions: vec![], ..args() }, "--version"),
            (RequestArgs { approve_before: vec![50.0], ..args() }, "--approve-before"),
            (RequestArgs { strategy: None, ..args() }, "--strategy or --steps"),
        ];
        for (a, flag) in cases {
            let e = build_valid(&a).unwrap_err().to_string();
            assert!(e.contains(flag), "{e}");
        }
    }

    #[test]
    fn request_errors_name_the_field() {
        let a = RequestArgs { versions: vec!["$LATEST".into()], ..args() };
        let e = build_valid(&a).unwrap_err();
        assert!(matches!(e, CliError::Invalid(_)));
        assert!(e.to_string().contains("targets[0].version: must be a published version"), "{e}");
    }

    /// A scratch directory for one test's files.
    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("stepshift-request-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn each_hook_flag_adds_a_hook_at_its_point() {
        let dir = scratch("points");
        let payload = dir.join("get-order.json");
        std::fs::write(&payload, r#"{"httpMethod": "GET", "path": "/orders/1"}"#).unwrap();
        let a = RequestArgs {
            test_before: vec!["orders-smoke".into()],
            test_each_step: vec!["orders-load".into(), "orders-e2e".into()],
            test_after: vec!["orders-e2e".into()],
            invoke_candidate: vec![payload],
            ..args()
        };
        let (v, r) = build_valid(&a).unwrap();
        assert_eq!(v["hooks"]["before_traffic"][0]["function"], "orders-smoke");
        assert_eq!(
            r.hooks.before_traffic[1],
            Hook::invoke_candidate(json!({"httpMethod": "GET", "path": "/orders/1"}))
        );
        let names = |p: Point| r.hooks.at(p).iter().map(|h| h.function.clone().unwrap_or_default()).collect::<Vec<_>>();
        assert_eq!(names(Point::EachStep), ["orders-load", "orders-e2e"]);
        assert_eq!(names(Point::AfterPromotion), ["orders-e2e"]);
        assert!(r.hooks.at(Point::BeforeTraffic).iter().all(|h| h.timeout_seconds == DEFAULT_TIMEOUT_SECONDS));
        // No hook flags: no hooks section is written.
        assert!(build(&args()).unwrap().get("hooks").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_hook_timeout_applies_to_the_flags_hooks() {
        let a = RequestArgs {
            test_before: vec!["orders-smoke".into()],
            test_after: vec!["orders-e2e".into()],
            hook_timeout: Some(Duration::from_secs(30)),
            ..args()
        };
        let (_, r) = build_valid(&a).unwrap();
        assert_eq!(r.hooks.before_traffic[0].timeout_seconds, 30);
        assert_eq!(r.hooks.after_promotion[0].timeout_seconds, 30);
        for bad in [Duration::ZERO, Duration::from_secs(901), Duration::from_millis(1500)] {
            let e = build_valid(&RequestArgs { hook_timeout: Some(bad), ..a.clone() }).unwrap_err();
            assert!(matches!(e, CliError::Invalid(_)) && e.to_string().starts_with("--hook-timeout: "), "{e}");
        }
        let alone = RequestArgs { hook_timeout: Some(Duration::from_secs(30)), ..args() };
        assert!(build_valid(&alone).unwrap_err().to_string().starts_with("--hook-timeout: only applies"));
    }

    #[test]
    fn the_flags_add_to_the_config_files_hooks() {
        let dir = scratch("config");
        let config = dir.join("deploy.json");
        std::fs::write(
            &config,
            json!({
                "schema": 1,
                "strategy": "canary-10-5m",
                "targets": [{"function": "orders", "alias": "live", "version": "42"}],
                "hooks": {
                    "before_traffic": [{"name": "config smoke", "function": "orders-smoke", "timeout_seconds": 60}],
                    "after_promotion": [{"invoke_candidate": {"payload": {}, "expect": {"status_below": 500}}}],
                },
            })
            .to_string(),
        )
        .unwrap();
        let a = RequestArgs {
            config: Some(config),
            test_before: vec!["orders-e2e".into()],
            test_each_step: vec!["orders-load".into()],
            hook_timeout: Some(Duration::from_secs(20)),
            ..RequestArgs::default()
        };
        let (_, r) = build_valid(&a).unwrap();
        let before = &r.hooks.before_traffic;
        assert_eq!(before.len(), 2);
        assert_eq!((before[0].name.as_deref(), before[0].timeout_seconds), (Some("config smoke"), 60));
        assert_eq!((before[1].function.as_deref(), before[1].timeout_seconds), (Some("orders-e2e"), 20));
        assert_eq!(r.hooks.each_step[0].function.as_deref(), Some("orders-load"));
        assert_eq!(r.hooks.after_promotion[0].invoke_candidate.as_ref().unwrap().expect.status_below, Some(500));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn several_payload_files_name_their_hooks_after_the_files() {
        let dir = scratch("payloads");
        let (get, post) = (dir.join("get.json"), dir.join("post.json"));
        std::fs::write(&get, "{}").unwrap();
        std::fs::write(&post, r#"{"httpMethod": "POST"}"#).unwrap();
        let (_, r) = build_valid(&RequestArgs { invoke_candidate: vec![get.clone(), post], ..args() }).unwrap();
        let names: Vec<_> = r.hooks.before_traffic.iter().map(|h| h.name.clone().unwrap_or_default()).collect();
        assert_eq!(names, ["invoke get.json", "invoke post.json"]);
        // One keeps the planned default, "invoke orders:42".
        assert_eq!(
            build_valid(&RequestArgs { invoke_candidate: vec![get], ..args() }).unwrap().1.hooks.before_traffic[0].name,
            None
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_payload_file_that_is_missing_or_not_json_is_named() {
        let dir = scratch("bad-payload");
        let (missing, text) = (dir.join("missing.json"), dir.join("event.txt"));
        std::fs::write(&text, "GET /orders/1").unwrap();
        for (path, why) in [(missing, ""), (text, ": not valid JSON: ")] {
            let e = build_valid(&RequestArgs { invoke_candidate: vec![path.clone()], ..args() }).unwrap_err();
            assert!(matches!(e, CliError::Invalid(_)), "{e}");
            let e = e.to_string();
            assert!(e.starts_with(&format!("--invoke-candidate {}: ", path.display())), "{e}");
            assert!(e.contains(why), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hook_flags_the_request_refuses_name_the_field() {
        let cases = [
            (
                RequestArgs {
                    test_each_step: vec!["orders-load".into()],
                    strategy: Some("all-at-once".into()),
                    ..args()
                },
                "hooks.each_step: the strategy moves all traffic at once",
            ),
            (RequestArgs { test_before: vec!["has space".into()], ..args() }, "hooks.before_traffic[0].function: "),
            // The function being released is tested with --invoke-candidate.
            (RequestArgs { test_after: vec!["orders".into()], ..args() }, "hooks.after_promotion[0].function: "),
            (
                RequestArgs { test_before: (0..11).map(|i| format!("t{i}")).collect(), ..args() },
                "hooks.before_traffic: lists 11 hooks",
            ),
        ];
        for (a, field) in cases {
            let e = build_valid(&a).unwrap_err();
            assert!(matches!(e, CliError::Invalid(_)), "{e}");
            assert!(e.to_string().contains(&format!("  {field}")), "{e}");
        }
    }
}
