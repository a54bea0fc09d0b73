//! A deployment as a story in time, for the picture ([`crate::picture`]) and the
//! pipeline summary ([`crate::summary`]): the candidate's weight step by step, the
//! pauses, the tests and the promotion, every check's evidence against its threshold,
//! and each target's minutes as CloudWatch has them.
//!
//! Built the same way from a real execution's history (`stepshift report`) and from a
//! simulation's (`stepshift simulate --report`): a [`Recorder`] sees each history event
//! with the deployment's [`View`] after it. The minutes are read again, once, with the
//! queries the checks made ([`minutes`]): the checks' outputs keep only their rolling
//! window, and the execution's payload (256 KB) could not hold every minute of a long
//! deployment.

use serde::Serialize;
use serde_json::Value;
use stepshift_core::deployment::{Plan, StepSummary};
use stepshift_core::judge::{TargetSample, Verdict, VerdictStatus};
use stepshift_core::ports::MinuteCounts;
use stepshift_core::routers::{self, ObservePorts, Side};
use stepshift_core::{State, Timestamp};

use crate::view::{Item, View};

/// How the deployment ended, or that it has not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// The candidate has all traffic and the lock-in passed.
    Promoted,
    /// The stable version has all traffic again.
    RolledBack,
    /// Refused, or failed without moving traffic back (the cause says).
    Failed,
    /// Still running.
    Running,
}

/// A stretch of time: an approval wait, a `stepshift pause`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Span {
    /// Start.
    pub start: Timestamp,
    /// End (the deployment's end if it never ended).
    pub end: Timestamp,
    /// What it was: `approval`, `paused by ...`.
    pub label: String,
}

/// What a mark on the time axis stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    /// A point's validation tests were judged: passed.
    TestsPassed,
    /// A point's validation tests were judged: failed.
    TestsFailed,
    /// The candidate got all traffic.
    Promoted,
    /// A person's command took effect (abort, promote, resume).
    Command,
    /// The rollback began.
    RollBack,
}

/// A moment on the time axis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mark {
    /// When.
    pub at: Timestamp,
    /// What.
    pub kind: MarkKind,
    /// In words: `tests before traffic: passed (2)`.
    pub label: String,
}

/// One test's evidence at one check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    /// The target: `orders:live`.
    pub target: String,
    /// The test: `errors`, `slow`, `4xx`, `fast errors`, `fast slow`, or a custom rule's name.
    pub test: String,
    /// The mixture likelihood ratio (1 = no evidence).
    pub evidence: f64,
    /// Evidence at or above this rolls back.
    pub threshold: f64,
}

/// One check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// When it ran.
    pub at: Timestamp,
    /// The step it judged (0-based).
    pub step: usize,
    /// Its verdict.
    pub status: VerdictStatus,
    /// Its first reason.
    pub reason: String,
    /// Every test's evidence.
    pub tests: Vec<Evidence>,
}

/// One target's minutes: the candidate's and the stable side's, as the checks read them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Series {
    /// The target: `orders:live`.
    pub target: String,
    /// The candidate as its router names it: `version 42`.
    pub candidate: String,
    /// The stable side: `version 41`.
    pub stable: String,
    /// The candidate's minutes with data, oldest first.
    pub candidate_minutes: Vec<MinuteCounts>,
    /// The stable side's minutes with data, oldest first.
    pub stable_minutes: Vec<MinuteCounts>,
}

/// A deployment in time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timeline {
    /// The execution.
    pub execution: String,
    /// What moved: `orders:live 41 → 42`.
    pub release: String,
    /// How it ended.
    pub ending: Ending,
    /// The ending in a sentence: `promoted`, `rolled back: <cause>`.
    pub outcome: String,
    /// When it started.
    pub start: Timestamp,
    /// When it ended (or now, while it runs).
    pub end: Timestamp,
    /// The candidate's share of traffic (percent) from each time on; the first is 0 at the start.
    pub weights: Vec<(Timestamp, f64)>,
    /// Approval waits and pauses.
    pub pauses: Vec<Span>,
    /// Tests, the promotion, commands, the rollback.
    pub marks: Vec<Mark>,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// One summary per step that was checked.
    pub steps: Vec<StepSummary>,
    /// Each target's minutes ([`minutes`]); empty until read.
    pub series: Vec<Series>,
    /// What the observe-only rules said at the last check.
    pub observed: Vec<String>,
}

