//! Executes a [`StateMachine`] on a virtual clock.
//!
//! Task states call an [`Environment`]; everything else is interpreted here, following
//! the Amazon States Language specification and Step Functions' documented behaviour:
//! - input and output processing: InputPath → Parameters → (task) → ResultSelector →
//!   ResultPath (into the raw input) → OutputPath;
//! - Retry: the first retrier whose ErrorEquals matches applies, each with its own
//!   attempt count; delays grow by BackoffRate, are capped by MaxDelaySeconds and, with
//!   `JitterStrategy: FULL`, drawn uniformly from [0, delay];
//! - Catch after the retries are spent; `States.ALL` catches everything but
//!   `States.Runtime` and `States.DataLimitExceeded`, `States.TaskFailed` everything
//!   but those and `States.Timeout`;
//! - `.waitForTaskToken`: the execution pauses until [`Execution::send_task_success`],
//!   [`Execution::send_task_failure`] or the task's timeout;
//! - a history shaped like Step Functions' own, and state transitions counted the way
//!   Step Functions bills them (every state entered, and every retry).

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{Value, json};
use stepshift_core::Timestamp;

use super::model::{Catcher, IoPath, Kind, Next, ResultPath, State, StateMachine, Text, Timeout, WaitFor};

/// The most events a Standard workflow's history may hold.
pub const HISTORY_LIMIT: usize = 25_000;

/// One call of a Task state into the environment.
#[derive(Debug)]
pub struct TaskCall<'a> {
    /// The state's name.
    pub state: &'a str,
    /// Its resource ARN.
    pub resource: &'a str,
    /// The effective parameters.
    pub input: &'a Value,
    /// The task token, for `.waitForTaskToken` resources.
    pub token: Option<&'a str>,
    /// The virtual time of the call.
    pub now: Timestamp,
    /// 0 for the first attempt, then 1, 2, ... for retries.
    pub attempt: u32,
}

/// What a task call produced.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskResult {
    /// The task's result.
    Output(Value),
    /// The task failed.
    Error {
        /// The error name.
        error: String,
        /// The cause.
        cause: String,
    },
    /// The call was accepted; the task completes when its token is answered.
    Pending,
}

/// What Task states run against.
pub trait Environment {
    /// Runs one task call.
    fn invoke(&mut self, call: TaskCall<'_>) -> TaskResult;

    /// The virtual clock moved forward to `now` (a Wait, a retry delay, a task's duration).
    fn time_passes(&mut self, _now: Timestamp) {}
}

/// Where an execution stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Running: call [`Execution::run`].
    Running,
    /// Paused in a `.waitForTaskToken` task.
    Waiting {
        /// The token to answer.
        token: String,
        /// The state waiting.
        state: String,
        /// When the task times out, if it has a timeout.
        deadline: Option<Timestamp>,
    },
    /// Succeeded with this output.
    Succeeded(Value),
    /// Failed.
    Failed {
        /// The error name.
        error: String,
        /// The cause.
        cause: String,
    },
    /// The execution's own TimeoutSeconds passed.
    TimedOut,
}

impl Status {
    /// Whether the execution has ended.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Status::Succeeded(_) | Status::Failed { .. } | Status::TimedOut)
    }
}

/// One history event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// 1, 2, 3, ...
    pub id: u64,
    /// The event before it.
    pub previous_event_id: u64,
    /// When.
    pub timestamp: Timestamp,
    /// Step Functions' event type, e.g. `TaskStateEntered`, `LambdaFunctionSucceeded`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The event's details, with Step Functions' field names.
    pub details: Value,
}

/// How an execution is started.
#[derive(Clone, Debug)]
pub struct Options {
    /// The execution's name.
    pub name: String,
    /// The state machine's ARN.
    pub state_machine_arn: String,
    /// Start time.
    pub start: Timestamp,
    /// Seed for jitter and intrinsic randomness.
    pub seed: u64,
    /// How long each task call takes, in milliseconds of virtual time.
    pub task_millis: i64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            name: "local".into(),
            state_machine_arn: "arn:aws:states:us-east-1:000000000000:stateMachine:stepshift".into(),
            start: Timestamp::from_secs(1_800_000_000),
            seed: 0,
            task_millis: 100,
        }
    }
}

