//! check-health's handler on the in-memory ports: the window, the verdict's numbers,
//! and the decision it leads to.

use serde_json::{Value, json};
use stepshift_core::memory::{Call, MemoryAws};
use stepshift_core::ports::{AlarmValue, MetricSeriesKey, MinuteCounts, VersionMetrics};
use stepshift_core::tasks::TaskConfig;
use stepshift_core::{TaskError, Timestamp};

fn fixture() -> Value {
    let path = format!("{}/tests/fixtures/check-canary.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn key(version: &str) -> MetricSeriesKey {
    MetricSeriesKey { function: "orders".into(), alias: "live".into(), version: version.into() }
}

/// `per_minute` invocations and errors for minutes starting at 20:00 (plus `before`
/// minutes earlier), p99 as given.
fn series(first: &str, minutes: usize, invocations: u64, errors: u64, p99: f64) -> VersionMetrics {
    let start = at(first);
    VersionMetrics {
        minutes: (0..minutes)
            .map(|i| MinuteCounts {
                start: start.plus_secs(60 * i as i64),
                invocations,
                errors,
                durations: invocations,
                ..MinuteCounts::default()
            })
            .collect(),
        p99_duration_ms: Some(p99),
        custom: Vec::new(),
    }
}

/// Five minutes after the shift, orders-5xx OK, both versions healthy.
fn account() -> MemoryAws {
    let aws = MemoryAws::new(at("2026-11-24T20:05:05Z"));
    aws.set_alarm("orders-5xx", AlarmValue::Ok);
    aws.put_metrics(key("42"), series("2026-11-24T20:00:00Z", 6, 10, 0, 120.0));
    aws.put_metrics(key("41"), series("2026-11-24T20:00:00Z", 6, 90, 1, 110.0));
    aws
}

async fn check(aws: &MemoryAws, input: Value) -> Result<Value, TaskError> {
    check_health::handle(aws, &TaskConfig::default(), input).await
}

#[tokio::test]
async fn healthy_after_the_bake_advances_with_the_numbers() {
    let aws = account();
    let progress = check(&aws, fixture()).await.unwrap();
    assert_eq!(progress["decision"], "advance");
    assert_eq!(progress["cursor"]["index"], 1);
    assert_eq!(progress["cursor"]["promote"], true);
    let verdict = &progress["verdict"];
    assert_eq!(verdict["status"], "healthy");
    // The absolute rules read the five most recent minutes with data.
    assert_eq!(
        verdict["targets"][0]["window"],
        json!({"start": "2026-11-24T20:01:00Z", "end": "2026-11-24T20:06:00Z"})
    );
    assert_eq!(verdict["targets"][0]["candidate"]["invocations"], 50);
    assert_eq!(verdict["targets"][0]["baseline"]["invocations"], 450);
    assert_eq!(verdict["targets"][0]["baseline"]["errors"], 5);
    // The comparison reads every minute since the deployment began.
    assert_eq!(verdict["targets"][0]["comparison"]["candidate_invocations"], 60);
    assert_eq!(verdict["targets"][0]["comparison"]["stable_invocations"], 540);
    // The window reaches back by the metric lag (120 s) from the step's start, by minute.
    assert_eq!(verdict["window"], json!({"start": "2026-11-24T19:58:00Z", "end": "2026-11-24T20:06:00Z"}));
    assert_eq!(aws.calls()[&Call::GetMetricData], 1, "one GetMetricData call per check");
}

#[tokio::test]
async fn errors_above_the_limit_roll_back() {
    let aws = account();
    aws.put_metrics(key("42"), series("2026-11-24T20:00:00Z", 6, 10, 2, 120.0));
    let progress = check(&aws, fixture()).await.unwrap();
    assert_eq!(progress["decision"], "roll_back");
    // The comparison with the stable version fires; the absolute 5% limit waits for 100
    // invocations (enough to expect 5 errors at 5%), so it stays silent at 50.
    let reason = progress["verdict"]["reasons"][0].as_str().unwrap();
    assert!(
        reason.starts_with(
            "orders:live version 42 fails 18x as often as version 41 over the same minutes since 20:00 (12 errors in 60 invocations; evidence "
        ),
        "{reason}"
    );
    assert!(reason.ends_with("against a threshold of 200): worse, with 99% confidence"), "{reason}");
    assert_eq!(progress["verdict"]["reasons"].as_array().unwrap().len(), 1);
    assert_eq!(progress["steps"][0]["status"], "unhealthy");
}

#[tokio::test]
async fn a_candidate_over_the_p99_limit_in_the_recent_window_rolls_back() {
    let aws = account();
    aws.put_metrics(key("42"), series("2026-11-24T20:00:00Z", 6, 100, 0, 950.0));
    aws.put_metrics(key("41"), series("2026-11-24T20:00:00Z", 6, 900, 1, 110.0));
    for i in 0..6 {
        // 4 of every 100 invocations take 950 ms: the p99 is above the 800 ms limit.
        aws.put_durations(key("42"), at("2026-11-24T20:00:00Z").plus_secs(60 * i), &[(100.0, 96), (950.0, 4)]);
    }
    let progress = check(&aws, fixture()).await.unwrap();
    assert_eq!(progress["decision"], "roll_back");
    assert_eq!(
        progress["verdict"]["reasons"][0],
        "orders:live version 42 p99 duration is above 800 ms: 20 of 500 invocations (4%) took longer over 20:01-20:06"
    );
}

#[tokio::test]
async fn a_regression_late_in_a_long_bake_is_not_diluted_by_the_healthy_minutes_before_it() {
    let aws = MemoryAws::new(at("2026-11-24T21:00:05Z"));
    aws.set_alarm("orders-5xx", AlarmValue::Ok);
    // 55 healthy minutes, then 5 at 12% errors: 3% over the hour, 12% over the window.
    let mut candidate = series("2026-11-24T20:00:00Z", 55, 100, 0, 120.0);
    candidate.minutes.extend(series("2026-11-24T20:55:00Z", 5, 100, 12, 120.0).minutes);
    aws.put_metrics(key("42"), candidate);
    aws.put_metrics(key("41"), series("2026-11-24T20:00:00Z", 60, 900, 1, 110.0));
    let mut input = fixture();
    input["plan"]["steps"][0]["bake_seconds"] = json!(7200);
    input["plan"]["health"]["error_rate"]["max_increase_percent"] = Value::Null; // the limit alone
    let progress = check(&aws, input).await.unwrap();
    assert_eq!(progress["decision"], "roll_back", "{progress}");
    assert_eq!(
        progress["verdict"]["reasons"][0],
        "orders:live version 42 error rate 12% is above 5% (60 errors in 500 invocations over 20:55-21:00)"
    );
}

/// The fixture at full traffic (the lock-in), five minutes after promotion at 20:00:05,
/// with the stable version's history before the deployment in the plan.
fn lock_in(aws: &MemoryAws, history: Value) -> Value {
    // The stable version served until the promotion, and nothing since.
    aws.put_metrics(key("41"), series("2026-11-24T19:50:00Z", 10, 900, 1, 110.0));
    let mut input = fixture();
    input["progress"]["cursor"] = json!({"index": 1, "weight_percent": 100.0, "approval": false, "promote": true, "wait_seconds": 60, "extensions_used": 0});
    input["traffic"]["weight_percent"] = json!(100.0);
    input["traffic"]["step_started_at"] = json!("2026-11-24T20:00:05Z");
    input["plan"]["targets"][0]["history"] = history;
    input
}

fn hour_of_history(invocations: u64, errors: u64) -> Value {
    json!({
        "start": "2026-11-24T19:00:00Z", "end": "2026-11-24T20:00:00Z", "minutes": 60,
        "errors": {"invocations": invocations, "events": errors},
        "slow_above_ms": 180.0, "slow": {"invocations": invocations, "events": invocations / 100},
        "throttles": 0
    })
}

#[tokio::test]
async fn in_the_lock_in_the_candidate_is_compared_with_the_stable_history() {
    let aws = account();
    aws.put_metrics(key("42"), series("2026-11-24T20:00:00Z", 5, 600, 30, 120.0));
    let progress = check(&aws, lock_in(&aws, hour_of_history(36_000, 360))).await.unwrap();
    assert_eq!(progress["decision"], "roll_back", "{progress}");
    let reason = progress["verdict"]["reasons"][0].as_str().unwrap();
    assert!(
        reason.starts_with(
            "orders:live version 42 fails 5x as often as version 41's history 19:00-20:00 (360 in 36000) since 20:00 (150 errors in 3000 invocations"
        ),
        "{reason}"
    );
    let comparison = &progress["verdict"]["targets"][0]["comparison"];
    assert_eq!(comparison["baseline"], "history");

    // The same candidate at the history's own rate is healthy, and says what it was compared with.
    aws.put_metrics(key("42"), series("2026-11-24T20:00:00Z", 5, 600, 6, 120.0));
    let progress = check(&aws, lock_in(&aws, hour_of_history(36_000, 360))).await.unwrap();
    assert_eq!(progress["decision"], "confirm", "{progress}");
    let summary = progress["verdict"]["reasons"][0].as_str().unwrap();
    assert!(summary.contains("errors against version 41's history 19:00-20:00 (360 in 36000): evidence"), "{summary}");
}

#[tokio::test]
async fn without_a_usable_history_the_lock_in_says_it_judges_on_the_limits_alone() {
    let aws = account();
    aws.put_metrics(key("42"), series("2026-11-24T20:00:00Z", 5, 600, 6, 120.0));
    let progress = check(&aws, lock_in(&aws, hour_of_history(120, 0))).await.unwrap();
    assert_eq!(progress["decision"], "confirm");
    let summary = progress["verdict"]["reasons"][0].as_str().unwrap();
    assert!(
        summary.contains(
            "no baseline (version 41 served 120 invocations over 19:00-20:00, fewer than the 300 a baseline needs)"
        ),
        "{summary}"
    );
    assert!(summary.ends_with("judged on the absolute limits only"), "{summary}");
}

#[tokio::test]
async fn an_alarm_rolls_back() {
    let aws = account();
    aws.set_alarm("orders-5xx", AlarmValue::Alarm);
    let progress = check(&aws, fixture()).await.unwrap();
    assert_eq!(progress["decision"], "roll_back");
    assert_eq!(progress["verdict"]["reasons"][0], "alarm orders-5xx is in ALARM: set to Alarm by the test");
}

#[tokio::test]
async fn data_older_than_the_window_does_not_count() {
    let aws = account();
    aws.put_metrics(key("42"), series("2026-11-24T19:50:00Z", 8, 10, 5, 120.0));
    let progress = check(&aws, fixture()).await.unwrap();
    assert_eq!(progress["verdict"]["status"], "inconclusive");
    assert_eq!(progress["verdict"]["targets"][0]["candidate"]["invocations"], 0);
    assert_eq!(progress["decision"], "wait", "inconclusive after the bake extends it");
    assert_eq!(progress["cursor"]["extensions_used"], 1);
    assert_eq!(progress["cursor"]["wait_seconds"], 60);
}

#[tokio::test]
async fn lock_in_compares_nothing_against_the_stable_version() {
    let aws = account();
    let mut input = fixture();
    input["progress"]["cursor"] = json!({"index": 1, "weight_percent": 100.0, "approval": false, "promote": true, "wait_seconds": 300, "extensions_used": 0});
    input["traffic"]["weight_percent"] = json!(100.0);
    input["traffic"]["step_started_at"] = json!("2026-11-24T20:00:05Z");
    let progress = check(&aws, input).await.unwrap();
    assert_eq!(progress["decision"], "confirm");
    assert_eq!(progress["verdict"]["targets"][0].get("baseline"), None);
}

#[tokio::test]
async fn no_lock_in_confirms_without_reading_metrics() {
    let aws = account();
    let mut input = fixture();
    input["plan"]["lock_in_seconds"] = json!(0);
    input["progress"]["cursor"] = json!({"index": 1, "weight_percent": 100.0, "approval": false, "promote": true, "wait_seconds": 0, "extensions_used": 0});
    let progress = check(&aws, input).await.unwrap();
    assert_eq!(progress["decision"], "confirm");
    assert_eq!(aws.calls().get(&Call::GetMetricData), None);
}

#[tokio::test]
async fn a_check_before_any_shift_is_a_task_input_error() {
    let aws = account();
    let mut input = fixture();
    input["traffic"]["step_started_at"] = Value::Null;
    assert_eq!(check(&aws, input).await.unwrap_err().name(), "InvalidTaskInput");
}

/// The fixture's step, releasing the record www.example.com from E1BLUE to E2GREEN.
fn record_fixture() -> Value {
    let mut input = fixture();
    let target = stepshift_core::routers::route53::RecordTarget {
        hosted_zone_id: "Z0123456789ABCDEFGHIJ".into(),
        record_name: "www.example.com".into(),
        record_type: stepshift_core::routers::route53::RecordType::A,
        blue: stepshift_core::routers::route53::Endpoint::cloudfront("d1.cloudfront.net", Some("E1BLUE")),
        green: stepshift_core::routers::route53::Endpoint::cloudfront("d2.cloudfront.net", Some("E2GREEN")),
    };
    let original = target.before_release();
    input["plan"]["router"] = json!("route53");
    input["plan"]["syncs"] = json!(true);
    input["plan"]["targets"] = json!([{
        "route": {"kind": "route53", "target": target, "original": original},
        "stable": "E1BLUE", "candidate": "E2GREEN", "records_before": {}
    }]);
    input["plan"]["health"]["alarms"] = json!([]);
    input["traffic"]["revisions"] = json!([]);
    input
}

/// Six minutes from 20:00 of `requests` a minute at these 5xx and 4xx rates (percent).
fn distribution(
    requests: f64,
    rate_5xx: f64,
    rate_4xx: f64,
) -> stepshift_core::routers::route53::health::DistributionMetrics {
    let minute = |i: i64| at("2026-11-24T20:00:00Z").plus_secs(60 * i);
    stepshift_core::routers::route53::health::DistributionMetrics {
        requests: (0..6).map(|i| (minute(i), requests)).collect(),
        error_rate_5xx: (0..6).map(|i| (minute(i), rate_5xx)).collect(),
        error_rate_4xx: (0..6).map(|i| (minute(i), rate_4xx)).collect(),
    }
}

#[tokio::test]
async fn a_record_is_judged_on_green_against_blue_from_cloudfront() {
    let aws = account();
    aws.set_distribution_metrics("E1BLUE", distribution(900.0, 0.5, 3.0));
    aws.set_distribution_metrics("E2GREEN", distribution(100.0, 0.5, 3.0));
    let progress = check(&aws, record_fixture()).await.unwrap();
    assert_eq!(progress["decision"], "advance", "{progress}");
    let sample = &progress["verdict"]["targets"][0];
    assert_eq!(sample["target"], "www.example.com. A");
    assert_eq!(sample["candidate"]["version"], "green E2GREEN");
    assert_eq!(sample["candidate"]["invocations"], 500, "requests count as invocations, over the window");
    assert_eq!(sample["baseline"]["errors"], 25, "5xx count as errors: 0.5% of 900 is 4.5, 5 a minute");
    assert_eq!(aws.calls()[&Call::GetMetricData], 1, "one read of both distributions, no Lambda metrics");
}

#[tokio::test]
async fn green_rolls_back_on_5xx_and_on_a_confident_rise_in_4xx() {
    let aws = account();
    aws.set_distribution_metrics("E1BLUE", distribution(900.0, 0.5, 3.0));
    aws.set_distribution_metrics("E2GREEN", distribution(100.0, 12.0, 3.0));
    let progress = check(&aws, record_fixture()).await.unwrap();
    assert_eq!(progress["decision"], "roll_back", "{progress}");
    assert!(progress["verdict"]["reasons"][0].as_str().unwrap().contains("green E2GREEN fails"), "{progress}");

    // Missing files: green answers 404 where blue served the page; 5xx are equal.
    aws.set_distribution_metrics("E2GREEN", distribution(100.0, 0.5, 20.0));
    let progress = check(&aws, record_fixture()).await.unwrap();
    assert_eq!(progress["decision"], "roll_back", "{progress}");
    let reasons = progress["verdict"]["reasons"].to_string();
    assert!(reasons.contains("answers 4xx"), "{reasons}");
}

#[tokio::test]
async fn every_check_publishes_health_checked_with_its_verdict() {
    let aws = account();
    let progress = check(&aws, fixture()).await.unwrap();
    let events = aws.lifecycle_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].detail_type.as_str(), "Health Checked");
    let d = serde_json::to_value(&events[0].detail).unwrap();
    assert_eq!(d["decision"], progress["decision"]);
    assert_eq!(d["verdict"]["status"], "healthy");
    assert_eq!(d["verdict"]["reasons"], progress["verdict"]["reasons"]);
    assert_eq!((d["step"].clone(), d["weight_percent"].clone()), (json!(1), json!(10.0)));

    let judged = aws.lifecycle_events().len();
    let runs = json!({"action": "judge_hooks", "point": "before_traffic", "runs": []});
    let _ = check(&aws, runs).await;
    assert_eq!(aws.lifecycle_events().len(), judged, "judging hooks publishes nothing");
}
