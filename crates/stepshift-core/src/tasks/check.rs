//! "Check health": fetch the per-version metrics and the alarms, judge them, and decide
//! the next move.

use serde::Deserialize;
use tracing::info;

use crate::compare::{
    BaselineRate, Budget, Comparison, MinutePair, TESTS_PER_TARGET, TestSettings, compare, pair_minutes,
};
use crate::deployment::{Decision, Plan, PlannedTarget, Progress, Traffic, decide};
use crate::error::TaskError;
use crate::judge::{TargetSample, VersionSample, Window, judge};
use crate::ports::{AlarmSource, MetricQuery, MetricSeriesKey, MetricsSource, MinuteCounts, VersionMetrics};
use crate::route53::health::{DistributionMetrics, DistributionMetricsSource};
use crate::time::{Clock, Timestamp};

/// Input of "Check health".
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckInput {
    /// `$.plan`.
    pub plan: Plan,
    /// `$.traffic`.
    pub traffic: Traffic,
    /// `$.progress`.
    pub progress: Progress,
}

/// Judges the current step and returns the progress with the next decision.
///
/// One GetMetricData call reads every target's candidate and stable version, minute by
/// minute, since the deployment began (less the metric lag): invocations, errors,
/// throttles, Duration's sample count, and the invocations slower than the history's
/// p99 and than the absolute p99 limit.
/// - The sequential tests ([`crate::compare`]) use all of those minutes: the stable
///   version over the same minutes while traffic is split, and the stable version's
///   history (joined by its minutes during the deployment) once the candidate has all
///   traffic.
/// - The absolute limits (error rate, p99, throttles) and the invocation minimum read
///   the most recent `health.window_seconds` of delivered minutes, within the step's
///   window, which starts `health.metric_lag_seconds` before the step began so that
///   data from the end of the previous step, which CloudWatch delivers late, counts.
///
/// A Route53 record is judged the same way on its distributions' CloudFront minutes:
/// green is the candidate, blue the stable version, requests count as invocations and
/// 5xx responses as errors; 4xx responses get a test of their own.
pub async fn check<P: MetricsSource + DistributionMetricsSource + AlarmSource + Clock>(
    ports: &P,
    input: CheckInput,
) -> Result<Progress, TaskError> {
    let CheckInput { plan, traffic, progress } = input;
    let started = traffic.step_started_at.ok_or_else(|| {
        TaskError::InvalidTaskInput("check-health: traffic.step_started_at is null; no traffic was shifted yet".into())
    })?;
    let cursor = &progress.cursor;
    if cursor.promote && plan.lock_in_seconds == 0 {
        // No lock-in window was asked for: nothing to watch after promotion.
        return Ok(Progress { decision: Decision::Confirm, ..progress });
    }
    let now = ports.now();
    let step = window_for(&plan, started, now);
    let since = deployment_start(&plan).min(step.start);
    let queries = metric_queries(&plan);
    let metrics = if queries.is_empty() { Vec::new() } else { ports.fetch(&queries, since, step.end).await? };
    let alarms =
        if plan.health.alarms.is_empty() { Vec::new() } else { ports.alarm_states(&plan.health.alarms).await? };
    let judged = Judged { plan: &plan, step, full_since: full_traffic_since(&plan, started, cursor.promote) };

    let mut samples = Vec::with_capacity(plan.targets.len());
    let aliases = plan.targets.iter().filter(|t| t.record.is_none());
    for (i, t) in aliases.enumerate() {
        let (c, s) = (&metrics[2 * i], &metrics[2 * i + 1]);
        let errors = pair_minutes(&c.minutes, &s.minutes, |m| (m.invocations, m.errors));
        let slow = pair_minutes(&c.minutes, &s.minutes, |m| (m.durations, m.slow));
        let history = t.history.as_ref();
        let stable_errors = judged.joined(history.map(|h| h.errors), &s.minutes, |m| (m.invocations, m.errors));
        let stable_slow = judged.joined(history.and_then(|h| h.slow), &s.minutes, |m| (m.durations, m.slow));
        let has_threshold = history.is_some_and(|h| h.slow_above_ms.is_some());
        samples.push(
            judged.sample(
                t,
                (t.candidate.clone(), c),
                (t.stable.clone(), s),
                [
                    plan.health.error_rate.max_increase_percent.map(|tol| judged.test(tol, &errors, stable_errors)),
                    plan.health
                        .p99_duration
                        .max_slow_increase_percent
                        .filter(|_| has_threshold)
                        .map(|tol| judged.test(tol, &slow, stable_slow)),
                    None,
                ],
            ),
        );
    }
    for t in plan.targets.iter().filter(|t| t.record.is_some()) {
        let r = &t.record.as_ref().expect("filtered").target;
        let (Some(green), Some(blue)) = (&r.green.distribution_id, &r.blue.distribution_id) else {
            continue; // Judged on its alarms only; validation asked for some.
        };
        let found = ports.distribution_metrics(&[green.clone(), blue.clone()], since, step.end).await?;
        let none = DistributionMetrics::default();
        let (g, b) = (found.first().unwrap_or(&none), found.get(1).unwrap_or(&none));
        // CloudFront has no duration to judge: a distribution is its 5xx minutes.
        let as_version = |minutes| VersionMetrics { minutes, p99_duration_ms: None };
        let (c, s) = (as_version(g.minutes_5xx()), as_version(b.minutes_5xx()));
        let (c4, s4) = (g.minutes_4xx(), b.minutes_4xx());
        let count = |m: &MinuteCounts| (m.invocations, m.errors);
        let history = t.history.as_ref();
        let five = judged.joined(history.map(|h| h.errors), &s.minutes, count);
        let four = judged.joined(history.and_then(|h| h.client_errors), &s4, count);
        let tolerance = plan.health.error_rate.max_increase_percent;
        samples.push(judged.sample(
            t,
            (format!("green {green}"), &c),
            (format!("blue {blue}"), &s),
            [
                tolerance.map(|tol| judged.test(tol, &pair_minutes(&c.minutes, &s.minutes, count), five)),
                None,
                tolerance.map(|tol| judged.test(tol, &pair_minutes(&c4, &s4, count), four)),
            ],
        ));
    }
    let verdict = judge(&plan.health, samples, alarms, step, now);
    info!(step = cursor.index, status = ?verdict.status, reasons = ?verdict.reasons, "health checked");
    Ok(decide(&plan, &progress, started, verdict, now))
}

