//! Runs deployments: the real `statemachine/deployment.asl.json` (compiled in), the real
//! task handlers called in-process, and [`SimAws`] behind them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures_executor::block_on;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stepshift_core::memory::Call;
use stepshift_core::ports::AliasRouting;
use stepshift_core::tasks::TaskConfig;
use stepshift_core::{Clock, ErrorName, TaskError, Timestamp};

use crate::asl::{Environment, Event, Execution, Options, StateMachine, Status, TaskCall, TaskResult};
use crate::sim::{FunctionModel, ScheduledAlarm, SimAws, SiteModel, WebModel};

/// The production state machine definition, exactly as deployed.
pub const DEPLOYMENT_ASL: &str = include_str!("../../../statemachine/deployment.asl.json");

/// The account and region of the simulation.
pub const ACCOUNT: &str = "000000000000";
/// The region of the simulation.
pub const REGION: &str = "us-east-1";
/// The approval event bus name the simulation substitutes.
pub const APPROVAL_BUS: &str = "stepshift-approvals";

/// The six task functions, by the substitution that names them in the ASL.
pub const FUNCTIONS: [(&str, &str); 6] = [
    ("RecordVersionFunctionArn", "stepshift-record-version"),
    ("ShiftWeightFunctionArn", "stepshift-shift-weight"),
    ("CheckHealthFunctionArn", "stepshift-check-health"),
    ("PromoteFunctionArn", "stepshift-promote"),
    ("RollbackFunctionArn", "stepshift-rollback"),
    ("TallyFunctionArn", TALLY_FUNCTION),
];

/// The simulated `tally` function's name.
pub const TALLY_FUNCTION: &str = "stepshift-tally";

/// The simulated `tally` function's ARN: where its subscription filters send.
pub fn tally_arn() -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{TALLY_FUNCTION}")
}

/// The DefinitionSubstitutions of the simulated account.
pub fn substitutions() -> HashMap<String, String> {
    let mut subs: HashMap<String, String> = FUNCTIONS
        .iter()
        .map(|(key, name)| ((*key).to_owned(), format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")))
        .collect();
    subs.insert("ApprovalEventBusName".into(), APPROVAL_BUS.into());
    subs
}

/// The simulated account's deployment state machine's ARN.
pub fn state_machine_arn() -> String {
    format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:stepshift-deployment")
}

/// Loads the production state machine with the simulated account's substitutions.
pub fn deployment_machine() -> Result<StateMachine, String> {
    StateMachine::load(DEPLOYMENT_ASL, &substitutions())
}

/// Something a person (or a script) does at a set time during the simulation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimedAction {
    /// Seconds after the start.
    pub after_seconds: u64,
    /// What happens.
    pub action: Action,
}

/// A scripted action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Someone points an alias at other versions by hand (drift).
    SetAlias {
        /// Function name.
        function: String,
        /// Alias name.
        alias: String,
        /// The routing they set.
        routing: AliasRouting,
    },
    /// Someone edits a hosted zone's record sets by hand (drift).
    SetRecords {
        /// The hosted zone.
        hosted_zone_id: String,
        /// Every record set the zone holds afterwards.
        records: Vec<stepshift_core::routers::route53::RecordSet>,
    },
    /// Someone deletes every subscription filter of a log group by hand (the fast path
    /// goes silent; `tally` failing looks the same to a check).
    RemoveLogFilters {
        /// The log group, e.g. `/aws/lambda/orders`.
        log_group: String,
    },
    /// A person gives the running deployment a command (`stepshift abort`, `promote`,
    /// `pause`, `resume`): the simulation writes the control record as the CLI does,
    /// or, at an approval pause, answers the pause as the CLI does
    /// ([`Simulation::answer`]).
    Command {
        /// What is asked.
        command: stepshift_core::control::Action,
        /// Why.
        #[serde(default)]
        reason: Option<String>,
    },
    /// Someone sets a Web Function endpoint's weights by hand (drift).
    SetWebWeights {
        /// The Web Function.
        function: String,
        /// The endpoint.
        endpoint: String,
        /// The weights they set, in effect at once.
        weights: Vec<stepshift_core::routers::web::RevisionWeight>,
    },
}

