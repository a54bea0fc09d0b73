//! End to end: ministack runs the unmodified statemachine/deployment.asl.json (its
//! placeholders substituted with the ARNs of functions created in ministack), and its
//! Lambda tasks run the real task binaries, built for this machine and deployed as
//! provided.al2023 zips, with AWS_ENDPOINT_URL pointing back at ministack.
//!
//! ministack neither splits alias traffic nor emits per-version metrics, so each test
//! puts the candidate's and the stable version's AWS/Lambda metrics itself, except the
//! fast path's: there the user's function is a real binary (the `e2e-orders` fixture),
//! each version invoked by number, and ministack delivers its log lines to the real
//! `tally`, which publishes the counts that "Check health" reads.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StandardUnit, StateValue, Statistic};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, Runtime};
use serde_json::{Value, json};
use stepshift_core::State;
use stepshift_testkit::Emulator;

#[path = "e2e_support.rs"]
mod e2e_support;
use e2e_support::{
    assert_unhealthy_at_first_step, await_execution, bootstrap_zip, create_bus_to_queue,
    create_deployment_state_machine, create_task_functions, create_user_function, empty_zip, live_alias,
    live_parameter, put_lambda_metrics, put_last_minutes, start_execution, task_environment, unique,
};

async fn config() -> SdkConfig {
    Emulator::shared_ministack().sdk_config().await
}

/// The `e2e-orders` fixture (built by cargo with this test), zipped as `bootstrap`.
fn orders_zip() -> &'static Vec<u8> {
    static ZIP: OnceLock<Vec<u8>> = OnceLock::new();
    ZIP.get_or_init(|| {
        let binary = std::fs::read(env!("CARGO_BIN_EXE_e2e-orders")).expect("the e2e-orders fixture");
        bootstrap_zip(&binary)
    })
}

/// One isolated stepshift installation in ministack, and a user's function.
struct Install {
    config: SdkConfig,
    state_machine: String,
    prefix: String,
    target: String,
    bus: String,
    queue_url: String,
    /// The tally function's ARN.
    tally: String,
}

/// The code of the user's function.
#[derive(Clone, Copy, PartialEq)]
enum UserCode {
    /// No code: the tests put its metrics themselves.
    Empty,
    /// The `e2e-orders` fixture: version 1 answers, version 2 (published with
    /// `ORDERS_BROKEN` set) fails every invocation.
    BrokenCandidate,
    /// The `e2e-orders` fixture, both versions answering.
    HealthyCandidate,
}

async fn install() -> Install {
    install_with(UserCode::Empty).await
}

async fn install_with(code: UserCode) -> Install {
    let config = config().await;
    let id = unique("e2e");
    let prefix = format!("/{id}");

    // The approval bus, with a rule that copies approval requests to a queue (as a
    // team would route them to SNS or chat).
    let bus = format!("{id}-approvals");
    let pattern = json!({"source": ["stepshift"], "detail-type": ["Deployment approval requested"]});
    let queue_url = create_bus_to_queue(&config, &bus, &bus, &bus, &pattern).await;

    // The six task functions, running the real binaries.
    let environment = task_environment(&id)
        // The stack's HookFunctionPattern, as template.yaml passes it: this
        // installation's test functions (`Install::test_function`) only.
        .variables("STEPSHIFT_HOOK_FUNCTION_PATTERN", format!("{id}-*-smoke"))
        .build();
    let mut substitutions = create_task_functions(&config, &id, &environment).await;
    substitutions.insert("ApprovalEventBusName".into(), bus.clone());

    // The user's function: versions 1 and 2, alias live → 1.
    let target = format!("{id}-orders");
    let zip = match code {
        UserCode::Empty => empty_zip(),
        UserCode::BrokenCandidate | UserCode::HealthyCandidate => Blob::new(orders_zip().clone()),
    };
    let candidate =
        (code == UserCode::BrokenCandidate).then(|| Environment::builder().variables("ORDERS_BROKEN", "1").build());
    create_user_function(&config, &target, zip, candidate).await;

    let state_machine = create_deployment_state_machine(&config, &id, &substitutions).await;
    let tally = substitutions["TallyFunctionArn"].clone();
    Install { config, state_machine, prefix, target, bus, queue_url, tally }
}

impl Install {
    /// Puts `invocations`/`errors` for each of the last three minutes, for `version`.
    async fn metrics(&self, version: &str, invocations: f64, errors: f64) {
        put_lambda_metrics(&self.config, &self.target, version, invocations, errors).await;
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
        start_execution(&self.config, &self.state_machine, request).await
    }

    async fn finish(&self, execution: &str) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
        self.finish_within(execution, Duration::from_secs(180)).await
    }

    async fn finish_within(
        &self,
        execution: &str,
        limit: Duration,
    ) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
        await_execution(&self.config, execution, limit).await
    }

    async fn alias(&self) -> (String, Option<std::collections::HashMap<String, f64>>) {
        live_alias(&self.config, &self.target).await
    }

    async fn parameter(&self, leaf: &str) -> Option<String> {
        live_parameter(&self.config, &self.prefix, &self.target, leaf).await
    }

    /// Starts a deployment of `request`, waits for its end, and prints how long it took
    /// (with its cause) under `what`: the execution's ARN, its end, and the states it
    /// entered.
    async fn run(
        &self,
        request: &Value,
        what: &str,
    ) -> (String, aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput, Vec<String>) {
        let clock = Instant::now();
        let exec = self.start(request).await;
        let out = self.finish(&exec).await;
        let path = self.path(&exec).await;
        eprintln!("{what}: ended after {:.1} s\n  {:?}", clock.elapsed().as_secs_f64(), out.cause());
        (exec, out, path)
    }

    async fn path(&self, execution: &str) -> Vec<String> {
        let sfn = aws_sdk_sfn::Client::new(&self.config);
        let history = sfn.get_execution_history().execution_arn(execution).max_results(1000).send().await.unwrap();
        history.events().iter().filter_map(|e| e.state_entered_event_details().map(|d| d.name().to_owned())).collect()
    }
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
    assert_unhealthy_at_first_step(cause, &i.target);
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