/// What every target of one check shares.
struct Judged<'a> {
    plan: &'a Plan,
    /// The step's window.
    step: Window,
    /// When the candidate took all traffic, if it has: the stable version's minutes
    /// from the deployment's start up to then (less the metric lag) join its history.
    full_since: Option<Timestamp>,
}

impl Judged<'_> {
    fn settings(&self, tolerance_percent: f64) -> TestSettings {
        let h = &self.plan.health;
        TestSettings {
            tolerance: tolerance_percent / 100.0,
            drift: h.baseline.drift_percent / 100.0,
            alpha: Budget::new(h.false_alarm_percent / 100.0, self.plan.targets.len(), TESTS_PER_TARGET).per_test,
            origin: deployment_start(self.plan),
            planned_minutes: planned_minutes(self.plan),
        }
    }

    fn test(&self, tolerance_percent: f64, minutes: &[MinutePair], history: Option<BaselineRate>) -> Comparison {
        compare(minutes, history, &self.settings(tolerance_percent))
    }

    /// The history's rate joined by the stable version's minutes during the deployment,
    /// once the candidate has all traffic; `None` before.
    fn joined(
        &self,
        history: Option<BaselineRate>,
        stable: &[MinuteCounts],
        count: impl Fn(&MinuteCounts) -> (u64, u64),
    ) -> Option<BaselineRate> {
        let until = self.full_since?;
        let from = self.plan.started_at.floor_minute();
        let mut rate = history.unwrap_or_default();
        for m in stable.iter().filter(|m| m.start >= from && m.start < until) {
            let (n, k) = count(m);
            rate.invocations += n;
            rate.events += k;
        }
        (rate.invocations > 0).then_some(rate)
    }

    fn sample(
        &self,
        t: &PlannedTarget,
        (candidate, c): (String, &VersionMetrics),
        (stable, s): (String, &VersionMetrics),
        [comparison, slow, client_errors]: [Option<Comparison>; 3],
    ) -> TargetSample {
        let window = recent(&c.minutes, self.step, self.plan.health.window_seconds);
        let within = |m: &VersionMetrics| VersionMetrics {
            minutes: m.minutes.iter().filter(|x| x.start >= window.start && x.start < window.end).copied().collect(),
            p99_duration_ms: m.p99_duration_ms,
        };
        let split = self.full_since.is_none();
        let (function, alias) = match &t.record {
            Some(_) => (t.qualified(), String::new()),
            None => (t.function.clone(), t.alias.clone()),
        };
        TargetSample {
            function,
            alias,
            candidate: VersionSample::from_metrics(&candidate, &within(c)),
            baseline: split.then(|| VersionSample::from_metrics(&stable, &within(s))),
            comparison,
            slow,
            client_errors: client_errors.filter(|_| split || t.history.is_some()),
            history: t.history.clone(),
            stable_version: stable,
            window: Some(window),
        }
    }
}