/// How the simulated approver answers approval pauses, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Answer {
    /// Approve after this many seconds.
    Approve {
        /// Seconds after the pause began.
        after_seconds: u64,
    },
    /// Reject after this many seconds.
    Reject {
        /// Seconds after the pause began.
        after_seconds: u64,
        /// The reason given.
        reason: String,
    },
    /// Never answer: the pause times out.
    Ignore,
}

/// Everything a simulated deployment needs besides its request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Seed of every random draw.
    #[serde(default)]
    pub seed: u64,
    /// When the simulation starts.
    #[serde(default = "default_start")]
    pub start: Timestamp,
    /// The functions and their traffic.
    #[serde(default)]
    pub functions: Vec<FunctionModel>,
    /// Web front ends released through Route53 records, and their traffic.
    #[serde(default)]
    pub sites: Vec<SiteModel>,
    /// Lambda Web Function endpoints, and their traffic.
    #[serde(default)]
    pub web_functions: Vec<WebModel>,
    /// CloudWatch's delivery lag range, seconds after a minute ends.
    #[serde(default = "default_lag")]
    pub metric_lag_seconds: (u64, u64),
    /// Alarms with scheduled states.
    #[serde(default)]
    pub alarms: Vec<ScheduledAlarm>,
    /// Scripted actions.
    #[serde(default)]
    pub actions: Vec<TimedAction>,
    /// Answers to approval pauses, in order; when they run out, approve after 60 s.
    #[serde(default)]
    pub approvals: Vec<Answer>,
    /// Virtual duration of one task invocation, ms.
    #[serde(default = "default_task_millis")]
    pub task_millis: i64,
    /// How long every alias has served its stable version before the deployment starts,
    /// so that "Begin deployment" finds a history to compare with (0: a new function).
    #[serde(default = "default_history_seconds")]
    pub history_seconds: u64,
    /// The fast path's delivery delay range: each version's 10-second bucket of outcomes
    /// arrives this many seconds after it ends (only for requests that ask for the fast
    /// path, `health.fast_path.enabled`).
    #[serde(default = "default_tally_delay")]
    pub tally_delay_seconds: (u64, u64),
    /// The functions validation hooks invoke, and how each answers, in order (the last
    /// answer repeats): test functions by name (the simulated account holds them), and
    /// candidate versions as `function:version` (unscripted, they pass after a second).
    #[serde(default)]
    pub hooks: BTreeMap<String, Vec<crate::hooks::HookBehaviour>>,
}

fn default_tally_delay() -> (u64, u64) {
    crate::sim::TALLY_DELAY_SECONDS
}

fn default_history_seconds() -> u64 {
    3600
}

fn default_start() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-24T09:00:00Z").unwrap_or_default()
}

fn default_lag() -> (u64, u64) {
    (60, 180)
}

fn default_task_millis() -> i64 {
    250
}

/// What a scenario file leaves out: seed 0, the start 2026-11-24T09:00:00Z, no functions,
/// sites, alarms, actions or approval answers, CloudWatch's lag 60-180 s, 250 ms per task
/// invocation, an hour of history.
impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            seed: 0,
            start: default_start(),
            functions: Vec::new(),
            sites: Vec::new(),
            web_functions: Vec::new(),
            metric_lag_seconds: default_lag(),
            alarms: Vec::new(),
            actions: Vec::new(),
            approvals: Vec::new(),
            task_millis: default_task_millis(),
            history_seconds: default_history_seconds(),
            tally_delay_seconds: default_tally_delay(),
            hooks: BTreeMap::new(),
        }
    }
}

/// An injected failure of a whole task invocation (the Lambda, not an AWS call).
#[derive(Clone, Debug, PartialEq)]
pub struct TaskFault {
    /// The function's name, e.g. `stepshift-promote`.
    pub function: String,
    /// Which invocation of it fails (0 = the first).
    pub invocation: u32,
    /// Whether the handler ran (and its effects landed) before the failure.
    pub after_effect: bool,
    /// The error the state machine sees, e.g. `Lambda.Unknown`.
    pub error: String,
}

