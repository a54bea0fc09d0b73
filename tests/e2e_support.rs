//! What the end-to-end tests in ministack share (`tests/e2e_ministack.rs`,
//! `tests/e2e_events.rs`, `tests/e2e_custom_metrics.rs`): the task binaries, built once
//! for this machine, stripped and zipped as `bootstrap`, a unique name per run, and the
//! pieces of an installation (the task functions, the state machine, a bus with a queue
//! subscribed, the user's function, metrics put as a service would publish them, an
//! execution's end, the alias and the records it leaves). Included by each with
//! `#[path = "e2e_support.rs"] mod e2e_support;`.

#![allow(dead_code)] // each test file uses its own part

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime};
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use serde_json::Value;
use stepshift_local::asl::model::substitute;
use stepshift_local::runner::DEPLOYMENT_ASL;
use stepshift_testkit::{Emulator, workspace_root};

pub const FUNCTIONS: [(&str, &str); 6] = [
    ("RecordVersionFunctionArn", "record-version"),
    ("ShiftWeightFunctionArn", "shift-weight"),
    ("CheckHealthFunctionArn", "check-health"),
    ("PromoteFunctionArn", "promote"),
    ("RollbackFunctionArn", "rollback"),
    ("TallyFunctionArn", "tally"),
];

pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// Builds the six task binaries for this machine (once) and zips each as `bootstrap`.
pub fn bootstrap_zips() -> &'static Vec<(String, Vec<u8>)> {
    static ZIPS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    ZIPS.get_or_init(|| {
        let root = workspace_root();
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo.current_dir(&root).args(["build", "--bins"]);
        // cargo runs this test with the package's variables set (CARGO_MANIFEST_DIR,
        // CARGO_PKG_NAME, ...), and ring's build script is fingerprinted on them:
        // inherited, they would rebuild ring and everything above it (the TLS stack, the
        // SDK's HTTP client, all six binaries) here, and again at the next build outside.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            let package = ["CARGO_PKG_", "CARGO_MANIFEST_"].iter().any(|p| name.starts_with(p))
                || ["CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR"]
                    .contains(&name.as_ref());
            if package {
                cargo.env_remove(name.as_ref());
            }
        }
        for (_, name) in FUNCTIONS {
            cargo.args(["-p", name]);
        }
        let status = cargo.status().expect("cargo build");
        assert!(status.success(), "building the task binaries failed");
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
        FUNCTIONS
            .iter()
            .map(|(_, name)| {
                // Debug builds with the AWS SDK pass Lambda's 250 MB unzipped limit, which
                // ministack enforces: ship a stripped copy.
                let stripped = std::env::temp_dir().join(format!("stepshift-e2e-{}-{name}", std::process::id()));
                std::fs::copy(target.join("debug").join(name), &stripped).expect("task binary");
                let status = std::process::Command::new("strip").arg(&stripped).status().expect("strip (binutils)");
                assert!(status.success(), "strip failed");
                let binary = std::fs::read(&stripped).expect("stripped binary");
                let _ = std::fs::remove_file(&stripped);
                (name.to_string(), bootstrap_zip(&binary))
            })
            .collect()
    })
}

pub fn bootstrap_zip(binary: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options).unwrap();
    zip.write_all(binary).unwrap();
    zip.finish().unwrap().into_inner()
}

pub fn empty_zip() -> Blob {
    let mut eocd = b"PK\x05\x06".to_vec();
    eocd.extend([0u8; 18]);
    Blob::new(eocd)
}

/// The environment of an installation's task functions, as template.yaml sets it: the
/// SDK pointed back at ministack with dummy credentials, and the records under `/{id}`.
/// Add the variables a test needs (`STEPSHIFT_EVENT_BUS`, ...) before `build`.
pub fn task_environment(id: &str) -> aws_sdk_lambda::types::builders::EnvironmentBuilder {
    Environment::builder()
        .variables("AWS_ENDPOINT_URL", &Emulator::shared_ministack().url)
        .variables("AWS_REGION", "us-east-1")
        .variables("AWS_ACCESS_KEY_ID", "test")
        .variables("AWS_SECRET_ACCESS_KEY", "test")
        .variables("STEPSHIFT_PARAMETER_PREFIX", format!("/{id}"))
        .variables("RUST_LOG", "info")
}

