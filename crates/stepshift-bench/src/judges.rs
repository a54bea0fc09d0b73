//! The judges the benchmark compares, all deciding on the same simulated metrics and
//! the same state machine. stepshift's own runs through the real check-health handler;
//! the others stand in for it, and share core's step progression (extensions, policy).

use futures_executor::block_on;
use serde_json::Value;
use stepshift_core::deployment::{Decision, Progress, decide};
use stepshift_core::judge::{Verdict, VerdictStatus};
use stepshift_core::ports::MinuteCounts;
use stepshift_core::routers;
use stepshift_core::tasks::check::{CheckInput, window_for};
use stepshift_core::tasks::decode;
use stepshift_core::{Clock, TaskError, Timestamp, encode};
use stepshift_local::runner::CheckOverride;
use stepshift_local::sim::SimAws;
use stepshift_local::sim::latency::phi;

/// A judge under comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judge {
    /// stepshift's judge, with its defaults: CloudWatch's minute metrics only.
    Stepshift,
    /// stepshift's judge with the fast path (`health.fast_path.enabled`): the same
    /// minute checks, and checks every 20 s of the simulated tally's 10-second counts.
    StepshiftTally,
    /// stepshift's judge with a custom rule on the function's own metrics:
    /// [`stepshift_local::scenario::handled_5xx_rule`] in `health.metrics`, handled
    /// HTTP 500s per request. Only in the handled-5xx family, not in [`ALL`].
    StepshiftRule,
    /// The common recipe: candidate error rate above 5% with at least 5 invocations.
    Seeds,
    /// A popular Step Functions sample: any candidate error in the last 60 seconds.
    AnyError60s,
    /// A CodeDeploy-style alarm on the alias-wide error rate: 1-minute periods, 2 of the
    /// last 3 above twice the usual error rate.
    AliasAlarm,
    /// Kayenta-style: Mann-Whitney U of per-minute error rates, candidate against
    /// baseline, at 98% confidence, from 3 minutes each.
    MannWhitney,
}

/// Every judge, in table order.
pub const ALL: [Judge; 6] =
    [Judge::Stepshift, Judge::StepshiftTally, Judge::Seeds, Judge::AnyError60s, Judge::AliasAlarm, Judge::MannWhitney];

impl Judge {
    /// The name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Judge::Stepshift => "stepshift",
            Judge::StepshiftTally => "stepshift + tally",
            Judge::StepshiftRule => "stepshift + http-5xx rule",
            Judge::Seeds => "5% / ≥5 inv.",
            Judge::AnyError60s => "any error 60 s",
            Judge::AliasAlarm => "alias alarm 2/3",
            Judge::MannWhitney => "Mann-Whitney U",
        }
    }

    /// Whether this is stepshift's own judge (with or without the fast path or a custom
    /// rule).
    pub fn is_stepshift(self) -> bool {
        matches!(self, Judge::Stepshift | Judge::StepshiftTally | Judge::StepshiftRule)
    }

    /// The check-health stand-in, or `None` for stepshift's own handler.
    /// `usual_error_rate` is what an operator would have tuned the alarm to.
    pub fn check(self, usual_error_rate: f64) -> Option<CheckOverride> {
        let rule: fn(&Ctx, f64) -> (VerdictStatus, String) = match self {
            Judge::Stepshift | Judge::StepshiftTally | Judge::StepshiftRule => return None,
            Judge::Seeds => seeds,
            Judge::AnyError60s => any_error,
            Judge::AliasAlarm => alias_alarm,
            Judge::MannWhitney => mann_whitney,
        };
        Some(Box::new(move |aws: &SimAws, input: Value| run(aws, input, |ctx| rule(ctx, usual_error_rate))))
    }
}

/// What a stand-in judge can see at a check.
struct Ctx<'a> {
    aws: &'a SimAws,
    input: &'a CheckInput,
    now: Timestamp,
    step_window_start: Timestamp,
}

impl Ctx<'_> {
    /// Per-minute counts of (candidate, stable) of the first target from `start` to now.
    fn minutes(&self, start: Timestamp) -> (Vec<MinuteCounts>, Vec<MinuteCounts>) {
        let observed = block_on(routers::observe(self.aws, &self.input.plan, start, self.now.ceil_minute()))
            .unwrap_or_default()
            .into_iter()
            .next()
            .flatten()
            .unwrap_or_default();
        (observed.candidate.minutes, observed.stable.minutes)
    }
}

fn run(aws: &SimAws, input: Value, rule: impl Fn(&Ctx) -> (VerdictStatus, String)) -> Result<Value, TaskError> {
    let input: CheckInput = decode("bench check", input)?;
    let started = input.traffic.step_started_at.ok_or_else(|| TaskError::InvalidTaskInput("not shifted".into()))?;
    if input.progress.cursor.promote && input.plan.lock_in_seconds == 0 {
        return encode(Progress { decision: Decision::Confirm, ..input.progress });
    }
    let now = aws.now();
    let window = window_for(&input.plan, started, now);
    let ctx = Ctx { aws, input: &input, now, step_window_start: window.start };
    let (status, reason) = rule(&ctx);
    let verdict = Verdict {
        status,
        reasons: vec![reason],
        checked_at: now,
        window,
        targets: Vec::new(),
        alarms: Vec::new(),
        notes: Vec::new(),
        observed: Vec::new(),
    };
    encode(decide(&input.plan, &input.progress, started, verdict, now))
}

