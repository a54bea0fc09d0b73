//! Lifecycle events: what a deployment tells the outside world as it goes, on the
//! EventBridge bus that approvals use (source [`SOURCE`]), in one documented schema
//! ([`EventDetail`], [`SCHEMA_VERSION`]).
//!
//! The task Lambdas that run at those moments publish them, after their work:
//! - shift-weight: [`DetailType::TrafficShifted`];
//! - check-health: [`DetailType::HealthChecked`] at every check, then
//!   [`DetailType::DeploymentPaused`] / [`DetailType::DeploymentResumed`] when a pause
//!   began or ended at it, and [`DetailType::ReleaseConfirmed`] when it decided `confirm`;
//! - promote: [`DetailType::DeploymentPromoted`];
//! - rollback: [`DetailType::DeploymentRolledBack`], or [`DetailType::DeploymentFailed`]
//!   when the rollback itself failed with an error the state machine does not retry.
//!
//! [`DetailType::DeploymentStarted`] is published by the state machine itself, from the
//! detail Begin leaves in `$.announce` ([`started`]).
//!
//! Publishing is best effort ([`publish`]): a notification that cannot be sent is
//! logged, and the deployment goes on. Delivery is at least once: a task the state
//! machine retries publishes again.
//!
//! The builders are pure: the handlers decide when, these decide what.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::contract::ErrorName;
use crate::control::Command;
use crate::deployment::{Cursor, Decision, Plan, PlannedTarget, Progress, Traffic};
use crate::error::{Service, TaskError};
use crate::judge::{Verdict, VerdictStatus};
use crate::ports::EventSink;
use crate::tasks::CaughtError;
use crate::tasks::record::{carried, rollback_reason};
use crate::tasks::traffic::{RollbackInput, RollbackReport};
use crate::time::Timestamp;
use crate::truncate;

/// The `source` of every stepshift event.
pub const SOURCE: &str = "stepshift";

/// The version of [`EventDetail`]'s schema, in its `schema_version` field. Fields may
/// be added within a version; none is removed or changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// The service a publishing error names.
pub const SERVICE: Service = Service::EventBridge;

/// Most verdict reasons an event carries, and most characters of each.
pub const MAX_REASONS: usize = 10;
const MAX_REASON_CHARS: usize = 300;

/// The `detail-type` of a lifecycle event, spelled exactly as EventBridge rules match it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DetailType {
    /// The deployment began (published by the state machine from `$.announce`).
    DeploymentStarted,
    /// A step's share of traffic went to the candidate (shift-weight).
    TrafficShifted,
    /// A health check ran (check-health).
    HealthChecked,
    /// A person's pause took hold at a check (check-health).
    DeploymentPaused,
    /// A pause ended and the deployment goes on (check-health).
    DeploymentResumed,
    /// The candidate took all traffic (promote).
    DeploymentPromoted,
    /// The lock-in passed: the release is confirmed (check-health).
    ReleaseConfirmed,
    /// The stable side has all traffic again (rollback).
    DeploymentRolledBack,
    /// The rollback itself failed: the targets may still send traffic to the candidate.
    DeploymentFailed,
}

impl DetailType {
    /// Every one, in the order a deployment meets them.
    pub const ALL: &'static [DetailType] = &[
        DetailType::DeploymentStarted,
        DetailType::TrafficShifted,
        DetailType::HealthChecked,
        DetailType::DeploymentPaused,
        DetailType::DeploymentResumed,
        DetailType::DeploymentPromoted,
        DetailType::ReleaseConfirmed,
        DetailType::DeploymentRolledBack,
        DetailType::DeploymentFailed,
    ];

    /// The `detail-type`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DetailType::DeploymentStarted => "Deployment Started",
            DetailType::TrafficShifted => "Traffic Shifted",
            DetailType::HealthChecked => "Health Checked",
            DetailType::DeploymentPaused => "Deployment Paused",
            DetailType::DeploymentResumed => "Deployment Resumed",
            DetailType::DeploymentPromoted => "Deployment Promoted",
            DetailType::ReleaseConfirmed => "Release Confirmed",
            DetailType::DeploymentRolledBack => "Deployment Rolled Back",
            DetailType::DeploymentFailed => "Deployment Failed",
        }
    }

    /// The one spelled `name`, if any.
    pub fn from_name(name: &str) -> Option<DetailType> {
        DetailType::ALL.iter().copied().find(|d| d.as_str() == name)
    }
}

