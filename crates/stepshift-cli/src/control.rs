//! `abort`, `promote`, `pause` and `resume`: a person's commands to a running deployment,
//! written to its control record ([`stepshift_core::control`]) for the next health check
//! to apply, or, at an approval pause, given through the task token; and `retry`, which
//! starts a failed deployment again with the same request.
//!
//! A command never stops an execution: every one ends through the state machine's own
//! paths (an abort is a rollback, a promotion a jump to the last step), so the rollback
//! runs and the lock is released.

use std::time::Duration;

use serde_json::json;
use stepshift_aws::AwsPorts;
use stepshift_core::control::{Action, Command, PauseTimeout};
use stepshift_core::deployment::{Decision, Plan, Progress};
use stepshift_core::ports::ParameterStore;
use stepshift_core::request::{DeploymentRequest, EVENTS_PER_CHECK, HISTORY_EVENT_LIMIT, RESERVED_EVENTS};
use stepshift_core::{Clock, PortError, SystemClock, Timestamp};

use crate::deploy::{FollowArgs, console_url, follow};
use crate::error::CliError;
use crate::output::{Format, Out, dim, good};
use crate::sfn::{Sfn, Target, aws_error, execution_name};
use crate::view::{View, step_label};

/// What a person asks of a running deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask {
    /// `stepshift abort`: roll back now.
    Abort,
    /// `stepshift promote`: skip the remaining steps.
    Promote {
        /// `--skip-lock-in`.
        skip_lock_in: bool,
    },
    /// `stepshift pause`: hold the current step.
    Pause {
        /// `--for`; default: the plan's `approval_timeout_seconds`.
        hold: Option<Duration>,
    },
    /// `stepshift resume`: end a pause.
    Resume,
}

impl Ask {
    /// The command's name, as typed.
    fn verb(&self) -> &'static str {
        match self {
            Ask::Abort => "abort",
            Ask::Promote { .. } => "promote",
            Ask::Pause { .. } => "pause",
            Ask::Resume => "resume",
        }
    }
}

/// The command's name as a noun, capitalised: "Abort recorded for ...".
fn noun(action: &Action) -> &'static str {
    match action {
        Action::Abort => "Abort",
        Action::Promote { .. } => "Promotion",
        Action::Pause { .. } => "Pause",
        Action::Resume => "Resume",
    }
}

/// "an abort", "a promotion", ...
fn with_article(action: &Action) -> &'static str {
    match action {
        Action::Abort => "an abort",
        Action::Promote { .. } => "a promotion",
        Action::Pause { .. } => "a pause",
        Action::Resume => "a resume",
    }
}

/// `--for` of `pause`: a duration such as `30m`, `2h` or `90s`, at least one second.
pub fn pause_duration(text: &str) -> Result<Duration, String> {
    if text.trim_start().starts_with('-') {
        return Err("a pause cannot be negative; give a duration such as 30m, 2h or 90s".into());
    }
    let d = humantime::parse_duration(text).map_err(|e| format!("{e}; give a duration such as 30m, 2h or 90s"))?;
    if d.as_secs() == 0 {
        return Err("a pause lasts at least a second; give a duration such as 30m, 2h or 90s".into());
    }
    Ok(d)
}

/// The clients the commands use: Step Functions, the parameter store (SSM, where the
/// control record lives) and STS (who gives the command).
pub struct Clients {
    sfn: Sfn,
    store: AwsPorts,
    sts: aws_sdk_sts::Client,
}

/// A port error of the control record `what` names, as a CLI error: AWS's (exit 3), as
/// the records commands report them.
fn store_error(what: String) -> impl FnOnce(PortError) -> CliError {
    move |e| match CliError::from(e) {
        CliError::Aws(detail) => CliError::Aws(format!("{what}: {detail}")),
        other => other,
    }
}

impl Clients {
    /// Clients from one configuration.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Clients { sfn: Sfn::new(config), store: AwsPorts::new(config), sts: aws_sdk_sts::Client::new(config) }
    }

    /// The caller's ARN, which signs the command.
    async fn caller(&self) -> Result<String, CliError> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| aws_error("could not tell who you are (STS GetCallerIdentity)", e))?;
        out.arn().map(str::to_owned).ok_or_else(|| CliError::Aws("STS GetCallerIdentity returned no ARN".into()))
    }

    /// The command in the control record `name` for `execution`, if any, read as the
    /// checks read it ([`stepshift_core::control::read`]): a value that is not a command,
    /// or one for another execution, counts as none.
    async fn recorded(&self, name: &str, execution: &str) -> Result<Option<Command>, CliError> {
        stepshift_core::control::read(&self.store, name, execution)
            .await
            .map_err(store_error(format!("could not read the control record {name}")))
    }

    /// Writes `command` to the control record `name`.
    async fn record(&self, name: &str, command: &Command) -> Result<(), CliError> {
        let value = serde_json::to_string(command).unwrap_or_default();
        self.store.put(name, &value).await.map_err(store_error(format!("could not write the control record {name}")))
    }

    /// Deletes the control record `name` (a command that came too late); a record that is
    /// gone already is no error.
    async fn withdraw(&self, name: &str) -> Result<(), CliError> {
        self.store.delete(name).await.map_err(store_error(format!("could not delete the control record {name}")))
    }
}

