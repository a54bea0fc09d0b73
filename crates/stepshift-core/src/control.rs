//! Run-time control: the commands a person gives a running deployment (`stepshift
//! abort`, `promote`, `pause`, `resume`), and how a check applies them.
//!
//! The mechanism is a control record: one SSM parameter per deployment, beside the
//! first target's lock (`{prefix}/{scope}/{name}/control`, named in `$.plan.control`).
//! The CLI writes the latest command there, numbered (`seq`) and signed with the
//! caller's identity from STS; every health check reads it ([`read`]) and applies a
//! command it has not applied yet ([`apply`]). So a command takes effect at the next
//! check, wherever the step is: mid-bake, during a step's tests (whose bake loop keeps
//! checking), during the lock-in. The check's output (`$.progress.control`) records who
//! asked, why and when, in the execution's history. At an approval pause the CLI answers
//! the task token instead (abort fails it with [`ErrorName::Aborted`]).
//!
//! Never StopExecution: a stopped execution skips the rollback and leaves the lock.
//! Every command ends through the state machine's own paths: an abort is a roll-back
//! decision, a promotion a jump of the cursor to the last step, a pause a hold of the
//! decision to advance.
//!
//! Health still rules: a check that finds the candidate unhealthy rolls back whatever
//! was commanded (a promotion, a pause).

use serde::{Deserialize, Serialize};

use crate::contract::ErrorName;
use crate::deployment::{Decision, Plan, Progress};
use crate::ports::{ParameterStore, PortResult};
use crate::time::Timestamp;

/// The control record's leaf name under the first target's record keys.
pub const LEAF: &str = "control";

/// How an abort during the tests before traffic is described (the cause of its
/// `Aborted` failure starts with it).
pub const DURING_TESTS_BEFORE_TRAFFIC: &str = "during the tests before traffic";

/// What a command asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Roll back now.
    Abort,
    /// Skip the remaining steps and promote; with `skip_lock_in`, confirm without the
    /// lock-in watch (or end a lock-in under way).
    Promote {
        /// Skip the watch after promotion.
        #[serde(default)]
        skip_lock_in: bool,
    },
    /// Hold the current weight until `until`; the checks go on.
    Pause {
        /// When the pause ends by itself ([`PauseTimeout`] says how).
        until: Timestamp,
    },
    /// End a pause.
    Resume,
}

impl Action {
    /// The command's name, as the CLI spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Abort => "abort",
            Action::Promote { .. } => "promote",
            Action::Pause { .. } => "pause",
            Action::Resume => "resume",
        }
    }

    /// Whether a later command may replace this one before a check applied it: a
    /// pending abort or promotion stands (a pending promotion only yields to an abort).
    pub fn replaceable_by(&self, next: &Action) -> bool {
        match self {
            Action::Abort => false,
            Action::Promote { .. } => matches!(next, Action::Abort),
            Action::Pause { .. } | Action::Resume => true,
        }
    }
}

/// One command, as the control record holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// Increases with every command to the same deployment; a check applies a command
    /// whose `seq` is above the last one it applied.
    pub seq: u64,
    /// The execution the command is for; a record left for another is ignored.
    pub execution: String,
    /// What it asks.
    pub action: Action,
    /// Who asked: the caller's ARN from STS GetCallerIdentity.
    pub by: String,
    /// Why, in their words.
    #[serde(default)]
    pub reason: Option<String>,
    /// When it was given.
    pub at: Timestamp,
}

impl Command {
    /// `pause by arn:aws:iam::1:user/ana ("checking a ticket")`.
    pub fn describe(&self) -> String {
        match &self.reason {
            Some(r) if !r.is_empty() => format!("{} by {} ({r:?})", self.action.name(), self.by),
            _ => format!("{} by {}", self.action.name(), self.by),
        }
    }
}

/// What a pause ending at its time does: the request's `pause_timeout`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseTimeout {
    /// Roll back: nobody came back to a held release (the default, like an approval).
    #[default]
    RollBack,
    /// Go on as if resumed.
    Resume,
}

/// A pause under way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    /// The command that paused.
    pub command: Command,
    /// When the check applied it.
    pub since: Timestamp,
    /// When it ends by itself.
    pub until: Timestamp,
}

/// The control state a deployment carries in `$.progress.control`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// The `seq` of the last command applied; 0 before any.
    #[serde(default)]
    pub applied: u64,
    /// Every command applied, oldest first: who asked what, why, and when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<Command>,
    /// The pause under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<Pause>,
    /// The abort that decided the rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<Command>,
    /// A pause that ran out with `pause_timeout: roll_back`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_expired: Option<Pause>,
    /// The promotion asked for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted: Option<Command>,
    /// Confirm without the lock-in watch.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_lock_in: bool,
    /// What the last check did with a command, for the history and the CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Control {
    /// Whether nothing was ever commanded (so `$.progress` need not carry it).
    pub fn is_empty(&self) -> bool {
        *self == Control::default()
    }
}

/// Most commands kept in [`Control::log`]: the progress travels in every state's data,
/// and each check's output is an event in the execution's history.
pub const LOG_ENTRIES: usize = 10;

/// Reads the control record named `name`: the command in it, if it is a command for
/// `execution`. A value that cannot be read is ignored (with a warning in the log):
/// a broken record must not stop the health checks.
pub async fn read<S: ParameterStore>(store: &S, name: &str, execution: &str) -> PortResult<Option<Command>> {
    let found = store.get_many(&[name.to_owned()]).await?;
    let Some((_, raw)) = found.into_iter().next() else { return Ok(None) };
    match serde_json::from_str::<Command>(&raw) {
        Ok(c) if c.execution == execution => Ok(Some(c)),
        Ok(_) => Ok(None),
        Err(e) => {
            tracing::warn!(record = name, error = %e, "ignoring a control record that is not a command");
            Ok(None)
        }
    }
}

