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
//! - task durations ([`TaskResult::Took`], or [`Options::task_millis`]) and tasks that
//!   never end ([`TaskResult::Never`]); a Task's `TimeoutSeconds`/`TimeoutSecondsPath`
//!   fails an attempt that would run longer with `States.Timeout`, counted from the
//!   attempt's start;
//! - `.waitForTaskToken`: the execution pauses until [`Execution::send_task_success`],
//!   [`Execution::send_task_failure`] or the task's timeout;
//! - Parallel and inline Map states: each branch or iteration runs as a child execution
//!   of its own sub-machine, all of them concurrently on the one virtual clock (see
//!   below); the first to fail (in virtual time, ties by branch or item order) fails the
//!   state with its Error and Cause and stops the others, and the state's own Retry and
//!   Catch then apply (a retry runs every branch or iteration again from its start);
//! - a history shaped like Step Functions' own (branch and iteration events included,
//!   in virtual-time order), and state transitions counted the way Step Functions bills
//!   them (every state entered, in branches and iterations too, and every retry).
//!
//! # Time
//!
//! An execution advances in *steps*, each of which happens at one instant: entering a
//! state and starting its work, or finishing that work (a Wait's end, a task's answer, a
//! retry's delay). Between the two the current state is *due* at a later time (or never,
//! for a task that never ends). A top-level execution moves its clock to the due time —
//! calling [`Environment::time_passes`], and ending with `ExecutionTimedOut` if that is
//! past the execution's `TimeoutSeconds` — and takes the step. A Parallel or Map is due
//! when its earliest child is; its step moves that child's clock and takes one step of
//! it, so [`Environment::invoke`] is always called at the true virtual time and
//! `time_passes` only ever moves forward. A child's Waits and task durations move only
//! its own clock.
//!
//! A task that never ends ([`TaskResult::Never`]) and has no timeout of its own cannot
//! finish its execution: if the execution has a `TimeoutSeconds` the clock jumps to it
//! (`ExecutionTimedOut`); otherwise, rather than wait forever, the execution fails with
//! `States.Runtime`, "the task never completes and has no timeout".

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{Value, json};
use stepshift_core::Timestamp;

use super::intrinsics;
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
///
/// A plain [`TaskResult::Output`], [`TaskResult::Error`] or [`TaskResult::Pending`]
/// takes [`Options::task_millis`] of virtual time. To say how long the task ran, wrap
/// it: `TaskResult::Took { millis: 30_000, result: Box::new(TaskResult::Output(v)) }`
/// (or [`TaskResult::took`]) is an answer after 30 s. [`TaskResult::Never`] is a task
/// that never ends (a hung function).
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
    /// `result`, after `millis` milliseconds of virtual time (instead of
    /// [`Options::task_millis`]; negative counts as 0; nested durations add up). If the
    /// state's `TimeoutSeconds` is shorter, the attempt fails with `States.Timeout` when
    /// the timeout passes and `result` is never seen.
    Took {
        /// How long the task ran, in milliseconds.
        millis: i64,
        /// What it produced at the end.
        result: Box<TaskResult>,
    },
    /// The task never ends. With a `TimeoutSeconds` the attempt fails with
    /// `States.Timeout` when it passes; without one, see the module documentation.
    Never,
}

impl TaskResult {
    /// `result` after `millis` milliseconds of virtual time.
    pub fn took(millis: i64, result: TaskResult) -> TaskResult {
        TaskResult::Took { millis, result: Box::new(result) }
    }

    /// How long the task runs (`None`: forever) and what it ends with.
    fn settle(self, default_millis: i64) -> Option<(i64, Answer)> {
        match self {
            TaskResult::Output(v) => Some((default_millis, Answer::Output(v))),
            TaskResult::Error { error, cause } => Some((default_millis, Answer::Error { error, cause })),
            TaskResult::Pending => Some((default_millis, Answer::Pending)),
            TaskResult::Took { millis, result } => result.settle(0).map(|(m, a)| (millis.max(0).saturating_add(m), a)),
            TaskResult::Never => None,
        }
    }
}

/// A task's answer once its duration has passed.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Output(Value),
    Error { error: String, cause: String },
    Pending,
}