/// One CloudWatch Logs call (JSON 1.1) to ministack over plain HTTP: the tests crate
/// has no CloudWatch Logs SDK, and these few calls do not need one.
fn logs_call(operation: &str, body: &Value) -> Value {
    use std::io::Read;
    let port = Emulator::shared_ministack().port;
    let body = body.to_string();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to ministack");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: Logs_20140328.{operation}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("ministack's answer");
    let (head, payload) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "{operation}: {head}\n{payload}");
    serde_json::from_str(payload).unwrap_or_else(|e| panic!("{operation}: {e}: {head}\n{payload}"))
}

/// The subscription filters on a log group, as DescribeSubscriptionFilters shows them.
fn describe_filters(log_group: &str) -> Vec<Value> {
    let out = logs_call("DescribeSubscriptionFilters", &json!({"logGroupName": log_group}));
    out["subscriptionFilters"].as_array().cloned().unwrap_or_default()
}

/// The names of the subscription filters on a log group.
fn subscription_filters(log_group: &str) -> Vec<String> {
    describe_filters(log_group).iter().filter_map(|f| f["filterName"].as_str().map(str::to_owned)).collect()
}

/// Every log line of a log group.
fn log_lines(log_group: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"logGroupName": log_group});
        if let Some(t) = &token {
            body["nextToken"] = t.as_str().into();
        }
        let out = logs_call("FilterLogEvents", &body);
        let events = out["events"].as_array().cloned().unwrap_or_default();
        lines.extend(events.iter().filter_map(|e| e["message"].as_str().map(str::to_owned)));
        match out["nextToken"].as_str() {
            Some(t) if !events.is_empty() && token.as_deref() != Some(t) => token = Some(t.to_owned()),
            _ => return lines,
        }
    }
}

/// Waits until `group` exists: Lambda creates a function's log group at its first run.
async fn log_group_exists(group: &str) {
    eventually(Duration::from_secs(30), "the function's log group", || {
        let out = logs_call("DescribeLogGroups", &json!({"logGroupNamePrefix": group}));
        out["logGroups"].as_array().is_some_and(|g| !g.is_empty()).then_some(())
    })
    .await;
}

/// Polls `probe` every 250 ms until it returns `Some`, for at most `limit`.
async fn eventually<T>(limit: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not after {limit:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A user's traffic: each version of the user's function invoked by number at a
/// steady rate (ministack does not split an alias's traffic), as the canary's weights
/// would send it.
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(String, LoadCount)>>,
}

/// What one version's callers saw.
#[derive(Clone, Copy, Debug, Default)]
struct LoadCount {
    /// Invocations that answered.
    ok: u64,
    /// Invocations that failed in the function (`FunctionError`).
    failed: u64,
    /// Calls that did not reach the function (throttled, or the API failed).
    refused: u64,
}

impl Load {
    fn start(i: &Install, per_second: &[(&str, u32)]) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = per_second
            .iter()
            .map(|(version, rate)| {
                let (lambda, target, version, stop) =
                    (aws_sdk_lambda::Client::new(&i.config), i.target.clone(), version.to_string(), stop.clone());
                let every = Duration::from_secs(1) / *rate;
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(every);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let mut calls = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        tick.tick().await;
                        let call = lambda
                            .invoke()
                            .function_name(&target)
                            .qualifier(&version)
                            .payload(Blob::new(json!({"order": calls.len()}).to_string()));
                        calls.push(tokio::spawn(call.send()));
                    }
                    let mut count = LoadCount::default();
                    for call in calls {
                        match call.await.expect("invoke task") {
                            Ok(out) if out.function_error().is_some() => count.failed += 1,
                            Ok(_) => count.ok += 1,
                            Err(_) => count.refused += 1,
                        }
                    }
                    (version, count)
                })
            })
            .collect();
        Load { stop, tasks }
    }

    /// Stops the callers and waits for the calls in flight: each version's counts.
    async fn stop(self) -> std::collections::BTreeMap<String, LoadCount> {
        self.stop.store(true, Ordering::Relaxed);
        let mut counts = std::collections::BTreeMap::new();
        for task in self.tasks {
            let (version, count) = task.await.expect("load task");
            counts.insert(version, count);
        }
        counts
    }
}

