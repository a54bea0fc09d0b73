//! "Check health": fetch the window's per-version metrics and the alarms, judge them,
//! and decide the next move.

use serde::Deserialize;
use tracing::info;

use crate::deployment::{Decision, Plan, Progress, Traffic, decide};
use crate::error::TaskError;
use crate::judge::{TargetSample, VersionSample, Window, judge};
use crate::ports::{AlarmSource, MetricSeriesKey, MetricsSource};
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
/// The window starts `health.metric_lag_seconds` before the step began, so that data
/// from the end of the previous step, which CloudWatch delivers late, is still judged.
/// Comparing per-version rates makes the overlap harmless.
pub async fn check<P: MetricsSource + AlarmSource + Clock>(
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
    let keys = series_keys(&plan, cursor.promote);
    let metrics = ports.fetch(&keys, window.start, window.end).await?;
    let alarms =
        if plan.health.alarms.is_empty() { Vec::new() } else { ports.alarm_states(&plan.health.alarms).await? };
    let mut samples = Vec::with_capacity(plan.targets.len());
    let mut series = keys.iter().zip(&metrics);
    for t in &plan.targets {
        let (key, m) = series.next().expect("one series per key");
        let candidate = VersionSample::from_metrics(&key.version, m);
        let baseline = if cursor.promote {
            None
        } else {
            series.next().map(|(key, m)| VersionSample::from_metrics(&key.version, m))
        };
        samples.push(TargetSample { function: t.function.clone(), alias: t.alias.clone(), candidate, baseline });
    }
    let verdict = judge(&plan.health, samples, alarms, window, now);
    info!(step = cursor.index, status = ?verdict.status, reasons = ?verdict.reasons, "health checked");
    Ok(decide(&plan, &progress, started, verdict, now))
}

/// The metrics window of a check at `now` for a step that began at `started`.
pub fn window_for(plan: &Plan, started: crate::Timestamp, now: crate::Timestamp) -> Window {
    let lag = i64::try_from(plan.health.metric_lag_seconds).unwrap_or(0);
    Window { start: started.plus_secs(-lag).floor_minute(), end: now.ceil_minute() }
}

/// The series a check reads: each target's candidate and, while both serve traffic, its
/// stable version right after it.
pub fn series_keys(plan: &Plan, promoted: bool) -> Vec<MetricSeriesKey> {
    let mut keys = Vec::new();
    for t in &plan.targets {
        let key = |version: &str| MetricSeriesKey {
            function: t.function.clone(),
            alias: t.alias.clone(),
            version: version.to_owned(),
        };
        keys.push(key(&t.candidate));
        if !promoted {
            keys.push(key(&t.stable));
        }
    }
    keys
}
