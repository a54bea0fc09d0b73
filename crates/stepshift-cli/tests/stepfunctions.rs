//! The `stepshift` binary against an emulated Step Functions API (moto, whose history
//! carries task parameters as AWS's does): `deploy --wait`, `status`, `approve` and
//! `reject` finding the task token in the history, a wait that times out with exit 1
//! instead of hanging; and the run-time control commands (`abort`, `promote`, `pause`,
//! `resume`, with moto's SSM and STS) and `retry`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::{Value, json};
use stepshift_testkit::Emulator;

fn stepshift() -> Command {
    let emulator = Emulator::shared_moto();
    let mut cmd = Command::cargo_bin("stepshift").unwrap();
    cmd.env_remove("STEPSHIFT_STATE_MACHINE_ARN").env("NO_COLOR", "1").env("USER", "tester");
    for (k, v) in emulator.aws_env() {
        cmd.env(k, v);
    }
    cmd
}

async fn client() -> aws_sdk_sfn::Client {
    aws_sdk_sfn::Client::new(&Emulator::shared_moto().sdk_config().await)
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

async fn machine(definition: Value) -> String {
    client()
        .await
        .create_state_machine()
        .name(unique("sm"))
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/stepshift")
        .send()
        .await
        .expect("create_state_machine")
        .state_machine_arn()
        .to_owned()
}

fn promoting() -> Value {
    json!({"StartAt": "Begin deployment", "States": {
        "Begin deployment": {"Type": "Pass", "Next": "Bake"},
        "Bake": {"Type": "Wait", "Seconds": 1, "Next": "Confirm release"},
        "Confirm release": {"Type": "Pass", "Result": {"status": "promoted", "summary": "Released: orders:live now serves version 42 (was 41)."}, "ResultPath": "$.outcome", "Next": "Deployment succeeded"},
        "Deployment succeeded": {"Type": "Succeed", "OutputPath": "$.outcome"}}})
}

fn rolling_back() -> Value {
    json!({"StartAt": "Begin deployment", "States": {
        "Begin deployment": {"Type": "Pass", "Next": "Deployment rolled back"},
        "Deployment rolled back": {"Type": "Fail", "Error": "Unhealthy", "Cause": "Rolled back orders:live from 42 to 41: the candidate was unhealthy."}}})
}

fn approving() -> Value {
    json!({"StartAt": "Begin deployment", "States": {
        "Begin deployment": {"Type": "Pass", "Next": "Await approval"},
        "Await approval": {"Type": "Task", "Resource": "arn:aws:states:::events:putEvents.waitForTaskToken",
            "Parameters": {"Entries": [{"EventBusName": "default", "Source": "stepshift", "DetailType": "Deployment approval requested",
                "Detail": {"execution.$": "$$.Execution.Id", "task_token.$": "$$.Task.Token"}}]},
            "TimeoutSeconds": 120, "ResultPath": "$.approval",
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Deployment rolled back"}],
            "Next": "Deployment succeeded"},
        "Deployment succeeded": {"Type": "Succeed"},
        "Deployment rolled back": {"Type": "Fail", "Error": "ApprovalRejected", "Cause": "the approval was rejected"}}})
}

const REQUEST: [&str; 9] =
    ["--function", "orders", "--alias", "live", "--version", "42", "--strategy", "canary-10-5m", "--state-machine"];

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_wait_exits_0_when_promoted_with_the_output() {
    let sm = machine(promoting()).await;
    let out = stepshift()
        .arg("deploy")
        .args(REQUEST)
        .arg(&sm)
        .args(["--wait", "--poll", "200ms", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["status"], "SUCCEEDED");
    assert_eq!(doc["output"]["status"], "promoted");
    assert!(doc["execution"].as_str().unwrap().contains(":execution:"), "{doc}");
    assert!(doc["execution"].as_str().unwrap().contains(":orders-42-"), "a readable execution name: {doc}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_wait_exits_1_with_the_cause_when_rolled_back() {
    let sm = machine(rolling_back()).await;
    let out = stepshift().arg("deploy").args(REQUEST).arg(&sm).args(["--wait", "--poll", "200ms"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("FAILED Unhealthy: Rolled back orders:live from 42 to 41"), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Started arn:aws:states:us-east-1:123456789012:execution:"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_that_times_out_exits_1_and_leaves_the_execution_running() {
    let sm =
        machine(json!({"StartAt": "Bake", "States": {"Bake": {"Type": "Wait", "Seconds": 300, "End": true}}})).await;
    let started = Instant::now();
    let out = stepshift()
        .arg("deploy")
        .args(REQUEST)
        .arg(&sm)
        .args(["--wait", "--timeout", "2s", "--poll", "200ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(60), "it gave up instead of hanging");
    let err = stderr(&out);
    assert!(err.contains("still running after 2s"), "{err}");
    let arn = err.split_whitespace().find(|w| w.starts_with("arn:aws:states:")).unwrap().trim_end_matches('.');
    let status = client().await.describe_execution().execution_arn(arn).send().await.unwrap();
    assert_eq!(status.status().as_str(), "RUNNING", "stepshift never stops an execution");
}

async fn start_paused(sm: &str) -> String {
    let out = stepshift().arg("deploy").args(REQUEST).arg(sm).args(["--output", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let arn = doc["execution"].as_str().unwrap().to_owned();
    // Wait until the execution sits in the approval task.
    for _ in 0..100 {
        let out = stepshift().args(["status", &arn, "--output", "json"]).output().unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        if !doc["pending_approval"].is_null() {
            assert!(doc["pending_approval"]["token"].as_str().is_some(), "{doc}");
            return arn;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{arn} never paused for approval");
}

#[tokio::test(flavor = "multi_thread")]
async fn approve_finds_the_token_in_the_history_and_the_deployment_continues() {
    let sm = machine(approving()).await;
    let arn = start_paused(&sm).await;
    let text = String::from_utf8_lossy(&stepshift().args(["status", &arn]).output().unwrap().stdout).into_owned();
    assert!(text.contains("waiting    for approval: stepshift approve"), "{text}");

    let out = stepshift().args(["approve", &arn, "--comment", "looks good"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = stepshift().args(["watch", &arn, "--poll", "200ms", "--timeout", "30s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let output: Value = serde_json::from_str(
        client().await.describe_execution().execution_arn(&arn).send().await.unwrap().output().unwrap(),
    )
    .unwrap();
    assert_eq!(output["approval"], json!({"approved_by": "tester", "comment": "looks good"}));

    let again = stepshift().args(["approve", &arn]).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("nothing is waiting for approval"), "{}", stderr(&again));
}

#[tokio::test(flavor = "multi_thread")]
async fn reject_fails_the_pause_and_the_deployment_rolls_back() {
    let sm = machine(approving()).await;
    let arn = start_paused(&sm).await;
    let out = stepshift().args(["reject", &arn, "--reason", "error budget spent"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out =
        stepshift().args(["watch", &arn, "--poll", "200ms", "--timeout", "30s", "--output", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"], "ApprovalRejected");
    let history = client().await.get_execution_history().execution_arn(&arn).send().await.unwrap();
    let failed = history.events().iter().find_map(|e| e.task_failed_event_details()).expect("a TaskFailed event");
    // moto keeps the error of SendTaskFailure but drops its cause; the request itself,
    // cause included, is pinned in sfn.rs's unit tests.
    assert_eq!(failed.error(), Some("ApprovalRejected"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_execution_can_be_named_instead_of_given_by_arn() {
    let sm = machine(promoting()).await;
    let out = stepshift()
        .arg("deploy")
        .args(REQUEST)
        .arg(&sm)
        .args(["--name", "by-name", "--wait", "--poll", "200ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = stepshift().args(["status", "by-name", "--state-machine", &sm, "--output", "json"]).output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["status"], "SUCCEEDED", "{doc}");
}

/// Hooks before traffic that passed: a Pass state stands in for the judging task, its
/// output the judge's report.
fn tested_before_traffic() -> Value {
    use stepshift_core::State;
    let report = json!({"point": "before_traffic", "step": null, "results": [
        {"name": "smoke", "function": "orders-smoke", "outcome": "passed", "detail": "passed"},
        {"name": "invoke orders:42", "function": "orders:42", "outcome": "passed", "detail": "passed"}]});
    let mut states = serde_json::Map::new();
    states.insert(
        State::JudgeTestsBeforeTraffic.to_string(),
        json!({"Type": "Pass", "Result": report, "ResultPath": "$.tests", "Next": State::Bake.as_str()}),
    );
    let promoting = promoting();
    for (name, state) in promoting["States"].as_object().unwrap() {
        if name != State::BeginDeployment.as_str() {
            states.insert(name.clone(), state.clone());
        }
    }
    json!({"StartAt": State::JudgeTestsBeforeTraffic.as_str(), "States": states})
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_wait_and_status_show_the_hooks_reports() {
    let sm = machine(tested_before_traffic()).await;
    let out = stepshift().arg("deploy").args(REQUEST).arg(&sm).args(["--wait", "--poll", "200ms"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Tests before traffic: passed (2): smoke, invoke orders:42"), "narrated: {text}");
    assert!(text.contains("\ntests before traffic: passed (2): smoke, invoke orders:42\n"), "summed up: {text}");
    let arn = text.split_whitespace().find(|w| w.starts_with("arn:aws:states:")).unwrap();
    let out = stepshift().args(["status", arn, "--output", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["hooks"][0]["passed"], true, "{doc}");
    assert_eq!(doc["hooks"][0]["sentence"], "the tests before traffic passed (2)", "{doc}");
    assert_eq!(doc["hooks"][0]["results"][1]["function"], "orders:42", "{doc}");
}

// Run-time control: `abort`, `promote`, `pause`, `resume` write the deployment's control
// record (an SSM parameter in moto) or, at an approval pause, answer the task token;
// `retry` starts a failed deployment again.

async fn ssm() -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&Emulator::shared_moto().sdk_config().await)
}

/// The control record's value, if it exists.
async fn record(name: &str) -> Option<Value> {
    match ssm().await.get_parameter().name(name).send().await {
        Ok(out) => Some(serde_json::from_str(out.parameter().unwrap().value().unwrap()).unwrap()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_parameter_not_found()) => None,
        Err(e) => panic!("get_parameter {name}: {e:?}"),
    }
}

/// Who the emulator says the caller is.
async fn caller() -> String {
    let sts = aws_sdk_sts::Client::new(&Emulator::shared_moto().sdk_config().await);
    sts.get_caller_identity().send().await.unwrap().arn().unwrap().to_owned()
}

/// A deployment whose "Begin deployment" (a Pass state) plans three steps with the
/// control record `record`, shifts the first (traffic at 10%), then bakes for `bake`
/// seconds and succeeds.
fn controlled(record: &str, bake: u64) -> Value {
    use stepshift_core::deployment::Plan;
    let mut plan = json!({
        "execution": "placeholder",
        "started_at": "2026-11-30T11:00:00Z",
        "targets": [],
        "steps": [
            {"weight_percent": 10.0, "bake_seconds": 600, "approval": false},
            {"weight_percent": 50.0, "bake_seconds": 600, "approval": false},
            {"weight_percent": 100.0, "bake_seconds": 0, "approval": false},
        ],
        "health": stepshift_core::request::HealthSettings::default(),
        "lock_in_seconds": 600,
        "keep_versions": null,
        "approval_timeout_seconds": 3600,
        "control": record,
    });
    let progress = serde_json::from_value::<Plan>(plan.clone()).unwrap().start();
    let map = plan.as_object_mut().unwrap();
    map.remove("execution");
    map.insert("execution.$".into(), json!("$$.Execution.Id"));
    let traffic = json!({"weight_percent": 10.0, "step_started_at": "2026-11-30T11:01:00Z", "revisions": []});
    json!({"StartAt": "Begin deployment", "States": {
        "Begin deployment": {"Type": "Pass", "Parameters": {"plan": plan, "progress": progress, "traffic": traffic}, "Next": "Bake"},
        "Bake": {"Type": "Wait", "Seconds": bake, "Next": "Deployment succeeded"},
        "Deployment succeeded": {"Type": "Succeed"}}})
}

/// Starts an execution of `machine` with a request for `function` and waits until
/// "Begin deployment" has run; returns its ARN.
async fn started(machine: &str, function: &str) -> String {
    let out = stepshift()
        .args(["deploy", "--function", function, "--alias", "live", "--version", "42", "--strategy", "canary-10-5m"])
        .args(["--state-machine", machine, "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let arn = doc["execution"].as_str().unwrap().to_owned();
    let sfn = client().await;
    for _ in 0..100 {
        let history = sfn.get_execution_history().execution_arn(&arn).send().await.unwrap();
        if history.events().iter().any(|e| e.state_exited_event_details().is_some()) {
            return arn;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{arn} never left Begin deployment");
}

async fn ended(arn: &str) -> String {
    let sfn = client().await;
    for _ in 0..300 {
        let status = sfn.describe_execution().execution_arn(arn).send().await.unwrap().status().as_str().to_owned();
        if status != "RUNNING" {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{arn} never ended");
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_at_an_approval_pause_fails_it_and_the_deployment_ends_aborted() {
    // The approval task without a Catch: the execution fails with the task's error.
    let mut definition = approving();
    definition["States"]["Await approval"].as_object_mut().unwrap().remove("Catch");
    let sm = machine(definition).await;
    let arn = start_paused(&sm).await;
    let out = stepshift().args(["abort", &arn, "--reason", "error budget spent"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let me = caller().await;
    assert!(
        stdout(&out).starts_with(&format!(
            "Aborted {} at its approval pause (by {me}): it rolls back now.",
            arn.rsplit(':').next().unwrap()
        )),
        "{}",
        stdout(&out)
    );
    assert_eq!(ended(&arn).await, "FAILED");
    let described = client().await.describe_execution().execution_arn(&arn).send().await.unwrap();
    assert_eq!(described.error(), Some("Aborted"));
    let history = client().await.get_execution_history().execution_arn(&arn).send().await.unwrap();
    let failed = history.events().iter().find_map(|e| e.task_failed_event_details()).expect("a TaskFailed event");
    assert_eq!(failed.error(), Some("Aborted"));
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_promote_and_abort_write_the_control_record_in_turn() {
    let name = format!("/stepshift/{}/live/control", unique("orders"));
    let sm = machine(controlled(&name, 300)).await;
    let arn = started(&sm, &unique("orders")).await;
    let me = caller().await;
    let short = arn.rsplit(':').next().unwrap().to_owned();

    let before = stepshift_core::Clock::now(&stepshift_core::SystemClock);
    let out = stepshift().args(["pause", &arn, "--for", "30m", "--reason", "looking at a ticket"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!(
            "Pause recorded for {short} (command 1, by {me}): applied at the next health check, within 60 s.\n"
        )),
        "{}",
        stdout(&out)
    );
    let paused = record(&name).await.expect("the control record");
    assert_eq!(paused["seq"], 1);
    assert_eq!(paused["execution"], arn.as_str());
    assert_eq!(paused["by"], me.as_str());
    assert_eq!(paused["reason"], "looking at a ticket");
    assert_eq!(paused["action"]["command"], "pause");
    let until = stepshift_core::Timestamp::parse_rfc3339(paused["action"]["until"].as_str().unwrap()).unwrap();
    assert!((1799..=1830).contains(&until.secs_since(before)), "{paused}");

    // A pending pause gives way to a promotion, and a pending promotion to an abort.
    let out = stepshift().args(["promote", &arn, "--skip-lock-in"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let promoted = record(&name).await.unwrap();
    assert_eq!(promoted["seq"], 2);
    assert_eq!(promoted["action"], json!({"command": "promote", "skip_lock_in": true}));
    assert_eq!(promoted["reason"], Value::Null);

    let out = stepshift().args(["abort", &arn, "--reason", "bad release"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with(&format!("Abort recorded for {short} (command 3, by {me})")), "{}", stdout(&out));
    let aborted = record(&name).await.unwrap();
    assert_eq!(
        aborted,
        json!({"seq": 3, "execution": arn, "action": {"command": "abort"}, "by": me, "reason": "bad release", "at": aborted["at"]})
    );

    // The pending abort stands.
    for args in [vec!["pause", &arn], vec!["resume", &arn], vec!["promote", &arn]] {
        let out = stepshift().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
        assert!(stderr(&out).contains(&format!("an abort by {me} given at ")), "{}", stderr(&out));
        assert!(stderr(&out).contains(" is pending; it is applied at the next check"), "{}", stderr(&out));
    }
    assert_eq!(record(&name).await.unwrap(), aborted, "nothing changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_to_an_ended_deployment_exit_1_and_write_nothing() {
    let name = format!("/stepshift/{}/live/control", unique("orders"));
    let sm = machine(controlled(&name, 0)).await;
    let arn = started(&sm, &unique("orders")).await;
    assert_eq!(ended(&arn).await, "SUCCEEDED");
    for (verb, extra) in
        [("abort", vec!["--reason", "late"]), ("promote", vec![]), ("pause", vec!["--for", "1h"]), ("resume", vec![])]
    {
        let out = stepshift().args([verb, &arn]).args(extra).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{verb}: {}", stdout(&out));
        assert!(stderr(&out).contains(&format!("{arn} has ended (SUCCEEDED): nothing to {verb}")), "{}", stderr(&out));
    }
    assert_eq!(record(&name).await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_must_last_and_an_abort_needs_a_reason() {
    for bad in ["0s", "-5m", "soon"] {
        let out =
            stepshift().args(["pause", "arn:aws:states:us-east-1:1:execution:sm:x", "--for", bad]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(stderr(&out).contains("--for"), "{bad}: {}", stderr(&out));
    }
    let out = stepshift().args(["abort", "arn:aws:states:us-east-1:1:execution:sm:x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--reason"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_starts_a_failed_deployment_again_with_the_same_input() {
    let sm = machine(rolling_back()).await;
    let function = unique("orders");
    let out = stepshift()
        .args(["deploy", "--function", &function, "--alias", "live", "--version", "42", "--strategy", "canary-10-5m"])
        .args(["--state-machine", &sm, "--wait", "--poll", "200ms", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let failed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let old = failed["execution"].as_str().unwrap().to_owned();

    let out = stepshift().args(["retry", &old, "--output", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let new = doc["execution"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(doc["retry_of"], old.as_str());
    let sfn = client().await;
    let (a, b) = (
        sfn.describe_execution().execution_arn(&old).send().await.unwrap(),
        sfn.describe_execution().execution_arn(new).send().await.unwrap(),
    );
    assert_eq!(a.input(), b.input());
    assert_eq!(a.state_machine_arn(), b.state_machine_arn());
    assert!(new.contains(&format!(":{function}-42-")), "a fresh name: {new}");

    // With --wait it follows the new one: it rolls back too, exit 1. (Most likely within
    // the same second as the first retry: its name, which counts seconds, is the next.)
    let out = stepshift().args(["retry", &old, "--wait", "--poll", "200ms"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains(&format!("(a retry of {})", old.rsplit(':').next().unwrap())), "{}", stdout(&out));
    assert!(stderr(&out).contains("FAILED Unhealthy"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_refuses_a_success_a_running_deployment_and_a_held_lock() {
    let sm = machine(promoting()).await;
    let out = stepshift()
        .arg("deploy")
        .args(REQUEST)
        .arg(&sm)
        .args(["--wait", "--poll", "200ms", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let arn = doc["execution"].as_str().unwrap();
    let out = stepshift().args(["retry", arn]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&format!("{arn} succeeded (SUCCEEDED): nothing to retry")), "{}", stderr(&out));

    // A failed deployment whose alias another, running deployment has locked since.
    let function = unique("orders");
    let failing = machine(rolling_back()).await;
    let out = stepshift()
        .args(["deploy", "--function", &function, "--alias", "live", "--version", "42", "--strategy", "canary-10-5m"])
        .args(["--state-machine", &failing, "--wait", "--poll", "200ms", "--output", "json"])
        .output()
        .unwrap();
    let old = serde_json::from_slice::<Value>(&out.stdout).unwrap()["execution"].as_str().unwrap().to_owned();
    let waiting =
        machine(json!({"StartAt": "Bake", "States": {"Bake": {"Type": "Wait", "Seconds": 300, "End": true}}})).await;
    let out = stepshift().arg("deploy").args(REQUEST).arg(&waiting).args(["--output", "json"]).output().unwrap();
    let running = serde_json::from_slice::<Value>(&out.stdout).unwrap()["execution"].as_str().unwrap().to_owned();
    let lock = json!({"execution": running, "candidate": "43", "acquired_at": "2026-11-30T11:00:00Z"});
    ssm()
        .await
        .put_parameter()
        .name(format!("/stepshift/{function}/live/lock"))
        .value(lock.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let out = stepshift().args(["retry", &old]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{function}:live is locked by {running} (candidate 43, since 2026-11-30T11:00:00Z), which is still running"
        )),
        "{}",
        stderr(&out)
    );
    // The running one cannot be retried either.
    let out = stepshift().args(["retry", &running]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is still running (RUNNING): nothing to retry"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_deployment_is_summarised_in_markdown_and_drawn_by_report() {
    let sm = machine(rolling_back()).await;
    let out = stepshift()
        .arg("deploy")
        .args(REQUEST)
        .arg(&sm)
        .args(["--wait", "--poll", "200ms", "--output", "markdown"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a rollback still fails the pipeline step");
    let md = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(md.starts_with("## ❌ "), "stdout holds the summary only: {md}");
    assert!(md.contains("**Why:** the candidate was unhealthy"), "{md}");
    assert!(stderr(&out).contains("FAILED Unhealthy"), "progress and verdict on stderr: {}", stderr(&out));
    let arn = md
        .split("executions/details/")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the console link names the execution")
        .to_owned();

    let svg = std::env::temp_dir().join(format!("{}.svg", unique("timeline")));
    let out = stepshift().args(["report", &arn, "--output", "json", "--svg"]).arg(&svg).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ending"], "failed", "no rollback state ran in this stand-in machine: {doc}");
    assert_eq!(doc["execution"], arn.as_str());
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg") && picture.contains("the candidate was unhealthy"), "{picture}");
    let _ = std::fs::remove_file(&svg);
}