/// What Task states run against.
pub trait Environment {
    /// Runs one task call.
    fn invoke(&mut self, call: TaskCall<'_>) -> TaskResult;

    /// The virtual clock moved forward to `now` (a Wait, a retry delay, a task's duration).
    /// Always called with a later time than before; inside a Parallel or Map, when the
    /// whole execution's clock moves to the next thing any branch or iteration does.
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
    /// How long each task call takes, in milliseconds of virtual time, unless the
    /// environment answers with [`TaskResult::Took`] or [`TaskResult::Never`].
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

/// When the current state's next step is due.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Wake {
    /// Now (or, for a Parallel or Map under way, when its earliest child is).
    Now,
    /// At this time.
    At(Timestamp),
    /// Never: a task that never ends, without a timeout.
    Never,
}

/// When an execution's next step is due.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Due {
    At(Timestamp),
    Never,
}

/// Work the current state finishes at its next step.
#[derive(Clone, Debug)]
enum Pending {
    /// A Wait state's wait is over; it exits with this (effective) input.
    WaitEnds(Value),
    /// A task attempt ends: with its answer, or (`None`) timed out.
    TaskEnds { answer: Option<Answer>, token: Option<String>, deadline: Option<Timestamp> },
}

/// The branches or iterations of a Parallel or Map under way.
struct Group {
    slots: Vec<Slot>,
    /// Iterations running at once at most.
    limit: usize,
    /// The Map's effective input (`$` in ItemSelector).
    effective: Value,
}

enum Slot {
    /// A Map item not started yet.
    Queued(Value),
    /// A branch or iteration under way.
    Running(Box<Execution>),
    /// Its output.
    Done(Value),
}

impl Group {
    /// The child due first (ties: the lowest index) and when; `None` if none runs.
    fn next(&self) -> Option<(usize, Due)> {
        let mut best: Option<(usize, Due)> = None;
        for (i, slot) in self.slots.iter().enumerate() {
            let Slot::Running(child) = slot else { continue };
            let Some(due) = child.due() else { continue };
            best = match (best, due) {
                (None, d) => Some((i, d)),
                (Some((_, Due::Never)), Due::At(t)) => Some((i, Due::At(t))),
                (Some((_, Due::At(b))), Due::At(t)) if t < b => Some((i, Due::At(t))),
                (b, _) => b,
            };
        }
        best
    }