impl Install {
    /// The outcome counts `tally` published for `version` from `source` (the `Source`
    /// dimension: "logs" or "destinations") since `from`, summed over 10-second periods:
    /// (invocations, failures, buckets with invocations).
    async fn outcomes(&self, version: &str, source: &str, from: std::time::SystemTime) -> (f64, f64, usize) {
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&self.config);
        let dims = [
            ("FunctionName", self.target.clone()),
            ("Resource", format!("{}:live", self.target)),
            ("Version", version.to_owned()),
            ("Source", source.to_owned()),
        ];
        let query = |id: &str, metric: &str| {
            let mut m =
                aws_sdk_cloudwatch::types::Metric::builder().namespace("Stepshift/Outcomes").metric_name(metric);
            for (name, value) in &dims {
                m = m.dimensions(Dimension::builder().name(*name).value(value).build());
            }
            let stat =
                aws_sdk_cloudwatch::types::MetricStat::builder().metric(m.build()).period(10).stat("Sum").build();
            aws_sdk_cloudwatch::types::MetricDataQuery::builder().id(id).metric_stat(stat).build()
        };
        let now = std::time::SystemTime::now();
        let out = cloudwatch
            .get_metric_data()
            .metric_data_queries(query("invocations", "Invocations"))
            .metric_data_queries(query("failures", "Failures"))
            .start_time(aws_smithy_types::DateTime::from(from - Duration::from_secs(60)))
            .end_time(aws_smithy_types::DateTime::from(now + Duration::from_secs(60)))
            .send()
            .await
            .expect("get_metric_data");
        let series = |id: &str| {
            out.metric_data_results()
                .iter()
                .find(|r| r.id() == Some(id))
                .map(|r| r.values().to_vec())
                .unwrap_or_default()
        };
        let (invocations, failures) = (series("invocations"), series("failures"));
        let busy = invocations.iter().filter(|v| **v > 0.0).count();
        (invocations.iter().sum(), failures.iter().sum(), busy)
    }

    /// Asserts that `execution` rolled back on the fast path: failed as Unhealthy with the
    /// fast path's reason, the alias back on version 1, the lock released, through the
    /// fast path's states. Returns the cause, the seconds from the shift to "Roll back",
    /// and the checks made.
    async fn assert_fast_rollback(
        &self,
        execution: &str,
        out: &aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput,
        path: &[String],
    ) -> (String, f64, usize) {
        assert_eq!(out.status().as_str(), "FAILED", "{:?} {:?}; path {path:?}", out.error(), out.cause());
        assert_eq!(out.error(), Some("Unhealthy"), "{:?}; path {path:?}", out.cause());
        let cause = out.cause().unwrap().to_owned();
        assert!(cause.contains("in the fast path's 10-second counts"), "{cause}");
        assert_unhealthy_at_first_step(&cause, &self.target);
        assert_eq!(self.alias().await, ("1".to_owned(), None), "back on the stable version, routing cleared");
        assert_eq!(self.parameter("lock").await, None, "the lock is released");
        assert!(path.iter().any(|s| *s == State::StartFastPath), "{path:?}");
        assert_eq!(
            path[path.len() - 4..],
            [
                State::RecordRollback,
                State::RolledBackWithFastPath,
                State::StopFastPathRolledBack,
                State::DeploymentRolledBack
            ]
        );
        let entered = self.entered(execution).await;
        let at = |state: State| entered.iter().find(|(s, _)| *s == state).map(|(_, t)| t.as_secs_f64()).unwrap();
        let checks = path.iter().filter(|s| **s == State::CheckHealth).count();
        (cause, at(State::RollBack) - at(State::ShiftTraffic), checks)
    }

    /// When each state of the execution was entered, in order.
    async fn entered(&self, execution: &str) -> Vec<(String, aws_smithy_types::DateTime)> {
        let sfn = aws_sdk_sfn::Client::new(&self.config);
        let history = sfn.get_execution_history().execution_arn(execution).max_results(1000).send().await.unwrap();
        history
            .events()
            .iter()
            .filter_map(|e| e.state_entered_event_details().map(|d| (d.name().to_owned(), *e.timestamp())))
            .collect()
    }

    /// The output of the last time the execution left `state`.
    async fn state_output(&self, execution: &str, state: State) -> Option<Value> {
        let sfn = aws_sdk_sfn::Client::new(&self.config);
        let history = sfn.get_execution_history().execution_arn(execution).max_results(1000).send().await.unwrap();
        history
            .events()
            .iter()
            .rev()
            .filter_map(|e| e.state_exited_event_details())
            .filter(|d| d.name() == state.as_str())
            .find_map(|d| d.output().and_then(|o| serde_json::from_str(o).ok()))
    }
}

