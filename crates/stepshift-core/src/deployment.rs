//! The state a deployment carries through the state machine, and the progression rule
//! that turns a verdict into the next move.
//!
//! The state machine's data, in JSONPath terms:
//! - `$.plan` ([`Plan`]): written once by "Begin deployment";
//! - `$.traffic` ([`Traffic`]): written by "Shift traffic" and "Promote";
//! - `$.progress` ([`Progress`]): written by "Begin deployment" and "Check health"; its
//!   `decision` and `cursor` drive the Choice state;
//! - `$.failure`: `{Error, Cause}` of a caught error, or `null`;
//! - `$.rollback`, `$.outcome`: written on the way out.

use serde::{Deserialize, Serialize};

use crate::baseline::History;
use crate::judge::{Verdict, VerdictStatus};
use crate::records::VersionRecords;
use crate::request::{HealthSettings, WhenInsufficient};
use crate::routers::{Identity, PendingChange, Route, RouterKind};
use crate::strategy::Step;
use crate::time::Timestamp;

/// A target as "Begin deployment" resolved it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedTarget {
    /// What moves its traffic, and where ([`crate::routers`]).
    pub route: Route,
    /// What served traffic when the deployment began: a version, an endpoint, a revision.
    pub stable: String,
    /// What the deployment moves traffic to.
    pub candidate: String,
    /// The version records as they were before the deployment.
    pub records_before: VersionRecords,
    /// The stable side's history before the deployment: the baseline once the
    /// candidate has all traffic. `None` when none was asked for or the router has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
}

impl PlannedTarget {
    /// A target on `route` from `stable` to `candidate`, before its records are read.
    pub fn new(route: Route, stable: impl Into<String>, candidate: impl Into<String>) -> Self {
        Self {
            route,
            stable: stable.into(),
            candidate: candidate.into(),
            records_before: VersionRecords::default(),
            history: None,
        }
    }

    /// The target in a sentence: `orders:live`, `www.example.com. A`, `orders-web/live`.
    pub fn qualified(&self) -> String {
        self.route.label()
    }

    /// How the version records, the lock and the history name it.
    pub fn identity(&self) -> Identity {
        self.route.identity()
    }
}

/// Everything fixed at the start of a deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The execution (its ARN), which also owns the locks.
    pub execution: String,
    /// When the execution started.
    pub started_at: Timestamp,
    /// What moves traffic.
    #[serde(default)]
    pub router: RouterKind,
    /// Whether the router's changes take effect later: the state machine then polls
    /// them ("Check sync") before each bake.
    #[serde(default)]
    pub syncs: bool,
    /// The aliases (or records) released together.
    pub targets: Vec<PlannedTarget>,
    /// The expanded strategy; the last step is 100%.
    pub steps: Vec<Step>,
    /// The health settings, defaults filled in.
    pub health: HealthSettings,
    /// How long to watch after promotion.
    pub lock_in_seconds: u64,
    /// How many versions to keep when pruning.
    pub keep_versions: Option<u32>,
    /// How long an approval pause waits.
    pub approval_timeout_seconds: u64,
    /// The fast path as "Start fast path" left it; `null` when the request did not ask
    /// for one, or before it started, or when it could not start.
    #[serde(default)]
    pub fast_path: Option<crate::outcomes::FastPath>,
    /// The validation hooks, planned ([`crate::hooks`]); empty lists when none.
    #[serde(default)]
    pub hooks: crate::hooks::PlannedHooks,
    /// The control record's parameter name ([`crate::control`]); `null` reads none.
    #[serde(default)]
    pub control: Option<String>,
    /// What a pause that runs out does (the request's `pause_timeout`).
    #[serde(default)]
    pub pause_timeout: crate::control::PauseTimeout,
}

/// The last RevisionId stepshift saw or wrote for one alias.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revision {
    /// Function name.
    pub function: String,
    /// Alias name.
    pub alias: String,
    /// Lambda's RevisionId.
    pub revision_id: String,
}

/// Where traffic stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// The candidate's share of traffic now, in percent.
    pub weight_percent: f64,
    /// When the current weight took effect; `null` before the first shift.
    pub step_started_at: Option<Timestamp>,
    /// The RevisionId of each alias after stepshift's last write.
    pub revisions: Vec<Revision>,
    /// Router changes not yet in effect; the state machine polls them before the bake.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_changes: Vec<PendingChange>,
}