    fn running(&self) -> usize {
        self.slots.iter().filter(|s| matches!(s, Slot::Running(_))).count()
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
    wake: Wake,
    pending: Option<Pending>,
    group: Option<Group>,
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
    /// A Parallel branch or Map iteration: it writes no Execution* events, its events and
    /// transitions are taken by its parent after each step, and it never sleeps for real.
    child: bool,
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

fn event_prefix(resource: &str) -> &'static str {
    if resource.starts_with("arn:aws:lambda:") { "LambdaFunction" } else { "Task" }
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
            child: false,
        };
        exec.event(
            "ExecutionStarted",
            json!({"input": input, "roleArn": "arn:aws:iam::000000000000:role/stepshift-local"}),
        );
        exec.current = Some(exec.enter_at(exec.machine.start_at.clone(), input));
        exec
    }

    /// A branch or iteration running `machine` on `input`, now, in this execution's
    /// context (its `$$.Execution` is this execution's).
    fn child(&mut self, machine: Arc<StateMachine>, input: Value) -> Execution {
        let seed: u64 = self.rng.random();
        let mut exec = Execution {
            machine,
            arn: self.arn.clone(),
            name: self.name.clone(),
            start: self.start,
            input: self.input.clone(),
            state_machine_arn: self.state_machine_arn.clone(),
            now: self.now,
            status: Status::Running,
            current: None,
            history: Vec::new(),
            transitions: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            tokens: 0,
            task_millis: self.task_millis,
            child: true,
        };
        exec.current = Some(exec.enter_at(exec.machine.start_at.clone(), input));
        exec
    }

    fn enter_at(&self, state: String, input: Value) -> Current {
        Current {
            state,
            input,
            entered: false,
            entered_at: self.now,
            retries: Vec::new(),
            attempt: 0,
            token: None,
            wake: Wake::Now,
            pending: None,
            group: None,
        }
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

    /// The names of the states entered, in order (states in Parallel branches and Map
    /// iterations included, as they were entered in virtual time).
    pub fn path(&self) -> Vec<String> {
        self.history
            .iter()
            .filter(|e| e.kind.ends_with("StateEntered"))
            .filter_map(|e| e.details["name"].as_str().map(str::to_owned))
            .collect()
    }

    fn event(&mut self, kind: &str, details: Value) {
        let event = Event { id: 0, previous_event_id: 0, timestamp: self.now, kind: kind.to_owned(), details };
        self.push(event);
    }

    fn push(&mut self, mut event: Event) {
        let id = self.history.len() as u64 + 1;
        event.id = id;
        event.previous_event_id = id - 1;
        self.history.push(event);
        if !self.child && self.history.len() >= HISTORY_LIMIT && !self.status.is_terminal() {
            self.status = Status::Failed {
                error: "States.Runtime".into(),
                cause: format!("the execution history reached {HISTORY_LIMIT} events"),
            };
        }
    }

    /// Takes a child's events (into this history, in order) and transitions.
    fn absorb(&mut self, child: &mut Execution) {
        self.transitions += std::mem::take(&mut child.transitions);
        for event in std::mem::take(&mut child.history) {
            self.push(event);
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

    /// The context object for the current state.
    fn current_context(&self, state: &str) -> Value {
        let (entered_at, attempt) = self.current.as_ref().map(|c| (c.entered_at, c.attempt)).unwrap_or((self.now, 0));
        self.context(state, entered_at, attempt, None)
    }

    fn fail(&mut self, error: &str, cause: String) {
        if !self.child {
            self.event("ExecutionFailed", json!({"error": error, "cause": cause}));
        }
        self.status = Status::Failed { error: error.to_owned(), cause };
        self.current = None;
    }

    fn succeed(&mut self, output: Value) {
        if !self.child {
            self.event("ExecutionSucceeded", json!({"output": output}));
        }
        self.status = Status::Succeeded(output);
        self.current = None;
    }

    /// When the execution's own TimeoutSeconds passes.
    fn limit(&self) -> Option<Timestamp> {
        self.machine.timeout_seconds.map(|s| self.start.plus_secs(s as i64))
    }

    /// Moves the clock to `t`, honouring the execution's own timeout.
    fn sleep_until(&mut self, t: Timestamp, env: &mut dyn Environment) {
        match self.limit() {
            Some(limit) if t > limit => {
                if limit > self.now {
                    self.now = limit;
                    env.time_passes(limit);
                }
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

    /// Runs one state (or one retry of it), if the execution is running. Inside a
    /// Parallel or Map, runs one step of the branch or iteration due first.
    pub fn step_once(&mut self, env: &mut dyn Environment) -> &Status {
        if self.status == Status::Running {
            self.step(env);
            while self.status == Status::Running && self.current.as_ref().is_some_and(|c| c.pending.is_some()) {
                self.step(env);
            }
        }
        &self.status
    }

    /// When [`Execution::step_event`] would act next; `None` unless the execution is
    /// running (a pause for a task token has no time of its own: its answer, or
    /// [`Execution::advance`], decides). A scheduler that always steps the execution
    /// with the earliest one keeps a clock shared by many executions from going back.
    pub fn next_event(&self) -> Option<Timestamp> {
        match self.due()? {
            Due::At(t) => Some(t),
            // The execution's timeout ends a task that never answers (or the step fails
            // the execution at once when there is none).
            Due::Never => Some(self.limit().map_or(self.now, |l| l.plus_millis(1))),
        }
    }

    /// Takes the one step due next (moving the clock to it), if the execution is
    /// running: a state, a retry, a task's answer, a Wait's end, or one step of a
    /// Parallel branch or Map iteration.
    pub fn step_event(&mut self, env: &mut dyn Environment) -> &Status {
        self.step(env);
        &self.status
    }

    /// The state the execution is in, if it has not ended (during a Parallel or Map, the
    /// Parallel or Map state).
    pub fn current_state(&self) -> Option<&str> {
        self.current.as_ref().map(|c| c.state.as_str())
    }

    /// When the next step is due; `None` if the execution is not running.
    fn due(&self) -> Option<Due> {
        if self.status != Status::Running {
            return None;
        }
        let Some(cur) = &self.current else {
            return Some(Due::At(self.now));
        };
        Some(match cur.wake {
            Wake::At(t) => Due::At(t.max(self.now)),
            Wake::Never => Due::Never,
            Wake::Now => match cur.group.as_ref().and_then(Group::next) {
                Some((_, Due::At(t))) => Due::At(t.max(self.now)),
                Some((_, Due::Never)) => Due::Never,
                None => Due::At(self.now),
            },
        })
    }

    /// A top-level step: the clock moves to when the next step is due, then it is taken.
    fn step(&mut self, env: &mut dyn Environment) {
        match self.due() {
            None => {}
            Some(Due::At(t)) => {
                self.sleep_until(t, env);
                if self.status == Status::Running {
                    self.micro_step(env);
                }
            }
            Some(Due::Never) => match self.limit() {
                Some(limit) => self.sleep_until(limit.plus_millis(1), env),
                None => self.fail(
                    "States.Runtime",
                    format!(
                        "the task never completes and has no timeout (in state '{}'); stepshift-local fails the execution rather than wait forever",
                        self.hung_state()
                    ),
                ),
            },
        }
    }

    /// The Task state (in whatever branch) that never ends.
    fn hung_state(&self) -> String {
        let Some(cur) = &self.current else { return String::new() };
        match cur.group.as_ref().and_then(Group::next) {
            Some((i, _)) => match &cur.group.as_ref().expect("a group").slots[i] {
                Slot::Running(child) => child.hung_state(),
                _ => cur.state.clone(),
            },
            None => cur.state.clone(),
        }
    }

    /// One step at the current time (the caller moved the clock to when it is due).
    fn micro_step(&mut self, env: &mut dyn Environment) {
        let Some(cur) = self.current.as_mut() else {
            self.status = Status::Failed { error: "States.Runtime".into(), cause: "no current state".into() };
            return;
        };
        cur.wake = Wake::Now;
        if let Some(pending) = cur.pending.take() {
            return self.finish_pending(pending);
        }
        if cur.group.is_some() {
            return self.step_group(env);
        }
        self.step_state(env);
    }

    fn state(&self) -> Option<(Arc<StateMachine>, String, Value)> {
        let cur = self.current.as_ref()?;
        Some((Arc::clone(&self.machine), cur.state.clone(), cur.input.clone()))
    }

    /// Enters the current state (unless a retry) and does what it does.
    fn step_state(&mut self, env: &mut dyn Environment) {
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
                        let cur = self.current.as_mut().expect("a state is current");
                        cur.wake = Wake::At(t);
                        cur.pending = Some(Pending::WaitEnds(effective));
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
                let ctx = self.context(&state.name, self.now, 0, None);
                let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                let mut read = |t: &Option<Text>, field: &str| match t {
                    None => Ok(String::new()),
                    Some(Text::Literal(s)) => Ok(s.clone()),
                    Some(Text::Path(p)) => Ok(p.get(&raw).map(text).unwrap_or_default()),
                    Some(Text::Call(c)) => intrinsics::eval(c, &raw, &ctx, &mut self.rng)
                        .map(|v| text(&v))
                        .map_err(|e| format!("state '{}': {field}: {e}", state.name)),
                };
                match (read(error, "ErrorPath"), read(cause, "CausePath")) {
                    (Ok(e), Ok(c)) => self.fail(&e, c),
                    (Err(e), _) | (_, Err(e)) => self.fail("States.Runtime", e),
                }
            }
            Kind::Task { .. } => self.run_task(state, effective, env),
            Kind::Parallel { .. } | Kind::Map { .. } => self.start_group(state, raw, effective),
        }
    }

    /// Starts a task attempt: schedules its end (answer or timeout).
    fn run_task(&mut self, state: &State, effective: Value, env: &mut dyn Environment) {
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
        let prefix = event_prefix(resource);
        self.event(
            &format!("{prefix}Scheduled"),
            json!({"resource": resource, "parameters": params, "timeoutInSeconds": timeout_secs}),
        );
        self.event(&format!("{prefix}Started"), json!({"resource": resource}));
        let started = self.now;
        let call =
            TaskCall { state: &state.name, resource, input: &params, token: token.as_deref(), now: started, attempt };
        let result = env.invoke(call);
        let deadline = timeout_secs.map(|s| started.plus_secs(s as i64));
        let (wake, answer) = match (result.settle(self.task_millis), deadline) {
            (Some((millis, _)), Some(d)) if started.plus_millis(millis) > d => (Wake::At(d), None),
            (Some((millis, answer)), _) => (Wake::At(started.plus_millis(millis)), Some(answer)),
            (None, Some(d)) => (Wake::At(d), None),
            (None, None) => (Wake::Never, None),
        };
        let cur = self.current.as_mut().expect("a task is current");
        cur.wake = wake;
        cur.pending = Some(Pending::TaskEnds { answer, token, deadline });
    }

    fn finish_pending(&mut self, pending: Pending) {
        let Some((machine, name, raw)) = self.state() else { return };
        let state = &machine.states[&name];
        match pending {
            Pending::WaitEnds(effective) => self.exit(state, effective),
            Pending::TaskEnds { answer, token, deadline } => self.task_ends(state, raw, answer, token, deadline),
        }
    }

    fn task_ends(
        &mut self,
        state: &State,
        raw: Value,
        answer: Option<Answer>,
        token: Option<String>,
        deadline: Option<Timestamp>,
    ) {
        let Kind::Task { resource, wait_for_token, .. } = &state.kind else {
            return;
        };
        let prefix = event_prefix(resource);
        match answer {
            None => {
                let cause = format!("The task in state '{}' did not end within its timeout", state.name);
                self.event(&format!("{prefix}TimedOut"), json!({"error": "States.Timeout", "cause": cause}));
                self.state_failed(state, raw, "States.Timeout", cause);
            }
            Some(Answer::Output(v)) if !wait_for_token => self.task_succeeded(state, raw, v),
            Some(Answer::Output(_) | Answer::Pending) => {
                if self.child {
                    return self.fail(
                        "States.Runtime",
                        format!(
                            "state '{}': a task inside a Parallel branch or a Map cannot wait for a task token in stepshift-local",
                            state.name
                        ),
                    );
                }
                if let Some(cur) = self.current.as_mut() {
                    cur.token = token.clone();
                }
                self.event("TaskSubmitted", json!({"resource": resource}));
                self.status = Status::Waiting { token: token.unwrap_or_default(), state: state.name.clone(), deadline };
            }
            Some(Answer::Error { error, cause }) => {
                self.event(&format!("{prefix}Failed"), json!({"error": error, "cause": cause}));
                self.state_failed(state, raw, &error, cause);
            }
        }
    }

    fn task_succeeded(&mut self, state: &State, raw: Value, output: Value) {
        let Kind::Task { resource, .. } = &state.kind else {
            return;
        };
        self.event(&format!("{}Succeeded", event_prefix(resource)), json!({"output": output}));
        self.finish(state, raw, output);
    }

    /// A Task's, Parallel's or Map's result: ResultSelector, ResultPath, then exit.
    fn finish(&mut self, state: &State, raw: Value, result: Value) {
        let (result_selector, result_path) = match &state.kind {
            Kind::Task { result_selector, result_path, .. }
            | Kind::Parallel { result_selector, result_path, .. }
            | Kind::Map { result_selector, result_path, .. } => (result_selector.as_ref(), result_path),
            _ => (None, &ResultPath::Replace),
        };
        let ctx = self.context(&state.name, self.now, 0, None);
        let selected = match result_selector {
            Some(t) => match t.eval(&result, &ctx, &mut self.rng) {
                Ok(v) => v,
                Err(e) => {
                    return self.fail("States.Runtime", format!("state '{}': ResultSelector: {e}", state.name));
                }
            },
            None => result,
        };
        match place(result_path, raw, selected) {
            Ok(out) => self.exit(state, out),
            Err(e) => self.fail("States.ResultPathMatchFailure", format!("state '{}': {e}", state.name)),
        }
    }

    /// A Task, Parallel or Map failed with `error`: retry, catch, or fail the execution.
    fn state_failed(&mut self, state: &State, raw: Value, error: &str, cause: String) {
        let (retry, catch) = (state.retry(), state.catch());
        if let Some(i) = retry.iter().position(|r| matches(error, &r.error_equals)) {
            let r = &retry[i];
            let cur = self.current.as_mut().expect("a state is current");
            cur.retries.resize(retry.len(), 0);
            if cur.retries[i] < r.max_attempts {
                let mut delay = r.interval_seconds * r.backoff_rate.powi(cur.retries[i] as i32);
                if let Some(cap) = r.max_delay_seconds {
                    delay = delay.min(cap);
                }
                if r.full_jitter {
                    delay = self.rng.random_range(0.0..=delay);
                }
                let cur = self.current.as_mut().expect("a state is current");
                cur.retries[i] += 1;
                cur.attempt += 1;
                cur.token = None;
                cur.pending = None;
                cur.group = None;
                cur.wake = Wake::At(self.now.plus_millis((delay * 1000.0).round() as i64));
                self.transitions += 1;
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

    /// Starts a Parallel's branches or a Map's first iterations.
    fn start_group(&mut self, state: &State, raw: Value, effective: Value) {
        match &state.kind {
            Kind::Parallel { branches, parameters, .. } => {
                let input = match parameters {
                    Some(p) => {
                        let ctx = self.current_context(&state.name);
                        match p.eval(&effective, &ctx, &mut self.rng) {
                            Ok(v) => v,
                            Err(e) => {
                                return self.fail(
                                    "States.Runtime",
                                    format!("An error occurred while executing the state '{}': {e}", state.name),
                                );
                            }
                        }
                    }
                    None => effective,
                };
                self.event("ParallelStateStarted", json!({}));
                let slots = branches
                    .iter()
                    .map(|b| Slot::Running(Box::new(self.child(Arc::clone(b), input.clone()))))
                    .collect();
                let cur = self.current.as_mut().expect("a state is current");
                cur.group = Some(Group { slots, limit: usize::MAX, effective: Value::Null });
            }
            Kind::Map { items_path, max_concurrency, .. } => {
                let items = match items_path {
                    None => Some(&effective),
                    Some(p) => p.get(&effective),
                };
                let Some(Value::Array(items)) = items.cloned() else {
                    let path = items_path.as_ref().map_or_else(|| "$".to_owned(), ToString::to_string);
                    return self.fail(
                        "States.Runtime",
                        format!(
                            "An error occurred while executing the state '{}': ItemsPath '{path}' does not select an array in the input",
                            state.name
                        ),
                    );
                };
                self.event("MapStateStarted", json!({"length": items.len()}));
                let limit = if *max_concurrency == 0 { usize::MAX } else { *max_concurrency as usize };
                let cur = self.current.as_mut().expect("a state is current");
                cur.group = Some(Group { slots: items.into_iter().map(Slot::Queued).collect(), limit, effective });
            }
            _ => return,
        }
        self.refill_group(state, raw);
    }

    /// Starts queued Map iterations while there is room; ends the state when every
    /// branch or iteration is done.
    fn refill_group(&mut self, state: &State, raw: Value) {
        let Some(mut group) = self.current.as_mut().and_then(|c| c.group.take()) else { return };
        if let Kind::Map { processor, item_selector, .. } = &state.kind {
            while group.running() < group.limit {
                let Some(i) = group.slots.iter().position(|s| matches!(s, Slot::Queued(_))) else { break };
                let Slot::Queued(item) = std::mem::replace(&mut group.slots[i], Slot::Done(Value::Null)) else {
                    break;
                };
                let input = match item_selector {
                    Some(t) => {
                        let mut ctx = self.current_context(&state.name);
                        ctx["Map"] = json!({"Item": {"Index": i, "Value": item}});
                        t.eval(&group.effective, &ctx, &mut self.rng)
                    }
                    None => Ok(item),
                };
                let input = match input {
                    Ok(v) => v,
                    Err(e) => {
                        self.abort_group(state, &mut group);
                        return self.fail("States.Runtime", format!("state '{}': ItemSelector: {e}", state.name));
                    }
                };
                self.event("MapIterationStarted", json!({"name": state.name, "index": i}));
                group.slots[i] = Slot::Running(Box::new(self.child(Arc::clone(processor), input)));
            }
        }
        if group.slots.iter().all(|s| matches!(s, Slot::Done(_))) {
            let outputs = group
                .slots
                .into_iter()
                .map(|s| match s {
                    Slot::Done(v) => v,
                    _ => Value::Null,
                })
                .collect();
            self.event(&format!("{}StateSucceeded", state.type_name()), json!({}));
            self.finish(state, raw, Value::Array(outputs));
        } else if let Some(cur) = self.current.as_mut() {
            cur.group = Some(group);
        }
    }

    /// One step of the branch or iteration due first.
    fn step_group(&mut self, env: &mut dyn Environment) {
        let Some((machine, name, raw)) = self.state() else { return };
        let state = &machine.states[&name];
        let is_map = matches!(state.kind, Kind::Map { .. });
        let Some(mut group) = self.current.as_mut().and_then(|c| c.group.take()) else { return };
        let Some((i, Due::At(t))) = group.next() else {
            // Nothing due (the caller checks for hung branches first).
            if let Some(cur) = self.current.as_mut() {
                cur.group = Some(group);
            }
            return;
        };
        let Slot::Running(child) = &mut group.slots[i] else { return };
        child.now = child.now.max(t);
        child.micro_step(env);
        self.absorb(child);
        if self.status != Status::Running {
            return;
        }
        let outcome = child.status.clone();
        match outcome {
            Status::Running => {}
            Status::Succeeded(out) => {
                if is_map {
                    self.event("MapIterationSucceeded", json!({"name": state.name, "index": i}));
                }
                group.slots[i] = Slot::Done(out);
            }
            other => {
                let (error, cause) = match other {
                    Status::Failed { error, cause } => (error, cause),
                    _ => ("States.Runtime".to_owned(), "a branch ended without succeeding".to_owned()),
                };
                if is_map {
                    self.event("MapIterationFailed", json!({"name": state.name, "index": i}));
                }
                group.slots[i] = Slot::Done(Value::Null);
                self.abort_group(state, &mut group);
                self.event(&format!("{}StateFailed", state.type_name()), json!({"error": error, "cause": cause}));
                if self.status != Status::Running {
                    return;
                }
                return self.state_failed(state, raw, &error, cause);
            }
        }
        if let Some(cur) = self.current.as_mut() {
            cur.group = Some(group);
        }
        self.refill_group(state, raw);
    }

    /// Stops every branch or iteration still under way, in order.
    fn abort_group(&mut self, state: &State, group: &mut Group) {
        let is_map = matches!(state.kind, Kind::Map { .. });
        for (j, slot) in group.slots.iter_mut().enumerate() {
            if let Slot::Running(child) = slot {
                child.now = child.now.max(self.now);
                child.abort();
                self.absorb(child);
                if is_map {
                    self.event("MapIterationAborted", json!({"name": state.name, "index": j}));
                }
                *slot = Slot::Done(Value::Null);
            }
        }
    }

    /// Stops this branch or iteration: its state under way (a task, a wait, a nested
    /// Parallel or Map) is aborted, and nothing more of it runs.
    fn abort(&mut self) {
        if self.status != Status::Running {
            return;
        }
        if let Some(mut cur) = self.current.take()
            && cur.entered
        {
            let machine = Arc::clone(&self.machine);
            let state = &machine.states[&cur.state];
            if let Some(mut group) = cur.group.take() {
                self.abort_group(state, &mut group);
            }
            let aborted = match state.kind {
                Kind::Task { .. } => Some("TaskStateAborted"),
                Kind::Wait(_) => Some("WaitStateAborted"),
                Kind::Parallel { .. } => Some("ParallelStateAborted"),
                Kind::Map { .. } => Some("MapStateAborted"),
                _ => None,
            };
            if let Some(kind) = aborted {
                self.event(kind, json!({"name": state.name}));
            }
        }
        self.status = Status::Failed { error: "States.Aborted".into(), cause: "stopped by its Parallel or Map".into() };
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

    /// Answers a waiting task with failure; call [`Execution::run`] to continue (a retry's
    /// delay passes there; `_env` is kept for callers written when it passed here).
    pub fn send_task_failure(
        &mut self,
        token: &str,
        error: &str,
        cause: &str,
        _env: &mut dyn Environment,
    ) -> Result<(), String> {
        let (machine, name, raw) = self.waiting_state(token)?;
        self.status = Status::Running;
        self.event("TaskFailed", json!({"error": error, "cause": cause}));
        self.state_failed(&machine.states[&name], raw, error, cause.to_owned());
        Ok(())
    }

    /// Lets virtual time pass while the execution waits for a token; a task whose
    /// timeout passes fails with `States.Timeout`. Call [`Execution::run`] afterwards.
    pub fn advance(&mut self, secs: i64, env: &mut dyn Environment) {
        self.advance_until(self.now.plus_secs(secs), env);
    }

    /// [`Execution::advance`] to `target`.
    pub fn advance_until(&mut self, target: Timestamp, env: &mut dyn Environment) {
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
                self.state_failed(
                    &machine.states[&name],
                    raw,
                    "States.Timeout",
                    "The task timed out waiting for its token".into(),
                );
            }
            return;
        }
        self.sleep_until(target, env);
    }
}