/// Creates the six task functions `{id}-{binary}`, running the real binaries with
/// `environment`: the state machine's substitutions, each function's ARN under its
/// placeholder (`CheckHealthFunctionArn`, ...).
pub async fn create_task_functions(config: &SdkConfig, id: &str, environment: &Environment) -> HashMap<String, String> {
    // One after another: ministack takes a few seconds to unpack each 30 MB zip, and
    // creating them concurrently was no faster.
    let lambda = aws_sdk_lambda::Client::new(config);
    let mut substitutions = HashMap::new();
    for ((key, name), (_, zip)) in FUNCTIONS.iter().zip(bootstrap_zips()) {
        let created = lambda
            .create_function()
            .function_name(format!("{id}-{name}"))
            .runtime(Runtime::Providedal2023)
            .role("arn:aws:iam::000000000000:role/stepshift")
            .handler("bootstrap")
            .timeout(30)
            .environment(environment.clone())
            .code(FunctionCode::builder().zip_file(Blob::new(zip.clone())).build())
            .send()
            .await
            .expect("create_function");
        substitutions.insert(key.to_string(), created.function_arn().unwrap().to_owned());
    }
    substitutions
}

/// Creates `{id}-deployment` from the unmodified statemachine/deployment.asl.json with
/// `substitutions` (every placeholder): its ARN.
pub async fn create_deployment_state_machine(
    config: &SdkConfig,
    id: &str,
    substitutions: &HashMap<String, String>,
) -> String {
    let definition = substitute(DEPLOYMENT_ASL, substitutions).expect("every placeholder substituted");
    let sfn = aws_sdk_sfn::Client::new(config);
    sfn.create_state_machine()
        .name(format!("{id}-deployment"))
        .definition(definition)
        .role_arn("arn:aws:iam::000000000000:role/stepshift-sfn")
        .send()
        .await
        .expect("create_state_machine")
        .state_machine_arn()
        .to_owned()
}

/// Creates the event bus `bus`, the queue `queue` and, on the bus, the rule `rule` that
/// delivers the events matching `pattern` to the queue (as a team would route them to SNS
/// or chat): the queue's URL.
pub async fn create_bus_to_queue(config: &SdkConfig, bus: &str, queue: &str, rule: &str, pattern: &Value) -> String {
    let events = aws_sdk_eventbridge::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);
    events.create_event_bus().name(bus).send().await.expect("create_event_bus");
    let queue_url = sqs.create_queue().queue_name(queue).send().await.unwrap().queue_url().unwrap().to_owned();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .unwrap();
    events.put_rule().name(rule).event_bus_name(bus).event_pattern(pattern.to_string()).send().await.unwrap();
    events
        .put_targets()
        .rule(rule)
        .event_bus_name(bus)
        .targets(aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build().unwrap())
        .send()
        .await
        .unwrap();
    queue_url
}

/// Creates the user's function `target` from `code` (a 10-second timeout), publishes
/// versions 1 and 2 (described `build 1` and `build 2`; version 2 with `candidate` as
/// its environment when given) and points the alias `live` at version 1.
pub async fn create_user_function(config: &SdkConfig, target: &str, code: Blob, candidate: Option<Environment>) {
    let lambda = aws_sdk_lambda::Client::new(config);
    lambda
        .create_function()
        .function_name(target)
        .runtime(Runtime::Providedal2023)
        .role("arn:aws:iam::000000000000:role/orders")
        .handler("bootstrap")
        .timeout(10)
        .code(FunctionCode::builder().zip_file(code).build())
        .send()
        .await
        .unwrap();
    for build in 1..=2 {
        let mut update =
            lambda.update_function_configuration().function_name(target).description(format!("build {build}"));
        if build == 2 {
            update = update.set_environment(candidate.clone());
        }
        update.send().await.unwrap();
        lambda.publish_version().function_name(target).send().await.unwrap();
    }
    lambda.create_alias().function_name(target).name("live").function_version("1").send().await.unwrap();
}

/// Where the alias `live` of `function` points: its version, and its additional
/// versions' weights (`None` when it routes nothing elsewhere).
pub async fn live_alias(config: &SdkConfig, function: &str) -> (String, Option<HashMap<String, f64>>) {
    let lambda = aws_sdk_lambda::Client::new(config);
    let a = lambda.get_alias().function_name(function).name("live").send().await.unwrap();
    let weights = a.routing_config().and_then(|r| r.additional_version_weights()).cloned().filter(|w| !w.is_empty());
    (a.function_version().unwrap().to_owned(), weights)
}

/// The record `leaf` (`lock`, `current-version`, ...) of `function`'s alias `live` under
/// the installation's `prefix`, if there is one.
pub async fn live_parameter(config: &SdkConfig, prefix: &str, function: &str, leaf: &str) -> Option<String> {
    let ssm = aws_sdk_ssm::Client::new(config);
    let name = format!("{prefix}/{function}/live/{leaf}");
    let out = ssm.get_parameters().names(name).send().await.unwrap();
    out.parameters().first().and_then(|p| p.value().map(str::to_owned))
}