/// A stand-in for the check-health handler: the simulated AWS and the task input in,
/// the task output (the new progress) out.
pub type CheckOverride = Box<dyn Fn(&SimAws, Value) -> Result<Value, TaskError> + Send>;

/// The simulated account of `scenario`: its functions, sites, Web Function endpoints
/// and alarms, with their traffic.
pub fn account(scenario: &Scenario) -> SimAws {
    SimAws::new(
        scenario.start,
        scenario.seed,
        scenario.functions.clone(),
        scenario.metric_lag_seconds,
        scenario.alarms.clone(),
        scenario.history_seconds,
    )
    .with_sites(scenario.sites.clone())
    .with_web(scenario.web_functions.clone())
    .with_tally_delay(scenario.tally_delay_seconds)
}

/// The environment the state machine's tasks run in: one deployment's, in an account
/// it may share with others ([`crate::fleet`]).
pub struct LocalEnvironment {
    /// Simulated AWS: the account.
    pub aws: Arc<SimAws>,
    /// The task Lambdas' configuration.
    pub config: TaskConfig,
    /// PutEvents entries sent to the approval bus, in order.
    pub events: Vec<Value>,
    /// Task invocations per function name.
    pub invocations: BTreeMap<String, u32>,
    /// Injected task failures.
    pub task_faults: Vec<TaskFault>,
    /// Replaces the check-health handler, so that benchmarks can run other judges on
    /// the same state machine and the same simulated traffic.
    pub check_override: Option<CheckOverride>,
    /// The functions validation hooks invoke, and every invocation they made.
    pub hooks: crate::hooks::HookFunctions,
    /// The commands given to the deployment (written to its control record, or
    /// answered at an approval pause), in order.
    pub commands: Vec<stepshift_core::control::Command>,
    /// The running deployment's control record and execution, once Begin planned them.
    control: Option<(String, String)>,
    actions: Vec<TimedAction>,
    origin: Timestamp,
}

/// Who gives the simulation's commands.
pub const SIMULATED_OPERATOR: &str = "arn:aws:iam::000000000000:user/simulated-operator";

impl LocalEnvironment {
    /// The environment of `scenario`, in an account of its own.
    pub fn new(scenario: &Scenario) -> Self {
        Self::on(Arc::new(account(scenario)), scenario)
    }

    /// The environment of `scenario`'s deployment in `aws`, an account other
    /// deployments may share: its scripted actions, hooks, task faults and commands are
    /// its own.
    pub fn on(aws: Arc<SimAws>, scenario: &Scenario) -> Self {
        let hooks = crate::hooks::HookFunctions::new(scenario.hooks.clone());
        for name in hooks.test_functions() {
            aws.aws.add_function(name, 1);
        }
        let mut actions = scenario.actions.clone();
        actions.sort_by_key(|a| a.after_seconds);
        LocalEnvironment {
            aws,
            config: TaskConfig::default(),
            events: Vec::new(),
            invocations: BTreeMap::new(),
            task_faults: Vec::new(),
            check_override: None,
            hooks,
            commands: Vec::new(),
            control: None,
            actions,
            origin: scenario.start,
        }
    }

    /// The command `action` (with `reason`) as the CLI would write it at `now`, for the
    /// running deployment; `None` before Begin planned one.
    fn command(
        &self,
        action: stepshift_core::control::Action,
        reason: Option<String>,
        now: Timestamp,
    ) -> Option<(String, stepshift_core::control::Command)> {
        let (name, execution) = self.control.clone()?;
        let seq = self.commands.iter().filter(|c| c.execution == execution).count() as u64 + 1;
        let by = SIMULATED_OPERATOR.to_owned();
        Some((name, stepshift_core::control::Command { seq, execution, action, by, reason, at: now }))
    }

    /// Writes a command into the running deployment's control record.
    fn give(&mut self, action: stepshift_core::control::Action, reason: Option<String>, now: Timestamp) {
        let Some((name, command)) = self.command(action, reason, now) else { return };
        let value = serde_json::to_string(&command).unwrap_or_default();
        let _ = block_on(stepshift_core::ports::ParameterStore::put(&self.aws.aws, &name, &value));
        self.commands.push(command);
    }