/// The execution's name: the last part of its ARN.
fn short(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// `abort`, `promote`, `pause` and `resume`.
pub async fn command(execution: &str, target: &Target, ask: Ask, reason: Option<String>) -> Result<(), CliError> {
    let clients = Clients::new(&stepshift_aws::load_config().await);
    let arn = clients.sfn.execution(execution, target).await?;
    let reason = reason.filter(|r| !r.trim().is_empty());
    for line in give(&clients, &arn, &ask, reason, SystemClock.now()).await? {
        println!("{line}");
    }
    Ok(())
}

/// Gives `ask` to the deployment `arn` at `now`: returns the lines to print, or why not.
pub async fn give(
    c: &Clients,
    arn: &str,
    ask: &Ask,
    reason: Option<String>,
    now: Timestamp,
) -> Result<Vec<String>, CliError> {
    let verb = ask.verb();
    let info = c.sfn.describe(arn).await?;
    if info.status != "RUNNING" {
        let how = if info.ended() { "has ended" } else { "is not running" };
        return Err(CliError::Failed(format!("{arn} {how} ({}): nothing to {verb}", info.status)));
    }
    let items = c.sfn.history(arn).await?;
    let view = crate::view::view(&items);
    if let Some(pending) = &view.pending_approval {
        if matches!(ask, Ask::Pause { .. } | Ask::Resume) {
            return Err(CliError::Failed(format!("{arn} waits for approval: approve, reject or abort it")));
        }
        if *ask == Ask::Abort {
            let token = token(arn, pending)?;
            let by = c.caller().await?;
            let why = reason.as_deref().unwrap_or("no reason given");
            c.sfn.abort(&token, &format!("by {by}: {why}")).await?;
            return Ok(vec![
                format!("Aborted {} at its approval pause (by {by}): it rolls back now.", short(arn)),
                dim(&console_url(arn)),
            ]);
        }
    }
    let Some(plan) = view.plan.clone() else {
        return Err(CliError::Failed(format!(
            "{arn} has no plan yet (Begin deployment has not finished): try again in a few seconds"
        )));
    };
    let Some(record) = plan.control.clone() else {
        return Err(CliError::Failed(format!(
            "{arn}: this deployment was started before run-time control existed (its plan names no control record), so it cannot {verb}; it goes on by itself, or answer its approval pause"
        )));
    };
    let progress = view.progress.clone().unwrap_or_else(|| plan.start());
    if let Some(ending) = ending(&view, &progress) {
        return Err(CliError::Failed(format!("{arn} {ending}: nothing to {verb}")));
    }
    let approval = view.pending_approval.is_some();
    let action = match ask {
        Ask::Abort => Action::Abort,
        Ask::Promote { skip_lock_in } => {
            if progress.cursor.promote && !skip_lock_in && !approval {
                return Err(CliError::Failed(format!(
                    "{arn} is already promoted; --skip-lock-in ends the lock-in now"
                )));
            }
            Action::Promote { skip_lock_in: *skip_lock_in }
        }
        Ask::Pause { hold } => {
            let seconds = hold.map_or(plan.approval_timeout_seconds, |d| d.as_secs()).max(1);
            room_for_pause(&plan, items.len() as u64, seconds, now)?;
            Action::Pause { until: now.plus_secs(i64::try_from(seconds).unwrap_or(i64::MAX / 1000)) }
        }
        Ask::Resume => Action::Resume,
    };

    let found = c.recorded(&record, &plan.execution).await?;
    let applied = progress.control.applied;
    let pending = found.as_ref().filter(|f| f.seq > applied);
    if let Some(p) = pending
        && !p.action.replaceable_by(&action)
    {
        return Err(CliError::Failed(format!(
            "{} by {} given at {} is pending; it is applied at the next check",
            with_article(&p.action),
            p.by,
            p.at
        )));
    }
    if *ask == Ask::Resume
        && progress.control.paused.is_none()
        && !pending.is_some_and(|p| matches!(p.action, Action::Pause { .. }))
    {
        return Err(CliError::Failed(format!("{arn} is not paused: nothing to resume")));
    }

    let by = c.caller().await?;
    let seq = found.as_ref().map_or(0, |f| f.seq).max(applied) + 1;
    let command = Command { seq, execution: plan.execution.clone(), action, by, reason, at: now };
    // At an approval pause before the promotion itself, approving is the promotion.
    let write = !(approval && progress.cursor.promote && command.action == (Action::Promote { skip_lock_in: false }));
    if write {
        c.record(&record, &command).await?;
    }
    let info = c.sfn.describe(arn).await?;
    if info.status != "RUNNING" {
        if write {
            c.withdraw(&record).await?;
        }
        return Err(CliError::Failed(format!(
            "{arn} ended ({}) before the {verb} could be applied; the command was withdrawn",
            info.status
        )));
    }
    if let Some(pending) = &view.pending_approval {
        let token = token(arn, pending)?;
        let why = command.reason.as_deref().unwrap_or("no reason given");
        let output = json!({"approved_by": command.by, "comment": format!("promote now: {why}")});
        if let Err(e) = c.sfn.approve(&token, &output).await {
            if write {
                let _ = c.withdraw(&record).await;
            }
            return Err(e);
        }
    }
    Ok(said(arn, &plan, &view, &progress, &command, write, now))
}

/// Whether the deployment is on its way out, where no check comes any more: how.
fn ending(view: &View, progress: &Progress) -> Option<&'static str> {
    use stepshift_core::State as S;
    let state = view.state.as_deref().and_then(stepshift_core::State::from_name);
    match (progress.decision, state) {
        (Decision::RollBack, _)
        | (
            _,
            Some(
                S::RollBack
                | S::RecordRollback
                | S::RolledBackWithFastPath
                | S::StopFastPathRolledBack
                | S::DeploymentRolledBack
                | S::StepRollsBack
                | S::ApprovalTimedOut
                | S::RecordRejection
                | S::DeploymentRejected,
            ),
        ) => Some("is rolling back already"),
        (Decision::Confirm, _)
        | (_, Some(S::ConfirmRelease | S::ReleasedWithFastPath | S::StopFastPathReleased | S::DeploymentSucceeded)) => {
            Some("passed its lock-in and is confirming the release")
        }
        _ => None,
    }
}

