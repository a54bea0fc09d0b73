use futures_executor::block_on;

use super::*;

fn key(version: &str) -> MetricQuery {
    MetricQuery::sums(stepshift_core::ports::MetricSeriesKey {
        function: "orders".into(),
        alias: "live".into(),
        version: version.into(),
    })
}

fn t0() -> Timestamp {
    Timestamp::from_secs(1_800_000_000).floor_minute()
}

/// orders:live → 1 at 10 req/s, where version 2 behaves as `candidate`.
fn model(candidate: VersionModel, stable: Behavior) -> FunctionModel {
    FunctionModel {
        function: "orders".into(),
        alias: "live".into(),
        versions: 2,
        serving: "1".into(),
        requests_per_second: 10.0,
        behaviors: BTreeMap::from([("2".to_owned(), candidate)]),
        default_behavior: stable,
    }
}

fn sim(seed: u64, candidate: VersionModel, lag: (u64, u64)) -> SimAws {
    let stable = Behavior { error_rate: 0.0, ..Behavior::default() };
    SimAws::new(
        t0(),
        seed,
        vec![model(candidate, stable)],
        lag,
        vec![ScheduledAlarm { name: "5xx".into(), states: vec![(600, AlarmValue::Alarm)] }],
        0,
    )
}

fn split(s: &SimAws, weight: f64) {
    let rev = s.aws.alias("orders", "live").unwrap().revision_id;
    block_on(s.update_alias("orders", "live", &AliasRouting::split("1", "2", weight), Some(&rev))).unwrap();
}

#[test]
fn traffic_follows_the_weights_with_a_probabilistic_split() {
    let s = sim(1, VersionModel::default(), (0, 0));
    split(&s, 0.1);
    s.set_now(t0().plus_secs(3600));
    let m = block_on(s.fetch(&[key("2"), key("1")], t0(), t0().plus_secs(3600))).unwrap();
    let (c, b) = (m[0].totals().invocations, m[1].totals().invocations);
    // 36,000 requests expected; 10% is 3,600 with a standard deviation near 60.
    assert!((34_500..37_500).contains(&(c + b)), "total {}", c + b);
    assert!((3_300..3_900).contains(&c), "candidate {c}");
    assert_eq!(m[0].minutes.len(), 60);
}

#[test]
fn metrics_arrive_after_the_lag() {
    let s = sim(2, VersionModel::default(), (120, 120));
    split(&s, 0.5);
    s.set_now(t0().plus_secs(150));
    let seen = |s: &SimAws| block_on(s.fetch(&[key("2")], t0(), t0().plus_secs(600))).unwrap()[0].minutes.len();
    assert_eq!(seen(&s), 0, "the first minute ends at 60 s and shows at 180 s");
    s.set_now(t0().plus_secs(181));
    assert_eq!(seen(&s), 1);
    s.set_now(t0().plus_secs(299));
    assert_eq!(seen(&s), 2);
    s.set_now(t0().plus_secs(300));
    assert_eq!(seen(&s), 3, "the minute ending at 180 s shows at exactly 300 s");
}

#[test]
fn behavior_changes_at_its_time() {
    let failing = Behavior { error_rate: 0.5, ..Behavior::default() };
    let model = VersionModel {
        behavior: Behavior { error_rate: 0.0, ..Behavior::default() },
        changes: vec![Change { after_seconds: 600, behavior: failing }],
    };
    let s = sim(3, model, (0, 0));
    split(&s, 0.5);
    s.set_now(t0().plus_secs(1200));
    let before = block_on(s.fetch(&[key("2")], t0(), t0().plus_secs(600))).unwrap()[0].totals();
    let after = block_on(s.fetch(&[key("2")], t0().plus_secs(600), t0().plus_secs(1200))).unwrap()[0].totals();
    assert_eq!(before.errors, 0);
    let rate = after.errors as f64 / after.invocations as f64;
    assert!((0.45..0.55).contains(&rate), "{rate}");
}

#[test]
fn latency_model_shows_in_p99() {
    let slow = VersionModel::steady(Behavior {
        error_rate: 0.0,
        latency_p50_ms: 200.0,
        latency_p99_ms: 1500.0,
        throttle_rate: 0.0,
        handled_error_rate: 0.0,
    });
    let s = sim(4, slow, (0, 0));
    split(&s, 0.5);
    s.set_now(t0().plus_secs(600));
    let m = block_on(s.fetch(&[key("2"), key("1")], t0(), t0().plus_secs(600))).unwrap();
    let (c, b) = (m[0].p99_duration_ms.unwrap(), m[1].p99_duration_ms.unwrap());
    assert!((1300.0..1700.0).contains(&c), "candidate p99 {c}");
    assert!((150.0..220.0).contains(&b), "stable p99 {b}");
}