impl Timeline {
    /// The title: `orders:live 41 → 42: rolled back: <cause>`.
    pub fn title(&self) -> String {
        format!("{}: {}", self.release, self.outcome)
    }

    /// Minutes from the start to `t`.
    pub fn minute_of(&self, t: Timestamp) -> f64 {
        t.secs_since(self.start) as f64 / 60.0
    }

    /// How long it ran, in minutes.
    pub fn minutes(&self) -> f64 {
        self.minute_of(self.end).max(1.0)
    }
}

/// Builds a [`Timeline`] from history events, one at a time.
#[derive(Debug, Default)]
pub struct Recorder {
    start: Option<Timestamp>,
    last: Option<Timestamp>,
    weights: Vec<(Timestamp, f64)>,
    pauses: Vec<Span>,
    open_pause: Option<(Timestamp, String)>,
    marks: Vec<Mark>,
    hooks_seen: usize,
    checks: Vec<Check>,
    last_checked: Option<Timestamp>,
    command_seen: Option<u64>,
    /// The step the deployment was at before the event: a check's own step (its
    /// decision may already have moved the cursor on).
    cursor: usize,
    /// The rollback ran: later states still carry the traffic it replaced.
    rolled_back: bool,
}

impl Recorder {
    /// Takes one event into account; `view` is the deployment after it.
    pub fn see(&mut self, item: &Item, view: &View) {
        let at = item.timestamp;
        self.start.get_or_insert(at);
        self.last = Some(at);
        if let Some(w) = view.traffic.as_ref().map(|t| t.weight_percent).filter(|_| !self.rolled_back)
            && self.weights.last().is_none_or(|(_, last)| (last - w).abs() > 1e-9)
        {
            if self.weights.is_empty() && w > 0.0 {
                self.weights.push((self.start.unwrap_or(at), 0.0));
            }
            self.weights.push((at, w));
        }
        let state = item.name.as_deref().and_then(State::from_name);
        if item.kind.ends_with("StateEntered") {
            match state {
                Some(State::Promote) => {
                    self.marks.push(Mark { at, kind: MarkKind::Promoted, label: "promoted".into() });
                }
                Some(State::RollBack) => {
                    self.marks.push(Mark { at, kind: MarkKind::RollBack, label: "rollback".into() });
                }
                _ => {}
            }
        }
        // The rollback's output carries no traffic: the stable version has it all again.
        if item.kind.ends_with("StateExited")
            && state == Some(State::RollBack)
            && self.weights.last().is_some_and(|(_, w)| *w > 0.0)
        {
            self.weights.push((at, 0.0));
            self.rolled_back = true;
        }
        for tests in view.hooks.iter().skip(self.hooks_seen) {
            let kind = if tests.passed { MarkKind::TestsPassed } else { MarkKind::TestsFailed };
            let label = crate::hooks::summary_lines(std::slice::from_ref(tests)).join("; ");
            self.marks.push(Mark { at, kind, label });
        }
        self.hooks_seen = view.hooks.len();
        self.pause(at, view);
        if let Some(p) = &view.progress {
            if let Some(v) = p.verdict.as_ref().filter(|v| Some(v.checked_at) != self.last_checked) {
                self.last_checked = Some(v.checked_at);
                self.checks.push(check(self.cursor, v));
            }
            if let Some(last) = p.control.log.last().filter(|c| p.control.applied >= c.seq)
                && self.command_seen != Some(last.seq)
            {
                self.command_seen = Some(last.seq);
                let label = format!("{} by {}", last.action.name(), last.by);
                self.marks.push(Mark { at, kind: MarkKind::Command, label });
            }
            self.cursor = p.cursor.index;
        }
    }