impl fmt::Display for DetailType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for DetailType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for DetailType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DetailType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DetailType::from_name(&text).ok_or_else(|| serde::de::Error::custom(format!("no detail-type `{text}`")))
    }
}

/// One target of a deployment, as events name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTarget {
    /// Its label: `orders:live`, `www.example.com. A`, `orders-web/live`.
    pub target: String,
    /// What served traffic when the deployment began (a version, an endpoint, a revision).
    pub stable: String,
    /// What the deployment moves traffic to.
    pub candidate: String,
}

impl From<&PlannedTarget> for EventTarget {
    fn from(t: &PlannedTarget) -> Self {
        Self { target: t.qualified(), stable: t.stable.clone(), candidate: t.candidate.clone() }
    }
}

/// A verdict, short: its status and reasons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventVerdict {
    /// `healthy`, `unhealthy` or `inconclusive`.
    pub status: VerdictStatus,
    /// Why, one sentence per finding (at most [`MAX_REASONS`]).
    pub reasons: Vec<String>,
}

impl From<&Verdict> for EventVerdict {
    fn from(v: &Verdict) -> Self {
        Self {
            status: v.status,
            reasons: v.reasons.iter().take(MAX_REASONS).map(|r| truncate(r, MAX_REASON_CHARS)).collect(),
        }
    }
}

/// A person's command ([`crate::control`]) that caused the event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCommand {
    /// `abort`, `promote`, `pause` or `resume`.
    pub action: String,
    /// Who gave it: the caller's ARN.
    pub by: String,
    /// Why, in their words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was given.
    pub at: Timestamp,
    /// For a pause: when it ends by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

impl From<&Command> for EventCommand {
    fn from(c: &Command) -> Self {
        let until = match &c.action {
            crate::control::Action::Pause { until } => Some(*until),
            _ => None,
        };
        Self {
            action: c.action.name().to_owned(),
            by: c.by.clone(),
            reason: c.reason.clone().filter(|r| !r.is_empty()),
            at: c.at,
            until,
        }
    }
}

/// The `detail` of every lifecycle event (schema [`SCHEMA_VERSION`]). Fields that do
/// not apply to an event are absent, never `null`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventDetail {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The execution's ARN: the deployment.
    pub execution: String,
    /// The execution's page in the Step Functions console.
    pub console_url: String,
    /// The targets released together.
    pub targets: Vec<EventTarget>,
    /// The step, from 1 (the step being shifted to, checked, or rolled back at).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// How many steps the deployment has (the last is the promotion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// The candidate's share of traffic, in percent, at that moment (for a rollback:
    /// just before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_percent: Option<f64>,
    /// Deployment Started: every step's share of traffic, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<f64>>,
    /// Health Checked: the move the check decided (`advance`, `wait`, `roll_back`, `confirm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The verdict, when the event follows one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<EventVerdict>,
    /// The person's command that caused it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<EventCommand>,
    /// What the check did with a command, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Rolled back or failed: a stable error name (`Unhealthy`, `Aborted`, `RollbackFailed`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Rolled back or failed: one sentence a person understands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// When it happened.
    pub at: Timestamp,
}

impl EventDetail {
    /// The fields every event has; the rest absent.
    pub fn new(execution: &str, targets: &[PlannedTarget], at: Timestamp) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            execution: execution.to_owned(),
            console_url: console_url(execution),
            targets: targets.iter().map(EventTarget::from).collect(),
            step: None,
            steps: None,
            weight_percent: None,
            weights: None,
            decision: None,
            verdict: None,
            command: None,
            note: None,
            error: None,
            cause: None,
            at,
        }
    }

    fn at_step(mut self, cursor: &Cursor, steps: Option<usize>, weight_percent: f64) -> Self {
        self.step = Some(cursor.index + 1);
        self.steps = steps;
        self.weight_percent = Some(weight_percent);
        self
    }

    /// This detail as an event of `detail_type`.
    pub fn event(self, detail_type: DetailType) -> LifecycleEvent {
        LifecycleEvent { detail_type, detail: self }
    }
}