#[test]
fn handled_500s_show_in_the_functions_own_metrics_per_version_and_not_in_lambdas() {
    let handled = VersionModel::steady(Behavior { handled_error_rate: 0.1, error_rate: 0.0, ..Behavior::default() });
    let s = sim(6, handled, (0, 0));
    split(&s, 0.5);
    s.set_now(t0().plus_secs(600));
    let series = |version: &str, metric: &str| CustomSeries {
        namespace: "any".into(),
        metric: metric.into(),
        dimensions: vec![(SERVICE_DIMENSION.into(), "orders".into()), (VERSION_DIMENSION.into(), version.into())],
        stat: "Sum".into(),
    };
    let query = |version: &str| MetricQuery {
        custom: vec![series(version, "Http5xx"), series(version, "Requests"), series(version, "Typo")],
        ..key(version)
    };
    let m = block_on(s.fetch(&[query("2"), query("1")], t0(), t0().plus_secs(600))).unwrap();
    let sum = |points: &[CustomPoint]| points.iter().map(|(_, v)| v).sum::<f64>();
    let (bad, all) = (sum(&m[0].custom[0]), sum(&m[0].custom[1]));
    assert_eq!(all as u64, m[0].totals().invocations, "every answered invocation is a request");
    assert_eq!(m[0].totals().errors, 0, "a handled 500 is a success to Lambda");
    assert!((0.08..0.12).contains(&(bad / all)), "{bad} of {all}");
    assert_eq!(sum(&m[1].custom[0]), 0.0, "the stable version answers none");
    assert_eq!(m[1].custom[1].len(), 10, "a datapoint per minute");
    assert!(m[0].custom[2].is_empty(), "a metric the function does not emit has no data");
}

#[test]
fn throttles_are_counted_apart_from_invocations() {
    let throttled = VersionModel::steady(Behavior { throttle_rate: 0.2, ..Behavior::default() });
    let s = sim(5, throttled, (0, 0));
    split(&s, 0.5);
    s.set_now(t0().plus_secs(600));
    let t = block_on(s.fetch(&[key("2")], t0(), t0().plus_secs(600))).unwrap()[0].totals();
    let share = t.throttles as f64 / (t.throttles + t.invocations) as f64;
    assert!((0.17..0.23).contains(&share), "{share}");
}

#[test]
fn same_seed_same_traffic() {
    let run = |seed| {
        let s = sim(seed, VersionModel::default(), (30, 90));
        split(&s, 0.3);
        s.set_now(t0().plus_secs(900));
        block_on(s.fetch(&[key("2")], t0(), t0().plus_secs(900))).unwrap()
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10));
}

#[test]
fn scheduled_alarms_change_state() {
    let s = sim(6, VersionModel::default(), (0, 0));
    let names = ["5xx".to_owned(), "missing".to_owned()];
    let early = block_on(s.alarm_states(&names)).unwrap();
    assert_eq!((early[0].state, early[1].state), (Some(AlarmValue::Ok), None));
    s.set_now(t0().plus_secs(601));
    assert_eq!(block_on(s.alarm_states(&names)).unwrap()[0].state, Some(AlarmValue::Alarm));
}

#[test]
fn the_stable_version_has_served_before_the_start_and_its_slow_share_is_its_tail() {
    let s = SimAws::new(t0(), 9, vec![model(VersionModel::default(), Behavior::default())], (60, 60), vec![], 3600);
    let history = block_on(s.fetch(&[key("1")], t0().plus_secs(-3600), t0())).unwrap();
    let totals = history[0].totals();
    assert!((34_000..38_000).contains(&totals.invocations), "an hour at 10 req/s: {}", totals.invocations);
    assert_eq!(totals.durations, totals.invocations, "every invocation reports its duration");
    let p99 = history[0].p99_duration_ms.unwrap();
    assert!((170.0..190.0).contains(&p99), "{p99}");
    let slow = MetricQuery { slow_above_ms: Some(p99), limit_ms: Some(40.0), ..key("1") };
    let t = block_on(s.fetch(&[slow], t0().plus_secs(-3600), t0())).unwrap()[0].totals();
    let share = t.slow as f64 / t.durations as f64;
    assert!((0.008..0.012).contains(&share), "about 1% slower than the p99: {share}");
    let half = t.over_limit as f64 / t.durations as f64;
    assert!((0.48..0.52).contains(&half), "half are slower than the 40 ms median: {half}");
}