fn sum(minutes: &[MinuteCounts]) -> (u64, u64) {
    minutes.iter().fold((0, 0), |(i, e), m| (i + m.invocations, e + m.errors))
}

fn seeds(ctx: &Ctx, _: f64) -> (VerdictStatus, String) {
    let (invocations, errors) = sum(&ctx.minutes(ctx.step_window_start).0);
    if invocations < 5 {
        (VerdictStatus::Inconclusive, format!("{invocations} invocations"))
    } else if errors as f64 / invocations as f64 > 0.05 {
        (VerdictStatus::Unhealthy, format!("{errors} errors in {invocations}"))
    } else {
        (VerdictStatus::Healthy, String::new())
    }
}

fn any_error(ctx: &Ctx, _: f64) -> (VerdictStatus, String) {
    let (_, errors) = sum(&ctx.minutes(ctx.now.plus_secs(-60).floor_minute()).0);
    if errors > 0 {
        (VerdictStatus::Unhealthy, format!("{errors} errors"))
    } else {
        (VerdictStatus::Healthy, String::new())
    }
}

fn alias_alarm(ctx: &Ctx, usual: f64) -> (VerdictStatus, String) {
    let (c, s) = ctx.minutes(ctx.now.plus_secs(-600).floor_minute());
    let mut periods: Vec<(Timestamp, u64, u64)> = Vec::new();
    for m in c.iter().chain(&s) {
        match periods.iter_mut().find(|p| p.0 == m.start) {
            Some(p) => {
                p.1 += m.invocations;
                p.2 += m.errors;
            }
            None => periods.push((m.start, m.invocations, m.errors)),
        }
    }
    periods.sort_by_key(|p| p.0);
    // The last 3 periods that have data; missing data does not breach.
    let breaching =
        periods.iter().rev().take(3).filter(|(_, i, e)| *i > 0 && *e as f64 / *i as f64 > 2.0 * usual).count();
    if breaching >= 2 {
        (VerdictStatus::Unhealthy, format!("{breaching} of 3 periods"))
    } else {
        (VerdictStatus::Healthy, String::new())
    }
}

fn mann_whitney(ctx: &Ctx, _: f64) -> (VerdictStatus, String) {
    let (c, s) = ctx.minutes(ctx.step_window_start);
    let rates = |v: &[MinuteCounts]| -> Vec<f64> {
        v.iter().filter(|m| m.invocations > 0).map(|m| m.errors as f64 / m.invocations as f64).collect()
    };
    let (x, y) = (rates(&c), rates(&s));
    if x.len() < 3 || y.len() < 3 {
        return (VerdictStatus::Inconclusive, format!("{} and {} minutes", x.len(), y.len()));
    }
    let p = mann_whitney_greater(&x, &y);
    if p < 0.02 { (VerdictStatus::Unhealthy, format!("p = {p:.4}")) } else { (VerdictStatus::Healthy, String::new()) }
}

/// One-sided p-value that `x` tends to be greater than `y` (normal approximation with
/// the tie correction).
pub fn mann_whitney_greater(x: &[f64], y: &[f64]) -> f64 {
    let (n, m) = (x.len() as f64, y.len() as f64);
    let mut u = 0.0;
    for a in x {
        for b in y {
            u += if a > b {
                1.0
            } else if a == b {
                0.5
            } else {
                0.0
            };
        }
    }
    let mut all: Vec<f64> = x.iter().chain(y).copied().collect();
    all.sort_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut i = 0;
    while i < all.len() {
        let j = all[i..].iter().take_while(|v| **v == all[i]).count();
        let t = j as f64;
        ties += t * t * t - t;
        i += j;
    }
    let total = n + m;
    let var = n * m / 12.0 * ((total + 1.0) - ties / (total * (total - 1.0)));
    if var <= 0.0 {
        return 1.0;
    }
    let z = (u - n * m / 2.0 - 0.5) / var.sqrt();
    1.0 - phi(z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mann_whitney_by_hand() {
        // Complete separation, 4 against 4: U = 16, mean 8, var 4*4*9/12 = 12.
        let p = mann_whitney_greater(&[5.0, 6.0, 7.0, 8.0], &[1.0, 2.0, 3.0, 4.0]);
        let z: f64 = (16.0 - 8.0 - 0.5) / 12f64.sqrt();
        assert!((p - (1.0 - phi(z))).abs() < 1e-12);
        assert!(p < 0.02);
        assert!(mann_whitney_greater(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]) > 0.9);
        assert_eq!(mann_whitney_greater(&[0.0, 0.0, 0.0], &[0.0, 0.0, 0.0]), 1.0, "all tied: no evidence");
    }
}