/// The task token of an approval pause, from the history.
fn token(arn: &str, pending: &crate::view::PendingApproval) -> Result<String, CliError> {
    pending.token.clone().ok_or_else(|| {
        CliError::Failed(format!(
            "{arn} waits for approval, but its history does not hold the task token; take detail.task_token from the approval event and run: stepshift reject --token TOKEN --reason ..."
        ))
    })
}

/// Refuses a pause of `seconds` whose checks would take the execution's history past Step
/// Functions' limit.
fn room_for_pause(plan: &Plan, so_far: u64, seconds: u64, now: Timestamp) -> Result<(), CliError> {
    let every = plan.check_every(now).max(1);
    let checks = seconds.div_ceil(every);
    let total = so_far + checks * EVENTS_PER_CHECK + RESERVED_EVENTS;
    if total <= HISTORY_EVENT_LIMIT {
        return Ok(());
    }
    let room = HISTORY_EVENT_LIMIT.saturating_sub(so_far + RESERVED_EVENTS) / EVENTS_PER_CHECK * every;
    let at_most = if room == 0 {
        "no pause fits".to_owned()
    } else {
        format!("pause for {} at most", humantime::format_duration(Duration::from_secs(room)))
    };
    Err(CliError::Failed(format!(
        "a pause of {} would overflow the execution's history: {so_far} events so far + {checks} checks (one every {every} s) × {EVENTS_PER_CHECK} events + {RESERVED_EVENTS} kept for the ending = {total}, over Step Functions' limit of {HISTORY_EVENT_LIMIT} events; {at_most}",
        humantime::format_duration(Duration::from_secs(seconds)),
    )))
}

/// What `give` tells the person once the command is recorded.
fn said(
    arn: &str,
    plan: &Plan,
    view: &View,
    progress: &Progress,
    command: &Command,
    written: bool,
    now: Timestamp,
) -> Vec<String> {
    let name = short(arn);
    let who = format!("by {}", command.by);
    let cursor = &progress.cursor;
    let step = step_label(Some(plan), cursor.index, cursor.weight_percent);
    let mut lines = Vec::new();
    if view.pending_approval.is_some() {
        let then = if cursor.promote {
            "it is promoted now, and the first health check of the lock-in ends it"
        } else {
            &*format!("it shifts to {step}, and the first health check after that promotes it")
        };
        lines.push(if written {
            format!(
                "{} recorded for {name} (command {}, {who}), and its approval pause approved: {then}.",
                noun(&command.action),
                command.seq
            )
        } else {
            format!("Approved {name}'s pause before {step}, the promotion itself ({who}): it is promoted now.")
        });
        lines.push(dim(&console_url(arn)));
        return lines;
    }
    let moved = view.traffic.as_ref().is_some_and(|t| t.step_started_at.is_some());
    let tests_first = command.action == Action::Abort
        && !plan.hooks.at(stepshift_core::hooks::Point::BeforeTraffic).is_empty()
        && !view.hooks.iter().any(|t| t.point == stepshift_core::hooks::Point::BeforeTraffic);
    let when = if moved {
        format!("applied at the next health check, within {} s", plan.check_every(now))
    } else if tests_first {
        "no traffic has moved yet; it is applied when the tests before traffic are judged, and the deployment stops with no traffic moved".to_owned()
    } else {
        format!(
            "no traffic has moved yet; it is applied at the first health check of {}",
            step_label(Some(plan), 0, plan.steps.first().map_or(0.0, |s| s.weight_percent))
        )
    };
    lines.push(format!("{} recorded for {name} (command {}, {who}): {when}.", noun(&command.action), command.seq));
    match &command.action {
        Action::Pause { until } => {
            let then = match plan.pause_timeout {
                PauseTimeout::RollBack => "it rolls back (pause_timeout: roll_back)",
                PauseTimeout::Resume => "it goes on (pause_timeout: resume)",
            };
            lines.push(format!(
                "It holds the step it is on until {until}, with the checks going on; `stepshift resume {arn}` ends it sooner; if nobody does, {then}."
            ));
        }
        Action::Promote { skip_lock_in } => {
            let lock_in = if *skip_lock_in || plan.lock_in_seconds == 0 {
                "confirmed without a lock-in".to_owned()
            } else {
                format!("watched for its {} s lock-in", plan.lock_in_seconds)
            };
            if cursor.promote {
                lines.push("The lock-in then ends, and the release is confirmed.".to_owned());
            } else {
                lines.push(format!(
                    "The candidate then takes all traffic and is {lock_in}; a failing check still rolls back."
                ));
            }
        }
        Action::Abort | Action::Resume => {}
    }
    lines.push(dim(&console_url(arn)));
    lines
}

/// Flags of `retry`.
#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    /// Execution ARN of the deployment to start again, or its name with
    /// --state-machine/--stack.
    pub execution: String,
    #[command(flatten)]
    pub target: Target,
    /// SSM parameter prefix of the version records and locks (when the failed
    /// deployment's plan does not tell).
    #[arg(long, env = "STEPSHIFT_PARAMETER_PREFIX", default_value = stepshift_core::records::DEFAULT_PREFIX)]
    pub prefix: String,
    /// Follow the new deployment to its end; exit 0 if promoted, 1 if not.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub follow: FollowArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Format,
}