struct Current {
    state: String,
    input: Value,
    /// Whether the StateEntered event was written (a retry does not enter again).
    entered: bool,
    entered_at: Timestamp,
    retries: Vec<u32>,
    attempt: u32,
    token: Option<String>,
}

/// A running (or finished) execution.
pub struct Execution {
    machine: Arc<StateMachine>,
    /// The execution's ARN.
    pub arn: String,
    /// The execution's name.
    pub name: String,
    start: Timestamp,
    input: Value,
    state_machine_arn: String,
    now: Timestamp,
    status: Status,
    current: Option<Current>,
    history: Vec<Event>,
    transitions: u64,
    rng: ChaCha8Rng,
    tokens: u64,
    task_millis: i64,
}

/// Whether `error` is handled by a retrier or catcher listing `names`.
pub fn matches(error: &str, names: &[String]) -> bool {
    let terminal = matches!(error, "States.Runtime" | "States.DataLimitExceeded");
    names.iter().any(|n| {
        n == error
            || (n == "States.ALL" && !terminal)
            || (n == "States.TaskFailed" && !terminal && error != "States.Timeout")
    })
}

fn io(path: &IoPath, doc: Value) -> Result<Value, String> {
    match path {
        IoPath::Whole => Ok(doc),
        IoPath::Empty => Ok(json!({})),
        IoPath::Path(p) => {
            p.get(&doc).cloned().ok_or_else(|| format!("Invalid path '{p}': the path does not exist in the input"))
        }
    }
}

fn place(result_path: &ResultPath, raw: Value, result: Value) -> Result<Value, String> {
    match result_path {
        ResultPath::Replace => Ok(result),
        ResultPath::Discard => Ok(raw),
        ResultPath::At(p) => p.set(raw, result),
    }
}

impl Execution {
    /// Starts an execution of `machine` with `input`.
    pub fn start(machine: Arc<StateMachine>, input: Value, options: Options) -> Execution {
        let sm_name = options.state_machine_arn.rsplit(':').next().unwrap_or("stepshift").to_owned();
        let arn = options.state_machine_arn.replacen(":stateMachine:", ":execution:", 1) + ":" + &options.name;
        let arn = if arn.contains(":execution:") {
            arn
        } else {
            format!("arn:aws:states:us-east-1:000000000000:execution:{sm_name}:{}", options.name)
        };
        let mut exec = Execution {
            machine,
            arn,
            name: options.name,
            start: options.start,
            input: input.clone(),
            state_machine_arn: options.state_machine_arn,
            now: options.start,
            status: Status::Running,
            current: None,
            history: Vec::new(),
            transitions: 0,
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            tokens: 0,
            task_millis: options.task_millis,
        };
        exec.event(
            "ExecutionStarted",
            json!({"input": input, "roleArn": "arn:aws:iam::000000000000:role/stepshift-local"}),
        );
        exec.current = Some(exec.enter_at(exec.machine.start_at.clone(), input));
        exec
    }

    fn enter_at(&self, state: String, input: Value) -> Current {
        Current { state, input, entered: false, entered_at: self.now, retries: Vec::new(), attempt: 0, token: None }
    }

    /// The status.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The history so far.
    pub fn history(&self) -> &[Event] {
        &self.history
    }

    /// State transitions so far, counted as Step Functions bills them.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    /// The virtual time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// When the execution started.
    pub fn started_at(&self) -> Timestamp {
        self.start
    }

    /// The names of the states entered, in order.
    pub fn path(&self) -> Vec<String> {
        self.history
            .iter()
            .filter(|e| e.kind.ends_with("StateEntered"))
            .filter_map(|e| e.details["name"].as_str().map(str::to_owned))
            .collect()
    }