    /// Opens or closes the current pause: an approval wait, or a `stepshift pause`.
    fn pause(&mut self, at: Timestamp, view: &View) {
        let now = match (&view.pending_approval, view.progress.as_ref().and_then(|p| p.control.paused.as_ref())) {
            (Some(a), _) => Some((a.since, "approval".to_owned())),
            (None, Some(p)) => Some((p.since, format!("paused by {}", p.command.by))),
            (None, None) => None,
        };
        match (&self.open_pause, now) {
            (None, Some(p)) => self.open_pause = Some(p),
            (Some(_), None) => {
                if let Some((start, label)) = self.open_pause.take() {
                    self.pauses.push(Span { start, end: at, label });
                }
            }
            _ => {}
        }
    }

    /// The timeline, once the history is read: `status`, `error` and `cause` are the
    /// execution's (`RUNNING` while it runs), `end` its end or now.
    pub fn finish(
        mut self,
        execution: &str,
        view: &View,
        status: &str,
        cause: Option<&str>,
        end: Option<Timestamp>,
    ) -> Timeline {
        let end = end.or(self.last).unwrap_or_default();
        if let Some((start, label)) = self.open_pause.take() {
            self.pauses.push(Span { start, end, label });
        }
        let rolled_back = self.marks.iter().any(|m| m.kind == MarkKind::RollBack);
        let (ending, outcome) = match status {
            "SUCCEEDED" => (Ending::Promoted, "promoted".to_owned()),
            "RUNNING" => (Ending::Running, "running".to_owned()),
            _ => {
                let why = cause.map_or_else(String::new, |c| format!(": {}", first_sentence(c)));
                if rolled_back {
                    (Ending::RolledBack, format!("rolled back{why}"))
                } else {
                    (Ending::Failed, format!("{}{why}", status.to_ascii_lowercase()))
                }
            }
        };
        let release = view.plan.as_ref().map_or_else(String::new, release);
        Timeline {
            execution: execution.to_owned(),
            release,
            ending,
            outcome,
            start: self.start.unwrap_or(end),
            end,
            weights: self.weights,
            pauses: self.pauses,
            marks: self.marks,
            checks: self.checks,
            steps: view.progress.as_ref().map_or_else(Vec::new, |p| p.steps.clone()),
            series: Vec::new(),
            observed: view
                .progress
                .as_ref()
                .and_then(|p| p.verdict.as_ref())
                .map_or_else(Vec::new, |v| v.observed.clone()),
        }
    }
}

/// `orders:live 41 → 42, billing:live 7 → 8`.
fn release(plan: &Plan) -> String {
    let each: Vec<String> =
        plan.targets.iter().map(|t| format!("{} {} → {}", t.qualified(), t.stable, t.candidate)).collect();
    each.join(", ")
}

/// The cause up to its first sentence's end (the rest is detail the verdicts carry).
fn first_sentence(cause: &str) -> String {
    let cut = cause.find(": the candidate").map_or(cause, |i| &cause[i + 2..]);
    stepshift_core::truncate(cut.trim_end_matches('.'), 160)
}

fn check(step: usize, v: &Verdict) -> Check {
    Check {
        at: v.checked_at,
        step,
        status: v.status,
        reason: v.reasons.first().cloned().unwrap_or_default(),
        tests: v.targets.iter().flat_map(evidence).collect(),
    }
}

/// Every test of one target in a verdict.
pub fn evidence(t: &TargetSample) -> Vec<Evidence> {
    let named = [
        ("errors", &t.comparison),
        ("slow", &t.slow),
        ("4xx", &t.client_errors),
        ("fast errors", &t.fast_failures),
        ("fast slow", &t.fast_slow),
    ];
    let builtin = named.into_iter().filter_map(|(name, c)| c.as_ref().map(|c| (name.to_owned(), c)));
    let custom = t.custom.iter().filter_map(|c| c.comparison.as_ref().map(|x| (c.name.clone(), x)));
    builtin
        .chain(custom)
        .map(|(test, c)| Evidence { target: t.target.clone(), test, evidence: c.evidence, threshold: c.threshold })
        .collect()
}