    /// Takes the first scripted command due at or before `until`, with its time.
    pub(crate) fn take_command(
        &mut self,
        until: Timestamp,
    ) -> Option<(Timestamp, stepshift_core::control::Action, Option<String>)> {
        let i = self.actions.iter().position(|a| {
            matches!(a.action, Action::Command { .. }) && self.origin.plus_secs(a.after_seconds as i64) <= until
        })?;
        let TimedAction { after_seconds, action } = self.actions.remove(i);
        let Action::Command { command, reason } = action else { return None };
        Some((self.origin.plus_secs(after_seconds as i64), command, reason))
    }

    /// Answers an approval pause with a person's command, as `stepshift` does: an abort
    /// fails the pause ([`ErrorName::Aborted`]); a promotion is written to the control
    /// record and approves the pause. Pause and resume are refused there (the CLI exits
    /// 1); returns whether the pause was answered.
    pub(crate) fn command_at_approval(
        &mut self,
        exec: &mut Execution,
        token: &str,
        command: stepshift_core::control::Action,
        reason: Option<String>,
    ) -> bool {
        use stepshift_core::control::Action as Command;
        let now = exec.now();
        match command {
            Command::Abort => {
                let Some((_, c)) = self.command(Command::Abort, reason, now) else { return false };
                let cause = format!("by {}: {}", c.by, c.reason.as_deref().unwrap_or("no reason given"));
                self.commands.push(c);
                exec.send_task_failure(token, ErrorName::Aborted.as_str(), &cause, self).is_ok()
            }
            promote @ Command::Promote { .. } => {
                self.give(promote, reason, now);
                exec.send_task_success(token, json!({"approved_by": SIMULATED_OPERATOR, "comment": "promote now"}))
                    .is_ok()
            }
            Command::Pause { .. } | Command::Resume => false,
        }
    }

    /// The PutEvents entries that asked for an approval (the bus also carries the
    /// lifecycle event `Deployment Started`).
    pub fn approval_requests(&self) -> impl Iterator<Item = &Value> {
        self.events.iter().filter(|e| e["DetailType"] == "Deployment approval requested")
    }

    /// Remembers the control record Begin planned, from its output.
    fn planned(&mut self, function: &str, output: &Value) {
        let plan = &output["plan"];
        if function == "stepshift-record-version"
            && let (Some(name), Some(execution)) = (plan["control"].as_str(), plan["execution"].as_str())
        {
            self.control = Some((name.to_owned(), execution.to_owned()));
        }
    }

    fn call_handler(&self, function: &str, input: Value) -> Result<Value, TaskError> {
        // The override judges checks only: not the hooks, not "Announce the start".
        let judging_hooks =
            stepshift_core::hooks::is_judge_input(&input) || stepshift_core::events::is_announce_input(&input);
        if let (Some(check), "stepshift-check-health", false) = (&self.check_override, function, judging_hooks) {
            return check(&self.aws, input);
        }
        let (aws, config) = (&*self.aws, &self.config);
        block_on(async {
            match function {
                "stepshift-record-version" => record_version::handle(aws, config, input).await,
                "stepshift-shift-weight" => shift_weight::handle(aws, config, input).await,
                "stepshift-check-health" => check_health::handle(aws, config, input).await,
                "stepshift-promote" => promote::handle(aws, config, input).await,
                "stepshift-rollback" => rollback::handle(aws, config, input).await,
                TALLY_FUNCTION => tally::handle(aws, &tally_arn(), input).await,
                other => Err(TaskError::InvalidTaskInput(format!("no task function named {other}"))),
            }
        })
    }
}

/// A Lambda error as Step Functions reports it in `Cause`.
pub fn lambda_cause(error: &TaskError) -> String {
    json!({"errorType": error.name(), "errorMessage": error.to_string()}).to_string()
}

