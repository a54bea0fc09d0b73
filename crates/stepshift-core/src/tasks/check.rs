//! "Check health": fetch the window's per-version metrics and the alarms, judge them,
//! and decide the next move.

use serde::Deserialize;
use tracing::info;

use crate::compare::compare_error_rates;
use crate::deployment::{Decision, Plan, Progress, Traffic, decide};
use crate::error::TaskError;
use crate::judge::{TargetSample, VersionSample, Window, judge};
use crate::ports::{AlarmSource, MetricSeriesKey, MetricsSource, VersionMetrics};
use crate::route53::health::{DistributionMetrics, DistributionMetricsSource};
use crate::time::Clock;

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
/// minute, since the deployment began (less the metric lag):
/// - the comparison of error rates uses all of those minutes (it is a sequential test:
///   more data only makes it surer);
/// - the absolute limits and the invocation minimum use the step's window, which starts
///   `health.metric_lag_seconds` before the step began, so that data from the end of
///   the previous step, which CloudWatch delivers late, still counts;
/// - p99 durations are over the whole deployment so far.
///
/// A Route53 record is judged the same way on its distributions' CloudFront minutes:
/// green is the candidate, blue the stable version, requests count as invocations and
/// 5xx responses as errors.
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
    let window = window_for(&plan, started, now);
    let since = deployment_start(&plan).min(window.start);
    let keys = series_keys(&plan);
    let metrics = if keys.is_empty() { Vec::new() } else { ports.fetch(&keys, since, window.end).await? };
    let alarms =
        if plan.health.alarms.is_empty() { Vec::new() } else { ports.alarm_states(&plan.health.alarms).await? };
    let alpha = plan.health.false_alarm_percent / 100.0 / plan.targets.len().max(1) as f64;
    let in_window = |m: &VersionMetrics| VersionMetrics {
        minutes: m.minutes.iter().filter(|x| x.start >= window.start).copied().collect(),
        p99_duration_ms: m.p99_duration_ms,
    };
    let mut samples = Vec::with_capacity(plan.targets.len());
    let aliases = plan.targets.iter().filter(|t| t.record.is_none());
    for (i, t) in aliases.enumerate() {
        let (c, s) = (&metrics[2 * i], &metrics[2 * i + 1]);
        let candidate = VersionSample::from_metrics(&t.candidate, &in_window(c));
        // Once promoted, the stable version serves nothing: no baseline for the step.
        let baseline = (!cursor.promote).then(|| VersionSample::from_metrics(&t.stable, &in_window(s)));
        let comparison = plan
            .health
            .error_rate
            .max_increase_percent
            .map(|tolerance| compare_error_rates(&c.minutes, &s.minutes, tolerance / 100.0, alpha));
        samples.push(TargetSample {
            function: t.function.clone(),
            alias: t.alias.clone(),
            candidate,
            baseline,
            comparison,
            client_errors: None,
        });
    }
    for t in plan.targets.iter().filter(|t| t.record.is_some()) {
        let r = &t.record.as_ref().expect("filtered").target;
        let (Some(green), Some(blue)) = (&r.green.distribution_id, &r.blue.distribution_id) else {
            continue; // Judged on its alarms only; validation asked for some.
        };
        let found = ports.distribution_metrics(&[green.clone(), blue.clone()], since, window.end).await?;
        let none = DistributionMetrics::default();
        let (g, b) = (found.first().unwrap_or(&none), found.get(1).unwrap_or(&none));
        // CloudFront has no duration to judge: a distribution is its 5xx minutes.
        let as_version = |minutes| VersionMetrics { minutes, p99_duration_ms: None };
        let (c, s) = (as_version(g.minutes_5xx()), as_version(b.minutes_5xx()));
        let tolerance = plan.health.error_rate.max_increase_percent.map(|p| p / 100.0);
        samples.push(TargetSample {
            function: t.qualified(),
            alias: String::new(),
            candidate: VersionSample::from_metrics(&format!("green {green}"), &in_window(&c)),
            baseline: (!cursor.promote).then(|| VersionSample::from_metrics(&format!("blue {blue}"), &in_window(&s))),
            comparison: tolerance.map(|tol| compare_error_rates(&c.minutes, &s.minutes, tol, alpha)),
            client_errors: tolerance
                .filter(|_| !cursor.promote)
                .map(|tol| compare_error_rates(&g.minutes_4xx(), &b.minutes_4xx(), tol, alpha)),
        });
    }
    let verdict = judge(&plan.health, samples, alarms, window, now);
    info!(step = cursor.index, status = ?verdict.status, reasons = ?verdict.reasons, "health checked");
    Ok(decide(&plan, &progress, started, verdict, now))
}

/// The window of a check's absolute rules at `now`, for a step that began at `started`.
pub fn window_for(plan: &Plan, started: crate::Timestamp, now: crate::Timestamp) -> Window {
    let lag = i64::try_from(plan.health.metric_lag_seconds).unwrap_or(0);
    Window { start: started.plus_secs(-lag).floor_minute(), end: now.ceil_minute() }
}

/// Where the comparison's minutes begin: the deployment's start, less the metric lag.
pub fn deployment_start(plan: &Plan) -> crate::Timestamp {
    let lag = i64::try_from(plan.health.metric_lag_seconds).unwrap_or(0);
    plan.started_at.plus_secs(-lag).floor_minute()
}

/// The series a check reads: each target's candidate, then its stable version.
pub fn series_keys(plan: &Plan) -> Vec<MetricSeriesKey> {
    let mut keys = Vec::new();
    for t in plan.targets.iter().filter(|t| t.record.is_none()) {
        for version in [&t.candidate, &t.stable] {
            keys.push(MetricSeriesKey {
                function: t.function.clone(),
                alias: t.alias.clone(),
                version: version.clone(),
            });
        }
    }
    keys
}
