//! A rollback on a custom metric, end to end: ministack runs the unmodified
//! statemachine/deployment.asl.json with the real task binaries (as in
//! tests/e2e_ministack.rs), and the request judges the candidate on the README's
//! `http-5xx` rule over the function's own `orders` metrics. The candidate answers 8% of
//! its requests with a handled 500, a success to Lambda: its AWS/Lambda Errors stay at 0,
//! and only the custom metric can roll it back.
//!
//! **The test publishes the custom metrics with PutMetricData itself.** The function
//! would print one CloudWatch Embedded Metric Format line per request
//! (examples/orders-api/src/app.py), and CloudWatch Logs would turn the lines into the
//! `orders` metrics. ministack 1.5.33 does not: it stores a function's EMF lines in its
//! log group and extracts no metric from them, nor from PutLogEvents with
//! `x-amzn-logs-format: json/emf` (its CloudWatch Logs never calls its CloudWatch; read
//! in its source and tried with app.py itself). So the test stands in for CloudWatch
//! Logs: per version and minute it writes the EMF document that the function's lines of
//! that minute add up to ([`emf`]), and publishes what CloudWatch would extract from it
//! ([`extract`]): Requests and Http5xx with the dimensions Service and Version.
//!
//! ministack neither splits alias traffic nor publishes per-version AWS/Lambda metrics,
//! so the test puts those too (as tests/e2e_ministack.rs does), and the user's function
//! has no code. The stable version has served the alias for the hour before the
//! deployment, so "Begin deployment" finds the rule's history; the last three minutes
//! also hold the candidate's traffic, inside the `metric_lag_seconds` that every check
//! looks back, so the first check judges it (a bake of seconds instead of minutes).

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use serde_json::{Value, json};
use stepshift_core::State;
use stepshift_testkit::Emulator;

#[path = "e2e_support.rs"]
mod e2e_support;
use e2e_support::{
    assert_unhealthy_at_first_step, await_execution, create_deployment_state_machine, create_task_functions,
    create_user_function, empty_zip, lambda_datapoints, live_alias, live_parameter, now_secs, put_datapoints,
    start_execution, task_environment, unique,
};

/// The custom metrics' namespace, as app.py publishes them.
const NAMESPACE: &str = "orders";

/// One stepshift installation in ministack, and the user's function: versions 1 and 2,
/// `live` → 1.
struct Install {
    config: SdkConfig,
    state_machine: String,
    prefix: String,
    target: String,
}

async fn install() -> Install {
    let config = Emulator::shared_ministack().sdk_config().await;
    let id = unique("custom");
    let mut substitutions = create_task_functions(&config, &id, &task_environment(&id).build()).await;
    // Only an approval pause publishes on the bus: none here, so no bus either.
    substitutions.insert("ApprovalEventBusName".into(), format!("{id}-approvals"));
    let state_machine = create_deployment_state_machine(&config, &id, &substitutions).await;

    let target = format!("{id}-orders");
    create_user_function(&config, &target, empty_zip(), None).await;
    Install { config, state_machine, prefix: format!("/{id}"), target }
}

/// The EMF document that `version`'s lines of one minute add up to: the line app.py
/// prints per request, with the minute's `requests` and `http_5xx` summed, stamped
/// `at` (UNIX seconds). `service` stands for app.py's `orders`, unique per run.
fn emf(service: &str, version: &str, at: i64, requests: f64, http_5xx: f64) -> Value {
    json!({
        "_aws": {
            "Timestamp": at * 1000,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Service", "Version"]],
                "Metrics": [{"Name": "Http5xx", "Unit": "Count"}, {"Name": "Requests", "Unit": "Count"}],
            }],
        },
        "Service": service,
        "Version": version,
        "Http5xx": http_5xx,
        "Requests": requests,
    })
}