/// Reads every target's minutes over the deployment (less the metric lag, as the checks
/// did) with the checks' own queries, once. Targets judged on alarms only have none.
pub async fn minutes<P: ObservePorts>(ports: &P, plan: &Plan, end: Timestamp) -> Vec<Series> {
    let since = stepshift_core::tasks::check::deployment_start(plan);
    let Ok(observed) = routers::observe(ports, plan, since, end.ceil_minute()).await else {
        return Vec::new();
    };
    plan.targets
        .iter()
        .zip(observed)
        .filter_map(|(t, o)| {
            let o = o?;
            Some(Series {
                target: t.qualified(),
                candidate: t.route.name(&t.candidate, Side::Candidate),
                stable: t.route.name(&t.stable, Side::Stable),
                candidate_minutes: o.candidate.minutes,
                stable_minutes: o.stable.minutes,
            })
        })
        .collect()
}

/// The rate of `events` per `of` in percent, when there was any `of`.
pub fn rate(events: u64, of: u64) -> Option<f64> {
    (of > 0).then(|| 100.0 * events as f64 / of as f64)
}

/// The timeline as JSON (`report --output json`).
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
pub fn document(t: &Timeline) -> Value {
    serde_json::to_value(t).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::simulated_timeline;

    #[test]
    fn a_rolled_back_canary_tells_its_story_in_time() {
        let t = simulated_timeline(&["--scenario", "error-spike"]);
        assert_eq!(t.ending, Ending::RolledBack);
        assert!(
            t.title().starts_with("orders-api:live 41 → 42: rolled back: the candidate was unhealthy at step 1"),
            "{}",
            t.title()
        );
        assert_eq!(t.weights.first().map(|w| w.1), Some(0.0), "from nothing");
        assert_eq!(t.weights.iter().map(|w| w.1).collect::<Vec<_>>(), [0.0, 10.0, 0.0], "10%, then back");
        let last = t.checks.last().unwrap();
        assert_eq!(last.status, VerdictStatus::Unhealthy);
        assert_eq!(last.step, 0, "the check's own step, not the cursor its decision moved");
        let errors = last.tests.iter().find(|e| e.test == "errors").unwrap();
        assert!(errors.evidence >= errors.threshold, "the evidence crossed its threshold: {errors:?}");
        assert!(t.marks.iter().any(|m| m.kind == MarkKind::RollBack));
        assert!(t.checks.windows(2).all(|w| w[0].at < w[1].at), "one entry per check, in order");
        let s = &t.series[0];
        assert_eq!((s.candidate.as_str(), s.stable.as_str()), ("version 42", "version 41"));
        let errors: u64 = s.candidate_minutes.iter().map(|m| m.errors).sum();
        assert!(errors > 0, "the candidate's minutes hold its errors");
        assert!(
            s.stable_minutes[0].start < t.start,
            "the stable version's minutes from before the start, as the checks read them"
        );
    }

    #[test]
    fn an_approved_pause_is_a_span_and_the_promotion_a_mark() {
        let t = simulated_timeline(&["--scenario", "approval"]);
        assert_eq!(t.ending, Ending::Promoted);
        assert_eq!(t.title(), "orders-api:live 41 → 42: promoted");
        assert_eq!(t.weights.iter().map(|w| w.1).collect::<Vec<_>>(), [0.0, 10.0, 50.0, 100.0]);
        assert_eq!(t.pauses.len(), 1);
        let pause = &t.pauses[0];
        assert_eq!(pause.label, "approval");
        assert_eq!(pause.end.secs_since(pause.start), 120, "the simulated approver answers after 2 minutes");
        assert!(pause.end <= t.weights[2].0, "traffic moved to 50% once approved");
        let promoted = t.marks.iter().find(|m| m.kind == MarkKind::Promoted).unwrap();
        assert!(promoted.at <= t.weights[3].0);
        assert_eq!(t.steps.len(), 3);
    }
}