impl Environment for LocalEnvironment {
    fn invoke(&mut self, call: TaskCall<'_>) -> TaskResult {
        self.aws.set_now(call.now);
        if call.resource.starts_with("arn:aws:states:::events:putEvents") {
            let entries = call.input["Entries"].as_array().cloned().unwrap_or_default();
            let ids: Vec<Value> =
                (0..entries.len()).map(|i| json!({"EventId": format!("event-{}-{i}", self.events.len())})).collect();
            self.events.extend(entries);
            return TaskResult::Output(json!({"Entries": ids, "FailedEntryCount": 0}));
        }
        if call.resource == crate::hooks::LAMBDA_INVOKE {
            let aws = &self.aws.aws;
            let is_version = |f: &str| {
                f.split_once(':')
                    .is_some_and(|(name, v)| v.parse::<u64>().is_ok_and(|v| aws.versions(name).contains(&v)))
            };
            return self.hooks.invoke(call.input, call.now, is_version);
        }
        let function = call.resource.rsplit(':').next().unwrap_or_default().to_owned();
        let n = self.invocations.entry(function.clone()).or_default();
        let invocation = *n;
        *n += 1;
        let fault = self.task_faults.iter().position(|f| f.function == function && f.invocation == invocation);
        let fault = fault.map(|i| self.task_faults.remove(i));
        if let Some(f) = fault.as_ref().filter(|f| !f.after_effect) {
            return TaskResult::Error {
                error: f.error.clone(),
                cause: format!("injected: {function} failed before running"),
            };
        }
        let _ = self.aws.aws.take_crash();
        let result = self.call_handler(&function, call.input.clone());
        if let Ok(output) = &result {
            self.planned(&function, output);
        }
        if self.aws.aws.take_crash() {
            // What the handler did after the crash never happened in a real process: the
            // simulated AWS refused every call after it.
            return TaskResult::Error {
                error: ErrorName::LambdaUnknown.to_string(),
                cause: format!("injected: {function}'s process died during an AWS call"),
            };
        }
        if let Some(f) = fault {
            return TaskResult::Error { error: f.error, cause: format!("injected: {function} failed after running") };
        }
        match result {
            Ok(v) => TaskResult::Output(v),
            Err(e) => TaskResult::Error { error: e.name().to_owned(), cause: lambda_cause(&e) },
        }
    }

    fn time_passes(&mut self, now: Timestamp) {
        self.aws.set_now(now);
        while self.actions.first().is_some_and(|a| self.origin.plus_secs(a.after_seconds as i64) <= now) {
            let TimedAction { action, .. } = self.actions.remove(0);
            match action {
                Action::SetAlias { function, alias, routing } => {
                    self.aws.generate();
                    self.aws.aws.put_alias(&function, &alias, routing);
                }
                Action::SetRecords { hosted_zone_id, records } => {
                    self.aws.generate();
                    self.aws.aws.put_record_sets(&hosted_zone_id, records);
                }
                Action::SetWebWeights { function, endpoint, weights } => {
                    self.aws.generate();
                    self.aws.aws.put_web_weights(&function, &endpoint, weights);
                }
                Action::Command { command, reason } => self.give(command, reason, now),
                Action::RemoveLogFilters { log_group } => {
                    self.aws.generate();
                    for name in self.aws.aws.subscription_filters(&log_group) {
                        let _ = block_on(stepshift_core::outcomes::LogSubscriptions::delete_filter(
                            &self.aws.aws,
                            &log_group,
                            &name,
                        ));
                    }
                }
            }
        }
    }
}

/// The answer to an approval pause, planned when the pause began: the scenario's next
/// answer (approve after 60 s when they run out), and a person's command due before it,
/// answered as the CLI answers it. A scheduler of many executions
/// ([`crate::fleet`]) acts on it at [`PlannedAnswer::at`], one event at a time.
pub(crate) struct PlannedAnswer {
    token: String,
    /// A person's command given during the pause: when, what, why.
    command: Option<(Timestamp, stepshift_core::control::Action, Option<String>)>,
    answer: Answer,
    /// When the answer comes (for `Ignore`, when the pause times out).
    answer_at: Timestamp,
}

