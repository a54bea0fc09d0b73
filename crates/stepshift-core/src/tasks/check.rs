//! "Check health": fetch the per-version metrics and the alarms, judge them, and decide
//! the next move.

use serde::Deserialize;
use tracing::info;

use crate::compare::{
    BaselineRate, Budget, Comparison, MinutePair, TESTS_PER_TARGET, TestSettings, compare, pair_minutes,
};
use crate::control;
use crate::custom::{self, CustomSample, CustomValue, Kind};
use crate::deployment::{Decision, Plan, PlannedTarget, Progress, Traffic, decide};
use crate::error::TaskError;
use crate::judge::{TargetSample, VersionSample, Window, judge};
use crate::outcomes::OutcomeSource;
use crate::ports::{AlarmSource, CustomPoint, MinuteCounts, ParameterStore, VersionMetrics};
use crate::routers::{self, ObservePorts, Observed, Side};
use crate::time::{Clock, Timestamp};

mod fast_path;
use fast_path as fast;

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
/// The routers read every target's candidate and stable side, minute by minute, since
/// the deployment began (less the metric lag); for Lambda aliases one GetMetricData
/// call: invocations, errors, throttles, Duration's sample count, and the invocations
/// slower than the history's p99 and than the absolute p99 limit.
/// - The sequential tests ([`crate::compare`]) use all of those minutes: the stable
///   version over the same minutes while traffic is split, and the stable version's
///   history (joined by its minutes during the deployment) once the candidate has all
///   traffic.
/// - The absolute limits (error rate, p99, throttles) and the invocation minimum read
///   the most recent `health.window_seconds` of delivered minutes, within the step's
///   window, which starts `health.metric_lag_seconds` before the step began so that
///   data from the end of the previous step, which CloudWatch delivers late, counts.
///
/// Each target's minutes come from its router ([`crate::routers::Observes::observe`]):
/// a Route53 record is judged the same way on its distributions' CloudFront minutes
/// (requests as invocations, 5xx responses as errors, 4xx responses in a test of their
/// own); a target its router cannot observe is judged on its alarms only.
///
/// While the fast path is live ([`crate::outcomes`]), each target also gets the same
/// tests over `tally`'s 10-second counts, with the false-alarm budget split over all of
/// its tests. Those tests can only add a failure: the fast path rolls back, never
/// promotes. When it cannot be read, the check goes on without it and says so in the
/// verdict's notes.
pub async fn check<P: ObservePorts + AlarmSource + OutcomeSource + ParameterStore + Clock>(
    ports: &P,
    input: CheckInput,
) -> Result<Progress, TaskError> {
    let CheckInput { plan, traffic, progress } = input;
    let started = traffic.step_started_at.ok_or_else(|| {
        TaskError::InvalidTaskInput("check-health: traffic.step_started_at is null; no traffic was shifted yet".into())
    })?;
    let cursor = &progress.cursor;
    if cursor.promote && (plan.lock_in_seconds == 0 || progress.control.skip_lock_in) {
        // No lock-in window was asked for (or a person skipped it): nothing to watch.
        return Ok(Progress { decision: Decision::Confirm, ..progress });
    }
    let now = ports.now();
    let step = window_for(&plan, started, now);
    let since = deployment_start(&plan).min(step.start);
    let observed = routers::observe(ports, &plan, since, step.end).await?;
    let alarms =
        if plan.health.alarms.is_empty() { Vec::new() } else { ports.alarm_states(&plan.health.alarms).await? };
    let judged = Judged { plan: &plan, step, full_since: full_traffic_since(&plan, started, cursor.promote) };
    let (fast, mut notes) = fast::read(ports, &plan, &traffic, started, now).await;
    // A target without minutes is judged on its alarms only (validation asked for some).
    let mut samples: Vec<TargetSample> = Vec::new();
    for ((t, o), f) in plan.targets.iter().zip(observed).zip(fast) {
        let Some(o) = o else { continue };
        let mut sample = judged.sample(t, &o);
        if let Some(f) = f {
            (sample.fast_failures, sample.fast_slow) = judged.fast_tests(t, &f);
            notes.push(fast::note(&t.qualified(), &f, &o.candidate, plan.started_at));
        }
        notes.extend(custom::missing_data(&plan.health.metrics, t).into_iter().map(|(_, _, why)| why));
        samples.push(sample);
    }
    let mut verdict = judge(&plan.health, samples, alarms, step, now);
    verdict.notes = notes;
    info!(step = cursor.index, status = ?verdict.status, reasons = ?verdict.reasons, "health checked");
    let decided = decide(&plan, &progress, started, verdict, now);
    // The command is read after the metrics, so that one given during the check counts.
    let command = match &plan.control {
        Some(name) => control::read(ports, name, &plan.execution).await?,
        None => None,
    };
    let next = control::apply(&plan, &progress, decided, command, now);
    if let Some(note) = &next.control.note {
        info!(step = cursor.index, note, "command applied");
    }
    Ok(next)
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
    fn settings(&self, tolerance_percent: f64, lower_is_worse: bool) -> TestSettings {
        let h = &self.plan.health;
        TestSettings {
            tolerance: tolerance_percent / 100.0,
            drift: h.baseline.drift_percent / 100.0,
            alpha: Budget::new(h.false_alarm_percent / 100.0, self.plan.targets.len(), tests_per_target(self.plan))
                .per_test,
            origin: deployment_start(self.plan),
            planned_minutes: planned_minutes(self.plan),
            lower_is_worse,
        }
    }

    fn test(&self, tolerance_percent: f64, minutes: &[MinutePair], history: Option<BaselineRate>) -> Comparison {
        compare(minutes, history, &self.settings(tolerance_percent, false))
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

    /// One target's numbers: its tests over every minute so far (errors always; slow
    /// invocations when the history gave a threshold; a front end's 4xx), and the
    /// absolute rules' window.
    fn sample(&self, t: &PlannedTarget, o: &Observed) -> TargetSample {
        let (c, s) = (&o.candidate, &o.stable);
        let count = |m: &MinuteCounts| (m.invocations, m.errors);
        let history = t.history.as_ref();
        let tolerance = self.plan.health.error_rate.max_increase_percent;
        let errors = tolerance.map(|tol| {
            let baseline = self.joined(history.map(|h| h.errors), &s.minutes, count);
            self.test(tol, &pair_minutes(&c.minutes, &s.minutes, count), baseline)
        });
        let has_threshold = history.is_some_and(|h| h.slow_above_ms.is_some());
        let slow = self.plan.health.p99_duration.max_slow_increase_percent.filter(|_| has_threshold).map(|tol| {
            let slow = |m: &MinuteCounts| (m.durations, m.slow);
            let baseline = self.joined(history.and_then(|h| h.slow), &s.minutes, slow);
            self.test(tol, &pair_minutes(&c.minutes, &s.minutes, slow), baseline)
        });
        let split = self.full_since.is_none();
        let client_errors = o.client_errors.as_ref().filter(|_| split || t.history.is_some()).and_then(|(c4, s4)| {
            let baseline = self.joined(history.and_then(|h| h.client_errors), s4, count);
            tolerance.map(|tol| self.test(tol, &pair_minutes(c4, s4, count), baseline))
        });
        let window = recent(&c.minutes, self.step, self.plan.health.window_seconds);
        let within = |m: &VersionMetrics| VersionMetrics {
            minutes: m.minutes.iter().filter(|x| x.start >= window.start && x.start < window.end).copied().collect(),
            p99_duration_ms: m.p99_duration_ms,
            custom: Vec::new(),
        };
        TargetSample {
            target: t.qualified(),
            candidate: VersionSample::from_metrics(&t.route.name(&t.candidate, Side::Candidate), &within(c)),
            baseline: split.then(|| VersionSample::from_metrics(&t.route.name(&t.stable, Side::Stable), &within(s))),
            comparison: errors,
            slow,
            client_errors,
            fast_failures: None,
            fast_slow: None,
            history: t.history.clone(),
            stable_version: t.route.name(&t.stable, Side::Stable),
            window: Some(window),
            custom: self.custom(t, o, window),
        }
    }

    /// Every custom rule's numbers for one target ([`crate::custom`]): a rate's test
    /// over every minute so far, against the same baselines as errors, and its rate over
    /// the window; a gauge's mean over the window, and the stable version's over the same
    /// minutes (or its history, once the candidate has all traffic).
    fn custom(&self, t: &PlannedTarget, o: &Observed, window: Window) -> Vec<CustomSample> {
        let rules = &self.plan.health.metrics;
        let (candidate, stable) = (custom::split(rules, &o.candidate.custom), custom::split(rules, &o.stable.custom));
        let split = self.full_since.is_none();
        let inside = |m: &&MinuteCounts| m.start >= window.start && m.start < window.end;
        let rate = |x: &[MinuteCounts]| CustomValue::rate(&x.iter().filter(inside).copied().collect::<Vec<_>>());
        let count = |m: &MinuteCounts| (m.invocations, m.errors);
        rules
            .iter()
            .enumerate()
            .zip(candidate.into_iter().zip(stable))
            .map(|((j, rule), (c, s))| {
                let history = t.history.as_ref().and_then(|h| h.custom.get(j));
                let mut sample = CustomSample {
                    name: rule.name.clone(),
                    mode: rule.mode,
                    candidate: CustomValue::default(),
                    baseline: None,
                    comparison: None,
                    history_value: None,
                };
                match rule.kind() {
                    Some(Kind::Rate { higher_is_better, .. }) => {
                        let (cc, sc) = (custom::as_counts(c), custom::as_counts(s));
                        sample.comparison = rule.tolerance().map(|tol| {
                            let baseline = self.joined(history.and_then(|h| h.rate), &sc, count);
                            compare(&pair_minutes(&cc, &sc, count), baseline, &self.settings(tol, higher_is_better))
                        });
                        sample.candidate = rate(&cc);
                        sample.baseline = split.then(|| rate(&sc));
                    }
                    _ => {
                        let mean =
                            |x: &[Vec<CustomPoint>]| x.first().and_then(|p| custom::mean(p, window.start, window.end));
                        sample.candidate.value = mean(c);
                        if split {
                            sample.baseline = Some(CustomValue { value: mean(s), ..CustomValue::default() });
                        } else {
                            sample.history_value = history.and_then(|h| h.value);
                        }
                    }
                }
                sample
            })
            .collect()
    }
}

/// The tests each target's share of the false-alarm budget is split over: errors and
/// slow invocations (or a front end's 5xx and 4xx), the fast path's two when the
/// request asked for it (whether or not it is live: the budget is fixed at the start),
/// and one per custom rate rule that compares ([`crate::custom::tests`]).
pub fn tests_per_target(plan: &Plan) -> usize {
    TESTS_PER_TARGET + if plan.health.fast_path.enabled { fast::TESTS } else { 0 } + custom::tests(&plan.health.metrics)
}

impl Judged<'_> {
    /// The fast path's failure and slow tests of one target over its buckets: the
    /// candidate's against the stable version's of the same 10 seconds, or against the
    /// stable history once the candidate has all traffic.
    fn fast_tests(&self, t: &PlannedTarget, f: &fast::Buckets) -> (Option<Comparison>, Option<Comparison>) {
        let history = t.history.as_ref();
        let failures = self
            .plan
            .health
            .error_rate
            .max_increase_percent
            .map(|tol| self.test(tol, &f.pairs(|b| (b.invocations, b.failures)), history.map(|h| h.errors)));
        let slow = self
            .plan
            .health
            .p99_duration
            .max_slow_increase_percent
            .filter(|_| history.is_some_and(|h| h.slow_above_ms.is_some()))
            .map(|tol| self.test(tol, &f.pairs(|b| (b.invocations, b.slow)), history.and_then(|h| h.slow)));
        (failures, slow)
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