impl Traffic {
    /// The last known RevisionId of `function:alias`.
    pub fn revision(&self, function: &str, alias: &str) -> Option<&str> {
        self.revisions.iter().find(|r| r.function == function && r.alias == alias).map(|r| r.revision_id.as_str())
    }

    /// Records `revision_id` as the last known revision of `function:alias`.
    pub fn set_revision(&mut self, function: &str, alias: &str, revision_id: String) {
        match self.revisions.iter_mut().find(|r| r.function == function && r.alias == alias) {
            Some(r) => r.revision_id = revision_id,
            None => self.revisions.push(Revision { function: function.into(), alias: alias.into(), revision_id }),
        }
    }
}

/// Which step the deployment is on, and how long the next Wait lasts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// Index into `plan.steps`.
    pub index: usize,
    /// That step's weight.
    pub weight_percent: f64,
    /// Whether a human must approve before traffic moves to this step.
    pub approval: bool,
    /// Whether this step is the promotion (the last, 100% step).
    pub promote: bool,
    /// Length of the next "Bake" Wait.
    pub wait_seconds: u64,
    /// Bake extensions used at this step because data was too thin.
    pub extensions_used: u32,
}

/// The move the state machine makes after a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Go to the step under the cursor (through approval if it asks for one).
    Advance,
    /// Bake again for `cursor.wait_seconds`, then check again.
    Wait,
    /// Roll back.
    RollBack,
    /// The lock-in window passed: confirm the release.
    Confirm,
}

/// What happened at one step, for the execution's summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSummary {
    /// Index into `plan.steps`.
    pub index: usize,
    /// The candidate's share of traffic.
    pub weight_percent: f64,
    /// Health checks run at this step.
    pub checks: u32,
    /// Bake extensions used.
    pub extensions: u32,
    /// The last verdict at this step.
    pub status: VerdictStatus,
    /// Its first reason.
    pub reason: String,
}

/// The deployment's progress through its steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// The current step (after `advance`: the next one).
    pub cursor: Cursor,
    /// The move to make.
    pub decision: Decision,
    /// The last verdict, with its numbers.
    pub verdict: Option<Verdict>,
    /// One summary per step that was checked.
    pub steps: Vec<StepSummary>,
    /// The commands applied and a pause under way ([`crate::control`]).
    #[serde(default, skip_serializing_if = "crate::control::Control::is_empty")]
    pub control: crate::control::Control,
}

/// The whole state after "Begin deployment".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentState {
    /// The plan.
    pub plan: Plan,
    /// Progress: at the first step, decision `advance`.
    pub progress: Progress,
    /// Traffic: nothing shifted yet.
    pub traffic: Traffic,
    /// No failure yet (`null`); a Catch writes `{Error, Cause}` here.
    pub failure: Option<serde_json::Value>,
    /// No rollback yet (`null`); "Roll back" writes its report here.
    pub rollback: Option<serde_json::Value>,
}

impl Plan {
    /// How long step `index` is watched: its bake, or the lock-in for the promotion step.
    pub fn bake_of(&self, index: usize) -> u64 {
        if index + 1 >= self.steps.len() { self.lock_in_seconds } else { self.steps[index].bake_seconds }
    }

    /// Seconds between checks: the fast path's interval while it is live, otherwise
    /// `health.check_interval_seconds` (Begin resolves both into the plan:
    /// [`crate::request::DeploymentRequest::check_interval`]); every minute if unset.
    /// The fast path judges for its first
    /// [`FAST_PATH_HORIZON_SECONDS`](crate::outcomes::FAST_PATH_HORIZON_SECONDS) only.
    pub fn check_every(&self, now: Timestamp) -> u64 {
        match &self.fast_path {
            Some(fast) if self.fast_path_judges(now) => fast.check_every_seconds,
            _ => self.minute_checks_every(),
        }
    }

    /// Whether the fast path is live and still within its horizon at `now`.
    pub fn fast_path_judges(&self, now: Timestamp) -> bool {
        let horizon = i64::try_from(crate::outcomes::FAST_PATH_HORIZON_SECONDS).unwrap_or(i64::MAX);
        self.fast_path.as_ref().is_some_and(crate::outcomes::FastPath::live)
            && now.secs_since(self.started_at) < horizon
    }