impl PlannedAnswer {
    /// Plans the answer to the pause `exec` waits in (`None` if it does not), taking the
    /// next of `answers` and the first of `env`'s commands due before the answer.
    pub(crate) fn plan(exec: &Execution, answers: &mut Vec<Answer>, env: &mut LocalEnvironment) -> Option<Self> {
        let Status::Waiting { token, deadline, .. } = exec.status().clone() else { return None };
        let answer = if answers.is_empty() { Answer::Approve { after_seconds: 60 } } else { answers.remove(0) };
        let now = exec.now();
        // At or past the pause's deadline, the pause times out first.
        let cap = deadline.unwrap_or(now.plus_secs(400 * 24 * 3600));
        let answer_at = match &answer {
            Answer::Approve { after_seconds } | Answer::Reject { after_seconds, .. } => {
                now.plus_secs(*after_seconds as i64).min(cap)
            }
            Answer::Ignore => cap,
        };
        let command = env.take_command(answer_at);
        Some(PlannedAnswer { token, command, answer, answer_at })
    }

    /// The pause it answers.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// When it acts next.
    pub(crate) fn at(&self) -> Timestamp {
        self.command.as_ref().map_or(self.answer_at, |c| c.0.min(self.answer_at))
    }

    /// Acts at [`PlannedAnswer::at`]: gives the command, or the answer. Returns what is
    /// left to do: the answer, after a command the CLI refuses at a pause (pause,
    /// resume).
    pub(crate) fn act(mut self, exec: &mut Execution, env: &mut LocalEnvironment) -> Option<Self> {
        let token = self.token.clone();
        let waiting = |exec: &Execution| matches!(exec.status(), Status::Waiting { token: t, .. } if *t == token);
        if let Some((at, command, reason)) = self.command.take() {
            exec.advance_until(at, env);
            let answered = !waiting(exec) || env.command_at_approval(exec, &token, command, reason);
            return (!answered).then_some(self);
        }
        exec.advance_until(self.answer_at, env);
        if waiting(exec) {
            match self.answer {
                Answer::Approve { .. } => {
                    let _ = exec.send_task_success(&token, json!({"approved_by": "simulated approver"}));
                }
                Answer::Reject { reason, .. } => {
                    let _ = exec.send_task_failure(&token, ErrorName::ApprovalRejected.as_str(), &reason, env);
                }
                Answer::Ignore => {}
            }
        }
        None
    }
}

/// How a simulated deployment ended, with everything needed to check it.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The execution's ARN.
    pub execution: String,
    /// `SUCCEEDED`, `FAILED` or `TIMED_OUT`.
    pub status: String,
    /// The execution output (when it succeeded).
    pub output: Option<Value>,
    /// The error name (when it failed).
    pub error: Option<String>,
    /// The cause (when it failed).
    pub cause: Option<String>,
    /// State names entered, in order.
    pub path: Vec<String>,
    /// State transitions.
    pub transitions: u64,
    /// Virtual seconds from start to end.
    pub duration_seconds: i64,
    /// Each simulated alias's routing at the end.
    pub aliases: Vec<(String, String, AliasRouting)>,
    /// Every SSM parameter at the end.
    pub parameters: BTreeMap<String, String>,
    /// Each simulated Web Function endpoint at the end: what it serves.
    pub endpoints: Vec<(String, String, Vec<stepshift_core::routers::web::RevisionWeight>)>,
    /// Each simulated site's hosted zone at the end: its record sets.
    pub zones: BTreeMap<String, Vec<stepshift_core::routers::route53::RecordSet>>,
    /// The subscription filters on each simulated function's log group at the end.
    pub log_filters: BTreeMap<String, Vec<String>>,
    /// AWS calls made, per kind.
    pub calls: BTreeMap<Call, u64>,
    /// Approval requests sent.
    pub approvals_requested: usize,
    /// The execution history.
    #[serde(skip)]
    pub history: Vec<Event>,
}

impl Outcome {
    /// The routing of `function:alias` at the end.
    pub fn routing(&self, function: &str, alias: &str) -> Option<&AliasRouting> {
        self.aliases.iter().find(|(f, a, _)| f == function && a == alias).map(|(_, _, r)| r)
    }

    /// A parameter's value at the end.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).map(String::as_str)
    }
}

/// A simulated account with the production state machine loaded.
pub struct Simulation {
    /// The state machine.
    pub machine: Arc<StateMachine>,
    /// The environment.
    pub env: LocalEnvironment,
    scenario: Scenario,
    answers: Vec<Answer>,
    started: u32,
}

