//! End to end: ministack runs the unmodified statemachine/deployment.asl.json (its
//! placeholders substituted with the ARNs of functions created in ministack), and its
//! Lambda tasks run the real task binaries, built for this machine and deployed as
//! provided.al2023 zips, with AWS_ENDPOINT_URL pointing back at ministack.
//!
//! ministack neither splits alias traffic nor emits per-version metrics, so each test
//! puts the candidate's and the stable version's AWS/Lambda metrics itself.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricDatum, StandardUnit, StateValue, Statistic};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime};
use serde_json::{Value, json};
use stepshift_core::State;
use stepshift_local::asl::model::substitute;
use stepshift_local::runner::DEPLOYMENT_ASL;
use stepshift_testkit::{Emulator, workspace_root};

const FUNCTIONS: [(&str, &str); 5] = [
    ("RecordVersionFunctionArn", "record-version"),
    ("ShiftWeightFunctionArn", "shift-weight"),
    ("CheckHealthFunctionArn", "check-health"),
    ("PromoteFunctionArn", "promote"),
    ("RollbackFunctionArn", "rollback"),
];

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

async fn config() -> SdkConfig {
    Emulator::shared_ministack().sdk_config().await
}

/// Builds the five task binaries for this machine (once) and zips each as `bootstrap`.
fn bootstrap_zips() -> &'static Vec<(String, Vec<u8>)> {
    static ZIPS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    ZIPS.get_or_init(|| {
        let root = workspace_root();
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo.current_dir(&root).args(["build", "--bins"]);
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
                let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
                let options = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Stored)
                    .unix_permissions(0o755);
                zip.start_file("bootstrap", options).unwrap();
                zip.write_all(&binary).unwrap();
                (name.to_string(), zip.finish().unwrap().into_inner())
            })
            .collect()
    })
}

fn empty_zip() -> Blob {
    let mut eocd = b"PK\x05\x06".to_vec();
    eocd.extend([0u8; 18]);
    Blob::new(eocd)
}

/// One isolated stepshift installation in ministack, and a user's function.
struct Install {
    config: SdkConfig,
    state_machine: String,
    prefix: String,
    target: String,
    bus: String,
    queue_url: String,
}