/// A canary whose bake is far longer than the test: only the fast path can roll back in
/// time, and no AWS/Lambda metrics are put at all (ministack publishes its own with
/// FunctionName only, which no per-version query matches).
fn fast_path_request(i: &Install) -> Value {
    let strategy = json!([{"weight_percent": 10, "bake_seconds": 600}, {"weight_percent": 100}]);
    i.request(strategy, json!({"fast_path": {"enabled": true}}))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fast_path_rolls_back_a_failing_candidate_within_seconds_through_tally() {
    let i = install_with(UserCode::BrokenCandidate).await;
    let group = format!("/aws/lambda/{}", i.target);
    // The canary's split at 10 req/s: version 1 answers, version 2 fails.
    let load = Load::start(&i, &[("1", 10), ("2", 2)]);
    // The log group exists once the function has run (as in AWS).
    log_group_exists(&group).await;

    let began = std::time::SystemTime::now();
    let clock = Instant::now();
    let exec = i.start(&fast_path_request(&i)).await;
    let subscription = eventually(Duration::from_secs(60), "the fast path's subscription filter", || {
        describe_filters(&group).into_iter().next()
    })
    .await;
    let subscribed_after = clock.elapsed();
    let filter = subscription["filterName"].as_str().unwrap().to_owned();
    // tally subscribed itself (its ARN from the invocation's context), to every line.
    assert_eq!(subscription["destinationArn"], i.tally.as_str(), "{subscription}");
    assert_eq!(subscription["filterPattern"], "", "{subscription}");
    let out = i.finish_within(&exec, Duration::from_secs(150)).await;
    let finished_after = clock.elapsed();
    let load = load.stop().await;
    let path = i.path(&exec).await;

    // Through the fast path's states, and checked every 20 s rather than after the bake.
    let (cause, rollback_after, checks) = i.assert_fast_rollback(&exec, &out, &path).await;
    eprintln!(
        "fast path: filter {filter} after {:.1} s; traffic shifted to rollback {rollback_after:.1} s over {checks} \
         checks; execution ended after {:.1} s\n  {cause}\n  callers saw {load:?}",
        subscribed_after.as_secs_f64(),
        finished_after.as_secs_f64()
    );
    assert!(rollback_after < 120.0, "rolled back {rollback_after:.1} s after the shift, far inside the 600 s bake");

    // The filter was this execution's, and "Stop fast path, rolled back" removed it.
    let execution_name = exec.rsplit(':').next().unwrap();
    assert_eq!(filter, format!("stepshift/{}/live/-/{execution_name}", i.target));
    let started = i.state_output(&exec, State::StartFastPath).await.expect("Start fast path's output");
    let fast = &started["plan"]["fast_path"];
    assert_eq!(fast["targets"][0]["live"], true, "{fast}");
    assert_eq!(fast["targets"][0]["log_group"], group.as_str(), "{fast}");
    let stopped = i.state_output(&exec, State::StopFastPathRolledBack).await.expect("Stop fast path's output");
    assert_eq!(stopped["fast_path_stopped"]["removed"], json!([filter]), "{stopped}");
    assert_eq!(subscription_filters(&group), Vec::<String>::new(), "no filter left on {group}");

    // tally published both versions' counts in 10-second buckets, failures on the
    // candidate only.
    let (stable_n, stable_k, stable_buckets) = i.outcomes("1", "logs", began).await;
    let (candidate_n, candidate_k, candidate_buckets) = i.outcomes("2", "logs", began).await;
    eprintln!(
        "Stepshift/Outcomes: version 1 {stable_k}/{stable_n} failed in {stable_buckets} buckets, version 2 \
         {candidate_k}/{candidate_n} in {candidate_buckets}"
    );
    assert!(stable_n >= 50.0 && stable_k == 0.0, "version 1: {stable_k} of {stable_n}");
    assert!(candidate_n >= 10.0 && candidate_k > 0.0 && candidate_k <= candidate_n, "{candidate_k} of {candidate_n}");
    assert!(stable_buckets >= 2 && candidate_buckets >= 2, "{stable_buckets} and {candidate_buckets} buckets");
    // Every candidate invocation failed, and its callers saw it.
    let candidate = load["2"];
    assert!(candidate.failed > 0 && candidate.ok == 0, "{candidate:?}");
    assert!(load["1"].failed == 0 && load["1"].ok > 0, "{:?}", load["1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_execution_stopped_from_outside_loses_its_filter_through_the_status_change_rule() {
    let i = install_with(UserCode::BrokenCandidate).await;
    let group = format!("/aws/lambda/{}", i.target);
    // The function has run once, so its log group exists.
    let lambda = aws_sdk_lambda::Client::new(&i.config);
    lambda.invoke().function_name(&i.target).qualifier("1").send().await.expect("invoke");
    // The template's cleanup rule: every ending of this state machine's executions,
    // on the default bus, sent to tally.
    let events = aws_sdk_eventbridge::Client::new(&i.config);
    let rule = unique("fast-path-cleanup");
    let pattern = json!({
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": ["SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"], "stateMachineArn": [i.state_machine]}
    });
    events.put_rule().name(&rule).event_pattern(pattern.to_string()).send().await.expect("put_rule");
    let target = aws_sdk_eventbridge::types::Target::builder().id("tally").arn(&i.tally).build().unwrap();
    events.put_targets().rule(&rule).targets(target).send().await.expect("put_targets");

    let exec = i.start(&fast_path_request(&i)).await;
    let filter = eventually(Duration::from_secs(60), "the fast path's subscription filter", || {
        subscription_filters(&group).into_iter().next()
    })
    .await;
    let execution_name = exec.rsplit(':').next().unwrap().to_owned();
    assert_eq!(filter, format!("stepshift/{}/live/-/{execution_name}", i.target));

    let sfn = aws_sdk_sfn::Client::new(&i.config);
    sfn.stop_execution().execution_arn(&exec).error("Operator").cause("stopped by hand").send().await.unwrap();
    let clock = Instant::now();
    eventually(Duration::from_secs(30), "the filter's removal after the execution stopped", || {
        subscription_filters(&group).is_empty().then_some(())
    })
    .await;
    eprintln!(
        "stopped from outside: filter {filter} removed {:.1} s after StopExecution",
        clock.elapsed().as_secs_f64()
    );

    let out = sfn.describe_execution().execution_arn(&exec).send().await.unwrap();
    assert_eq!(out.status().as_str(), "ABORTED");
    // No state of the execution removed it: tally did, on the status change event.
    let path = i.path(&exec).await;
    assert!(!path.iter().any(|s| *s == State::StopFastPathRolledBack || *s == State::StopFastPathReleased), "{path:?}");
    let tally_log = format!("/aws/lambda/{}", i.tally.rsplit(':').next().unwrap());
    let lines = eventually(Duration::from_secs(10), "tally's log of the status change", || {
        let lines = log_lines(&tally_log);
        lines.iter().any(|l| l.contains("fast path stopped") && l.contains(&execution_name)).then_some(lines)
    })
    .await;
    assert!(lines.iter().any(|l| l.contains("fast path stopped") && l.contains("ABORTED")), "{lines:#?}");
}

/// The record Lambda Destinations put on an event bus for one asynchronous invocation
/// of `function_arn` (qualified as the caller invoked it) that ran `version`: the
/// invocation record of the AWS Lambda Developer Guide ("Capturing records of Lambda
/// asynchronous invocations"), whose failure example is condition `RetriesExhausted`
/// after 3 attempts with `functionError` `Unhandled`, as the `detail` of an event from
/// source `lambda`.
fn destination_record(function_arn: &str, version: &str, failed: bool) -> (&'static str, Value) {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let request_id = format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", std::process::id(), n >> 16, n & 0xfff, 0, n);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let timestamp = stepshift_core::Timestamp::from_millis(now).to_rfc3339();
    if failed {
        let detail = json!({
            "version": "1.0",
            "timestamp": timestamp,
            "requestContext": {
                "requestId": request_id,
                "functionArn": function_arn,
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3
            },
            "requestPayload": {"ORDER_IDS": [format!("order-{n}")]},
            "responseContext": {"statusCode": 200, "executedVersion": version, "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": format!("RequestId: {request_id} Process exited before completing request")}
        });
        ("Lambda Function Invocation Result - Failure", detail)
    } else {
        let detail = json!({
            "version": "1.0",
            "timestamp": timestamp,
            "requestContext": {
                "requestId": request_id,
                "functionArn": function_arn,
                "condition": "Success",
                "approximateInvokeCount": 1
            },
            "requestPayload": {"ORDER_IDS": [format!("order-{n}")]},
            "responseContext": {"statusCode": 200, "executedVersion": version},
            "responsePayload": {"ok": true}
        });
        ("Lambda Function Invocation Result - Success", detail)
    }
}

/// The destination events put on a bus at a steady rate.
struct DestinationEvents {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<DestinationCount>,
}

/// The events put, by kind.
#[derive(Clone, Copy, Debug, Default)]
struct DestinationCount {
    /// Success records of version 1, invoked through the alias.
    stable_ok: u64,
    /// Failure records of version 2, invoked through the alias.
    candidate_failed: u64,
    /// Success records of version 2, invoked by version number.
    by_number_ok: u64,
    /// Entries PutEvents refused.
    refused: u64,
}

impl DestinationEvents {
    /// Every 500 ms, one PutEvents of: five Success records of version 1 and one Failure
    /// record of version 2, both through `live` (10 and 2 per second, the canary's 10%
    /// split with every candidate invocation failing), and one Success record of version
    /// 2 invoked as `:2`, which names no alias and must not be counted.
    fn start(config: &SdkConfig, bus: &str, bus_arn: &str, function_arn: &str) -> DestinationEvents {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let events = aws_sdk_eventbridge::Client::new(config);
        let (bus, bus_arn, function_arn, flag) =
            (bus.to_owned(), bus_arn.to_owned(), function_arn.to_owned(), stop.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut count = DestinationCount::default();
            let (live, by_number) = (format!("{function_arn}:live"), format!("{function_arn}:2"));
            while !flag.load(Ordering::Relaxed) {
                tick.tick().await;
                let mut records: Vec<_> = (0..5).map(|_| destination_record(&live, "1", false)).collect();
                records.push(destination_record(&live, "2", true));
                records.push(destination_record(&by_number, "2", false));
                let mut put = events.put_events();
                for (detail_type, detail) in &records {
                    let arn = detail["requestContext"]["functionArn"].as_str().unwrap();
                    put = put.entries(
                        aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                            .event_bus_name(&bus)
                            .source("lambda")
                            .detail_type(*detail_type)
                            .resources(&bus_arn)
                            .resources(arn)
                            .detail(detail.to_string())
                            .build(),
                    );
                }
                let out = put.send().await.expect("put_events");
                count.refused += out.failed_entry_count() as u64;
                count.stable_ok += 5;
                count.candidate_failed += 1;
                count.by_number_ok += 1;
            }
            count
        });
        DestinationEvents { stop, task }
    }

    async fn stop(self) -> DestinationCount {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("destination events task")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fast_path_rolls_back_a_failing_candidate_on_lambda_destinations_events() {
    let i = install_with(UserCode::BrokenCandidate).await;
    let group = format!("/aws/lambda/{}", i.target);
    // The function has run once, so its log group exists and a filter could be put.
    let lambda = aws_sdk_lambda::Client::new(&i.config);
    lambda.invoke().function_name(&i.target).qualifier("1").send().await.expect("invoke");
    log_group_exists(&group).await;
    let function = lambda.get_function().function_name(&i.target).send().await.unwrap();
    let function_arn = function.configuration().and_then(|c| c.function_arn()).unwrap().to_owned();

    // The bus the function's destinations send to, with template.yaml's DestinationsRule:
    // source lambda, both detail-types, and TargetFunctionPattern ("<install>-*") as a
    // wildcard on the invoked function's ARN, any qualifier.
    let events = aws_sdk_eventbridge::Client::new(&i.config);
    let bus = format!("{}-results", i.target);
    let bus_arn = events.create_event_bus().name(&bus).send().await.unwrap().event_bus_arn().unwrap().to_owned();
    let (arn_prefix, _) = function_arn.split_once(":function:").unwrap();
    let target_function_pattern = format!("{}*", i.target.strip_suffix("orders").unwrap());
    let pattern = json!({
        "source": ["lambda"],
        "detail-type": ["Lambda Function Invocation Result - Success", "Lambda Function Invocation Result - Failure"],
        "detail": {"requestContext": {"functionArn": [
            {"wildcard": format!("{arn_prefix}:function:{target_function_pattern}:*")}
        ]}}
    });
    // The wildcard selects this installation's functions only.
    for (arn, matches) in
        [(format!("{function_arn}:live"), true), (format!("{arn_prefix}:function:someone-else:live"), false)]
    {
        let (detail_type, detail) = destination_record(&arn, "1", false);
        let event = json!({
            "version": "0", "id": "1", "detail-type": detail_type, "source": "lambda",
            "account": function_arn.split(':').nth(4).unwrap(), "time": "2026-11-24T20:00:04Z",
            "region": "us-east-1", "resources": [bus_arn, arn], "detail": detail
        });
        let out = events
            .test_event_pattern()
            .event_pattern(pattern.to_string())
            .event(event.to_string())
            .send()
            .await
            .expect("test_event_pattern");
        assert_eq!(out.result(), matches, "{arn} against {pattern}");
    }
    let rule = unique("destinations");
    events.put_rule().name(&rule).event_bus_name(&bus).event_pattern(pattern.to_string()).send().await.unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("tally").arn(&i.tally).build().unwrap();
    events.put_targets().rule(&rule).event_bus_name(&bus).targets(target).send().await.unwrap();

    let strategy = json!([{"weight_percent": 10, "bake_seconds": 600}, {"weight_percent": 100}]);
    let request = i.request(strategy, json!({"fast_path": {"enabled": true, "sources": ["destinations"]}}));
    let began = std::time::SystemTime::now();
    let clock = Instant::now();
    let put = DestinationEvents::start(&i.config, &bus, &bus_arn, &function_arn);
    let exec = i.start(&request).await;
    // Nothing subscribes to the function's log group at any point of the deployment.
    let sfn = aws_sdk_sfn::Client::new(&i.config);
    let deadline = Instant::now() + Duration::from_secs(150);
    let out = loop {
        let filters = describe_filters(&group);
        assert!(filters.is_empty(), "a subscription filter on {group}: {filters:?}");
        let out = sfn.describe_execution().execution_arn(&exec).send().await.unwrap();
        if out.status().as_str() != "RUNNING" {
            break out;
        }
        assert!(Instant::now() < deadline, "{exec} still running; log: {}", Emulator::shared_ministack().log());
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let finished_after = clock.elapsed();
    let put = put.stop().await;
    let path = i.path(&exec).await;

    let (cause, rollback_after, checks) = i.assert_fast_rollback(&exec, &out, &path).await;
    eprintln!(
        "fast path (destinations): traffic shifted to rollback {rollback_after:.1} s over {checks} checks; execution \
         ended after {:.1} s\n  {cause}\n  events put: {put:?}",
        finished_after.as_secs_f64()
    );
    assert!(rollback_after < 120.0, "rolled back {rollback_after:.1} s after the shift, far inside the 600 s bake");
    assert_eq!(put.refused, 0, "PutEvents refused entries from source lambda");

    // "Start fast path" chose the destinations source and subscribed nothing; "Stop fast
    // path" had nothing to remove.
    let started = i.state_output(&exec, State::StartFastPath).await.expect("Start fast path's output");
    let fast = &started["plan"]["fast_path"]["targets"][0];
    assert_eq!((&fast["source"], &fast["live"]), (&json!("destinations"), &json!(true)), "{fast}");
    assert_eq!(fast.get("log_group"), None, "{fast}");
    let stopped = i.state_output(&exec, State::StopFastPathRolledBack).await.expect("Stop fast path's output");
    assert_eq!(stopped["fast_path_stopped"]["removed"], json!([]), "{stopped}");
    assert_eq!(describe_filters(&group), Vec::<Value>::new(), "no filter on {group}");

    // tally counted both versions from the events, in 10-second buckets: every counted
    // candidate invocation failed, so the Success records of `:2` were not counted.
    let (stable_n, stable_k, stable_buckets) = i.outcomes("1", "destinations", began).await;
    let (candidate_n, candidate_k, candidate_buckets) = i.outcomes("2", "destinations", began).await;
    eprintln!(
        "Stepshift/Outcomes (Source=destinations): version 1 {stable_k}/{stable_n} failed in {stable_buckets} \
         buckets, version 2 {candidate_k}/{candidate_n} in {candidate_buckets}"
    );
    assert!(stable_n >= 50.0 && stable_k == 0.0, "version 1: {stable_k} of {stable_n}");
    assert!(candidate_n >= 10.0 && candidate_k == candidate_n, "version 2: {candidate_k} of {candidate_n}");
    assert!(stable_buckets >= 2 && candidate_buckets >= 2, "{stable_buckets} and {candidate_buckets} buckets");
    assert!(stable_n <= put.stable_ok as f64 && candidate_n <= put.candidate_failed as f64, "{put:?}");
    assert_eq!(i.outcomes("2", "logs", began).await.0, 0.0, "nothing counted from logs");
    let tally_log = format!("/aws/lambda/{}", i.tally.rsplit(':').next().unwrap());
    let by_number = format!("{function_arn}:2");
    eventually(Duration::from_secs(10), "tally's log of a `:2` record not counted", || {
        log_lines(&tally_log).iter().any(|l| l.contains("names no alias") && l.contains(&by_number)).then_some(())
    })
    .await;
}

// Validation hooks: the Map of "Test before traffic", the Parallel of "Test the step" and
// the Map of "Test after promotion" run in ministack, their `lambda:invoke` tasks
// invoking the candidate version by its qualified name (`function:2`) or a test function
// (the `e2e-orders` fixture again, answering stepshift's HookEvent).
//
// Not tested here, because ministack 1.5.33 does not do it: a hook that never answers
// (ministack ignores `TimeoutSecondsPath`, so the task runs until the function's own
// timeout, and succeeds if it answers by then), and a failing branch of "Test the step"
// stopping the other at once (ministack's Parallel waits for every branch to end before
// it fails). tests/scenarios.rs covers both on the local runner.

/// A canary with one step before promotion, short enough for a test.
fn hooks_canary() -> Value {
    json!([{"weight_percent": 50, "bake_seconds": 3}, {"weight_percent": 100}])
}

/// The line the fixture logs with each HookEvent it receives (tests/fixtures/orders.rs).
const HOOK_EVENT_LINE: &str = "e2e hook event: ";

impl Install {
    /// Creates a test function for hooks, `<target>-smoke`: the `e2e-orders` fixture,
    /// which answers a HookEvent, failing its hook with `fails` as the start of its
    /// reason when given (`E2E_HOOK_FAILS`). Returns its name.
    async fn test_function(&self, fails: Option<&str>) -> String {
        let lambda = aws_sdk_lambda::Client::new(&self.config);
        let name = format!("{}-smoke", self.target);
        let mut environment = Environment::builder().variables("RUST_LOG", "info");
        if let Some(why) = fails {
            environment = environment.variables("E2E_HOOK_FAILS", why);
        }
        lambda
            .create_function()
            .function_name(&name)
            .runtime(Runtime::Providedal2023)
            .role("arn:aws:iam::000000000000:role/orders-smoke")
            .handler("bootstrap")
            .timeout(10)
            .environment(environment.build())
            .code(FunctionCode::builder().zip_file(Blob::new(orders_zip().clone())).build())
            .send()
            .await
            .expect("create the test function");
        name
    }

    /// The unqualified ARN of a function.
    async fn function_arn(&self, name: &str) -> String {
        let lambda = aws_sdk_lambda::Client::new(&self.config);
        let function = lambda.get_function().function_name(name).send().await.expect("get_function");
        function.configuration().and_then(|c| c.function_arn()).unwrap().to_owned()
    }
}

/// The HookEvents the test function `name` has logged, once there are `count`.
async fn hook_events(name: &str, count: usize) -> Vec<Value> {
    let group = format!("/aws/lambda/{name}");
    eventually(Duration::from_secs(20), &format!("{count} HookEvents in {group}"), || {
        let groups = logs_call("DescribeLogGroups", &json!({"logGroupNamePrefix": group}));
        if groups["logGroups"].as_array().is_none_or(|g| g.is_empty()) {
            return None;
        }
        let events: Vec<Value> = log_lines(&group)
            .iter()
            .filter_map(|l| l.split_once(HOOK_EVENT_LINE))
            .map(|(_, event)| serde_json::from_str(event.trim()).unwrap_or_else(|e| panic!("{e}: {event}")))
            .collect();
        (events.len() >= count).then_some(events)
    })
    .await
}

/// Asserts the candidate as a HookEvent names it: version 2 of the target behind `live`.
fn assert_hook_candidate(i: &Install, event: &Value, qualified_arn: &str) {
    let candidate = json!({
        "target": format!("{}:live", i.target),
        "version": "2",
        "function": i.target,
        "alias": "live",
        "qualified_arn": qualified_arn,
    });
    assert_eq!(event["candidate"], candidate, "{event}");
    assert_eq!(event["candidates"], json!([candidate]), "{event}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_candidate_fails_its_test_before_traffic_and_nothing_moves() {
    let i = install_with(UserCode::BrokenCandidate).await;
    let mut request = i.request(hooks_canary(), health());
    request["hooks"] =
        json!({"before_traffic": [{"invoke_candidate": {"payload": {"order": 7}}, "timeout_seconds": 20}]});
    let (exec, out, path) = i.run(&request, "test before traffic (broken candidate)").await;

    assert_eq!(out.status().as_str(), "FAILED", "{:?} {:?}; path {path:?}", out.error(), out.cause());
    assert_eq!(out.error(), Some("HookFailed"), "{:?}; path {path:?}", out.cause());
    let cause = out.cause().unwrap();
    // Nothing moved, the hook is named after what it invoked, and the candidate's own
    // error is the reason.
    let failed = format!("Stopped before any traffic moved: the tests before traffic failed: invoke {}:2: ", i.target);
    assert!(cause.starts_with(&failed), "{cause}");
    assert!(cause.ends_with(": version 2: the orders table is unreachable."), "{cause}");
    // Nothing moved: the alias never left version 1, and the lock is released.
    assert_eq!(i.alias().await, ("1".to_owned(), None), "live still on version 1 alone");
    assert_eq!(i.parameter("lock").await, None, "the lock is released");
    let moved = [State::ShiftTraffic, State::ShiftThenTest, State::Bake, State::Promote];
    assert!(!path.iter().any(|s| moved.iter().any(|m| s == m)), "{path:?}");
    let expected =
        [State::TestsBeforeTrafficChoice, State::TestBeforeTraffic, State::JudgeTestsBeforeTraffic, State::RollBack];
    assert!(path.windows(4).any(|w| w == expected), "{path:?}");
    assert_eq!(path.last().map(String::as_str), Some(State::DeploymentRolledBack.as_str()), "{path:?}");

    // The Map invoked version 2 by its qualified name, and its Catch kept the error.
    let tested = i.state_output(&exec, State::TestBeforeTraffic).await.expect("Test before traffic's output");
    let runs = tested["tests"].as_array().unwrap_or_else(|| panic!("{tested}"));
    assert_eq!(runs.len(), 1, "{tested}");
    assert_eq!(runs[0]["hook"]["function"], format!("{}:2", i.target), "{tested}");
    assert_eq!(runs[0]["invocation"], Value::Null, "{tested}");
    let caught = runs[0]["error"]["Cause"].as_str().unwrap_or_default();
    assert!(caught.contains("version 2: the orders table is unreachable"), "{tested}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_candidate_passes_its_hooks_and_the_test_function_gets_each_event() {
    let i = install_with(UserCode::HealthyCandidate).await;
    let smoke = i.test_function(None).await;
    i.metrics("2", 100.0, 0.0).await;
    i.metrics("1", 900.0, 1.0).await;
    let strategy = json!([
        {"weight_percent": 25, "bake_seconds": 2},
        {"weight_percent": 50, "bake_seconds": 2},
        {"weight_percent": 100}
    ]);
    let mut request = i.request(strategy, health());
    request["hooks"] = json!({
        "before_traffic": [{
            "invoke_candidate": {"payload": {"order": 7}, "expect": {"contains": {"order": 7, "version": "2"}}},
            "timeout_seconds": 20
        }],
        "each_step": [{"function": smoke, "payload": {"orders": 3}, "timeout_seconds": 20}],
        "after_promotion": [{"function": smoke, "name": "post-promotion smoke", "timeout_seconds": 20}]
    });
    let (exec, out, path) = i.run(&request, "hooks at every point (all passing)").await;

    assert_eq!(out.status().as_str(), "SUCCEEDED", "{:?} {:?}; path {path:?}", out.error(), out.cause());
    assert_eq!(i.alias().await, ("2".to_owned(), None), "all traffic on the candidate");
    assert_eq!(i.parameter("lock").await, None, "the lock is released");
    let before = [State::TestBeforeTraffic, State::JudgeTestsBeforeTraffic];
    assert!(path.windows(2).any(|w| w == before), "{path:?}");
    let step = [State::ShiftThenTest, State::TestTheStep, State::ChooseNextStep];
    assert_eq!(path.windows(3).filter(|w| *w == step).count(), 2, "two steps with hooks: {path:?}");
    // After promotion, the tests run in "Test the step", beside the lock-in's checks.
    let after = [State::RecordPromotion, State::TestsAfterPromotionChoice, State::TestTheStep];
    assert!(path.windows(3).any(|w| w == after), "{path:?}");
    // (ministack's history leaves out the states inside a Parallel's branches: the test
    // function's events below show that the tests after promotion ran.)

    // Before traffic, version 2 itself answered (not the alias's version 1), and the
    // answer met the expectation.
    let tested = i.state_output(&exec, State::TestBeforeTraffic).await.expect("Test before traffic's output");
    assert_eq!(tested["tests"][0]["invocation"]["payload"], json!({"order": 7, "version": "2"}), "{tested}");
    let judged = i.state_output(&exec, State::JudgeTestsBeforeTraffic).await.expect("the judgement's output");
    let result = &judged["tests"]["results"][0];
    assert_eq!(result["function"], format!("{}:2", i.target), "{judged}");
    assert_eq!(result["outcome"], "passed", "{judged}");

    // The test function got one HookEvent at each step and one after promotion.
    let qualified_arn = format!("{}:2", i.function_arn(&i.target).await);
    let mut events = hook_events(&smoke, 3).await;
    assert_eq!(events.len(), 3, "{events:#?}");
    events.sort_by_key(|e| e["step"].as_u64());
    for e in &events {
        assert_eq!((&e["stepshift"], &e["execution"]), (&json!(1), &json!(exec)), "{e}");
        assert_hook_candidate(&i, e, &qualified_arn);
    }
    let seen: Vec<(&str, Option<u64>, Option<f64>, &Value)> = events
        .iter()
        .map(|e| {
            (e["point"].as_str().unwrap_or_default(), e["step"].as_u64(), e["weight_percent"].as_f64(), &e["payload"])
        })
        .collect();
    let (orders, null) = (json!({"orders": 3}), Value::Null);
    assert_eq!(
        seen,
        [
            ("each_step", Some(0), Some(25.0), &orders),
            ("each_step", Some(1), Some(50.0), &orders),
            ("after_promotion", Some(2), Some(100.0), &null)
        ],
        "{events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_test_function_failing_at_a_step_rolls_back_with_its_reason() {
    let i = install().await;
    let smoke = i.test_function(Some("checkout returned 502")).await;
    i.metrics("2", 100.0, 0.0).await;
    i.metrics("1", 900.0, 1.0).await;
    let mut request = i.request(hooks_canary(), health());
    request["hooks"] = json!({"each_step": [{"function": smoke, "timeout_seconds": 20}]});
    let (_, out, path) = i.run(&request, "a failing test function at the step").await;

    assert_eq!(out.status().as_str(), "FAILED", "{:?} {:?}; path {path:?}", out.error(), out.cause());
    assert_eq!(out.error(), Some("HookFailed"), "{:?}; path {path:?}", out.cause());
    // The test function's reason, with the point and step it was told.
    let cause = format!(
        "Rolled back {}:live from 2 to 1: the tests at step 1 failed: {smoke}: checkout returned 502 (point \"each_step\", \
         step 0).",
        i.target
    );
    assert_eq!(out.cause(), Some(cause.as_str()));
    assert_eq!(i.alias().await, ("1".to_owned(), None), "back on the stable version, routing cleared");
    assert_eq!(i.parameter("lock").await, None, "the lock is released");
    let step = [State::ShiftThenTest, State::TestTheStep, State::RollBack, State::RecordRollback];
    assert!(path.windows(4).any(|w| w == step), "{path:?}");
    assert!(!path.iter().any(|s| *s == State::Promote), "{path:?}");

    let events = hook_events(&smoke, 1).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(
        (&e["point"], &e["step"], e["weight_percent"].as_f64()),
        (&json!("each_step"), &json!(0), Some(50.0)),
        "{e}"
    );
    assert_eq!(e["payload"], Value::Null, "{e}");
    assert_hook_candidate(&i, e, &format!("{}:2", i.function_arn(&i.target).await));
}