impl Simulation {
    /// Sets up `scenario`.
    pub fn new(scenario: Scenario) -> Result<Simulation, String> {
        Ok(Simulation {
            machine: Arc::new(deployment_machine()?),
            env: LocalEnvironment::new(&scenario),
            answers: scenario.approvals.clone(),
            scenario,
            started: 0,
        })
    }

    /// Options for the next execution, named `name`.
    pub fn options(&mut self, name: &str) -> Options {
        self.started += 1;
        Options {
            name: name.to_owned(),
            state_machine_arn: state_machine_arn(),
            start: self.env.aws.aws.now(),
            seed: self.scenario.seed.wrapping_add(u64::from(self.started)),
            task_millis: self.scenario.task_millis,
        }
    }

    /// Starts a deployment of `request` (it has not run yet).
    pub fn start(&mut self, request: Value) -> Execution {
        let name = format!("deployment-{}", self.started + 1);
        let options = self.options(&name);
        Execution::start(Arc::clone(&self.machine), request, options)
    }

    /// Answers the pause `exec` waits in with the scenario's next answer (approve after
    /// 60 s when the answers run out). Call [`Execution::run`] afterwards.
    pub fn answer(&mut self, exec: &mut Execution) {
        let mut planned = PlannedAnswer::plan(exec, &mut self.answers, &mut self.env);
        while let Some(p) = planned {
            planned = p.act(exec, &mut self.env);
        }
    }

    /// Runs a deployment of `request` to its end, answering approvals from the scenario.
    pub fn run(&mut self, request: Value) -> Outcome {
        let mut exec = self.start(request);
        loop {
            exec.run(&mut self.env);
            if !matches!(exec.status(), Status::Waiting { .. }) {
                break;
            }
            self.answer(&mut exec);
        }
        self.outcome(&exec)
    }

    /// Summarizes an ended (or paused) execution.
    pub fn outcome(&self, exec: &Execution) -> Outcome {
        outcome_of(&self.scenario, &self.env, exec)
    }
}

/// Summarizes `exec`, a deployment of `scenario` run in `env`. Its call counts are the
/// whole account's.
pub fn outcome_of(scenario: &Scenario, env: &LocalEnvironment, exec: &Execution) -> Outcome {
    let (status, output, error, cause) = match exec.status() {
        Status::Succeeded(v) => ("SUCCEEDED", Some(v.clone()), None, None),
        Status::Failed { error, cause } => ("FAILED", None, Some(error.clone()), Some(cause.clone())),
        Status::TimedOut => ("TIMED_OUT", None, None, None),
        Status::Running => ("RUNNING", None, None, None),
        Status::Waiting { .. } => ("WAITING", None, None, None),
    };
    let aliases = scenario
        .functions
        .iter()
        .filter_map(|f| {
            env.aws.aws.alias(&f.function, &f.alias).map(|a| (f.function.clone(), f.alias.clone(), a.routing))
        })
        .collect();
    let calls = env.aws.aws.calls();
    Outcome {
        execution: exec.arn.clone(),
        status: status.to_owned(),
        output,
        error,
        cause,
        path: exec.path(),
        transitions: exec.transitions(),
        duration_seconds: exec.now().secs_since(exec.started_at()),
        aliases,
        endpoints: scenario
            .web_functions
            .iter()
            .filter_map(|w| {
                let serving = env.aws.aws.web_serving(&w.function, &w.endpoint)?;
                Some((w.function.clone(), w.endpoint.clone(), serving))
            })
            .collect(),
        parameters: env.aws.aws.parameters(),
        zones: scenario
            .sites
            .iter()
            .map(|s| {
                let zone = s.record.hosted_zone_id.clone();
                let records = env.aws.aws.record_sets(&zone);
                (zone, records)
            })
            .collect(),
        log_filters: scenario
            .functions
            .iter()
            .map(|f| {
                let group = format!("/aws/lambda/{}", f.function);
                let filters = env.aws.aws.subscription_filters(&group);
                (group, filters)
            })
            .collect(),
        calls,
        approvals_requested: env.approval_requests().count(),
        history: exec.history().to_vec(),
    }
}