/// The rolling window of the absolute rules: the last `seconds` of minutes up to the
/// newest one with data, within the step's window.
fn recent(minutes: &[MinuteCounts], step: Window, seconds: u64) -> Window {
    let newest = minutes.iter().filter(|m| m.start >= step.start && m.invocations > 0).map(|m| m.start).max();
    let Some(newest) = newest else { return step };
    let span = i64::try_from(seconds / 60 * 60).unwrap_or(300).max(60);
    let end = newest.plus_secs(60);
    Window { start: end.plus_secs(-span).max(step.start), end }
}

/// When the candidate took all traffic, less the metric lag (so that the stable
/// version's minutes before it have arrived), if the current step is the promotion.
fn full_traffic_since(plan: &Plan, step_started: Timestamp, promote: bool) -> Option<Timestamp> {
    let lag = i64::try_from(plan.health.metric_lag_seconds).unwrap_or(0);
    promote.then(|| step_started.plus_secs(-lag).floor_minute())
}

/// How many minutes the deployment plans to watch: every bake, the lock-in and the
/// metric lag. Onsets after them are still covered ([`crate::compare`]).
pub fn planned_minutes(plan: &Plan) -> u64 {
    let watched: u64 = (0..plan.steps.len()).map(|i| plan.bake_of(i)).sum();
    (watched + plan.health.metric_lag_seconds).div_ceil(60).max(1)
}

/// The window of a check's step at `now`, for a step that began at `started`.
pub fn window_for(plan: &Plan, started: Timestamp, now: Timestamp) -> Window {
    let lag = i64::try_from(plan.health.metric_lag_seconds).unwrap_or(0);
    Window { start: started.plus_secs(-lag).floor_minute(), end: now.ceil_minute() }
}

/// Where the comparison's minutes begin: the deployment's start, less the metric lag.
pub fn deployment_start(plan: &Plan) -> Timestamp {
    let lag = i64::try_from(plan.health.metric_lag_seconds).unwrap_or(0);
    plan.started_at.plus_secs(-lag).floor_minute()
}

/// The queries a check makes: each target's candidate, then its stable version, with
/// the history's p99 as the slow threshold and the absolute p99 limit.
pub fn metric_queries(plan: &Plan) -> Vec<MetricQuery> {
    let mut out = Vec::new();
    for t in plan.targets.iter().filter(|t| t.record.is_none()) {
        for version in [&t.candidate, &t.stable] {
            out.push(MetricQuery {
                series: MetricSeriesKey {
                    function: t.function.clone(),
                    alias: t.alias.clone(),
                    version: version.clone(),
                },
                slow_above_ms: t.history.as_ref().and_then(|h| h.slow_above_ms),
                limit_ms: plan.health.p99_duration.max_ms,
            });
        }
    }
    out
}