/// Seconds before now of the last three minutes, one datapoint in each.
pub const LAST_MINUTES: [i64; 3] = [150, 90, 30];

/// One datapoint of each `(metric, value, unit)` with `dimensions` at each of `at` (UNIX
/// seconds).
pub fn datapoints(dimensions: &[(&str, String)], series: &[(&str, f64, StandardUnit)], at: &[i64]) -> Vec<MetricDatum> {
    let mut data = Vec::new();
    for &at in at {
        for (metric, value, unit) in series {
            let mut datum = MetricDatum::builder()
                .metric_name(*metric)
                .timestamp(aws_smithy_types::DateTime::from_secs(at))
                .value(*value)
                .unit(unit.clone());
            for (name, v) in dimensions {
                datum = datum.dimensions(Dimension::builder().name(*name).value(v).build());
            }
            data.push(datum.build());
        }
    }
    data
}

/// The AWS/Lambda datapoints of `version` of `function` served through its alias `live`
/// at each of `at` (UNIX seconds): `invocations` Invocations, `errors` Errors and a
/// Duration of 40 ms.
pub fn lambda_datapoints(function: &str, version: &str, invocations: f64, errors: f64, at: &[i64]) -> Vec<MetricDatum> {
    let dimensions = [
        ("FunctionName", function.to_owned()),
        ("Resource", format!("{function}:live")),
        ("ExecutedVersion", version.to_owned()),
    ];
    let series = [
        ("Invocations", invocations, StandardUnit::Count),
        ("Errors", errors, StandardUnit::Count),
        ("Duration", 40.0, StandardUnit::Milliseconds),
    ];
    datapoints(&dimensions, &series, at)
}

/// Puts `version`'s AWS/Lambda metrics through `function`'s alias `live` for each of the
/// last three minutes ([`lambda_datapoints`]), as Lambda would have published them.
pub async fn put_lambda_metrics(config: &SdkConfig, function: &str, version: &str, invocations: f64, errors: f64) {
    let now = now_secs();
    let at = LAST_MINUTES.map(|ago| now - ago);
    put_datapoints(config, "AWS/Lambda", lambda_datapoints(function, version, invocations, errors, &at)).await;
}

/// Puts one datapoint of each `(metric, value, unit)` with `dimensions` for each of the
/// last three minutes, as the service would have published them.
pub async fn put_last_minutes(
    config: &SdkConfig,
    namespace: &str,
    dimensions: &[(&str, String)],
    series: &[(&str, f64, StandardUnit)],
) {
    let now = now_secs();
    let at = LAST_MINUTES.map(|ago| now - ago);
    put_datapoints(config, namespace, datapoints(dimensions, series, &at)).await;
}

/// Now, in seconds since the UNIX epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Puts `data` into `namespace`, at most 1,000 datapoints a call (CloudWatch's limit).
pub async fn put_datapoints(config: &SdkConfig, namespace: &str, data: Vec<MetricDatum>) {
    let cloudwatch = aws_sdk_cloudwatch::Client::new(config);
    for chunk in data.chunks(1000) {
        cloudwatch
            .put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(chunk.to_vec()))
            .send()
            .await
            .expect("put_metric_data");
    }
}

/// Starts an execution of `state_machine` with `request` as its input: its ARN.
pub async fn start_execution(config: &SdkConfig, state_machine: &str, request: &Value) -> String {
    let sfn = aws_sdk_sfn::Client::new(config);
    sfn.start_execution()
        .state_machine_arn(state_machine)
        .input(request.to_string())
        .send()
        .await
        .unwrap()
        .execution_arn()
        .to_owned()
}

/// Asserts that `cause` tells of `target`'s alias `live` rolled back from 2 to 1, the
/// candidate unhealthy at the first of two steps (10%).
pub fn assert_unhealthy_at_first_step(cause: &str, target: &str) {
    let expected = format!("Rolled back {target}:live from 2 to 1: the candidate was unhealthy at step 1 of 2 (10%)");
    assert!(cause.starts_with(&expected), "{cause}");
}

/// Waits (at most `limit`) for `execution` to end: how it ended.
pub async fn await_execution(config: &SdkConfig, execution: &str, limit: Duration) -> DescribeExecutionOutput {
    let sfn = aws_sdk_sfn::Client::new(config);
    let deadline = Instant::now() + limit;
    loop {
        let out = sfn.describe_execution().execution_arn(execution).send().await.unwrap();
        if out.status().as_str() != "RUNNING" {
            return out;
        }
        assert!(Instant::now() < deadline, "{execution} still running; log: {}", Emulator::shared_ministack().log());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