    fn event(&mut self, kind: &str, details: Value) {
        let id = self.history.len() as u64 + 1;
        self.history.push(Event { id, previous_event_id: id - 1, timestamp: self.now, kind: kind.to_owned(), details });
        if self.history.len() >= HISTORY_LIMIT && !self.status.is_terminal() {
            self.status = Status::Failed {
                error: "States.Runtime".into(),
                cause: format!("the execution history reached {HISTORY_LIMIT} events"),
            };
        }
    }

    fn context(&self, state: &str, entered_at: Timestamp, retry_count: u32, token: Option<&str>) -> Value {
        let mut ctx = json!({
            "Execution": {
                "Id": self.arn,
                "Name": self.name,
                "StartTime": self.start.to_rfc3339(),
                "Input": self.input,
                "RoleArn": "arn:aws:iam::000000000000:role/stepshift-local",
            },
            "State": {"Name": state, "EnteredTime": entered_at.to_rfc3339(), "RetryCount": retry_count},
            "StateMachine": {"Id": self.state_machine_arn, "Name": self.state_machine_arn.rsplit(':').next().unwrap_or_default()},
        });
        if let Some(t) = token {
            ctx["Task"] = json!({"Token": t});
        }
        ctx
    }

    fn fail(&mut self, error: &str, cause: String) {
        self.event("ExecutionFailed", json!({"error": error, "cause": cause}));
        self.status = Status::Failed { error: error.to_owned(), cause };
        self.current = None;
    }

    /// Moves the clock to `t`, honouring the execution's own timeout.
    fn sleep_until(&mut self, t: Timestamp, env: &mut dyn Environment) {
        let limit = self.machine.timeout_seconds.map(|s| self.start.plus_secs(s as i64));
        match limit {
            Some(limit) if t > limit => {
                self.now = self.now.max(limit);
                env.time_passes(self.now);
                self.event("ExecutionTimedOut", json!({}));
                self.status = Status::TimedOut;
                self.current = None;
            }
            _ => {
                if t > self.now {
                    self.now = t;
                    env.time_passes(t);
                }
            }
        }
    }

    /// Runs until the execution ends or pauses for a task token.
    pub fn run(&mut self, env: &mut dyn Environment) -> &Status {
        while self.status == Status::Running {
            self.step(env);
        }
        &self.status
    }

    /// Runs one state (or one retry of it), if the execution is running.
    pub fn step_once(&mut self, env: &mut dyn Environment) -> &Status {
        if self.status == Status::Running {
            self.step(env);
        }
        &self.status
    }

    /// The state the execution is in, if it has not ended.
    pub fn current_state(&self) -> Option<&str> {
        self.current.as_ref().map(|c| c.state.as_str())
    }

    fn state(&self) -> Option<(Arc<StateMachine>, String, Value)> {
        let cur = self.current.as_ref()?;
        Some((Arc::clone(&self.machine), cur.state.clone(), cur.input.clone()))
    }