/// Applies `command` (the control record's, if any) to the progress `decided` that a
/// check at `now` produced from `before`, and holds a pause. Pure: the check reads the
/// record, this decides.
///
/// - A new abort: roll back, with the abort as the reason ([`ErrorName::Aborted`]).
/// - A new promotion: unless the check decided to roll back, the cursor jumps to the
///   last step (no approval), or, in the lock-in with `skip_lock_in`, the release is
///   confirmed.
/// - A new pause holds the step: a decision to advance or confirm becomes a wait of at
///   most one check interval, until a resume or the pause's end; at its end
///   `plan.pause_timeout` rolls back or goes on.
/// - A new resume ends a pause.
pub fn apply(
    plan: &Plan,
    before: &Progress,
    mut decided: Progress,
    command: Option<Command>,
    now: Timestamp,
) -> Progress {
    let control = &mut decided.control;
    control.note = None;
    if let Some(c) = command.filter(|c| c.seq > before.control.applied && c.execution == plan.execution) {
        control.applied = c.seq;
        control.log.push(c.clone());
        if control.log.len() > LOG_ENTRIES {
            control.log.remove(0);
        }
        let said = c.describe();
        match &c.action {
            Action::Abort => {
                decided.decision = Decision::RollBack;
                decided.control.aborted = Some(c);
                decided.control.note = Some(format!("{said}: rolling back"));
            }
            Action::Promote { skip_lock_in } => {
                let skip = *skip_lock_in;
                if decided.decision == Decision::RollBack {
                    decided.control.note = Some(format!("{said}: not done, the check decided to roll back"));
                } else if before.cursor.promote {
                    decided.control.skip_lock_in |= skip;
                    decided.control.note = Some(if skip {
                        decided.decision = Decision::Confirm;
                        format!("{said}: the lock-in ends now")
                    } else {
                        format!("{said}: already promoted; the lock-in goes on (add --skip-lock-in to end it)")
                    });
                } else {
                    let last = plan.steps.len() - 1;
                    let mut cursor = plan.cursor(last);
                    cursor.approval = false;
                    if skip {
                        cursor.wait_seconds = 0;
                    }
                    decided.cursor = cursor;
                    decided.decision = Decision::Advance;
                    decided.control.skip_lock_in = skip;
                    decided.control.paused = None;
                    decided.control.note = Some(format!("{said}: promoting now"));
                    decided.control.promoted = Some(c);
                }
            }
            Action::Pause { until } => {
                let until = *until;
                decided.control.note = Some(format!("{said}: holding until {until}"));
                decided.control.paused = Some(Pause { command: c, since: now, until });
            }
            Action::Resume => {
                let was = decided.control.paused.take();
                decided.control.note = Some(if was.is_some() {
                    format!("{said}: going on")
                } else {
                    format!("{said}: nothing was paused")
                });
            }
        }
    }
    hold(plan, before, decided, now)
}

/// Keeps a paused deployment at its step: see [`apply`].
fn hold(plan: &Plan, before: &Progress, mut decided: Progress, now: Timestamp) -> Progress {
    let Some(pause) = decided.control.paused.clone() else { return decided };
    if decided.decision == Decision::RollBack {
        return decided;
    }
    if now >= pause.until {
        decided.control.paused = None;
        match plan.pause_timeout {
            PauseTimeout::RollBack => {
                decided.decision = Decision::RollBack;
                decided.control.note = Some(format!(
                    "the {} ran out at {} without a resume: rolling back (pause_timeout: roll_back)",
                    pause.command.describe(),
                    pause.until
                ));
                decided.control.pause_expired = Some(pause);
            }
            PauseTimeout::Resume => {
                decided.control.note = Some(format!(
                    "the {} ran out at {}: going on (pause_timeout: resume)",
                    pause.command.describe(),
                    pause.until
                ));
            }
        }
        return decided;
    }
    let left = u64::try_from(pause.until.secs_since(now)).unwrap_or(0).max(1);
    match decided.decision {
        Decision::Advance | Decision::Confirm => {
            // The step's bake is over: stay on it, and check again.
            decided.cursor = before.cursor.clone();
            decided.decision = Decision::Wait;
            decided.cursor.wait_seconds = plan.check_every(now).min(left);
        }
        Decision::Wait => decided.cursor.wait_seconds = decided.cursor.wait_seconds.min(left),
        Decision::RollBack => {}
    }
    decided
}

/// Why a deployment rolled back, if a command decided it: the error name and sentence
/// for the outcome ([`crate::tasks::record::rollback_reason`]).
pub fn rollback_reason(control: &Control, step: &str) -> Option<(String, String)> {
    if let Some(c) = &control.aborted {
        let why = c.reason.as_deref().filter(|r| !r.is_empty()).unwrap_or("no reason given");
        return Some((ErrorName::Aborted.to_string(), format!("aborted at {step} by {} at {}: {why}", c.by, c.at)));
    }
    control.pause_expired.as_ref().map(|p| {
        (
            ErrorName::PauseTimedOut.to_string(),
            format!("the {} at {step} was not resumed by {} (pause_timeout: roll_back)", p.command.describe(), p.until),
        )
    })
}

#[cfg(test)]
mod tests;