/// One event to publish: its `detail-type` and `detail` (the `source` is [`SOURCE`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    /// The `detail-type`.
    #[serde(rename = "detail-type")]
    pub detail_type: DetailType,
    /// The `detail`.
    pub detail: EventDetail,
}

/// The Step Functions console page of an execution; the region comes from its ARN.
pub fn console_url(execution: &str) -> String {
    let region = execution.split(':').nth(3).filter(|r| !r.is_empty()).unwrap_or("us-east-1");
    format!("https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution}")
}

/// The `action` of check-health's input for "Announce the start".
pub const ANNOUNCE_ACTION: &str = "announce";

/// check-health's input for "Announce the start".
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnounceInput {
    /// [`ANNOUNCE_ACTION`].
    pub action: String,
    /// `$.plan`.
    pub plan: Plan,
}

/// Whether check-health's `input` asks for "Announce the start".
pub fn is_announce_input(input: &serde_json::Value) -> bool {
    input.get("action").and_then(serde_json::Value::as_str) == Some(ANNOUNCE_ACTION)
}

/// Deployment Started: published by check-health's `announce` action, which "Announce
/// the start" runs right after Begin (record-version, which runs Begin, has no room for
/// the EventBridge SDK).
pub fn started(plan: &Plan) -> EventDetail {
    let mut d = EventDetail::new(&plan.execution, &plan.targets, plan.started_at);
    d.steps = Some(plan.steps.len());
    d.weights = Some(plan.steps.iter().map(|s| s.weight_percent).collect());
    d
}

/// Traffic Shifted: the targets now give the candidate `cursor`'s share. `steps` is the
/// plan's step count when the task's input carries it.
pub fn traffic_shifted(
    execution: &str,
    targets: &[PlannedTarget],
    cursor: &Cursor,
    steps: Option<usize>,
    traffic: &Traffic,
    now: Timestamp,
) -> LifecycleEvent {
    let at = traffic.step_started_at.unwrap_or(now);
    EventDetail::new(execution, targets, at)
        .at_step(cursor, steps, traffic.weight_percent)
        .event(DetailType::TrafficShifted)
}

/// Deployment Promoted: every candidate has all traffic.
pub fn promoted(execution: &str, targets: &[PlannedTarget], traffic: &Traffic, now: Timestamp) -> LifecycleEvent {
    let mut d = EventDetail::new(execution, targets, traffic.step_started_at.unwrap_or(now));
    d.weight_percent = Some(traffic.weight_percent);
    d.event(DetailType::DeploymentPromoted)
}

/// The events of one "Check health" that turned `before` into `after` at `now`, in order:
/// - Health Checked, when the check judged (not when it confirmed without a check,
///   because no lock-in was asked for or a person skipped it);
/// - Deployment Paused, when a pause took hold; Deployment Resumed, when one ended and
///   the deployment goes on (a pause that runs out into a rollback ends in Deployment
///   Rolled Back instead, which says so);
/// - Release Confirmed, when the check decided `confirm`.
pub fn after_check(
    plan: &Plan,
    traffic: &Traffic,
    before: &Progress,
    after: &Progress,
    now: Timestamp,
) -> Vec<LifecycleEvent> {
    let steps = Some(plan.steps.len());
    let base =
        || EventDetail::new(&plan.execution, &plan.targets, now).at_step(&before.cursor, steps, traffic.weight_percent);
    let (was, is) = (&before.control, &after.control);
    // The command this check applied, if any.
    let applied = (is.applied > was.applied).then(|| is.log.last()).flatten();
    let verdict = after.verdict.as_ref().map(EventVerdict::from);
    let mut events = Vec::new();

    if after.verdict.is_some() && after.verdict != before.verdict {
        let mut d = base();
        d.decision = Some(after.decision);
        d.verdict = verdict.clone();
        d.command = applied.map(EventCommand::from);
        d.note = is.note.clone();
        events.push(d.event(DetailType::HealthChecked));
    }
    let seq = |p: &Option<crate::control::Pause>| p.as_ref().map(|p| p.command.seq);
    if let Some(pause) = &is.paused
        && seq(&was.paused) != Some(pause.command.seq)
    {
        let mut d = base();
        d.command = Some(EventCommand::from(&pause.command));
        d.note = is.note.clone();
        events.push(d.event(DetailType::DeploymentPaused));
    } else if was.paused.is_some() && is.paused.is_none() && after.decision != Decision::RollBack {
        let mut d = base();
        d.command = applied.map(EventCommand::from);
        d.note = is.note.clone();
        events.push(d.event(DetailType::DeploymentResumed));
    }
    if after.decision == Decision::Confirm {
        let mut d = base();
        d.verdict = verdict;
        let skipped = is.promoted.as_ref().filter(|_| is.skip_lock_in);
        d.command = applied.or(skipped).map(EventCommand::from);
        events.push(d.event(DetailType::ReleaseConfirmed));
    }
    events
}