async fn install() -> Install {
    let config = config().await;
    let url = Emulator::shared_ministack().url.clone();
    let lambda = aws_sdk_lambda::Client::new(&config);
    let id = unique("e2e");
    let prefix = format!("/{id}");

    // The approval bus, with a rule that copies approval requests to a queue (as a
    // team would route them to SNS or chat).
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let bus = format!("{id}-approvals");
    events.create_event_bus().name(&bus).send().await.expect("create_event_bus");
    let queue_url =
        sqs.create_queue().queue_name(format!("{id}-approvals")).send().await.unwrap().queue_url().unwrap().to_owned();
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
    events
        .put_rule()
        .name(format!("{id}-approvals"))
        .event_bus_name(&bus)
        .event_pattern(json!({"source": ["stepshift"], "detail-type": ["Deployment approval requested"]}).to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(format!("{id}-approvals"))
        .event_bus_name(&bus)
        .targets(aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build().unwrap())
        .send()
        .await
        .unwrap();

    // The five task functions, running the real binaries.
    let environment = Environment::builder()
        .variables("AWS_ENDPOINT_URL", &url)
        .variables("AWS_REGION", "us-east-1")
        .variables("AWS_ACCESS_KEY_ID", "test")
        .variables("AWS_SECRET_ACCESS_KEY", "test")
        .variables("STEPSHIFT_PARAMETER_PREFIX", &prefix)
        .variables("RUST_LOG", "info")
        .build();
    let mut substitutions = std::collections::HashMap::new();
    for ((key, name), (_, zip)) in FUNCTIONS.iter().zip(bootstrap_zips()) {
        let function = format!("{id}-{name}");
        let created = lambda
            .create_function()
            .function_name(&function)
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
    substitutions.insert("ApprovalEventBusName".into(), bus.clone());

    // The user's function: versions 1 and 2, alias live → 1.
    let target = format!("{id}-orders");
    lambda
        .create_function()
        .function_name(&target)
        .runtime(Runtime::Providedal2023)
        .role("arn:aws:iam::000000000000:role/orders")
        .handler("bootstrap")
        .code(FunctionCode::builder().zip_file(empty_zip()).build())
        .send()
        .await
        .unwrap();
    for i in 1..=2 {
        lambda
            .update_function_configuration()
            .function_name(&target)
            .description(format!("build {i}"))
            .send()
            .await
            .unwrap();
        lambda.publish_version().function_name(&target).send().await.unwrap();
    }
    lambda.create_alias().function_name(&target).name("live").function_version("1").send().await.unwrap();

    let definition = substitute(DEPLOYMENT_ASL, &substitutions).expect("every placeholder substituted");
    let sfn = aws_sdk_sfn::Client::new(&config);
    let state_machine = sfn
        .create_state_machine()
        .name(format!("{id}-deployment"))
        .definition(definition)
        .role_arn("arn:aws:iam::000000000000:role/stepshift-sfn")
        .send()
        .await
        .expect("create_state_machine")
        .state_machine_arn()
        .to_owned();
    Install { config, state_machine, prefix, target, bus, queue_url }
}

impl Install {
    /// Puts `invocations`/`errors` for each of the last three minutes, for `version`.
    async fn metrics(&self, version: &str, invocations: f64, errors: f64) {
        let dims = [
            ("FunctionName", self.target.clone()),
            ("Resource", format!("{}:live", self.target)),
            ("ExecutedVersion", version.to_owned()),
        ];
        let series = [
            ("Invocations", invocations, StandardUnit::Count),
            ("Errors", errors, StandardUnit::Count),
            ("Duration", 40.0, StandardUnit::Milliseconds),
        ];
        put_last_minutes(&self.config, "AWS/Lambda", &dims, &series).await;
    }

    fn request(&self, strategy: Value, health: Value) -> Value {
        json!({
            "schema": 1,
            "targets": [{"function": self.target, "alias": "live", "version": "2"}],
            "strategy": strategy,
            "health": health,
            "lock_in_seconds": 3,
            "approval_timeout_seconds": 120
        })
    }

    async fn start(&self, request: &Value) -> String {
        let sfn = aws_sdk_sfn::Client::new(&self.config);
        sfn.start_execution()
            .state_machine_arn(&self.state_machine)
            .input(request.to_string())
            .send()
            .await
            .unwrap()
            .execution_arn()
            .to_owned()
    }

    async fn finish(&self, execution: &str) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
        let sfn = aws_sdk_sfn::Client::new(&self.config);
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let out = sfn.describe_execution().execution_arn(execution).send().await.unwrap();
            if out.status().as_str() != "RUNNING" {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "{execution} still running; log: {}",
                Emulator::shared_ministack().log()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn alias(&self) -> (String, Option<std::collections::HashMap<String, f64>>) {
        let lambda = aws_sdk_lambda::Client::new(&self.config);
        let a = lambda.get_alias().function_name(&self.target).name("live").send().await.unwrap();
        let weights =
            a.routing_config().and_then(|r| r.additional_version_weights()).cloned().filter(|w| !w.is_empty());
        (a.function_version().unwrap().to_owned(), weights)
    }

    async fn parameter(&self, leaf: &str) -> Option<String> {
        let ssm = aws_sdk_ssm::Client::new(&self.config);
        let name = format!("{}/{}/live/{leaf}", self.prefix, self.target);
        let out = ssm.get_parameters().names(name).send().await.unwrap();
        out.parameters().first().and_then(|p| p.value().map(str::to_owned))
    }

    async fn path(&self, execution: &str) -> Vec<String> {
        let sfn = aws_sdk_sfn::Client::new(&self.config);
        let history = sfn.get_execution_history().execution_arn(execution).max_results(1000).send().await.unwrap();
        history.events().iter().filter_map(|e| e.state_entered_event_details().map(|d| d.name().to_owned())).collect()
    }
}

/// Puts one datapoint of each `(metric, value, unit)` with `dimensions` for each of the
/// last three minutes, as the service would have published them.
async fn put_last_minutes(
    config: &SdkConfig,
    namespace: &str,
    dimensions: &[(&str, String)],
    series: &[(&str, f64, StandardUnit)],
) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut data = Vec::new();
    for ago in [150, 90, 30] {
        for (metric, value, unit) in series {
            let mut datum = MetricDatum::builder()
                .metric_name(*metric)
                .timestamp(aws_smithy_types::DateTime::from_secs(now - ago))
                .value(*value)
                .unit(unit.clone());
            for (name, v) in dimensions {
                datum = datum.dimensions(Dimension::builder().name(*name).value(v).build());
            }
            data.push(datum.build());
        }
    }
    let cloudwatch = aws_sdk_cloudwatch::Client::new(config);
    cloudwatch
        .put_metric_data()
        .namespace(namespace)
        .set_metric_data(Some(data))
        .send()
        .await
        .expect("put_metric_data");
}

fn canary() -> Value {
    json!([{"weight_percent": 10, "bake_seconds": 2}, {"weight_percent": 100}])
}

fn health() -> Value {
    json!({"min_invocations": 5, "metric_lag_seconds": 240})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_canary_is_promoted_and_recorded() {
    let i = install().await;
    i.metrics("2", 100.0, 0.0).await;
    i.metrics("1", 900.0, 1.0).await;
    let exec = i.start(&i.request(canary(), health())).await;
    let out = i.finish(&exec).await;
    assert_eq!(
        out.status().as_str(),
        "SUCCEEDED",
        "{:?} {:?}; path {:?}",
        out.error(),
        out.cause(),
        i.path(&exec).await
    );
    let output: Value = serde_json::from_str(out.output().unwrap()).unwrap();
    assert_eq!(output["status"], "promoted");
    assert_eq!(i.alias().await, ("2".to_owned(), None), "all traffic on the candidate");
    assert_eq!(i.parameter("current-version").await.as_deref(), Some("2"));
    assert_eq!(i.parameter("previous-version").await.as_deref(), Some("1"));
    assert_eq!(i.parameter("last-known-good-version").await.as_deref(), Some("2"));
    assert_eq!(i.parameter("lock").await, None, "the lock is released");
    let path = i.path(&exec).await;
    let step = [State::ShiftTraffic, State::Bake, State::CheckHealth, State::ChooseNextStep];
    assert!(path.windows(4).any(|w| w == step), "{path:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_regression_rolls_back_with_the_reason() {
    let i = install().await;
    i.metrics("2", 100.0, 40.0).await;
    i.metrics("1", 900.0, 1.0).await;
    let exec = i.start(&i.request(canary(), health())).await;
    let out = i.finish(&exec).await;
    assert_eq!(out.status().as_str(), "FAILED");
    assert_eq!(out.error(), Some("Unhealthy"), "{:?}", out.cause());
    let cause = out.cause().unwrap();
    assert!(
        cause.starts_with(&format!(
            "Rolled back {}:live from 2 to 1: the candidate was unhealthy at step 1 of 2 (10%)",
            i.target
        )),
        "{cause}"
    );
    assert!(cause.contains("error rate 40% is above 5%"), "{cause}");
    assert_eq!(i.alias().await, ("1".to_owned(), None), "back on the stable version, routing cleared");
    assert_eq!(i.parameter("lock").await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_in_alarm_rolls_back() {
    let i = install().await;
    i.metrics("2", 100.0, 0.0).await;
    i.metrics("1", 900.0, 1.0).await;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&i.config);
    let alarm = unique("orders-5xx");
    cloudwatch
        .put_metric_alarm()
        .alarm_name(&alarm)
        .namespace("AWS/ApiGateway")
        .metric_name("5XXError")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .send()
        .await
        .unwrap();
    cloudwatch
        .set_alarm_state()
        .alarm_name(&alarm)
        .state_value(StateValue::Alarm)
        .state_reason("5xx from the API")
        .send()
        .await
        .unwrap();
    let mut h = health();
    h["alarms"] = json!([alarm]);
    let exec = i.start(&i.request(canary(), h)).await;
    let out = i.finish(&exec).await;
    assert_eq!(out.error(), Some("Unhealthy"), "{:?}", out.cause());
    assert!(out.cause().unwrap().contains(&format!("alarm {alarm} is in ALARM")), "{:?}", out.cause());
    assert_eq!(i.alias().await, ("1".to_owned(), None));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_pause_is_answered_with_send_task_success() {
    let i = install().await;
    i.metrics("2", 100.0, 0.0).await;
    i.metrics("1", 900.0, 1.0).await;
    let strategy = json!([{"weight_percent": 10, "bake_seconds": 2}, {"weight_percent": 100, "approval": true}]);
    let exec = i.start(&i.request(strategy, health())).await;
    // The token travels in the approval event; the team's rule delivers it to a queue.
    let sqs = aws_sdk_sqs::Client::new(&i.config);
    let deadline = Instant::now() + Duration::from_secs(120);
    let token = loop {
        let got = sqs.receive_message().queue_url(&i.queue_url).wait_time_seconds(1).send().await.unwrap();
        if let Some(body) = got.messages().first().and_then(|m| m.body()) {
            let event: Value = serde_json::from_str(body).unwrap();
            assert_eq!(event["detail"]["execution"], exec.as_str());
            assert_eq!(event["detail"]["next_step"]["weight_percent"], 100.0);
            break event["detail"]["task_token"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no approval event on {}", i.bus);
    };
    assert_eq!(i.alias().await.1.and_then(|w| w.get("2").copied()), Some(0.1), "10% while waiting");
    let sfn = aws_sdk_sfn::Client::new(&i.config);
    sfn.send_task_success().task_token(token).output(json!({"approved_by": "e2e"}).to_string()).send().await.unwrap();
    let out = i.finish(&exec).await;
    assert_eq!(out.status().as_str(), "SUCCEEDED", "{:?} {:?}", out.error(), out.cause());
    assert_eq!(i.alias().await, ("2".to_owned(), None));
    assert!(i.path(&exec).await.iter().any(|s| *s == State::AwaitApproval));
}

/// A front end in ministack: a hosted zone whose `www` record is a simple alias to
/// the blue CloudFront distribution, and one minute-by-minute CloudFront history per
/// distribution (blue at 1% 5xx, green at `green_5xx_percent`).
struct Frontend {
    zone: String,
    original: aws_sdk_route53::types::ResourceRecordSet,
    request_target: Value,
}

async fn frontend(i: &Install, green_5xx_percent: f64) -> Frontend {
    use aws_sdk_route53::types::{AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType};
    let route53 = aws_sdk_route53::Client::new(&i.config);
    let domain = format!("{}.example.com", unique("site"));
    let zone = route53
        .create_hosted_zone()
        .name(&domain)
        .caller_reference(unique("ref"))
        .send()
        .await
        .expect("create_hosted_zone")
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_owned();
    let original = ResourceRecordSet::builder()
        .name(format!("www.{domain}."))
        .r#type(RrType::A)
        .alias_target(
            AliasTarget::builder()
                .dns_name("d111111abcdef8.cloudfront.net.")
                .hosted_zone_id("Z2FDTNDATAQYW2")
                .evaluate_target_health(false)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let change = Change::builder().action(ChangeAction::Create).resource_record_set(original.clone()).build().unwrap();
    route53
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
        .send()
        .await
        .expect("the original record");
    let (blue, green) = (unique("EBLUE").replace('-', ""), unique("EGREEN").replace('-', ""));
    for (dist, requests, rate) in [(&blue, 900.0, 1.0), (&green, 300.0, green_5xx_percent)] {
        let dims = [("DistributionId", dist.clone()), ("Region", "Global".to_owned())];
        let series = [("Requests", requests, StandardUnit::None), ("5xxErrorRate", rate, StandardUnit::Percent)];
        put_last_minutes(&i.config, "AWS/CloudFront", &dims, &series).await;
    }
    let cloudfront = |dns: &str, id: &str| json!({"alias_target": {"dns_name": dns, "hosted_zone_id": "Z2FDTNDATAQYW2"}, "distribution_id": id});
    let request_target = json!({
        "kind": "route53",
        "hosted_zone_id": zone,
        "record_name": format!("www.{domain}"),
        "record_type": "A",
        "blue": cloudfront("d111111abcdef8.cloudfront.net", &blue),
        "green": cloudfront("d222222abcdef8.cloudfront.net", &green),
    });
    Frontend { zone, original, request_target }
}

impl Frontend {
    fn request(&self) -> Value {
        json!({
            "schema": 1,
            "targets": [self.request_target],
            "strategy": canary(),
            "health": health(),
            "lock_in_seconds": 3
        })
    }

    /// The record sets of `www` now.
    async fn records(&self, i: &Install) -> Vec<aws_sdk_route53::types::ResourceRecordSet> {
        let route53 = aws_sdk_route53::Client::new(&i.config);
        let out = route53.list_resource_record_sets().hosted_zone_id(&self.zone).send().await.unwrap();
        out.resource_record_sets().iter().filter(|r| r.name() == self.original.name()).cloned().collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_front_end_release_moves_the_record_to_green_through_route53() {
    let i = install().await;
    let site = frontend(&i, 1.0).await;
    let exec = i.start(&site.request()).await;
    let out = i.finish(&exec).await;
    let path = i.path(&exec).await;
    assert_eq!(out.status().as_str(), "SUCCEEDED", "{:?} {:?}; path {path:?}", out.error(), out.cause());
    assert!(path.windows(2).any(|w| w == [State::ShiftThenSync, State::InSync]), "{path:?}");
    let records = site.records(&i).await;
    assert_eq!(records.len(), 1, "one simple record again: {records:?}");
    assert_eq!(records[0].set_identifier(), None);
    assert_eq!(records[0].alias_target().unwrap().dns_name(), "d222222abcdef8.cloudfront.net.");
    let output: Value = serde_json::from_str(out.output().unwrap()).unwrap();
    assert!(output["summary"].as_str().unwrap().contains("now serves green EGREEN"), "{output}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_front_end_with_5xx_on_green_is_rolled_back_to_the_exact_record() {
    let i = install().await;
    let site = frontend(&i, 12.0).await;
    let exec = i.start(&site.request()).await;
    let out = i.finish(&exec).await;
    assert_eq!(out.error(), Some("Unhealthy"), "{:?}; path {:?}", out.cause(), i.path(&exec).await);
    assert!(out.cause().unwrap().contains("green EGREEN"), "{:?}", out.cause());
    assert_eq!(site.records(&i).await, std::slice::from_ref(&site.original), "the original record, exactly");
}