    fn step(&mut self, env: &mut dyn Environment) {
        let Some((machine, name, raw)) = self.state() else {
            self.status = Status::Failed { error: "States.Runtime".into(), cause: "no current state".into() };
            return;
        };
        let state = &machine.states[&name];
        if let Some(cur) = self.current.as_mut().filter(|c| !c.entered) {
            cur.entered = true;
            self.transitions += 1;
            self.event(&format!("{}StateEntered", state.type_name()), json!({"name": state.name, "input": raw}));
            if self.status != Status::Running {
                return;
            }
        }
        let effective = match io(&state.input_path, raw.clone()) {
            Ok(v) => v,
            Err(e) => {
                return self.fail(
                    "States.Runtime",
                    format!("An error occurred while executing the state '{}': InputPath: {e}", state.name),
                );
            }
        };
        match &state.kind {
            Kind::Pass { parameters, result, result_path } => {
                let ctx = self.context(&state.name, self.now, 0, None);
                let mut value = effective;
                if let Some(p) = parameters {
                    match p.eval(&value, &ctx, &mut self.rng) {
                        Ok(v) => value = v,
                        Err(e) => {
                            return self.fail("States.Runtime", format!("state '{}': Parameters: {e}", state.name));
                        }
                    }
                }
                if let Some(r) = result {
                    value = r.clone();
                }
                match place(result_path, raw, value) {
                    Ok(out) => self.exit(state, out),
                    Err(e) => self.fail("States.Runtime", format!("state '{}': ResultPath: {e}", state.name)),
                }
            }
            Kind::Wait(how) => {
                let until = match how {
                    WaitFor::Seconds(s) => Ok(self.now.plus_secs(*s as i64)),
                    WaitFor::Timestamp(t) => Ok(*t),
                    WaitFor::SecondsPath(p) => p
                        .get(&effective)
                        .and_then(Value::as_f64)
                        .filter(|s| *s >= 0.0)
                        .map(|s| self.now.plus_millis((s * 1000.0) as i64))
                        .ok_or_else(|| format!("SecondsPath '{p}' is not a non-negative number in the input")),
                    WaitFor::TimestampPath(p) => p
                        .get(&effective)
                        .and_then(Value::as_str)
                        .and_then(|s| Timestamp::parse_rfc3339(s).ok())
                        .ok_or_else(|| format!("TimestampPath '{p}' is not a timestamp in the input")),
                };
                match until {
                    Ok(t) => {
                        self.sleep_until(t, env);
                        if self.status == Status::Running {
                            self.exit(state, effective);
                        }
                    }
                    Err(e) => self.fail("States.Runtime", format!("state '{}': {e}", state.name)),
                }
            }
            Kind::Choice { choices, default } => {
                let target = choices
                    .iter()
                    .find(|(rule, _)| rule.holds(&effective))
                    .map(|(_, n)| n.clone())
                    .or_else(|| default.clone());
                match target {
                    Some(t) => self.exit_to(state, effective, Some(t)),
                    None => self.fail(
                        "States.NoChoiceMatched",
                        format!("No Choice Rules matched in the Choice state '{}'", state.name),
                    ),
                }
            }
            Kind::Succeed => match io(&state.output_path, effective) {
                Ok(out) => {
                    self.event("SucceedStateExited", json!({"name": state.name, "output": out}));
                    self.succeed(out);
                }
                Err(e) => self.fail("States.Runtime", format!("state '{}': OutputPath: {e}", state.name)),
            },
            Kind::Fail { error, cause } => {
                let read = |t: &Option<Text>| match t {
                    None => None,
                    Some(Text::Literal(s)) => Some(s.clone()),
                    Some(Text::Path(p)) => p.get(&raw).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
                };
                let (e, c) = (read(error).unwrap_or_default(), read(cause).unwrap_or_default());
                self.fail(&e, c);
            }
            Kind::Task { .. } => self.run_task(state, raw, effective, env),
        }
    }