/// The event of one "Roll back" with `input` that ended in `result` at `now`:
/// - it succeeded: Deployment Rolled Back, with the error name and sentence Record
///   rollback gives the ending ([`rollback_reason`], after [`carried`]);
/// - it failed with an error the state machine does not retry
///   ([`ErrorName::TRANSIENT`]): Deployment Failed (`RollbackFailed`), with the
///   commands that restore each target by hand;
/// - it failed with a retried error: none (the retry publishes).
///
/// `None` too without an execution to name.
pub fn after_rollback(
    input: &RollbackInput,
    result: &Result<RollbackReport, TaskError>,
    now: Timestamp,
) -> Option<LifecycleEvent> {
    let plan = input.plan.as_ref();
    let execution = input.execution.as_deref().or(plan.map(|p| p.execution.as_str()))?;
    let (progress, failure) = match input.progress.clone() {
        Some(p) => {
            let (p, f) = carried(p, input.failure.clone());
            (Some(p), f)
        }
        None => (None, input.failure.clone()),
    };
    let (error, reason) = match (plan, &progress) {
        (Some(plan), Some(progress)) => rollback_reason(plan, progress, failure.as_ref()),
        _ => fallback_reason(failure.as_ref()),
    };
    let mut d = EventDetail::new(execution, &input.targets, now);
    d.weight_percent = Some(input.traffic.weight_percent);
    if let Some(p) = &progress {
        d.step = Some(p.cursor.index + 1);
        d.verdict = p.verdict.as_ref().map(EventVerdict::from);
        let c = &p.control;
        d.command = c.aborted.as_ref().or(c.pause_expired.as_ref().map(|p| &p.command)).map(EventCommand::from);
    }
    d.steps = plan.map(|p| p.steps.len());
    match result {
        Ok(_) => {
            d.error = Some(error);
            d.cause = Some(reason);
            Some(d.event(DetailType::DeploymentRolledBack))
        }
        Err(e) if ErrorName::from_name(e.name()).is_some_and(|n| ErrorName::TRANSIENT.contains(&n)) => None,
        Err(e) => {
            let restore: Vec<String> = input.targets.iter().map(|t| t.route.manual_restore(&t.stable)).collect();
            d.error = Some(ErrorName::RollbackFailed.to_string());
            d.cause = Some(format!(
                "Rollback FAILED ({}: {e}) after: {reason}. The targets may still send traffic to the candidate; run: {}.",
                e.name(),
                restore.join("; ")
            ));
            Some(d.event(DetailType::DeploymentFailed))
        }
    }
}

/// Why, when the input has no plan or progress (a state machine older than the events).
fn fallback_reason(failure: Option<&CaughtError>) -> (String, String) {
    match failure {
        Some(f) => (f.error.clone(), format!("{}: {}", f.error, f.message())),
        None => (ErrorName::RolledBack.to_string(), "the deployment was rolled back".to_owned()),
    }
}

