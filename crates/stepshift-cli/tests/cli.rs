//! The `stepshift` binary as pipelines and people use it, without AWS: argument and
//! request validation (exit 2, field named), simulations (verdict and exit code), JSON.

use assert_cmd::Command;
use serde_json::Value;

fn stepshift() -> Command {
    let mut cmd = Command::cargo_bin("stepshift").unwrap();
    cmd.env_remove("STEPSHIFT_STATE_MACHINE_ARN").env("NO_COLOR", "1");
    cmd
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const DEPLOY: [&str; 7] = ["deploy", "--function", "orders", "--alias", "live", "--version", "42"];

#[test]
fn an_invalid_request_exits_2_naming_the_field() {
    let out = stepshift()
        .args([
            "deploy",
            "--function",
            "orders",
            "--alias",
            "live",
            "--version",
            "$LATEST",
            "--strategy",
            "canary-10-7m",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("targets[0].version: must be a published version"), "{err}");
    assert!(err.contains("strategy: unknown preset `canary-10-7m`"), "{err}");
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let cases: [(&[&str], &str); 5] = [
        (&["--steps", "10,x,100", "--bake", "1m"], "--steps"),
        (&["--steps", "10,100"], "--bake"),
        (&["--strategy", "canary-10-5m", "--steps", "10,100", "--bake", "1m"], "--strategy and --steps"),
        (&["--strategy", "canary-10-5m", "--lock-in", "soon"], "--lock-in"),
        (&["--strategy", "canary-10-5m", "--approve-before", "50"], "--approve-before"),
    ];
    for (extra, flag) in cases {
        let out = stepshift().args(DEPLOY).args(extra).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(stderr(&out).contains(flag), "{extra:?}: {}", stderr(&out));
    }
}

#[test]
fn a_deploy_without_a_state_machine_exits_2_before_calling_aws() {
    let out = stepshift().args(DEPLOY).args(["--strategy", "canary-10-5m"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("which state machine?"), "{}", stderr(&out));
}

#[test]
fn dry_run_prints_the_request_and_starts_nothing() {
    let out = stepshift()
        .args(DEPLOY)
        .args(["--steps", "5,50,100", "--bake", "2m", "--approve-before", "50", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let request: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(request["strategy"][1]["approval"], true);
    assert_eq!(request["strategy"][0]["bake_seconds"], 120);
}

#[test]
fn a_config_file_is_read_and_flags_override_it() {
    let dir = std::env::temp_dir().join(format!("stepshift-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("deploy.toml");
    std::fs::write(&file, "schema = 1\nstrategy = \"linear-10-every-1m\"\nlock_in_seconds = 60\n[[targets]]\nfunction = \"orders\"\nalias = \"live\"\nversion = \"42\"\n[health]\nalarms = [\"orders-5xx\"]\n").unwrap();
    let out = stepshift()
        .args(["deploy", "--dry-run", "--config"])
        .arg(&file)
        .args(["--strategy", "canary-10-5m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let request: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(request["strategy"], "canary-10-5m");
    assert_eq!(request["health"]["alarms"][0], "orders-5xx");
    std::fs::write(&file, "schema = 1\nbogus = true\n").unwrap();
    let out = stepshift().args(["deploy", "--dry-run", "--config"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bogus"), "{}", stderr(&out));
    // A key given twice in a JSON file: serde_json would keep the last one silently.
    let json = dir.join("deploy.json");
    let repeated = [
        (
            r#"{"schema": 1, "strategy": "all-at-once", "targets": [{"function": "orders", "alias": "live", "version": "42"}], "strategy": "canary-10-5m"}"#,
            "strategy",
        ),
        (
            r#"{"schema": 1, "strategy": "canary-10-5m", "targets": [{"function": "orders", "alias": "live", "alias": "prod", "version": "42"}]}"#,
            "targets[0].alias",
        ),
        (
            r#"{"schema": 1, "strategy": "canary-10-5m", "health": {"error_rate": {"max_percent": 1, "max_percent": 50}}, "targets": [{"function": "orders", "alias": "live", "version": "42"}]}"#,
            "health.error_rate.max_percent",
        ),
    ];
    for (text, key) in repeated {
        std::fs::write(&json, text).unwrap();
        let out = stepshift().args(["deploy", "--dry-run", "--config"]).arg(&json).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{key}: {}", stderr(&out));
        assert!(stderr(&out).contains(&format!("{key}: appears twice in one object")), "{}", stderr(&out));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_manual_rollback_refuses_other_routers_records_before_calling_aws() {
    let out = stepshift()
        .args(["rollback", "--function", "route53-Z0123456789ABCDEFGHIJ", "--alias", "www.example.com-A"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--function route53-Z0123456789ABCDEFGHIJ"), "{}", stderr(&out));
    assert!(stderr(&out).contains("version records of a Route53 record"), "{}", stderr(&out));
    let out = stepshift()
        .args(["rollback", "--function", "lambda-web-orders-web", "--alias", "live"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("a Lambda Web Function endpoint"), "{}", stderr(&out));
}

#[test]
fn an_unreachable_aws_exits_3() {
    let out = stepshift()
        .args(DEPLOY)
        .args([
            "--strategy",
            "canary-10-5m",
            "--state-machine",
            "arn:aws:states:us-east-1:123456789012:stateMachine:stepshift",
        ])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("could not start the deployment"), "{}", stderr(&out));
}

fn simulate(args: &[&str]) -> (Option<i32>, Value) {
    let out = stepshift().arg("simulate").args(args).args(["--output", "json"]).output().unwrap();
    let doc: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), doc)
}

#[test]
fn simulated_scenarios_end_in_the_right_verdict() {
    let cases = [
        ("healthy", 0, "promoted", None),
        ("error-spike", 1, "rolled_back", Some("Unhealthy")),
        ("latency", 1, "rolled_back", Some("Unhealthy")),
        ("alarm", 1, "rolled_back", Some("Unhealthy")),
        ("low-traffic", 1, "rolled_back", Some("InsufficientData")),
        ("approval", 0, "promoted", None),
        ("drift", 1, "rolled_back", Some("AliasDrift")),
    ];
    for (scenario, code, verdict, error) in cases {
        let (status, doc) = simulate(&["--scenario", scenario]);
        assert_eq!(status, Some(code), "{scenario}: {doc}");
        assert_eq!(doc["verdict"], verdict, "{scenario}");
        assert_eq!(doc["error"].as_str(), error, "{scenario}");
        assert!(doc["transitions"].as_u64().unwrap() > 0);
    }
}

#[test]
fn a_simulated_front_end_release_moves_a_record_and_is_judged_on_cloudfront() {
    let cases = [
        ("healthy", 0, "promoted", None),
        ("error-spike", 1, "rolled_back", Some("Unhealthy")),
        ("alarm", 1, "rolled_back", Some("Unhealthy")),
        ("drift", 1, "rolled_back", Some("RecordDrift")),
    ];
    for (scenario, code, verdict, error) in cases {
        let (status, doc) = simulate(&["--frontend", "--scenario", scenario]);
        assert_eq!(status, Some(code), "{scenario}: {doc}");
        assert_eq!(doc["verdict"], verdict, "{scenario}");
        assert_eq!(doc["error"].as_str(), error, "{scenario}");
    }
    let (_, doc) = simulate(&["--frontend", "--scenario", "error-spike"]);
    let target = &doc["steps"][0]["targets"][0];
    assert_eq!(target["target"], "www.example.com. A", "{doc}");
    assert_eq!(target["candidate"]["version"], "green E2GREENEXAMPLE", "{doc}");
    let out = stepshift().args(["simulate", "--frontend", "--scenario", "latency"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a front end has no latency to judge");
    let out = stepshift().args(["simulate", "--frontend", "--function", "orders"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "--frontend and --function conflict");
}

#[test]
fn a_simulated_web_function_release_moves_revision_weights_and_is_judged_on_its_alarm() {
    let cases = [
        ("healthy", 0, "promoted", None),
        ("error-spike", 1, "rolled_back", Some("Unhealthy")),
        ("alarm", 1, "rolled_back", Some("Unhealthy")),
        ("drift", 1, "rolled_back", Some("EndpointDrift")),
    ];
    for (scenario, code, verdict, error) in cases {
        let (status, doc) = simulate(&["--web-function", "--scenario", scenario]);
        assert_eq!(status, Some(code), "{scenario}: {doc}");
        assert_eq!(doc["verdict"], verdict, "{scenario}");
        assert_eq!(doc["error"].as_str(), error, "{scenario}");
    }
    // The 8% errors reach the endpoint's alarm once the revision has all traffic.
    let (_, doc) = simulate(&["--web-function", "--scenario", "error-spike"]);
    let cause = doc["cause"].as_str().unwrap();
    assert!(cause.starts_with("Rolled back orders-web/live from rev-42 to rev-41"), "{cause}");
    assert!(cause.contains("alarm orders-web-5xx is in ALARM"), "{cause}");
    let out = stepshift().args(["simulate", "--web-function", "--scenario", "latency"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "an endpoint has no per-revision latency to judge");
    let out = stepshift().args(["simulate", "--web-function", "--frontend"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "one router per release");
}

#[test]
fn a_faulty_candidate_is_rolled_back_within_minutes_with_the_numbers() {
    let (status, doc) = simulate(&["--scenario", "error-spike", "--strategy", "linear-10-every-1m"]);
    assert_eq!(status, Some(1));
    let steps = doc["steps"].as_array().unwrap();
    // At 10% of 20 req/s a minute holds about 120 invocations: a handful of errors,
    // which the first or second one-minute step turns into enough evidence.
    assert!(steps.len() <= 2, "caught within the first two steps: {doc}");
    assert!(doc["duration_seconds"].as_i64().unwrap() <= 300, "{doc}");
    let last = steps.last().unwrap();
    assert_eq!(last["verdict"], "unhealthy");
    let candidate = &last["targets"][0]["candidate"];
    assert!(candidate["errors"].as_u64().unwrap() > 0 && candidate["invocations"].as_u64().unwrap() > 0, "{candidate}");
}

#[test]
fn simulate_settings_change_the_outcome() {
    let (status, _) = simulate(&["--candidate-error-rate", "20", "--fails-after", "6m", "--lock-in", "10m"]);
    assert_eq!(status, Some(1), "a candidate that breaks during the lock-in is rolled back");
    let (status, doc) = simulate(&["--steps", "20,60,100", "--bake", "3m", "--rps", "50", "--seed", "7"]);
    assert_eq!(status, Some(0), "{doc}");
    assert_eq!(doc["steps"].as_array().unwrap().len(), 3);
    let out = stepshift()
        .args(["simulate", "--function", "a", "--alias", "live", "--version", "1", "--strategy", "all-at-once"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "version 1 has no stable version before it");
    assert!(stderr(&out).contains("--version"), "{}", stderr(&out));
}

#[test]
fn text_output_ends_with_a_summary_table() {
    let out = stepshift().args(["simulate", "--scenario", "error-spike"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("candidate inv / err"), "{text}");
    assert!(text.contains("ROLLED BACK Unhealthy"), "{text}");
    assert!(!text.contains('\u{1b}'), "NO_COLOR means no escape codes");
}

/// Seconds into the simulation at which the deployment entered "Roll back" (from the
/// last step's verdict time), or `None` if it was promoted.
fn rolled_back_at(doc: &Value) -> Option<i64> {
    (doc["verdict"] == "rolled_back").then(|| doc["duration_seconds"].as_i64().unwrap())
}

/// The five regressions the first judge missed or caught late, each as a user would try
/// it with `stepshift simulate`.
#[test]
fn the_regressions_the_first_judge_missed_are_rolled_back() {
    let late = ["--strategy", "canary-10-15m", "--lock-in", "60m", "--fails-after", "35m"];
    for rate in ["6", "8"] {
        let (status, doc) = simulate(&[&late[..], &["--candidate-error-rate", rate]].concat());
        assert_eq!(status, Some(1), "{rate}% from 35 min, inside the lock-in: {doc}");
        let at = rolled_back_at(&doc).unwrap();
        assert!(at < 35 * 60 + 8 * 60, "{rate}%: within minutes of the onset, not at {at} s");
        assert!(doc["cause"].as_str().unwrap().contains("history"), "{doc}");
    }

    let dir = std::env::temp_dir().join(format!("stepshift-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("every-minute.json");
    std::fs::write(
        &config,
        r#"{"schema": 1, "targets": [{"function": "orders-api", "alias": "live", "version": "42"}],
            "strategy": "canary-10-15m", "lock_in_seconds": 3600,
            "health": {"check_interval_seconds": 60}}"#,
    )
    .unwrap();
    let (status, doc) =
        simulate(&["--config", config.to_str().unwrap(), "--candidate-error-rate", "6", "--fails-after", "35m"]);
    assert_eq!(status, Some(1), "checked every minute by request: {doc}");
    assert!(rolled_back_at(&doc).unwrap() < 35 * 60 + 8 * 60, "{doc}");
    std::fs::remove_dir_all(&dir).ok();

    let (status, doc) = simulate(&["--candidate-p99-ms", "540"]);
    assert_eq!(status, Some(1), "p99 3x, errors unchanged, canary-10-5m at 20 req/s: {doc}");
    assert!(rolled_back_at(&doc).unwrap() < 300, "during the canary: {doc}");

    let (status, doc) = simulate(&["--scenario", "error-spike"]);
    assert_eq!(status, Some(1));
    assert!(rolled_back_at(&doc).unwrap() < 300, "before the end of the 5-minute bake: {doc}");
}

#[test]
fn a_new_function_is_judged_on_the_absolute_limits_and_the_output_says_so() {
    let (status, doc) = simulate(&["--history", "0s", "--strategy", "all-at-once"]);
    assert_eq!(status, Some(0), "{doc}");
    let reason = doc["steps"][0]["reasons"][0].as_str().unwrap();
    assert!(
        reason.ends_with(
            "no baseline (version 41 served 0 invocations over 08:00-09:00, fewer than the 300 a baseline needs): judged on the absolute limits only"
        ),
        "{reason}"
    );
    let (_, doc) = simulate(&["--history", "0s", "--strategy", "all-at-once", "--candidate-error-rate", "8"]);
    assert_eq!(doc["verdict"], "rolled_back", "the 5% limit still holds: {doc}");
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("stepshift"))
        .args(["simulate", "--scenario", "healthy", "--speed", "1000000"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the first line, then close the pipe as `| head -1` does.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("Simulating"), "{first}");
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
}

#[test]
fn hook_flags_add_hooks_and_bad_ones_exit_2_naming_the_flag_or_field() {
    let dir = std::env::temp_dir().join(format!("stepshift-cli-hooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let payload = dir.join("event.json");
    std::fs::write(&payload, r#"{"rawPath": "/health"}"#).unwrap();
    let out = stepshift()
        .args(DEPLOY)
        .args(["--strategy", "canary-10-5m", "--dry-run", "--test-each-step", "orders-load", "--hook-timeout", "45s"])
        .arg("--invoke-candidate")
        .arg(&payload)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let request: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(request["hooks"]["each_step"][0]["function"], "orders-load");
    assert_eq!(request["hooks"]["each_step"][0]["timeout_seconds"], 45);
    assert_eq!(request["hooks"]["before_traffic"][0]["invoke_candidate"]["payload"]["rawPath"], "/health");

    let missing = dir.join("missing.json");
    let cases: [(Vec<String>, String); 3] = [
        (
            vec!["--strategy".into(), "all-at-once".into(), "--test-each-step".into(), "orders-load".into()],
            "hooks.each_step: the strategy moves all traffic at once".into(),
        ),
        (
            vec![
                "--strategy".into(),
                "canary-10-5m".into(),
                "--invoke-candidate".into(),
                missing.display().to_string(),
            ],
            format!("--invoke-candidate {}", missing.display()),
        ),
        (
            vec![
                "--strategy".into(),
                "canary-10-5m".into(),
                "--test-after".into(),
                "e2e".into(),
                "--hook-timeout".into(),
                "20m".into(),
            ],
            "--hook-timeout: must be whole seconds from 1s to 900s".into(),
        ),
    ];
    for (extra, expected) in cases {
        let out = stepshift().args(DEPLOY).args(&extra).arg("--dry-run").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(stderr(&out).contains(&expected), "{extra:?}: {}", stderr(&out));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_simulation_with_hooks_reports_them() {
    let (status, doc) = simulate(&["--test-before", "orders-smoke", "--test-each-step", "orders-load"]);
    assert_eq!(status, Some(0), "{doc}");
    let hooks = doc["hooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 2, "{doc}");
    assert_eq!(hooks[0]["point"], "before_traffic");
    assert_eq!(hooks[0]["results"][0]["name"], "orders-smoke");
    assert_eq!((hooks[1]["point"].as_str(), hooks[1]["step"].as_u64()), (Some("each_step"), Some(0)));
    let out = stepshift().args(["simulate", "--test-each-step", "orders-load", "--speed", "1000000"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Tests at step 1: passed (1): orders-load"), "{text}");
    assert!(text.contains("\ntests at step 1: passed (1): orders-load\n"), "{text}");
}

#[test]
fn simulate_models_a_hook_before_traffic_that_passes_fails_or_hangs() {
    let run = |flags: &[&str]| {
        let out = stepshift().arg("simulate").args(flags).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, text) = run(&["--hook", "pass"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("tests before traffic: passed (1): simulated hook"), "{text}");

    let (code, text) = run(&["--hook", "fail"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("Stopped before any traffic moved: the tests before traffic failed"), "{text}");
    assert!(!text.contains("step 1 of 2"), "no step ran: {text}");

    let (code, text) = run(&["--hook", "hang", "--hook-timeout", "45s", "--output", "json"]);
    assert_eq!(code, Some(1), "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["hooks"][0]["point"], "before_traffic");
    assert_eq!(doc["hooks"][0]["passed"], false);
    let sentence = doc["hooks"][0]["sentence"].as_str().unwrap();
    assert!(sentence.contains("simulated hook: did not answer within 45 s"), "{sentence}");
    // Each hook's result, judged again from the runs the failed judging task was given.
    assert_eq!(doc["hooks"][0]["results"][0]["name"], "simulated hook", "{doc}");
    assert_eq!(doc["hooks"][0]["results"][0]["outcome"], "timed_out", "{doc}");

    // A Route53 release has no version to invoke: the hook runs a simulated test function.
    let (code, text) = run(&["--frontend", "--hook", "fail"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("simulated hook"), "{text}");
}

#[test]
fn simulated_commands_abort_promote_and_pause_the_deployment() {
    let (status, doc) = simulate(&["--abort-after", "3m"]);
    assert_eq!((status, doc["error"].as_str()), (Some(1), Some("Aborted")), "{doc}");
    assert!(doc["cause"].as_str().unwrap().contains("simulated: --abort-after"), "{doc}");

    let (status, doc) = simulate(&["--strategy", "linear-10-every-1m", "--promote-after", "2m", "--skip-lock-in"]);
    assert_eq!((status, doc["verdict"].as_str()), (Some(0), Some("promoted")), "{doc}");
    assert!(doc["duration_seconds"].as_i64().unwrap() < 4 * 60, "promoted early, no lock-in: {doc}");

    let (status, doc) = simulate(&["--pause-after", "2m", "--pause-for", "20m"]);
    assert_eq!((status, doc["error"].as_str()), (Some(1), Some("PauseTimedOut")), "{doc}");
    let (status, doc) = simulate(&["--pause-after", "2m", "--pause-for", "20m", "--resume-after", "8m"]);
    assert_eq!((status, doc["verdict"].as_str()), (Some(0), Some("promoted")), "{doc}");

    // --pause-for and --skip-lock-in need their command.
    let out = stepshift().args(["simulate", "--pause-for", "5m"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