    fn run_task(&mut self, state: &State, raw: Value, effective: Value, env: &mut dyn Environment) {
        let Kind::Task { resource, wait_for_token, parameters, timeout, .. } = &state.kind else {
            return;
        };
        let (entered_at, attempt) = self.current.as_ref().map(|c| (c.entered_at, c.attempt)).unwrap_or((self.now, 0));
        let token = wait_for_token.then(|| {
            self.tokens += 1;
            let noise: u64 = self.rng.random();
            format!("AQB{}{:016x}{:04}", self.name.len(), noise, self.tokens)
        });
        let ctx = self.context(&state.name, entered_at, attempt, token.as_deref());
        let params = match parameters {
            Some(p) => match p.eval(&effective, &ctx, &mut self.rng) {
                Ok(v) => v,
                Err(e) => {
                    return self.fail(
                        "States.Runtime",
                        format!("An error occurred while executing the state '{}': {e}", state.name),
                    );
                }
            },
            None => effective.clone(),
        };
        let timeout_secs = match timeout {
            None => None,
            Some(Timeout::Seconds(s)) => Some(*s),
            Some(Timeout::Path(p)) => match p.get(&effective).and_then(Value::as_u64).filter(|s| *s > 0) {
                Some(s) => Some(s),
                None => {
                    return self.fail(
                        "States.Runtime",
                        format!("state '{}': TimeoutSecondsPath '{p}' is not a positive integer", state.name),
                    );
                }
            },
        };
        let lambda = resource.starts_with("arn:aws:lambda:");
        let prefix = if lambda { "LambdaFunction" } else { "Task" };
        self.event(
            &format!("{prefix}Scheduled"),
            json!({"resource": resource, "parameters": params, "timeoutInSeconds": timeout_secs}),
        );
        self.event(&format!("{prefix}Started"), json!({"resource": resource}));
        let call =
            TaskCall { state: &state.name, resource, input: &params, token: token.as_deref(), now: self.now, attempt };
        let result = env.invoke(call);
        let done_at = self.now.plus_millis(self.task_millis);
        self.sleep_until(done_at, env);
        if self.status != Status::Running {
            return;
        }
        if let Some(cur) = self.current.as_mut() {
            cur.token = token.clone();
        }
        match result {
            TaskResult::Output(v) if !wait_for_token => self.task_succeeded(state, raw, v),
            TaskResult::Output(_) | TaskResult::Pending => {
                self.event("TaskSubmitted", json!({"resource": resource}));
                let deadline = timeout_secs.map(|s| self.now.plus_secs(s as i64));
                self.status = Status::Waiting { token: token.unwrap_or_default(), state: state.name.clone(), deadline };
            }
            TaskResult::Error { error, cause } => {
                self.event(&format!("{prefix}Failed"), json!({"error": error, "cause": cause}));
                self.task_failed(state, raw, &error, cause, env);
            }
        }
    }

    fn task_succeeded(&mut self, state: &State, raw: Value, output: Value) {
        let Kind::Task { resource, result_selector, result_path, .. } = &state.kind else {
            return;
        };
        let prefix = if resource.starts_with("arn:aws:lambda:") { "LambdaFunction" } else { "Task" };
        self.event(&format!("{prefix}Succeeded"), json!({"output": output}));
        let ctx = self.context(&state.name, self.now, 0, None);
        let selected = match result_selector {
            Some(t) => match t.eval(&output, &ctx, &mut self.rng) {
                Ok(v) => v,
                Err(e) => {
                    return self.fail("States.Runtime", format!("state '{}': ResultSelector: {e}", state.name));
                }
            },
            None => output,
        };
        match place(result_path, raw, selected) {
            Ok(out) => self.exit(state, out),
            Err(e) => self.fail("States.ResultPathMatchFailure", format!("state '{}': {e}", state.name)),
        }
    }

    fn task_failed(&mut self, state: &State, raw: Value, error: &str, cause: String, env: &mut dyn Environment) {
        let Kind::Task { retry, catch, .. } = &state.kind else {
            return;
        };
        if let Some(i) = retry.iter().position(|r| matches(error, &r.error_equals)) {
            let r = &retry[i];
            let cur = self.current.as_mut().expect("a task is current");
            cur.retries.resize(retry.len(), 0);
            if cur.retries[i] < r.max_attempts {
                let mut delay = r.interval_seconds * r.backoff_rate.powi(cur.retries[i] as i32);
                if let Some(cap) = r.max_delay_seconds {
                    delay = delay.min(cap);
                }
                if r.full_jitter {
                    delay = self.rng.random_range(0.0..=delay);
                }
                cur.retries[i] += 1;
                cur.attempt += 1;
                cur.token = None;
                self.transitions += 1;
                let until = self.now.plus_millis((delay * 1000.0).round() as i64);
                self.sleep_until(until, env);
                return;
            }
        }
        match catch.iter().find(|c| matches(error, &c.error_equals)) {
            Some(Catcher { result_path, next, .. }) => {
                let error_output = json!({"Error": error, "Cause": cause});
                match place(result_path, raw, error_output) {
                    Ok(out) => {
                        self.event(
                            &format!("{}StateExited", state.type_name()),
                            json!({"name": state.name, "output": out}),
                        );
                        self.current = Some(self.enter_at(next.clone(), out));
                    }
                    Err(e) => self.fail(
                        "States.ResultPathMatchFailure",
                        format!("state '{}': Catch ResultPath: {e}", state.name),
                    ),
                }
            }
            None => self.fail(error, cause),
        }
    }