/// What CloudWatch Logs extracts from an EMF document: for each directive, each
/// dimension set and each metric, one datapoint in the directive's namespace, its
/// dimensions' values and the metric's value read from the document's top level.
fn extract(document: &Value) -> Vec<(String, MetricDatum)> {
    let aws = &document["_aws"];
    let at = aws["Timestamp"].as_i64().expect("_aws.Timestamp");
    let mut data = Vec::new();
    for directive in aws["CloudWatchMetrics"].as_array().expect("_aws.CloudWatchMetrics") {
        let namespace = directive["Namespace"].as_str().expect("Namespace");
        for set in directive["Dimensions"].as_array().expect("Dimensions") {
            for metric in directive["Metrics"].as_array().expect("Metrics") {
                let name = metric["Name"].as_str().expect("Name");
                let mut datum = MetricDatum::builder()
                    .metric_name(name)
                    .timestamp(aws_smithy_types::DateTime::from_millis(at))
                    .value(document[name].as_f64().unwrap_or_else(|| panic!("no value of {name}")))
                    .unit(StandardUnit::from(metric["Unit"].as_str().unwrap_or("None")));
                for dimension in set.as_array().expect("a dimension set") {
                    let dimension = dimension.as_str().expect("a dimension name");
                    let value = document[dimension].as_str().unwrap_or_else(|| panic!("no value of {dimension}"));
                    datum = datum.dimensions(Dimension::builder().name(dimension).value(value).build());
                }
                data.push((namespace.to_owned(), datum.build()));
            }
        }
    }
    data
}

/// Seconds before now of the stable version's minutes in the hour before the deployment
/// (Begin's history), beside the last three: all before the checks' window (the last
/// `window_seconds`, 300), which reads the last three minutes only.
const HISTORY: [i64; 6] = [3300, 2700, 2100, 1500, 900, 600];

/// Seconds before now of the last three minutes: what the checks read of both versions.
const RECENT: [i64; 3] = [150, 90, 30];

impl Install {
    /// Puts `version`'s traffic at each of `ago` (seconds before now), per minute:
    /// AWS/Lambda's Invocations, Errors and Duration through the alias (Lambda's own
    /// errors: none, a handled 500 is a success), and the custom metrics of the EMF lines
    /// of `requests` requests, `http_5xx` of them answered with a handled 500.
    async fn traffic(&self, version: &str, ago: &[i64], requests: f64, http_5xx: f64) {
        let now = now_secs();
        let ats: Vec<i64> = ago.iter().map(|a| now - a).collect();
        let lambda = lambda_datapoints(&self.target, version, requests, 0.0, &ats);
        let mut custom = Vec::new();
        for &at in &ats {
            for (namespace, datum) in extract(&emf(&self.target, version, at, requests, http_5xx)) {
                assert_eq!(namespace, NAMESPACE);
                custom.push(datum);
            }
        }
        put_datapoints(&self.config, "AWS/Lambda", lambda).await;
        put_datapoints(&self.config, NAMESPACE, custom).await;
    }

    /// The README's `http-5xx` rule, with this installation's function as the Service.
    fn http_5xx_rule(&self) -> Value {
        let dimensions = json!({"Service": self.target, "Version": "${version}"});
        json!({
            "name": "http-5xx",
            "bad": {"namespace": NAMESPACE, "metric": "Http5xx", "dimensions": dimensions},
            "all": {"namespace": NAMESPACE, "metric": "Requests", "dimensions": dimensions},
            "max_increase_percent": 0,
            "max_percent": 2
        })
    }

    async fn alias(&self) -> (String, Option<std::collections::HashMap<String, f64>>) {
        live_alias(&self.config, &self.target).await
    }

    async fn parameter(&self, leaf: &str) -> Option<String> {
        live_parameter(&self.config, &self.prefix, &self.target, leaf).await
    }