/// `retry`: starts an ended, unsuccessful deployment again with the same request.
pub async fn retry(args: RetryArgs) -> Result<(), CliError> {
    if !args.wait {
        // The summary is of a deployment that ended: only --wait sees one.
        args.output.text_or_json("retry without --wait")?;
    }
    let config = stepshift_aws::load_config().await;
    let sfn = Sfn::new(&config);
    let arn = sfn.execution(&args.execution, &args.target).await?;
    let info = sfn.describe(&arn).await?;
    if !info.ended() {
        return Err(CliError::Failed(format!(
            "{arn} is still running ({}): nothing to retry; `stepshift abort {arn} --reason ...` rolls it back",
            info.status
        )));
    }
    if info.status == "SUCCEEDED" {
        return Err(CliError::Failed(format!("{arn} succeeded (SUCCEEDED): nothing to retry")));
    }
    let Some(input) = info.input.clone() else {
        return Err(CliError::Failed(format!("{arn} has no input to start again with")));
    };
    let request = DeploymentRequest::from_value(input.clone()).map_err(|e| {
        CliError::Failed(format!(
            "the input of {arn} is not a valid deployment request ({e}); start a new one with stepshift deploy"
        ))
    })?;
    let plan = crate::view::view(&sfn.history(&arn).await?).plan;
    let prefix = plan.as_ref().and_then(prefix_of).unwrap_or(args.prefix.clone());
    stepshift_core::records::validate_prefix(&prefix).map_err(|e| CliError::Invalid(format!("--prefix: {e}")))?;
    let store = stepshift_aws::AwsPorts::new(&config);
    for target in stepshift_core::routers::identities(&request.targets) {
        let keys = stepshift_core::records::RecordKeys::of(&prefix, &target.identity);
        let Some(lock) = stepshift_core::records::load(&store, &keys).await?.lock else { continue };
        let running = lock.execution.starts_with("arn:") && sfn.is_running(&lock.execution).await?;
        let held = format!(
            "{} is locked by {} (candidate {}, since {})",
            target.label, lock.execution, lock.candidate, lock.acquired_at
        );
        return Err(CliError::Failed(if running {
            format!("{held}, which is still running: retry once it has ended")
        } else {
            format!(
                "{held}, which has ended without releasing it: release it with `stepshift unlock --function {} --alias {} --prefix {prefix}`, then retry",
                target.identity.scope, target.identity.name
            )
        }));
    }
    let started =
        sfn.start(&info.state_machine, &fresh_name(&sfn, &info.state_machine, &request).await?, &input).await?;
    let out = Out::new(args.output);
    out.line(&format!("Started {} (a retry of {})", good(&started), short(&arn)));
    out.line(&dim(&console_url(&started)));
    if !args.wait {
        out.finish();
        out.document(&json!({
            "execution": started,
            "status": "RUNNING",
            "console": console_url(&started),
            "retry_of": arn,
        }));
        return Ok(());
    }
    follow(&sfn, &started, &args.follow, &out).await
}

/// A name for a new execution of `machine` that none has yet: the name `deploy` gives
/// ([`execution_name`]), counting seconds, of the next free second (the deployment
/// retried may have started within the same second, and so may another retry).
async fn fresh_name(sfn: &Sfn, machine: &str, request: &DeploymentRequest) -> Result<String, CliError> {
    let now = SystemClock.now();
    let prefix = machine.replacen(":stateMachine:", ":execution:", 1);
    for second in 0..10 {
        let name = execution_name(&request.targets, now.plus_secs(second));
        if !sfn.exists(&format!("{prefix}:{name}")).await? {
            return Ok(name);
        }
    }
    Err(CliError::Failed(format!(
        "every execution name of the next ten seconds is taken on {machine}; try again in a few seconds"
    )))
}

