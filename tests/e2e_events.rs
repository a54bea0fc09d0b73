//! Lifecycle events end to end: ministack runs the unmodified
//! statemachine/deployment.asl.json with the real task binaries (built for this machine,
//! deployed as provided.al2023 zips with `STEPSHIFT_EVENT_BUS` set, as template.yaml sets
//! it), and a rule on the bus delivers every stepshift lifecycle event to an SQS queue,
//! where the test reads what a team's subscriber would get.
//!
//! ministack splits no alias traffic and emits no per-version metrics, so each test puts
//! the candidate's and the stable version's AWS/Lambda metrics itself (as
//! tests/e2e_ministack.rs does).

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use serde_json::{Value, json};
use stepshift_core::events::DetailType;
use stepshift_testkit::Emulator;

#[path = "e2e_support.rs"]
mod e2e_support;
use e2e_support::{
    await_execution, create_bus_to_queue, create_deployment_state_machine, create_task_functions, create_user_function,
    empty_zip, put_lambda_metrics, start_execution, task_environment, unique,
};

/// One stepshift installation in ministack with its event bus and a subscriber's queue.
struct Install {
    config: SdkConfig,
    state_machine: String,
    target: String,
    queue_url: String,
}

async fn install() -> Install {
    let config = Emulator::shared_ministack().sdk_config().await;
    let id = unique("events");

    // The stack's bus, and a team's rule: every lifecycle event to a queue.
    let bus = format!("{id}-approvals");
    let every: Vec<&str> = DetailType::ALL.iter().map(|d| d.as_str()).collect();
    let pattern = json!({"source": ["stepshift"], "detail-type": every});
    let queue_url = create_bus_to_queue(&config, &bus, &id, &id, &pattern).await;

    // The task functions, running the real binaries, publishing on the bus. Every task
    // function; tally is never invoked (no fast path).
    let environment = task_environment(&id).variables("STEPSHIFT_EVENT_BUS", &bus).build();
    let mut substitutions = create_task_functions(&config, &id, &environment).await;
    substitutions.insert("ApprovalEventBusName".into(), bus);

    // The user's function: versions 1 and 2, alias live → 1.
    let target = format!("{id}-orders");
    create_user_function(&config, &target, empty_zip(), None).await;

    let state_machine = create_deployment_state_machine(&config, &id, &substitutions).await;
    Install { config, state_machine, target, queue_url }
}

impl Install {
    /// Puts `invocations`/`errors` per minute for the last three minutes, for `version`.
    async fn metrics(&self, version: &str, invocations: f64, errors: f64) {
        put_lambda_metrics(&self.config, &self.target, version, invocations, errors).await;
    }

    /// Runs a canary (10% for 2 s, then 100% with a 3-second lock-in) to its end: the
    /// execution and its status.
    async fn deploy(&self) -> (String, String) {
        let request = json!({
            "schema": 1,
            "targets": [{"function": self.target, "alias": "live", "version": "2"}],
            "strategy": [{"weight_percent": 10, "bake_seconds": 2}, {"weight_percent": 100}],
            "health": {"min_invocations": 5, "metric_lag_seconds": 240},
            "lock_in_seconds": 3,
        });
        let exec = start_execution(&self.config, &self.state_machine, &request).await;
        let out = await_execution(&self.config, &exec, Duration::from_secs(180)).await;
        (exec, out.status().as_str().to_owned())
    }

    /// The events on the queue once `last` arrived (or 30 s passed), in the order they
    /// happened (`detail.at`, then the order a task publishes them).
    async fn events(&self, last: DetailType) -> Vec<Value> {
        let sqs = aws_sdk_sqs::Client::new(&self.config);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got: Vec<Value> = Vec::new();
        while !got.iter().any(|e| e["detail-type"] == last.as_str()) && Instant::now() < deadline {
            let out =
                sqs.receive_message().queue_url(&self.queue_url).max_number_of_messages(10).wait_time_seconds(1).send();
            for m in out.await.unwrap().messages() {
                got.push(serde_json::from_str(m.body().unwrap()).unwrap());
                sqs.delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        let rank = |e: &Value| DetailType::ALL.iter().position(|d| e["detail-type"] == d.as_str()).unwrap_or(99);
        got.sort_by(|a, b| {
            let at = |e: &Value| stepshift_core::Timestamp::parse_rfc3339(e["detail"]["at"].as_str().unwrap()).unwrap();
            at(a).cmp(&at(b)).then(rank(a).cmp(&rank(b)))
        });
        got
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["detail-type"].as_str().unwrap()).collect()
}

/// Every event is stepshift's, names the execution and the target.
fn assert_well_formed(events: &[Value], exec: &str, target: &str) {
    for e in events {
        assert_eq!(e["source"], "stepshift", "{e:#}");
        assert_eq!(e["detail"]["schema_version"], 1, "{e:#}");
        assert_eq!(e["detail"]["execution"], exec, "{e:#}");
        assert_eq!(
            e["detail"]["targets"][0],
            json!({"target": format!("{target}:live"), "stable": "1", "candidate": "2"})
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_promoted_deployment_reaches_a_subscriber_moment_by_moment() {
    let i = install().await;
    i.metrics("2", 100.0, 0.0).await;
    i.metrics("1", 900.0, 1.0).await;
    let (exec, status) = i.deploy().await;
    assert_eq!(status, "SUCCEEDED");
    let events = i.events(DetailType::ReleaseConfirmed).await;
    let t = types(&events);
    eprintln!("{t:?}");
    assert_well_formed(&events, &exec, &i.target);
    assert_eq!(t.first(), Some(&"Deployment Started"), "\"Announce the start\": {t:?}");
    assert_eq!(t.last(), Some(&"Release Confirmed"), "{t:?}");
    let promoted = t.iter().position(|d| *d == "Deployment Promoted").expect("promoted");
    assert_eq!(t[1], "Traffic Shifted", "{t:?}");
    assert!(t[2..promoted].iter().all(|d| *d == "Health Checked") && promoted > 2, "{t:?}");
    assert!(t[promoted + 1..t.len() - 1].iter().all(|d| *d == "Health Checked"), "{t:?}");
    assert_eq!(events[0]["detail"]["weights"], json!([10.0, 100.0]));
    assert_eq!(events[1]["detail"]["weight_percent"], 10.0);
    assert_eq!(events[promoted - 1]["detail"]["decision"], "advance");
    assert_eq!(events[promoted - 1]["detail"]["verdict"]["status"], "healthy");
    for e in &events {
        assert_eq!(e["resources"], json!([exec]), "every entry names the execution: {e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_deployment_tells_the_subscriber_why() {
    let i = install().await;
    i.metrics("2", 100.0, 40.0).await;
    i.metrics("1", 900.0, 1.0).await;
    let (exec, status) = i.deploy().await;
    assert_eq!(status, "FAILED");
    let events = i.events(DetailType::DeploymentRolledBack).await;
    let t = types(&events);
    eprintln!("{t:?}");
    assert_well_formed(&events, &exec, &i.target);
    assert_eq!(t[..2], ["Deployment Started", "Traffic Shifted"], "{t:?}");
    assert_eq!(t.last(), Some(&"Deployment Rolled Back"), "{t:?}");
    let rolled = &events.last().unwrap()["detail"];
    assert_eq!(rolled["error"], "Unhealthy");
    let cause = rolled["cause"].as_str().unwrap();
    assert!(cause.starts_with("the candidate was unhealthy at step 1 of 2 (10%)"), "{cause}");
}