    /// The states the execution entered, and the output of each state it left, in order.
    async fn history(&self, execution: &str) -> (Vec<String>, Vec<(String, Value)>) {
        let sfn = aws_sdk_sfn::Client::new(&self.config);
        let history = sfn.get_execution_history().execution_arn(execution).max_results(1000).send().await.unwrap();
        let events = history.events();
        let path = events.iter().filter_map(|e| e.state_entered_event_details().map(|d| d.name().to_owned())).collect();
        let outputs = events
            .iter()
            .filter_map(|e| e.state_exited_event_details())
            .filter_map(|d| Some((d.name().to_owned(), serde_json::from_str(d.output()?).ok()?)))
            .collect();
        (path, outputs)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn handled_500s_on_the_custom_metric_roll_the_canary_back() {
    let i = install().await;
    // The stable version: 900 requests a minute through the last hour, 1 handled 500 in each.
    let stable: Vec<i64> = HISTORY.iter().chain(&RECENT).copied().collect();
    i.traffic("1", &stable, 900.0, 1.0).await;
    // The candidate: 100 requests a minute (its 10%), 8% handled 500s.
    i.traffic("2", &RECENT, 100.0, 8.0).await;

    let request = json!({
        "schema": 1,
        "targets": [{"function": i.target, "alias": "live", "version": "2"}],
        "strategy": [{"weight_percent": 10, "bake_seconds": 2}, {"weight_percent": 100}],
        "health": {"min_invocations": 5, "metric_lag_seconds": 240, "metrics": [i.http_5xx_rule()]},
        "lock_in_seconds": 3
    });
    let clock = Instant::now();
    let exec = start_execution(&i.config, &i.state_machine, &request).await;
    let out = await_execution(&i.config, &exec, Duration::from_secs(180)).await;
    let (path, outputs) = i.history(&exec).await;
    eprintln!("custom metric rollback: ended after {:.1} s\n  {:?}", clock.elapsed().as_secs_f64(), out.cause());

    assert_eq!(out.status().as_str(), "FAILED", "{:?} {:?}; path {path:?}", out.error(), out.cause());
    assert_eq!(out.error(), Some("Unhealthy"), "{:?}; path {path:?}", out.cause());
    let cause = out.cause().unwrap();
    assert_unhealthy_at_first_step(cause, &i.target);
    assert!(cause.contains(&format!("{}:live version 2 http-5xx is", i.target)), "{cause}");
    assert!(!cause.contains("error rate"), "Lambda's errors are not what failed it: {cause}");
    assert_eq!(i.alias().await, ("1".to_owned(), None), "back on the stable version, routing cleared");
    assert_eq!(i.parameter("lock").await, None, "the lock is released");
    let step = [State::ShiftTraffic, State::Bake, State::CheckHealth];
    assert!(path.windows(3).any(|w| w == step), "{path:?}");
    assert!(!path.iter().any(|s| *s == State::Promote), "{path:?}");

    // "Begin deployment" found the rule's history: the stable version's hour.
    let begun = outputs.iter().find(|(s, _)| *s == State::BeginDeployment).map(|(_, o)| o).expect("Begin's output");
    let history = &begun["plan"]["targets"][0]["history"];
    let minutes = history["custom"][0]["minutes"].as_u64().unwrap_or_default();
    assert!(minutes >= HISTORY.len() as u64, "{history}");

    // The check read both versions' series in its GetMetricData call, and judged the
    // candidate on them while Lambda saw no error.
    let checked = outputs.iter().rev().find(|(s, _)| *s == State::CheckHealth).map(|(_, o)| o).expect("a check");
    let verdict = &checked["progress"]["verdict"];
    assert_eq!(verdict["status"], "unhealthy", "{verdict}");
    let judged = &verdict["targets"][0];
    assert_eq!(
        (&judged["candidate"]["invocations"], &judged["candidate"]["errors"]),
        (&json!(300), &json!(0)),
        "{verdict}"
    );
    let custom = &judged["custom"][0];
    assert_eq!(custom["name"], "http-5xx", "{verdict}");
    assert_eq!((&custom["candidate"]["events"], &custom["candidate"]["total"]), (&json!(24), &json!(300)), "{verdict}");
    assert_eq!((&custom["baseline"]["events"], &custom["baseline"]["total"]), (&json!(3), &json!(2700)), "{verdict}");
}