    fn exit(&mut self, state: &State, output: Value) {
        let next = match &state.next {
            Some(Next::To(n)) => Some(n.clone()),
            _ => None,
        };
        self.exit_to(state, output, next);
    }

    fn exit_to(&mut self, state: &State, output: Value, next: Option<String>) {
        let output = match io(&state.output_path, output) {
            Ok(v) => v,
            Err(e) => {
                return self.fail("States.Runtime", format!("state '{}': OutputPath: {e}", state.name));
            }
        };
        self.event(&format!("{}StateExited", state.type_name()), json!({"name": state.name, "output": output}));
        match next {
            Some(n) => self.current = Some(self.enter_at(n, output)),
            None => self.succeed(output),
        }
    }

    fn succeed(&mut self, output: Value) {
        self.event("ExecutionSucceeded", json!({"output": output}));
        self.status = Status::Succeeded(output);
        self.current = None;
    }

    fn waiting_state(&self, token: &str) -> Result<(Arc<StateMachine>, String, Value), String> {
        match &self.status {
            Status::Waiting { token: t, .. } if t == token => self.state().ok_or_else(|| "no current state".to_owned()),
            Status::Waiting { .. } => Err("TaskDoesNotExist: no task is waiting for that token".into()),
            _ => Err("TaskDoesNotExist: the execution is not waiting for a task token".into()),
        }
    }

    /// Answers a waiting task with success; call [`Execution::run`] to continue.
    pub fn send_task_success(&mut self, token: &str, output: Value) -> Result<(), String> {
        let (machine, name, raw) = self.waiting_state(token)?;
        self.status = Status::Running;
        self.task_succeeded(&machine.states[&name], raw, output);
        Ok(())
    }

    /// Answers a waiting task with failure; call [`Execution::run`] to continue.
    pub fn send_task_failure(
        &mut self,
        token: &str,
        error: &str,
        cause: &str,
        env: &mut dyn Environment,
    ) -> Result<(), String> {
        let (machine, name, raw) = self.waiting_state(token)?;
        self.status = Status::Running;
        self.event("TaskFailed", json!({"error": error, "cause": cause}));
        self.task_failed(&machine.states[&name], raw, error, cause.to_owned(), env);
        Ok(())
    }

    /// Lets virtual time pass while the execution waits for a token; a task whose
    /// timeout passes fails with `States.Timeout`. Call [`Execution::run`] afterwards.
    pub fn advance(&mut self, secs: i64, env: &mut dyn Environment) {
        let target = self.now.plus_secs(secs);
        if let Status::Waiting { deadline: Some(d), .. } = self.status.clone()
            && d <= target
        {
            self.sleep_until(d, env);
            if self.status.is_terminal() {
                return;
            }
            if let Some((machine, name, raw)) = self.state() {
                self.status = Status::Running;
                self.event(
                    "TaskTimedOut",
                    json!({"error": "States.Timeout", "cause": "the task token was not answered in time"}),
                );
                self.task_failed(
                    &machine.states[&name],
                    raw,
                    "States.Timeout",
                    "The task timed out waiting for its token".into(),
                    env,
                );
            }
            return;
        }
        self.sleep_until(target, env);
    }
}
