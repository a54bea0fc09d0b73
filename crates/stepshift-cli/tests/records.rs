//! `stepshift rollback`, `unlock` and `history` against ministack (Lambda, SSM and Step
//! Functions).

use std::sync::atomic::{AtomicU32, Ordering};

use assert_cmd::Command;
use aws_config::SdkConfig;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use serde_json::Value;
use stepshift_testkit::Emulator;

async fn config() -> SdkConfig {
    Emulator::shared_ministack().sdk_config().await
}

fn stepshift(prefix: &str) -> Command {
    let mut cmd = Command::cargo_bin("stepshift").unwrap();
    cmd.env("NO_COLOR", "1").env("USER", "oncall").env("STEPSHIFT_PARAMETER_PREFIX", prefix);
    for (k, v) in Emulator::shared_ministack().aws_env() {
        cmd.env(k, v);
    }
    cmd
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// A function with versions 1..=3 whose alias live serves 3, and records saying
/// current 3, previous 2, last-known-good 2. Returns (function, prefix).
async fn deployed() -> (String, String) {
    let config = config().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let f = unique("svc");
    let mut zip = b"PK\x05\x06".to_vec();
    zip.extend([0u8; 18]);
    lambda
        .create_function()
        .function_name(&f)
        .runtime(Runtime::Providedal2023)
        .role("arn:aws:iam::000000000000:role/x")
        .handler("bootstrap")
        .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
        .send()
        .await
        .unwrap();
    for i in 1..=3 {
        lambda.update_function_configuration().function_name(&f).description(format!("v{i}")).send().await.unwrap();
        lambda.publish_version().function_name(&f).send().await.unwrap();
    }
    lambda.create_alias().function_name(&f).name("live").function_version("3").send().await.unwrap();
    let prefix = format!("/{}", unique("stepshift"));
    let ssm = aws_sdk_ssm::Client::new(&config);
    for (leaf, value) in [("current-version", "3"), ("previous-version", "2"), ("last-known-good-version", "2")] {
        ssm.put_parameter()
            .name(format!("{prefix}/{f}/live/{leaf}"))
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .unwrap();
    }
    (f, prefix)
}

async fn alias_version(f: &str) -> String {
    let lambda = aws_sdk_lambda::Client::new(&config().await);
    lambda.get_alias().function_name(f).name("live").send().await.unwrap().function_version().unwrap().to_owned()
}

async fn lock(f: &str, prefix: &str, execution: &str) {
    let ssm = aws_sdk_ssm::Client::new(&config().await);
    let value = format!(r#"{{"execution":"{execution}","candidate":"3","acquired_at":"2026-11-24T09:00:00Z"}}"#);
    ssm.put_parameter()
        .name(format!("{prefix}/{f}/live/lock"))
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_goes_to_last_known_good_and_records_it() {
    let (f, prefix) = deployed().await;
    let out = stepshift(&prefix).args(["rollback", "--function", &f, "--alias", "live"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(alias_version(&f).await, "2");
    let out =
        stepshift(&prefix).args(["history", "--function", &f, "--alias", "live", "--output", "json"]).output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["records"]["current"], "2");
    assert_eq!(doc["records"]["previous"], "3");
    assert_eq!(doc["history"][0]["event"], "manual_rollback");
    assert_eq!(doc["history"][0]["execution"], "manual:oncall");

    let again = stepshift(&prefix).args(["rollback", "--function", &f, "--alias", "live"]).output().unwrap();
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stdout).contains("already serves version 2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_refuses_while_a_deployment_holds_the_lock_unless_forced() {
    let (f, prefix) = deployed().await;
    lock(&f, &prefix, "arn:aws:states:us-east-1:000000000000:execution:stepshift:orders-9").await;
    let out = stepshift(&prefix).args(["rollback", "--function", &f, "--alias", "live", "--to", "1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("is being deployed by arn:aws:states:us-east-1:000000000000:execution:stepshift:orders-9"),
        "{}",
        stderr(&out)
    );
    assert_eq!(alias_version(&f).await, "3", "nothing changed");

    let out = stepshift(&prefix)
        .args(["rollback", "--function", &f, "--alias", "live", "--to", "1", "--force"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(alias_version(&f).await, "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_to_a_version_that_does_not_exist_is_invalid() {
    let (f, prefix) = deployed().await;
    let out = stepshift(&prefix).args(["rollback", "--function", &f, "--alias", "live", "--to", "9"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--to: version 9"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_lock_is_released_and_a_live_one_is_kept() {
    let (f, prefix) = deployed().await;
    lock(&f, &prefix, "arn:aws:states:us-east-1:000000000000:execution:stepshift:long-gone").await;
    let out = stepshift(&prefix).args(["unlock", "--function", &f, "--alias", "live"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out =
        stepshift(&prefix).args(["history", "--function", &f, "--alias", "live", "--output", "json"]).output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["lock"].is_null(), "{doc}");
    assert_eq!(doc["history"][0]["event"], "lock_released");

    // A lock whose execution is still running stays.
    let config = config().await;
    let sfn = aws_sdk_sfn::Client::new(&config);
    let definition = r#"{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":300,"End":true}}}"#;
    let sm = sfn
        .create_state_machine()
        .name(unique("sm"))
        .definition(definition)
        .role_arn("arn:aws:iam::000000000000:role/x")
        .send()
        .await
        .unwrap();
    let exec = sfn.start_execution().state_machine_arn(sm.state_machine_arn()).send().await.unwrap();
    lock(&f, &prefix, exec.execution_arn()).await;
    let out = stepshift(&prefix).args(["unlock", "--function", &f, "--alias", "live"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("which is still running"), "{}", stderr(&out));
}