    fn minute_checks_every(&self) -> u64 {
        self.health.check_interval_seconds.unwrap_or(crate::request::MIN_CHECK_INTERVAL_SECONDS)
    }

    /// The first Wait of a step: one check interval, or the whole bake if that is shorter.
    /// Begin plans the first step before the fast path starts, so a request that asks
    /// for one gets its first check at the fast interval; should the fast path not start,
    /// the checks after it go back to the minute interval.
    fn first_wait(&self, index: usize) -> u64 {
        let every = match (&self.fast_path, self.health.fast_path.enabled) {
            (None, true) => {
                self.health.fast_path.check_interval_seconds.unwrap_or(crate::outcomes::DEFAULT_FAST_CHECK_SECONDS)
            }
            _ => self.check_every(self.started_at),
        };
        every.min(self.bake_of(index))
    }

    /// The cursor at the start of step `index`.
    pub fn cursor(&self, index: usize) -> Cursor {
        let step = &self.steps[index];
        Cursor {
            index,
            weight_percent: step.weight_percent,
            approval: step.approval,
            promote: index + 1 == self.steps.len(),
            wait_seconds: self.first_wait(index),
            extensions_used: 0,
        }
    }

    /// The progress before the first step.
    pub fn start(&self) -> Progress {
        Progress {
            cursor: self.cursor(0),
            decision: Decision::Advance,
            verdict: None,
            steps: Vec::new(),
            control: crate::control::Control::default(),
        }
    }
}

/// Decides the next move after a check at `now`, given the step's start time.
///
/// - Unhealthy: roll back at once, even in the middle of a bake.
/// - Bake not over: wait for the rest of it (or the next check interval).
/// - Bake over and healthy: advance, or confirm after the lock-in.
/// - Bake over and inconclusive: extend while extensions remain, then follow
///   `health.insufficient_data.then`.
pub fn decide(
    plan: &Plan,
    progress: &Progress,
    step_started_at: Timestamp,
    verdict: Verdict,
    now: Timestamp,
) -> Progress {
    let cursor = &progress.cursor;
    let mut next = progress.clone();
    let summary_index = next.steps.iter().position(|s| s.index == cursor.index);
    let summary = match summary_index {
        Some(i) => &mut next.steps[i],
        None => {
            next.steps.push(StepSummary {
                index: cursor.index,
                weight_percent: cursor.weight_percent,
                checks: 0,
                extensions: 0,
                status: verdict.status,
                reason: String::new(),
            });
            next.steps.last_mut().expect("just pushed")
        }
    };
    summary.checks += 1;
    summary.status = verdict.status;
    summary.reason = verdict.reasons.first().cloned().unwrap_or_default();

    let elapsed = u64::try_from(now.secs_since(step_started_at)).unwrap_or(0);
    let bake = plan.bake_of(cursor.index);
    let ins = &plan.health.insufficient_data;
    let done = |next: &mut Progress| {
        if cursor.promote {
            next.decision = Decision::Confirm;
        } else {
            next.decision = Decision::Advance;
            next.cursor = plan.cursor(cursor.index + 1);
        }
    };

    match verdict.status {
        VerdictStatus::Unhealthy => next.decision = Decision::RollBack,
        _ if elapsed < bake => {
            let remaining = bake - elapsed;
            next.decision = Decision::Wait;
            next.cursor.wait_seconds = plan.check_every(now).min(remaining);
        }
        VerdictStatus::Healthy => done(&mut next),
        VerdictStatus::Inconclusive if cursor.extensions_used < ins.extensions => {
            next.decision = Decision::Wait;
            next.cursor.wait_seconds = ins.extension_seconds;
            next.cursor.extensions_used += 1;
            if let Some(s) = next.steps.iter_mut().find(|s| s.index == cursor.index) {
                s.extensions = next.cursor.extensions_used;
            }
        }
        VerdictStatus::Inconclusive => match ins.then {
            WhenInsufficient::Proceed => done(&mut next),
            WhenInsufficient::RollBack => next.decision = Decision::RollBack,
        },
    }
    next.verdict = Some(verdict);
    next
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