/// Publishes `events`, best effort: a failure is retried once when a retry may help,
/// then logged as a warning. It never fails the task: a deployment must not roll back
/// because a notification could not be sent.
pub async fn publish<S: EventSink>(sink: &S, events: &[LifecycleEvent]) {
    if events.is_empty() {
        return;
    }
    let mut result = sink.publish(events).await;
    if matches!(&result, Err(e) if e.is_retryable()) {
        result = sink.publish(events).await;
    }
    if let Err(e) = result {
        let types: Vec<&str> = events.iter().map(|e| e.detail_type.as_str()).collect();
        tracing::warn!(error = %e, events = ?types, "lifecycle events were not published; the deployment goes on");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::control::{Action, Control, Pause, PauseTimeout};
    use crate::deployment::fixtures::{t, verdict};
    use crate::memory::{Call, Fault, MemoryAws};
    use crate::routers::Route;
    use crate::routers::alias::AliasRoute;
    use crate::strategy::Step;
    use crate::{PortError, Service};

    const EXECUTION: &str = "arn:aws:states:eu-west-1:123456789012:execution:stepshift-deployment:orders-42";

    fn target(function: &str) -> PlannedTarget {
        let route = Route::Alias(AliasRoute { function: function.into(), alias: "live".into() });
        PlannedTarget::new(route, "41", "42")
    }

    /// 10% for 5 minutes, 50% for 5 minutes, then 100% with a 10-minute lock-in.
    fn plan() -> Plan {
        let mut p: Plan = serde_json::from_value(json!({
            "execution": EXECUTION,
            "started_at": t(0),
            "targets": [],
            "steps": [],
            "health": crate::request::HealthSettings::default(),
            "lock_in_seconds": 600,
            "keep_versions": null,
            "approval_timeout_seconds": 3600,
            "control": "/stepshift/orders/live/control",
        }))
        .unwrap();
        p.targets = vec![target("orders"), target("billing")];
        p.steps = vec![
            Step { weight_percent: 10.0, bake_seconds: 300, approval: false },
            Step { weight_percent: 50.0, bake_seconds: 300, approval: false },
            Step { weight_percent: 100.0, bake_seconds: 0, approval: false },
        ];
        p
    }

    fn traffic(weight_percent: f64, since: i64) -> Traffic {
        Traffic { weight_percent, step_started_at: Some(t(since)), revisions: Vec::new(), pending_changes: Vec::new() }
    }

    fn command(seq: u64, action: Action) -> Command {
        Command {
            seq,
            execution: EXECUTION.into(),
            action,
            by: "arn:aws:iam::123456789012:user/ana".into(),
            reason: Some("ticket 42".into()),
            at: t(100),
        }
    }

    fn types(events: &[LifecycleEvent]) -> Vec<&'static str> {
        events.iter().map(|e| e.detail_type.as_str()).collect()
    }

    #[test]
    fn detail_types_are_spelled_as_documented_and_round_trip() {
        let names: Vec<&str> = DetailType::ALL.iter().map(|d| d.as_str()).collect();
        assert_eq!(
            names,
            [
                "Deployment Started",
                "Traffic Shifted",
                "Health Checked",
                "Deployment Paused",
                "Deployment Resumed",
                "Deployment Promoted",
                "Release Confirmed",
                "Deployment Rolled Back",
                "Deployment Failed",
            ]
        );
        for d in DetailType::ALL {
            assert_eq!(DetailType::from_name(d.as_str()), Some(*d));
            let text = serde_json::to_value(d).unwrap();
            assert_eq!(serde_json::from_value::<DetailType>(text).unwrap(), *d);
        }
        assert_eq!(DetailType::from_name("Deployment started"), None);
        assert!(serde_json::from_value::<DetailType>(json!("Nope")).is_err());
    }

    #[test]
    fn console_links_use_the_executions_region() {
        assert_eq!(
            console_url(EXECUTION),
            format!(
                "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/{EXECUTION}"
            )
        );
        assert!(console_url("not-an-arn").starts_with("https://us-east-1.console.aws.amazon.com/"));
    }

    #[test]
    fn the_started_detail_is_small_and_omits_what_does_not_apply() {
        let d = started(&plan());
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({
                "schema_version": 1,
                "execution": EXECUTION,
                "console_url": console_url(EXECUTION),
                "targets": [
                    {"target": "orders:live", "stable": "41", "candidate": "42"},
                    {"target": "billing:live", "stable": "41", "candidate": "42"},
                ],
                "steps": 3,
                "weights": [10.0, 50.0, 100.0],
                "at": "2023-11-14T22:13:20Z",
            })
        );
        let back: EventDetail = serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn a_shift_names_its_step_and_weight_at_the_time_it_took_effect() {
        let p = plan();
        let e = traffic_shifted(EXECUTION, &p.targets, &p.cursor(1), Some(3), &traffic(50.0, 310), t(311));
        assert_eq!(e.detail_type, DetailType::TrafficShifted);
        assert_eq!((e.detail.step, e.detail.steps, e.detail.weight_percent), (Some(2), Some(3), Some(50.0)));
        assert_eq!(e.detail.at, t(310));
        assert_eq!(e.detail.targets.len(), 2);
        let unknown = traffic_shifted(EXECUTION, &p.targets, &p.cursor(0), None, &traffic(10.0, 5), t(6));
        assert!(serde_json::to_value(&unknown.detail).unwrap().get("steps").is_none());
    }

    #[test]
    fn a_promotion_says_all_traffic() {
        let e = promoted(EXECUTION, &plan().targets, &traffic(100.0, 700), t(701));
        assert_eq!(e.detail_type, DetailType::DeploymentPromoted);
        assert_eq!((e.detail.weight_percent, e.detail.at), (Some(100.0), t(700)));
    }

    #[test]
    fn every_check_is_announced_with_its_verdict_and_decision() {
        let p = plan();
        let before = p.start();
        let after = crate::deployment::decide(&p, &before, t(0), verdict(VerdictStatus::Healthy, 60), t(60));
        let events = after_check(&p, &traffic(10.0, 0), &before, &after, t(60));
        assert_eq!(types(&events), ["Health Checked"]);
        let d = serde_json::to_value(&events[0].detail).unwrap();
        assert_eq!(d["step"], 1);
        assert_eq!(d["steps"], 3);
        assert_eq!(d["weight_percent"], 10.0);
        assert_eq!(d["decision"], "wait");
        assert_eq!(d["verdict"], json!({"status": "healthy", "reasons": ["Healthy reason"]}));
        assert!(d.get("command").is_none() && d.get("error").is_none());
    }

    #[test]
    fn a_confirmation_follows_its_check() {
        let p = plan();
        let mut before = p.start();
        before.cursor = p.cursor(2);
        let after = crate::deployment::decide(&p, &before, t(600), verdict(VerdictStatus::Healthy, 1200), t(1200));
        assert_eq!(after.decision, Decision::Confirm);
        let events = after_check(&p, &traffic(100.0, 600), &before, &after, t(1200));
        assert_eq!(types(&events), ["Health Checked", "Release Confirmed"]);
        assert_eq!(events[1].detail.step, Some(3));
        assert_eq!(events[1].detail.verdict.as_ref().unwrap().status, VerdictStatus::Healthy);
    }

    #[test]
    fn a_confirmation_without_a_check_is_not_a_health_check() {
        // No lock-in, or a person skipped it: check-health confirms without judging.
        let p = plan();
        let mut before = p.start();
        before.cursor = p.cursor(2);
        before.verdict = Some(verdict(VerdictStatus::Healthy, 590));
        before.control.promoted = Some(command(1, Action::Promote { skip_lock_in: true }));
        before.control.skip_lock_in = true;
        before.control.applied = 1;
        let after = Progress { decision: Decision::Confirm, ..before.clone() };
        let events = after_check(&p, &traffic(100.0, 600), &before, &after, t(600));
        assert_eq!(types(&events), ["Release Confirmed"]);
        let c = events[0].detail.command.as_ref().expect("the promotion that skipped the lock-in");
        assert_eq!((c.action.as_str(), c.reason.as_deref()), ("promote", Some("ticket 42")));
    }

    #[test]
    fn a_pause_is_announced_once_and_its_end_once() {
        let p = plan();
        let start = p.start();
        let pause = command(1, Action::Pause { until: t(3600) });
        let checked = |before: &Progress, at: i64, c: Option<Command>| {
            let decided = crate::deployment::decide(&p, before, t(0), verdict(VerdictStatus::Healthy, at), t(at));
            crate::control::apply(&p, before, decided, c, t(at))
        };
        let paused = checked(&start, 60, Some(pause.clone()));
        let events = after_check(&p, &traffic(10.0, 0), &start, &paused, t(60));
        assert_eq!(types(&events), ["Health Checked", "Deployment Paused"]);
        let c = events[1].detail.command.as_ref().unwrap();
        assert_eq!((c.action.as_str(), c.until), ("pause", Some(t(3600))));
        assert_eq!(events[0].detail.command.as_ref().unwrap().action, "pause", "the check applied it");
        assert!(events[1].detail.note.as_deref().unwrap().starts_with("pause by arn:aws:iam::123456789012:user/ana"));

        let still = checked(&paused, 420, None);
        assert_eq!(still.decision, Decision::Wait, "held past the bake");
        assert_eq!(types(&after_check(&p, &traffic(10.0, 0), &paused, &still, t(420))), ["Health Checked"]);

        let resumed = checked(&still, 480, Some(command(2, Action::Resume)));
        let events = after_check(&p, &traffic(10.0, 0), &still, &resumed, t(480));
        assert_eq!(types(&events), ["Health Checked", "Deployment Resumed"]);
        assert_eq!(events[1].detail.command.as_ref().unwrap().action, "resume");
    }

    #[test]
    fn a_pause_that_runs_out_resumes_or_rolls_back() {
        let mut p = plan();
        let before = Progress {
            control: Control {
                applied: 1,
                paused: Some(Pause {
                    command: command(1, Action::Pause { until: t(400) }),
                    since: t(60),
                    until: t(400),
                }),
                ..Control::default()
            },
            ..p.start()
        };
        let at = |p: &Plan| {
            let decided = crate::deployment::decide(p, &before, t(0), verdict(VerdictStatus::Healthy, 420), t(420));
            crate::control::apply(p, &before, decided, None, t(420))
        };
        p.pause_timeout = PauseTimeout::Resume;
        let going_on = at(&p);
        let events = after_check(&p, &traffic(10.0, 0), &before, &going_on, t(420));
        assert_eq!(types(&events), ["Health Checked", "Deployment Resumed"]);
        assert!(events[1].detail.command.is_none(), "nobody commanded it");
        assert!(events[1].detail.note.as_deref().unwrap().contains("pause_timeout: resume"));

        p.pause_timeout = PauseTimeout::RollBack;
        let expired = at(&p);
        assert_eq!(expired.decision, Decision::RollBack);
        assert_eq!(types(&after_check(&p, &traffic(10.0, 0), &before, &expired, t(420))), ["Health Checked"]);
    }

    fn rollback_input(progress: Progress, failure: Option<CaughtError>) -> RollbackInput {
        let p = plan();
        RollbackInput {
            targets: p.targets.clone(),
            traffic: traffic(10.0, 0),
            execution: Some(EXECUTION.into()),
            plan: Some(p),
            progress: Some(progress),
            failure,
        }
    }

    fn report() -> Result<RollbackReport, TaskError> {
        Ok(RollbackReport { targets: Vec::new() })
    }

    #[test]
    fn a_rollback_says_why_as_the_ending_does() {
        let p = plan();
        let unhealthy = crate::deployment::decide(&p, &p.start(), t(0), verdict(VerdictStatus::Unhealthy, 120), t(120));
        let input = rollback_input(unhealthy.clone(), None);
        let e = after_rollback(&input, &report(), t(121)).unwrap();
        assert_eq!(e.detail_type, DetailType::DeploymentRolledBack);
        let (error, cause) = rollback_reason(&p, &unhealthy, None);
        assert_eq!((e.detail.error.as_deref(), e.detail.cause.as_deref()), (Some("Unhealthy"), Some(cause.as_str())));
        assert_eq!(error, "Unhealthy");
        assert_eq!((e.detail.step, e.detail.steps, e.detail.weight_percent), (Some(1), Some(3), Some(10.0)));
        assert_eq!(e.detail.verdict.unwrap().status, VerdictStatus::Unhealthy);
        assert_eq!(e.detail.at, t(121));
    }

    #[test]
    fn a_rollback_decided_inside_the_step_test_reads_the_carried_progress() {
        let p = plan();
        let unhealthy = crate::deployment::decide(&p, &p.start(), t(0), verdict(VerdictStatus::Unhealthy, 120), t(120));
        let failure = CaughtError {
            error: ErrorName::RollBackDecided.to_string(),
            cause: serde_json::to_string(&unhealthy).unwrap(),
        };
        let e = after_rollback(&rollback_input(p.start(), Some(failure)), &report(), t(121)).unwrap();
        assert_eq!(e.detail.error.as_deref(), Some("Unhealthy"));
        assert!(e.detail.cause.unwrap().starts_with("the candidate was unhealthy at step 1 of 3 (10%)"));
    }

    #[test]
    fn an_abort_names_who_and_why() {
        let p = plan();
        let before = p.start();
        let decided = crate::deployment::decide(&p, &before, t(0), verdict(VerdictStatus::Healthy, 60), t(60));
        let aborted = crate::control::apply(&p, &before, decided, Some(command(1, Action::Abort)), t(60));
        let e = after_rollback(&rollback_input(aborted, None), &report(), t(61)).unwrap();
        assert_eq!(e.detail.error.as_deref(), Some("Aborted"));
        let c = e.detail.command.unwrap();
        assert_eq!((c.action.as_str(), c.by.as_str()), ("abort", "arn:aws:iam::123456789012:user/ana"));
    }

    #[test]
    fn a_failed_rollback_is_announced_unless_the_state_machine_retries_it() {
        let p = plan();
        let unhealthy = crate::deployment::decide(&p, &p.start(), t(0), verdict(VerdictStatus::Unhealthy, 120), t(120));
        let input = rollback_input(unhealthy, None);
        let denied = PortError::Other { service: Service::Lambda, message: "AccessDenied".into() };
        let e = after_rollback(&input, &Err(TaskError::from(denied)), t(121)).unwrap();
        assert_eq!(e.detail_type, DetailType::DeploymentFailed);
        assert_eq!(e.detail.error.as_deref(), Some("RollbackFailed"));
        let cause = e.detail.cause.unwrap();
        assert!(cause.starts_with("Rollback FAILED (AwsError: "), "{cause}");
        assert!(cause.contains("after: the candidate was unhealthy at step 1 of 3"), "{cause}");
        assert!(cause.contains("stepshift rollback --function billing --alias live --to 41"), "{cause}");

        let throttled = PortError::Throttled { service: Service::Lambda, message: "slow down".into() };
        assert_eq!(after_rollback(&input, &Err(TaskError::from(throttled)), t(121)), None);
    }

    #[test]
    fn a_rollback_input_without_plan_or_progress_still_says_what_it_can() {
        let mut input = rollback_input(plan().start(), None);
        input.plan = None;
        input.progress = None;
        input.failure = Some(CaughtError { error: "AliasDrift".into(), cause: "orders:live was changed".into() });
        let e = after_rollback(&input, &report(), t(5)).unwrap();
        assert_eq!(e.detail.error.as_deref(), Some("AliasDrift"));
        assert_eq!((e.detail.step, e.detail.steps), (None, None));
        input.execution = None;
        assert_eq!(after_rollback(&input, &report(), t(5)), None, "nothing names the deployment");
    }

    #[test]
    fn verdict_reasons_are_bounded() {
        let mut v = verdict(VerdictStatus::Unhealthy, 60);
        v.reasons = (0..30).map(|i| format!("{i} {}", "x".repeat(1000))).collect();
        let short = EventVerdict::from(&v);
        assert_eq!(short.reasons.len(), MAX_REASONS);
        assert!(short.reasons.iter().all(|r| r.chars().count() <= MAX_REASON_CHARS));
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn publishing_retries_once_then_gives_up_quietly() {
        let aws = MemoryAws::new(t(0));
        let event = promoted(EXECUTION, &plan().targets, &traffic(100.0, 0), t(0));
        let busy = PortError::Throttled { service: SERVICE, message: "slow down".into() };
        aws.inject(Call::PutEvents, Fault::Fail(busy.clone()));
        block_on(publish(&aws, std::slice::from_ref(&event)));
        assert_eq!(aws.lifecycle_events(), std::slice::from_ref(&event), "the retry published it");
        assert_eq!(aws.calls()[&Call::PutEvents], 2);

        let aws = MemoryAws::new(t(0));
        aws.inject_at(Call::PutEvents, 1, Fault::Fail(busy.clone()));
        aws.inject_at(Call::PutEvents, 2, Fault::Fail(busy));
        block_on(publish(&aws, std::slice::from_ref(&event)));
        assert_eq!(aws.calls()[&Call::PutEvents], 2, "one retry only");
        assert!(aws.lifecycle_events().is_empty());

        let aws = MemoryAws::new(t(0));
        let denied = PortError::Other { service: SERVICE, message: "AccessDenied".into() };
        aws.inject(Call::PutEvents, Fault::Fail(denied));
        block_on(publish(&aws, std::slice::from_ref(&event)));
        assert_eq!(aws.calls()[&Call::PutEvents], 1, "a retry cannot help");

        block_on(publish(&aws, &[]));
        assert_eq!(aws.calls()[&Call::PutEvents], 1, "nothing to publish, no call");
        assert_eq!(aws.writes(), 0, "publishing changes no resource");
    }
}
