//! The `stepshift` binary against an emulated Step Functions API (moto, whose history
//! carries task parameters as AWS's does): `deploy --wait`, `status`, `approve` and
//! `reject` finding the task token in the history, and a wait that times out with
//! exit 1 instead of hanging.

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