/// The parameter prefix a plan's control record lives under: `{prefix}/{scope}/{name}/control`
/// for its first target.
fn prefix_of(plan: &Plan) -> Option<String> {
    let control = plan.control.as_deref()?;
    let identity = plan.targets.first()?.identity();
    let leaf = format!("/{}/{}/{}", identity.scope, identity.name, stepshift_core::control::LEAF);
    control.strip_suffix(&leaf).filter(|p| !p.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use aws_config::BehaviorVersion;
    use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
    use aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryOutput;
    use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureOutput;
    use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessOutput;
    use aws_sdk_sfn::types::{
        ExecutionStatus, HistoryEvent, HistoryEventType, StateExitedEventDetails, TaskScheduledEventDetails,
    };
    use aws_sdk_ssm::operation::delete_parameter::DeleteParameterOutput;
    use aws_sdk_ssm::operation::get_parameters::GetParametersOutput;
    use aws_sdk_ssm::operation::put_parameter::PutParameterOutput;
    use aws_sdk_ssm::types::{Parameter, ParameterType};
    use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput;
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use serde_json::Value;
    use stepshift_core::State;

    use super::*;

    const ARN: &str = "arn:aws:states:us-east-1:123456789012:execution:stepshift:run-1";
    const RECORD: &str = "/stepshift/orders/live/control";
    const ANA: &str = "arn:aws:iam::123456789012:user/ana";

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_secs(1_800_000_000 + secs)
    }

    /// 10% for 10 minutes, 50% (approval) for 10 minutes, then 100% with a 10-minute
    /// lock-in; checks every minute; approvals wait an hour.
    fn plan() -> Value {
        json!({
            "execution": ARN,
            "started_at": t(0),
            "targets": [],
            "steps": [
                {"weight_percent": 10.0, "bake_seconds": 600, "approval": false},
                {"weight_percent": 50.0, "bake_seconds": 600, "approval": true},
                {"weight_percent": 100.0, "bake_seconds": 0, "approval": false},
            ],
            "health": stepshift_core::request::HealthSettings::default(),
            "lock_in_seconds": 600,
            "keep_versions": null,
            "approval_timeout_seconds": 3600,
            "control": RECORD,
        })
    }

    fn progress(index: usize, applied: u64) -> Value {
        let plan: Plan = serde_json::from_value(plan()).unwrap();
        let mut p = plan.start();
        p.cursor = plan.cursor(index);
        p.decision = Decision::Wait;
        p.control.applied = applied;
        serde_json::to_value(p).unwrap()
    }

    fn traffic(moved: bool) -> Value {
        json!({"weight_percent": if moved { 10.0 } else { 0.0 }, "step_started_at": moved.then(|| t(60)), "revisions": []})
    }

    fn exited(id: i64, state: State, output: Value) -> HistoryEvent {
        HistoryEvent::builder()
            .timestamp(aws_smithy_types::DateTime::from_secs(t(id).secs()))
            .r#type(HistoryEventType::TaskStateExited)
            .id(id)
            .state_exited_event_details(
                StateExitedEventDetails::builder().name(state.as_str()).output(output.to_string()).build().unwrap(),
            )
            .build()
            .unwrap()
    }

    /// Begin, then (with `moved`) a shift and a check at step `index` that applied
    /// command `applied`.
    fn history(moved: bool, index: usize, applied: u64) -> Vec<HistoryEvent> {
        let begin = json!({"plan": plan(), "progress": progress(0, 0), "traffic": traffic(false)});
        let mut events = vec![exited(1, State::BeginDeployment, begin)];
        if moved {
            let checked = json!({"plan": plan(), "progress": progress(index, applied), "traffic": traffic(true)});
            events.push(exited(2, State::CheckHealth, checked));
        }
        events
    }

    /// At the approval pause before step 2 (or the promotion, `index` 2).
    fn at_approval(index: usize) -> Vec<HistoryEvent> {
        let mut events = history(true, 0, 0);
        let mut advance = progress(index, 0);
        advance["decision"] = json!("advance");
        events.push(exited(
            3,
            State::ChooseNextStep,
            json!({"plan": plan(), "progress": advance, "traffic": traffic(true)}),
        ));
        let parameters = json!({"Entries": [{"Detail": {"task_token": "tok-1"}}]});
        events.push(
            HistoryEvent::builder()
                .timestamp(aws_smithy_types::DateTime::from_secs(t(4).secs()))
                .r#type(HistoryEventType::TaskScheduled)
                .id(4)
                .task_scheduled_event_details(
                    TaskScheduledEventDetails::builder()
                        .resource_type("events")
                        .resource("putEvents.waitForTaskToken")
                        .region("us-east-1")
                        .parameters(parameters.to_string())
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        );
        events
    }

    fn described(status: ExecutionStatus) -> DescribeExecutionOutput {
        DescribeExecutionOutput::builder()
            .execution_arn(ARN)
            .state_machine_arn("arn:aws:states:us-east-1:123456789012:stateMachine:stepshift")
            .status(status)
            .start_date(aws_smithy_types::DateTime::from_secs(t(0).secs()))
            .build()
            .unwrap()
    }

    /// DescribeExecution answering each status in turn.
    fn statuses(list: &[ExecutionStatus]) -> Rule {
        let mut seq = mock!(aws_sdk_sfn::Client::describe_execution).sequence();
        for status in list {
            let status = status.clone();
            seq = seq.output(move || described(status.clone()));
        }
        seq.build()
    }

    fn history_rule(events: Vec<HistoryEvent>) -> Rule {
        mock!(aws_sdk_sfn::Client::get_execution_history)
            .then_output(move || GetExecutionHistoryOutput::builder().set_events(Some(events.clone())).build().unwrap())
    }

    /// GetParameters of the control record alone, as the checks read it: SSM names a
    /// missing parameter among the invalid ones.
    fn no_record() -> Rule {
        mock!(aws_sdk_ssm::Client::get_parameters)
            .match_requests(|r| r.names() == [RECORD])
            .then_output(|| GetParametersOutput::builder().invalid_parameters(RECORD).build())
    }

    fn record_holding(command: &Command) -> Rule {
        let value = serde_json::to_string(command).unwrap();
        mock!(aws_sdk_ssm::Client::get_parameters).match_requests(|r| r.names() == [RECORD]).then_output(move || {
            GetParametersOutput::builder().parameters(Parameter::builder().name(RECORD).value(&value).build()).build()
        })
    }

    fn put() -> Rule {
        mock!(aws_sdk_ssm::Client::put_parameter).then_output(|| PutParameterOutput::builder().build())
    }

    fn delete() -> Rule {
        mock!(aws_sdk_ssm::Client::delete_parameter)
            .match_requests(|r| r.name() == Some(RECORD))
            .then_output(|| DeleteParameterOutput::builder().build())
    }

    fn ana() -> Rule {
        mock!(aws_sdk_sts::Client::get_caller_identity)
            .then_output(|| GetCallerIdentityOutput::builder().arn(ANA).account("123456789012").build())
    }

    fn clients(sfn: &[&Rule], ssm: &[&Rule], sts: &[&Rule]) -> Clients {
        Clients {
            sfn: Sfn::from_clients(
                mock_client!(aws_sdk_sfn, RuleMode::MatchAny, sfn.iter().copied()),
                mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, std::iter::empty::<&Rule>()),
            ),
            // Only SSM answers: the commands use no other port.
            store: AwsPorts::from_clients(
                aws_sdk_lambda::Client::from_conf(
                    aws_sdk_lambda::Config::builder().behavior_version(BehaviorVersion::latest()).build(),
                ),
                aws_sdk_cloudwatch::Client::from_conf(
                    aws_sdk_cloudwatch::Config::builder().behavior_version(BehaviorVersion::latest()).build(),
                ),
                mock_client!(aws_sdk_ssm, RuleMode::MatchAny, ssm.iter().copied()),
            ),
            sts: mock_client!(aws_sdk_sts, RuleMode::MatchAny, sts.iter().copied()),
        }
    }

    const RUNNING: ExecutionStatus = ExecutionStatus::Running;

    fn command(seq: u64, action: Action) -> Command {
        Command { seq, execution: ARN.into(), action, by: ANA.into(), reason: Some("ticket 42".into()), at: t(30) }
    }

    fn failed(r: Result<Vec<String>, CliError>) -> String {
        match r {
            Err(CliError::Failed(m)) => m,
            other => panic!("expected a refusal (exit 1), got {other:?}"),
        }
    }

    #[tokio::test]
    async fn abort_writes_the_signed_command_to_the_plans_control_record() {
        let put = mock!(aws_sdk_ssm::Client::put_parameter)
            .match_requests(|r| {
                let value: Value = serde_json::from_str(r.value().unwrap_or_default()).unwrap();
                r.name() == Some(RECORD)
                    && r.overwrite() == Some(true)
                    && r.r#type() == Some(&ParameterType::String)
                    && value
                        == json!({
                            "seq": 1,
                            "execution": ARN,
                            "action": {"command": "abort"},
                            "by": ANA,
                            "reason": "bad release",
                            "at": "2027-01-15T08:03:20Z",
                        })
            })
            .then_output(|| PutParameterOutput::builder().build());
        let (describe, history) = (statuses(&[RUNNING, RUNNING]), history_rule(history(true, 0, 0)));
        let (record, sts) = (no_record(), ana());
        let c = clients(&[&describe, &history], &[&record, &put], &[&sts]);
        let lines = give(&c, ARN, &Ask::Abort, Some("bad release".into()), t(200)).await.unwrap();
        assert_eq!((record.num_calls(), put.num_calls()), (1, 1), "GetParameters of the record, then PutParameter");
        assert_eq!(
            lines[0],
            format!("Abort recorded for run-1 (command 1, by {ANA}): applied at the next health check, within 60 s.")
        );
        assert!(lines[1].contains("#/v2/executions/details/arn:aws:states:"), "{lines:?}");
    }

    #[tokio::test]
    async fn abort_at_an_approval_pause_fails_the_task_as_aborted() {
        let fail = mock!(aws_sdk_sfn::Client::send_task_failure)
            .match_requests(|r| {
                r.task_token() == Some("tok-1")
                    && r.error() == Some("Aborted")
                    && r.cause() == Some(&*format!("by {ANA}: error budget spent"))
            })
            .then_output(|| SendTaskFailureOutput::builder().build());
        let (describe, history, put, sts) = (statuses(&[RUNNING]), history_rule(at_approval(1)), put(), ana());
        let c = clients(&[&describe, &history, &fail], &[&put], &[&sts]);
        let lines = give(&c, ARN, &Ask::Abort, Some("error budget spent".into()), t(200)).await.unwrap();
        assert_eq!(fail.num_calls(), 1);
        assert_eq!(put.num_calls(), 0, "the task token answers it: no record");
        assert_eq!(lines[0], format!("Aborted run-1 at its approval pause (by {ANA}): it rolls back now."));
    }

    #[tokio::test]
    async fn promote_at_an_approval_pause_records_it_and_approves() {
        let put = mock!(aws_sdk_ssm::Client::put_parameter)
            .match_requests(|r| {
                r.value().is_some_and(|v| v.contains(r#""action":{"command":"promote","skip_lock_in":false}"#))
            })
            .then_output(|| PutParameterOutput::builder().build());
        let approve = mock!(aws_sdk_sfn::Client::send_task_success)
            .match_requests(|r| {
                r.task_token() == Some("tok-1")
                    && serde_json::from_str::<Value>(r.output().unwrap_or_default()).unwrap()
                        == json!({"approved_by": ANA, "comment": "promote now: ticket 42"})
            })
            .then_output(|| SendTaskSuccessOutput::builder().build());
        let (describe, history, record, sts) =
            (statuses(&[RUNNING, RUNNING]), history_rule(at_approval(1)), no_record(), ana());
        let c = clients(&[&describe, &history, &approve], &[&record, &put], &[&sts]);
        let ask = Ask::Promote { skip_lock_in: false };
        let lines = give(&c, ARN, &ask, Some("ticket 42".into()), t(200)).await.unwrap();
        assert_eq!((put.num_calls(), approve.num_calls()), (1, 1));
        assert_eq!(
            lines[0],
            format!(
                "Promotion recorded for run-1 (command 1, by {ANA}), and its approval pause approved: it shifts to step 2 of 3 (50%), and the first health check after that promotes it."
            )
        );
    }

    #[tokio::test]
    async fn pause_and_resume_at_an_approval_pause_are_refused() {
        for ask in [Ask::Pause { hold: None }, Ask::Resume] {
            let (describe, history, put) = (statuses(&[RUNNING]), history_rule(at_approval(1)), put());
            let c = clients(&[&describe, &history], &[&put], &[]);
            let m = failed(give(&c, ARN, &ask, None, t(200)).await);
            assert_eq!(m, format!("{ARN} waits for approval: approve, reject or abort it"));
            assert_eq!(put.num_calls(), 0);
        }
    }

    #[tokio::test]
    async fn a_pending_abort_refuses_a_pause() {
        let (describe, history) = (statuses(&[RUNNING, RUNNING]), history_rule(history(true, 0, 1)));
        let (record, put, sts) = (record_holding(&command(2, Action::Abort)), put(), ana());
        let c = clients(&[&describe, &history], &[&record, &put], &[&sts]);
        let m = failed(give(&c, ARN, &Ask::Pause { hold: Some(Duration::from_secs(1800)) }, None, t(200)).await);
        assert_eq!(
            m,
            format!("an abort by {ANA} given at 2027-01-15T08:00:30Z is pending; it is applied at the next check")
        );
        assert_eq!(put.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_pending_pause_gives_way_and_the_sequence_goes_on() {
        // The record holds command 3 (a pause not yet applied; the last check applied 2).
        let put = mock!(aws_sdk_ssm::Client::put_parameter)
            .match_requests(|r| {
                let value: Value = serde_json::from_str(r.value().unwrap_or_default()).unwrap();
                value["seq"] == 4 && value["action"] == json!({"command": "resume"}) && value["reason"].is_null()
            })
            .then_output(|| PutParameterOutput::builder().build());
        let (describe, history) = (statuses(&[RUNNING, RUNNING]), history_rule(history(true, 0, 2)));
        let (record, sts) = (record_holding(&command(3, Action::Pause { until: t(3600) })), ana());
        let c = clients(&[&describe, &history], &[&record, &put], &[&sts]);
        let lines = give(&c, ARN, &Ask::Resume, None, t(200)).await.unwrap();
        assert_eq!(put.num_calls(), 1);
        assert!(lines[0].starts_with("Resume recorded for run-1 (command 4, "), "{lines:?}");
    }

    #[tokio::test]
    async fn resume_when_nothing_is_paused_is_refused() {
        // The record holds command 1, which the last check applied.
        let (describe, history) = (statuses(&[RUNNING]), history_rule(history(true, 0, 1)));
        let (record, put) = (record_holding(&command(1, Action::Resume)), put());
        let c = clients(&[&describe, &history], &[&record, &put], &[]);
        let m = failed(give(&c, ARN, &Ask::Resume, None, t(200)).await);
        assert_eq!(m, format!("{ARN} is not paused: nothing to resume"));
        assert_eq!(put.num_calls(), 0);
    }

    #[tokio::test]
    async fn nothing_is_written_for_an_ended_execution() {
        let asks = [Ask::Abort, Ask::Promote { skip_lock_in: true }, Ask::Pause { hold: None }, Ask::Resume];
        for ask in asks {
            let (describe, history, put, sts) =
                (statuses(&[ExecutionStatus::Failed]), history_rule(history(true, 0, 0)), put(), ana());
            let fail =
                mock!(aws_sdk_sfn::Client::send_task_failure).then_output(|| SendTaskFailureOutput::builder().build());
            let c = clients(&[&describe, &history, &fail], &[&put], &[&sts]);
            let m = failed(give(&c, ARN, &ask, Some("late".into()), t(200)).await);
            assert_eq!(m, format!("{ARN} has ended (FAILED): nothing to {}", ask.verb()));
            assert_eq!((put.num_calls(), fail.num_calls(), history.num_calls()), (0, 0, 0));
        }
    }

    #[tokio::test]
    async fn a_deployment_that_ends_meanwhile_takes_the_command_back() {
        let (describe, history) = (statuses(&[RUNNING, ExecutionStatus::Succeeded]), history_rule(history(true, 0, 0)));
        let (record, put, delete, sts) = (no_record(), put(), delete(), ana());
        let c = clients(&[&describe, &history], &[&record, &put, &delete], &[&sts]);
        let m = failed(give(&c, ARN, &Ask::Promote { skip_lock_in: true }, None, t(200)).await);
        assert_eq!(
            m,
            format!("{ARN} ended (SUCCEEDED) before the promote could be applied; the command was withdrawn")
        );
        assert_eq!((put.num_calls(), delete.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_deployment_rolling_back_takes_no_command() {
        let mut events = history(true, 0, 0);
        let mut rolling = progress(0, 0);
        rolling["decision"] = json!("roll_back");
        events.push(exited(
            3,
            State::CheckHealth,
            json!({"plan": plan(), "progress": rolling, "traffic": traffic(true)}),
        ));
        let (describe, history, put) = (statuses(&[RUNNING]), history_rule(events), put());
        let c = clients(&[&describe, &history], &[&put], &[]);
        let m = failed(give(&c, ARN, &Ask::Pause { hold: None }, None, t(200)).await);
        assert_eq!(m, format!("{ARN} is rolling back already: nothing to pause"));
        assert_eq!(put.num_calls(), 0);
    }

    #[tokio::test]
    async fn promote_in_the_lock_in_asks_for_skip_lock_in() {
        let (describe, history, put) = (statuses(&[RUNNING]), history_rule(history(true, 2, 0)), put());
        let c = clients(&[&describe, &history], &[&put], &[]);
        let m = failed(give(&c, ARN, &Ask::Promote { skip_lock_in: false }, None, t(200)).await);
        assert_eq!(m, format!("{ARN} is already promoted; --skip-lock-in ends the lock-in now"));
        assert_eq!(put.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_command_before_any_traffic_waits_for_the_first_check() {
        let put = mock!(aws_sdk_ssm::Client::put_parameter)
            .match_requests(|r| {
                let value: Value = serde_json::from_str(r.value().unwrap_or_default()).unwrap();
                // The default pause: the plan's approval timeout, an hour.
                value["action"] == json!({"command": "pause", "until": "2027-01-15T09:03:20Z"})
            })
            .then_output(|| PutParameterOutput::builder().build());
        let (describe, history) = (statuses(&[RUNNING, RUNNING]), history_rule(history(false, 0, 0)));
        let (record, sts) = (no_record(), ana());
        let c = clients(&[&describe, &history], &[&record, &put], &[&sts]);
        let lines = give(&c, ARN, &Ask::Pause { hold: None }, None, t(200)).await.unwrap();
        assert_eq!(put.num_calls(), 1);
        assert_eq!(
            lines[0],
            format!(
                "Pause recorded for run-1 (command 1, by {ANA}): no traffic has moved yet; it is applied at the first health check of step 1 of 3 (10%)."
            )
        );
        assert!(
            lines[1].contains("until 2027-01-15T09:03:20Z")
                && lines[1].ends_with("it rolls back (pause_timeout: roll_back)."),
            "{lines:?}"
        );
    }

    #[tokio::test]
    async fn a_pause_that_would_overflow_the_history_is_refused_with_the_arithmetic() {
        let (describe, history, put) = (statuses(&[RUNNING]), history_rule(history(true, 0, 0)), put());
        let c = clients(&[&describe, &history], &[&put], &[]);
        let m =
            failed(give(&c, ARN, &Ask::Pause { hold: Some(Duration::from_secs(3 * 24 * 3600)) }, None, t(200)).await);
        assert_eq!(
            m,
            "a pause of 3days would overflow the execution's history: 2 events so far + 4320 checks (one every 60 s) × 9 events + 2000 kept for the ending = 40882, over Step Functions' limit of 25000 events; pause for 1day 18h 35m at most"
        );
        assert_eq!(put.num_calls(), 0);
    }

    #[tokio::test]
    async fn sts_failing_is_an_aws_error() {
        let (describe, history, record) = (statuses(&[RUNNING]), history_rule(history(true, 0, 0)), no_record());
        let sts = mock!(aws_sdk_sts::Client::get_caller_identity).sequence().http_status(403, None).build();
        let put = put();
        let c = clients(&[&describe, &history], &[&record, &put], &[&sts]);
        let e = give(&c, ARN, &Ask::Abort, None, t(200)).await.unwrap_err();
        assert!(matches!(&e, CliError::Aws(m) if m.starts_with("could not tell who you are")), "{e:?}");
        assert_eq!(put.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_control_record_ssm_will_not_read_is_an_aws_error() {
        let (describe, history, sts, put) = (statuses(&[RUNNING]), history_rule(history(true, 0, 0)), ana(), put());
        let read = mock!(aws_sdk_ssm::Client::get_parameters).sequence().http_status(403, None).build();
        let c = clients(&[&describe, &history], &[&read, &put], &[&sts]);
        let e = give(&c, ARN, &Ask::Abort, None, t(200)).await.unwrap_err();
        assert!(
            matches!(&e, CliError::Aws(m) if m.starts_with(&format!("could not read the control record {RECORD}: SSM"))),
            "{e:?}"
        );
        assert_eq!(e.exit_code(), std::process::ExitCode::from(crate::error::code::AWS));
        assert_eq!((read.num_calls(), put.num_calls()), (1, 0));
    }

    #[tokio::test]
    async fn withdrawing_a_record_that_is_gone_already_is_no_error() {
        let (describe, history) = (statuses(&[RUNNING, ExecutionStatus::Aborted]), history_rule(history(true, 0, 0)));
        let gone = mock!(aws_sdk_ssm::Client::delete_parameter).then_error(|| {
            aws_sdk_ssm::operation::delete_parameter::DeleteParameterError::ParameterNotFound(
                aws_sdk_ssm::types::error::ParameterNotFound::builder().build(),
            )
        });
        let (record, put, sts) = (no_record(), put(), ana());
        let c = clients(&[&describe, &history], &[&record, &put, &gone], &[&sts]);
        let m = failed(give(&c, ARN, &Ask::Abort, Some("bad release".into()), t(200)).await);
        assert_eq!(m, format!("{ARN} ended (ABORTED) before the abort could be applied; the command was withdrawn"));
        assert_eq!((put.num_calls(), gone.num_calls()), (1, 1));
    }

    #[test]
    fn pause_durations_are_positive() {
        assert_eq!(pause_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(pause_duration("90s"), Ok(Duration::from_secs(90)));
        for bad in ["0s", "-5m", "soon", "500ms"] {
            assert!(pause_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_prefix_comes_from_the_plans_control_record() {
        let mut plan: Plan = serde_json::from_value(plan()).unwrap();
        let route = stepshift_core::routers::Route::Alias(stepshift_core::routers::alias::AliasRoute {
            function: "orders".into(),
            alias: "live".into(),
        });
        plan.targets.push(stepshift_core::deployment::PlannedTarget::new(route, "41", "42"));
        assert_eq!(prefix_of(&plan).as_deref(), Some("/stepshift"));
        plan.control = Some("/teams/a/orders/live/control".into());
        assert_eq!(prefix_of(&plan).as_deref(), Some("/teams/a"));
        plan.control = None;
        assert_eq!(prefix_of(&plan), None);
    }
}
