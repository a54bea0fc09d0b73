//! Validation hooks: tests of the candidate before any traffic, at every step, and after
//! promotion, run by the state machine itself, so that none can hang.
//!
//! The request's `hooks` section ([`Hooks`]) lists, for each [`Point`], hooks that run
//! in parallel. A hook either invokes the candidate version itself by its qualified
//! name (`invoke_candidate`, so no user sees the request), or runs a test function
//! (`function`) with a [`HookEvent`] that names the candidate.
//!
//! "Begin deployment" expands them into [`PlannedHooks`] (one invocation per candidate
//! for `invoke_candidate`). The state machine runs each point's list as a Map of
//! `arn:aws:states:::lambda:invoke` tasks, each bounded by its `TimeoutSecondsPath` and
//! caught, so a hook that never answers fails at its timeout: there is no callback to
//! wait for. check-health then judges the runs ([`judge`]) and fails with
//! [`TaskError::HookFailed`] when one failed, which the state machine turns into a
//! rollback (or, before traffic, an ending with nothing moved).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::deployment::PlannedTarget;
use crate::error::FieldError;
use crate::tasks::CaughtError;
use crate::{ErrorName, TaskError};

/// A hook's timeout when the request gives none.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 300;
/// The longest timeout: a synchronous Lambda invocation lasts at most 900 s.
pub const MAX_TIMEOUT_SECONDS: u64 = 900;
/// Most hooks at one point (they run in parallel; each costs history events).
pub const MAX_HOOKS_PER_POINT: usize = 10;
/// The `action` check-health reads to judge hook runs instead of the health.
pub const JUDGE_ACTION: &str = "judge_hooks";
/// The version of [`HookEvent`]'s shape, its `stepshift` field.
pub const EVENT_VERSION: u32 = 1;
/// History events a point with hooks costs besides its hooks, at most: its Choice (2),
/// the Map (4), the judging task (5), and at a step the Parallel (4) and its Succeed
/// state (2). The step's checks inside the Parallel cost what they cost outside it.
pub const EVENTS_PER_POINT: u64 = 17;
/// History events of one hook's invocation, at most without retries: the iteration (2),
/// the Choice of its kind (2), the task (5) and the Succeed state that ends it (2), and
/// one for a retry.
pub const EVENTS_PER_HOOK: u64 = 12;
/// Retries of a hook's invocation, for Lambda's own throttling and service errors only.
pub const INVOKE_RETRIES: u32 = 2;

/// When hooks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Point {
    /// After "Begin deployment", before the first shift. Failure ends the deployment
    /// with nothing moved.
    BeforeTraffic,
    /// After every shift before promotion, alongside the bake and its checks. Failure
    /// rolls back.
    EachStep,
    /// Right after "Promote", before the lock-in watch. Failure rolls back.
    AfterPromotion,
}

impl Point {
    /// Every point, in the order a deployment meets them.
    pub const ALL: [Point; 3] = [Point::BeforeTraffic, Point::EachStep, Point::AfterPromotion];

    /// The field of the request that lists its hooks, `hooks.before_traffic`.
    pub fn field(self) -> &'static str {
        match self {
            Point::BeforeTraffic => "hooks.before_traffic",
            Point::EachStep => "hooks.each_step",
            Point::AfterPromotion => "hooks.after_promotion",
        }
    }

    /// In a sentence: "before traffic", "at the step", "after promotion".
    pub fn describe(self) -> &'static str {
        match self {
            Point::BeforeTraffic => "before traffic",
            Point::EachStep => "at the step",
            Point::AfterPromotion => "after promotion",
        }
    }
}

/// One list per point, in the order a deployment meets them: the request's hooks
/// ([`Hooks`]) and the planned invocations ([`PlannedHooks`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ByPoint<T> {
    /// Run before any traffic moves.
    pub before_traffic: Vec<T>,
    /// Run after every shift, alongside the bake.
    pub each_step: Vec<T>,
    /// Run right after promotion, before the lock-in watch.
    pub after_promotion: Vec<T>,
}

impl<T> Default for ByPoint<T> {
    fn default() -> Self {
        ByPoint { before_traffic: Vec::new(), each_step: Vec::new(), after_promotion: Vec::new() }
    }
}

impl<T> ByPoint<T> {
    /// The list at `point`.
    pub fn at(&self, point: Point) -> &[T] {
        match point {
            Point::BeforeTraffic => &self.before_traffic,
            Point::EachStep => &self.each_step,
            Point::AfterPromotion => &self.after_promotion,
        }
    }

    /// Whether every list is empty.
    pub fn is_empty(&self) -> bool {
        Point::ALL.iter().all(|p| self.at(*p).is_empty())
    }

    /// Adds `item` at `point` (the CLI's `--test-before` and friends).
    pub fn push(&mut self, point: Point, item: T) {
        match point {
            Point::BeforeTraffic => &mut self.before_traffic,
            Point::EachStep => &mut self.each_step,
            Point::AfterPromotion => &mut self.after_promotion,
        }
        .push(item);
    }
}

/// The request's `hooks` section.
pub type Hooks = ByPoint<Hook>;

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECONDS
}

/// One hook as a request writes it: exactly one of `invoke_candidate` and `function`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    /// How `status` and the history name it; defaults to the function invoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Invoke the candidate version itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoke_candidate: Option<InvokeCandidate>,
    /// Run this test function (a name or an ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// For a test function: the `payload` field of the [`HookEvent`] it receives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// A hook running longer fails (1 to 900 s).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

impl Hook {
    /// A test function hook with no payload and the default timeout.
    pub fn function(name: impl Into<String>) -> Self {
        Hook {
            name: None,
            invoke_candidate: None,
            function: Some(name.into()),
            payload: None,
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
        }
    }

    /// An `invoke_candidate` hook sending `payload`, with no expectation beyond "no
    /// FunctionError" and the default timeout.
    pub fn invoke_candidate(payload: Value) -> Self {
        Hook {
            name: None,
            invoke_candidate: Some(InvokeCandidate { payload, expect: Expectation::default() }),
            function: None,
            payload: None,
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
        }
    }
}

/// Invoke the candidate version with `payload`, and check the response.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InvokeCandidate {
    /// The event the candidate receives, exactly as written (an API Gateway event, ...).
    pub payload: Value,
    /// What the response must look like, besides not being a FunctionError.
    pub expect: Expectation,
}

/// A simple expectation on a response. Both parts must hold when both are given.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Expectation {
    /// The response's `statusCode` (HTTP-style, as API Gateway and function URLs read
    /// it) must be a number below this, for example 500.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_below: Option<u64>,
    /// The response must contain this JSON: every field given, with the same value
    /// (objects recursively; arrays and other values equal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contains: Option<Value>,
}

/// The two kinds of hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookKind {
    /// Invokes a candidate version by its qualified name.
    InvokeCandidate,
    /// Runs a test function with a [`HookEvent`].
    Function,
}

/// A candidate as hooks see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookCandidate {
    /// The target in a sentence: `orders:live`, `www.example.com. A`.
    pub target: String,
    /// The candidate version, record endpoint or revision.
    pub version: String,
    /// For a Lambda alias: the function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// For a Lambda alias: the alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// For a Lambda alias: the candidate version's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualified_arn: Option<String>,
}

/// One invocation the state machine makes at a point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedHook {
    /// Its name in `status` and the history.
    pub name: String,
    /// Which kind.
    pub kind: HookKind,
    /// What the Map's task invokes (`FunctionName`): `orders:7`, or the test function.
    pub function: String,
    /// For `invoke_candidate`: the event sent. For a test function: the `payload` of its
    /// [`HookEvent`] (`null` when the request gave none).
    pub payload: Value,
    /// The task's `TimeoutSecondsPath`.
    pub timeout_seconds: u64,
    /// What an `invoke_candidate` response must look like.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expectation>,
    /// When it runs.
    pub point: Point,
    /// The candidate it tests (for several targets, the first; see `candidates`).
    pub candidate: HookCandidate,
    /// Every candidate of the release.
    pub candidates: Vec<HookCandidate>,
}

/// The planned hooks of every point, in `$.plan.hooks`; the state machine runs a
/// point's Map only when its list has an element.
pub type PlannedHooks = ByPoint<PlannedHook>;

/// The event a test function receives. The state machine builds it (the Map's
/// "run the test function" task's `Payload`); `tests/static_checks.rs` checks that its
/// fields are these.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookEvent {
    /// [`EVENT_VERSION`].
    pub stepshift: u32,
    /// The execution's ARN.
    pub execution: String,
    /// When it runs.
    pub point: Point,
    /// The step's index into the strategy (0 is the first); `null` before traffic.
    pub step: Option<usize>,
    /// The candidate's share of traffic now, in percent.
    pub weight_percent: f64,
    /// The candidate (the first, when several targets are released together).
    pub candidate: HookCandidate,
    /// Every candidate.
    pub candidates: Vec<HookCandidate>,
    /// The hook's `payload`, as the request gave it.
    pub payload: Value,
}

/// What a test function returns to fail its hook (any other answer passes it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookAnswer {
    /// `"failed"` fails the hook.
    pub status: String,
    /// Why; it becomes the deployment's cause.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `status` in a [`HookAnswer`] that fails the hook.
pub const FAILED_STATUS: &str = "failed";

/// What a hook's invocation answered: the `Payload` of `arn:aws:states:::lambda:invoke`
/// (the task's `ResultSelector`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    /// The function's response.
    #[serde(default)]
    pub payload: Value,
}

/// One Map iteration's output: the hook, and the invocation's answer or the error its
/// Catch caught.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookRun {
    /// The planned hook.
    pub hook: PlannedHook,
    /// The step, when at a step.
    #[serde(default)]
    pub step: Option<usize>,
    /// The answer, when it answered.
    #[serde(default)]
    pub invocation: Option<Invocation>,
    /// The error, when the invocation failed, timed out or its answer was too large.
    #[serde(default)]
    pub error: Option<CaughtError>,
}

/// Whether check-health's `input` asks it to judge hook runs ([`JudgeInput`], with
/// `"action"` [`JUDGE_ACTION`]) rather than the health.
pub fn is_judge_input(input: &Value) -> bool {
    input.get("action").and_then(Value::as_str) == Some(JUDGE_ACTION)
}

/// check-health's input for [`judge`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JudgeInput {
    /// [`JUDGE_ACTION`].
    pub action: String,
    /// The point.
    pub point: Point,
    /// The Map's output.
    pub runs: Vec<HookRun>,
    /// Before traffic: `$.plan.control`, the control record to read, so that an abort
    /// given during the tests stops the deployment before any traffic moves.
    #[serde(default)]
    pub control: Option<String>,
    /// `$$.Execution.Id`, with `control`.
    #[serde(default)]
    pub execution: Option<String>,
}

/// How one hook ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookOutcome {
    /// It passed.
    Passed,
    /// It failed: an error, a failed answer or an unmet expectation.
    Failed,
    /// It did not answer within its timeout.
    TimedOut,
}

/// One hook's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookResult {
    /// The hook's name.
    pub name: String,
    /// What was invoked.
    pub function: String,
    /// How it ended.
    pub outcome: HookOutcome,
    /// Why it failed, or what it answered.
    pub detail: String,
}

/// The judgement of one point's runs: check-health's output, or (failed) the cause of
/// its [`TaskError::HookFailed`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookReport {
    /// The point.
    pub point: Point,
    /// The step, when at a step.
    pub step: Option<usize>,
    /// Every hook's result, in the request's order.
    pub results: Vec<HookResult>,
}

impl HookReport {
    /// Whether every hook passed.
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.outcome == HookOutcome::Passed)
    }

    /// One sentence: "the tests at step 2 failed: smoke: timed out after 300 s".
    pub fn sentence(&self) -> String {
        let at = match (self.point, self.step) {
            (Point::EachStep, Some(i)) => format!("at step {}", i + 1),
            (p, _) => p.describe().to_owned(),
        };
        let failed: Vec<String> = self
            .results
            .iter()
            .filter(|r| r.outcome != HookOutcome::Passed)
            .map(|r| format!("{}: {}", r.name, r.detail))
            .collect();
        if failed.is_empty() {
            format!("the tests {at} passed ({})", self.results.len())
        } else {
            format!("the tests {at} failed: {}", failed.join("; "))
        }
    }
}

/// [`judge`], after reading the control record when the input names one (the tests
/// before traffic): an abort given while they ran fails the task with
/// [`TaskError::Aborted`], whatever the tests said.
pub async fn judge_point<S: crate::ports::ParameterStore>(
    store: &S,
    input: JudgeInput,
) -> Result<HookReport, TaskError> {
    if let (Some(name), Some(execution)) = (&input.control, &input.execution)
        && let Some(c) = crate::control::read(store, name, execution).await?
        && c.action == crate::control::Action::Abort
    {
        let why = c.reason.as_deref().filter(|r| !r.is_empty()).unwrap_or("no reason given");
        return Err(TaskError::Aborted(format!(
            "{}, by {} at {}: {why}",
            crate::control::DURING_TESTS_BEFORE_TRAFFIC,
            c.by,
            c.at
        )));
    }
    judge(input)
}

/// Judges one point's runs: `Ok` when every hook passed, else
/// [`TaskError::HookFailed`] with the report's sentence.
pub fn judge(input: JudgeInput) -> Result<HookReport, TaskError> {
    let report = report(input.point, &input.runs);
    if report.passed() { Ok(report) } else { Err(TaskError::HookFailed(report.sentence())) }
}

/// The report of one point's runs, passed or not (the CLI rebuilds a failed point's
/// report from the runs the judging task was given).
pub fn report(point: Point, runs: &[HookRun]) -> HookReport {
    HookReport { point, step: runs.iter().find_map(|r| r.step), results: runs.iter().map(judge_run).collect() }
}

fn judge_run(run: &HookRun) -> HookResult {
    let hook = &run.hook;
    let (outcome, detail) = match (&run.error, &run.invocation) {
        (Some(e), _) => judge_error(e, hook.timeout_seconds),
        (None, Some(answer)) => judge_answer(hook, &answer.payload),
        (None, None) => (HookOutcome::Failed, "the invocation returned nothing".to_owned()),
    };
    HookResult { name: hook.name.clone(), function: hook.function.clone(), outcome, detail }
}

fn judge_error(e: &CaughtError, timeout: u64) -> (HookOutcome, String) {
    match e.error.as_str() {
        "States.Timeout" => (HookOutcome::TimedOut, format!("did not answer within {timeout} s (timeout_seconds)")),
        "States.DataLimitExceeded" => {
            (HookOutcome::Failed, "its response is larger than Step Functions' 256 KiB of state".to_owned())
        }
        name => (HookOutcome::Failed, format!("{name}: {}", e.message())),
    }
}

fn judge_answer(hook: &PlannedHook, answer: &Value) -> (HookOutcome, String) {
    match hook.kind {
        HookKind::Function => match serde_json::from_value::<HookAnswer>(answer.clone()) {
            Ok(a) if a.status == FAILED_STATUS => {
                (HookOutcome::Failed, a.reason.unwrap_or_else(|| "the test function answered \"failed\"".into()))
            }
            _ => (HookOutcome::Passed, "passed".to_owned()),
        },
        HookKind::InvokeCandidate => match hook.expect.as_ref().and_then(|e| unmet(e, answer)) {
            Some(why) => (HookOutcome::Failed, why),
            None => (HookOutcome::Passed, "passed".to_owned()),
        },
    }
}

/// Why `answer` does not meet `expect`, if it does not.
pub fn unmet(expect: &Expectation, answer: &Value) -> Option<String> {
    if let Some(below) = expect.status_below {
        match answer.get("statusCode").and_then(Value::as_f64) {
            Some(code) if code < below as f64 => {}
            Some(code) => return Some(format!("statusCode {code} is not below {below}")),
            None => return Some(format!("the response has no numeric statusCode (expected one below {below})")),
        }
    }
    if let Some(wanted) = &expect.contains
        && let Some(at) = first_difference(wanted, answer, String::from("$"))
    {
        return Some(format!("the response does not contain the expected JSON at {at}"));
    }
    None
}

/// The path of the first place where `actual` does not contain `wanted`. Objects are
/// compared field by field (extra fields are fine); anything else must be equal.
fn first_difference(wanted: &Value, actual: &Value, at: String) -> Option<String> {
    match (wanted, actual) {
        (Value::Object(w), Value::Object(a)) => w.iter().find_map(|(k, v)| match a.get(k) {
            Some(got) => first_difference(v, got, format!("{at}.{k}")),
            None => Some(format!("{at}.{k} (missing)")),
        }),
        _ if wanted == actual => None,
        _ => Some(at),
    }
}

/// The region and account of an execution ARN, `arn:aws:states:REGION:ACCOUNT:execution:...`.
fn region_and_account(execution: &str) -> Option<(&str, &str)> {
    let mut parts = execution.split(':').skip(3);
    let (region, account) = (parts.next()?, parts.next()?);
    (!region.is_empty() && !account.is_empty()).then_some((region, account))
}

/// The hooks' view of each planned target.
pub fn candidates(targets: &[PlannedTarget], execution: &str) -> Vec<HookCandidate> {
    targets
        .iter()
        .map(|t| {
            let alias = t.route.counted_alias();
            HookCandidate {
                target: t.qualified(),
                version: t.candidate.clone(),
                function: alias.map(|a| a.function.clone()),
                alias: alias.map(|a| a.alias.clone()),
                qualified_arn: alias.and_then(|a| {
                    region_and_account(execution).map(|(region, account)| {
                        format!("arn:aws:lambda:{region}:{account}:function:{}:{}", a.function, t.candidate)
                    })
                }),
            }
        })
        .collect()
}

/// Expands the request's hooks for the planned targets: one invocation per alias target
/// for `invoke_candidate` (named `name (function:alias)` when there are several).
pub fn plan(hooks: &Hooks, targets: &[PlannedTarget], execution: &str) -> PlannedHooks {
    let all = candidates(targets, execution);
    let Some(first) = all.first().cloned() else {
        return PlannedHooks::default();
    };
    let expand = |point: Point| -> Vec<PlannedHook> {
        let mut out = Vec::new();
        for (i, hook) in hooks.at(point).iter().enumerate() {
            let planned =
                |name: String, kind, function: String, payload, expect, candidate: HookCandidate| PlannedHook {
                    name,
                    kind,
                    function,
                    payload,
                    timeout_seconds: hook.timeout_seconds,
                    expect,
                    point,
                    candidate,
                    candidates: all.clone(),
                };
            if let Some(invoke) = &hook.invoke_candidate {
                let versions: Vec<&HookCandidate> = all.iter().filter(|c| c.function.is_some()).collect();
                for c in &versions {
                    let function = format!("{}:{}", c.function.as_deref().unwrap_or_default(), c.version);
                    let base = hook.name.clone().unwrap_or_else(|| format!("invoke {function}"));
                    let name =
                        if versions.len() > 1 && hook.name.is_some() { format!("{base} ({})", c.target) } else { base };
                    let expect = Some(invoke.expect.clone()).filter(|e| *e != Expectation::default());
                    out.push(planned(
                        name,
                        HookKind::InvokeCandidate,
                        function,
                        invoke.payload.clone(),
                        expect,
                        (*c).clone(),
                    ));
                }
            } else if let Some(function) = &hook.function {
                let name = hook.name.clone().unwrap_or_else(|| {
                    if hooks.at(point).iter().filter(|h| h.function.as_ref() == Some(function)).count() > 1 {
                        format!("{function} #{}", i + 1)
                    } else {
                        function.clone()
                    }
                });
                out.push(planned(
                    name,
                    HookKind::Function,
                    function.clone(),
                    hook.payload.clone().unwrap_or(Value::Null),
                    None,
                    first.clone(),
                ));
            }
        }
        out
    };
    PlannedHooks {
        before_traffic: expand(Point::BeforeTraffic),
        each_step: expand(Point::EachStep),
        after_promotion: expand(Point::AfterPromotion),
    }
}

/// Whether `name` can name a Lambda function to invoke: a name (1-64 letters, digits,
/// `-`, `_`), optionally qualified (`name:qualifier`), or a function ARN.
fn is_function_reference(name: &str) -> bool {
    let plain =
        |s: &str| !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
    let qualifier =
        |s: &str| !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_$".contains(c));
    let parts: Vec<&str> = name.split(':').collect();
    match parts.as_slice() {
        [n] => plain(n),
        [n, q] => plain(n) && qualifier(q),
        ["arn", partition, "lambda", region, account, "function", rest @ ..] => {
            partition.starts_with("aws")
                && !region.is_empty()
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && match rest {
                    [n] => plain(n),
                    [n, q] => plain(n) && qualifier(q),
                    _ => false,
                }
        }
        _ => false,
    }
}

/// The base name of a function reference: `orders-smoke` for `orders-smoke`,
/// `orders-smoke:live` or its ARN.
pub fn function_name(reference: &str) -> &str {
    let parts: Vec<&str> = reference.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", n, ..] => n,
        [n, ..] => n,
        [] => reference,
    }
}

/// Whether `name` matches an IAM resource-name pattern, where `*` matches any run of
/// characters and `?` any one. Written here because IAM's wildcards are this small; a
/// glob crate would add path and bracket semantics IAM does not have.
pub fn matches_pattern(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // The classic two-pointer match with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// Why the stack may not run `reference` as a test function for `execution`, if it may
/// not: an ARN in another region or account, or a name outside `pattern` (the stack's
/// `HookFunctionPattern`; `None` allows any name).
pub fn test_function_refused(reference: &str, execution: &str, pattern: Option<&str>) -> Option<String> {
    if reference.starts_with("arn:")
        && let Some((region, account)) = region_and_account(execution)
    {
        let mut parts = reference.split(':').skip(3);
        if (parts.next(), parts.next()) != (Some(region), Some(account)) {
            return Some(format!("must be a function in this deployment's region and account ({region}, {account})"));
        }
    }
    let name = function_name(reference);
    match pattern {
        None => None,
        Some("") => Some(
            "the stack's HookFunctionPattern is empty, so no test function may run; set it to match this function \
             (README: Validation hooks), or use invoke_candidate"
                .to_owned(),
        ),
        Some(p) if !matches_pattern(p, name) => {
            Some(format!("{name} does not match the stack's HookFunctionPattern ({p}), so stepshift may not run it"))
        }
        Some(_) => None,
    }
}

/// The request's hook rules: each problem names its field. `aliases` are the request's
/// Lambda alias functions (a release of records or endpoints has none), `traffic_steps`
/// how many steps move traffic before the promotion.
pub fn validate(hooks: &Hooks, aliases: &[&str], traffic_steps: usize, errors: &mut Vec<FieldError>) {
    for point in Point::ALL {
        let list = hooks.at(point);
        if list.len() > MAX_HOOKS_PER_POINT {
            errors.push(FieldError::new(
                point.field(),
                format!("lists {} hooks; at most {MAX_HOOKS_PER_POINT} run at one point", list.len()),
            ));
        }
        if point == Point::EachStep && !list.is_empty() && traffic_steps == 0 {
            errors.push(FieldError::new(
                point.field(),
                "the strategy moves all traffic at once, so there is no step before promotion to test; use \
                 hooks.after_promotion",
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, hook) in list.iter().enumerate() {
            let at = format!("{}[{i}]", point.field());
            validate_hook(hook, &at, aliases, errors);
            if let Some(name) = &hook.name
                && !names.insert(name.as_str())
            {
                errors.push(FieldError::new(format!("{at}.name"), format!("\"{name}\" names another hook here too")));
            }
        }
    }
}

fn validate_hook(hook: &Hook, at: &str, aliases: &[&str], errors: &mut Vec<FieldError>) {
    match (&hook.invoke_candidate, &hook.function) {
        (Some(_), Some(_)) | (None, None) => errors.push(FieldError::new(
            at,
            "must have exactly one of \"invoke_candidate\" (invoke the candidate version itself) and \"function\" \
             (run a test function)",
        )),
        (Some(invoke), None) => {
            if aliases.is_empty() {
                errors.push(FieldError::new(
                    format!("{at}.invoke_candidate"),
                    "this release moves Route53 records or Web Function endpoints, which have no Lambda version \
                     to invoke; run a test function (\"function\") against the new side instead",
                ));
            }
            if hook.payload.is_some() {
                errors.push(FieldError::new(
                    format!("{at}.payload"),
                    "belongs inside invoke_candidate: {\"invoke_candidate\": {\"payload\": ...}}",
                ));
            }
            if let Some(below) = invoke.expect.status_below
                && !(101..=600).contains(&below)
            {
                errors.push(FieldError::new(
                    format!("{at}.invoke_candidate.expect.status_below"),
                    "must be an HTTP status between 101 and 600, for example 500",
                ));
            }
            if let Some(contains) = &invoke.expect.contains
                && !contains.is_object()
            {
                errors.push(FieldError::new(
                    format!("{at}.invoke_candidate.expect.contains"),
                    "must be a JSON object whose fields the response must have",
                ));
            }
        }
        (None, Some(function)) => {
            if !is_function_reference(function) {
                errors.push(FieldError::new(
                    format!("{at}.function"),
                    "must be a Lambda function name (1-64 letters, digits, - and _), optionally with :qualifier, \
                     or a function ARN",
                ));
            } else if aliases.contains(&function_name(function)) {
                errors.push(FieldError::new(
                    format!("{at}.function"),
                    "is a function this release moves; to test its candidate version use \"invoke_candidate\"",
                ));
            }
        }
    }
    if let Some(name) = &hook.name
        && (name.trim().is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control))
    {
        errors.push(FieldError::new(format!("{at}.name"), "must be 1 to 64 printable characters"));
    }
    if !(1..=MAX_TIMEOUT_SECONDS).contains(&hook.timeout_seconds) {
        errors.push(FieldError::new(
            format!("{at}.timeout_seconds"),
            format!(
                "must be between 1 and {MAX_TIMEOUT_SECONDS} seconds (a synchronous Lambda invocation lasts at most \
                 {MAX_TIMEOUT_SECONDS} s)"
            ),
        ));
    }
}

/// The error a branch of "Test the step" fails with when its check decides to roll
/// back, carrying the progress (`States.JsonToString($.progress)`) as its cause, so that
/// "Record rollback" reports the verdict that decided it.
pub const CARRIED_ROLLBACK: ErrorName = ErrorName::RollBackDecided;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(kind: HookKind, expect: Option<Expectation>, result: Option<Value>, error: Option<(&str, &str)>) -> HookRun {
        let candidate = HookCandidate {
            target: "orders:live".into(),
            version: "7".into(),
            function: Some("orders".into()),
            alias: Some("live".into()),
            qualified_arn: None,
        };
        HookRun {
            hook: PlannedHook {
                name: "smoke".into(),
                kind,
                function: "orders-smoke".into(),
                payload: Value::Null,
                timeout_seconds: 30,
                expect,
                point: Point::EachStep,
                candidate: candidate.clone(),
                candidates: vec![candidate],
            },
            step: Some(1),
            invocation: result.map(|payload| Invocation { payload }),
            error: error.map(|(e, c)| CaughtError { error: e.into(), cause: c.into() }),
        }
    }

    fn outcome(r: HookRun) -> (HookOutcome, String) {
        let h = judge_run(&r);
        (h.outcome, h.detail)
    }

    #[test]
    fn a_test_function_fails_its_hook_only_by_answering_failed_or_erring() {
        let f = |v| outcome(run(HookKind::Function, None, Some(v), None));
        assert_eq!(
            f(json!({"status": "failed", "reason": "checkout 502"})),
            (HookOutcome::Failed, "checkout 502".into())
        );
        assert_eq!(f(json!({"status": "failed"})).0, HookOutcome::Failed);
        assert_eq!(f(json!({"status": "passed"})).0, HookOutcome::Passed);
        assert_eq!(f(json!(null)).0, HookOutcome::Passed);
        assert_eq!(f(json!("failed")).0, HookOutcome::Passed);
        let cause = json!({"errorType": "Error", "errorMessage": "boom"}).to_string();
        let e = outcome(run(HookKind::Function, None, None, Some(("Error", &cause))));
        assert_eq!(e, (HookOutcome::Failed, "Error: boom".into()));
        let t = outcome(run(HookKind::Function, None, None, Some(("States.Timeout", ""))));
        assert_eq!(t, (HookOutcome::TimedOut, "did not answer within 30 s (timeout_seconds)".into()));
    }

    #[test]
    fn expectations_check_the_status_and_a_subset() {
        let status = Expectation { status_below: Some(500), contains: None };
        let f = |e: &Expectation, v| outcome(run(HookKind::InvokeCandidate, Some(e.clone()), Some(v), None));
        assert_eq!(f(&status, json!({"statusCode": 200})).0, HookOutcome::Passed);
        assert_eq!(
            f(&status, json!({"statusCode": 502})),
            (HookOutcome::Failed, "statusCode 502 is not below 500".into())
        );
        assert_eq!(f(&status, json!({"body": "ok"})).0, HookOutcome::Failed);
        let subset = Expectation { status_below: None, contains: Some(json!({"body": {"ok": true}, "v": [1, 2]})) };
        assert_eq!(f(&subset, json!({"body": {"ok": true, "n": 3}, "v": [1, 2], "x": 1})).0, HookOutcome::Passed);
        let (o, why) = f(&subset, json!({"body": {"ok": false}, "v": [1, 2]}));
        assert_eq!(o, HookOutcome::Failed);
        assert!(why.contains("$.body.ok"), "{why}");
        assert!(f(&subset, json!({"body": {"ok": true}})).1.contains("$.v (missing)"));
        assert!(f(&subset, json!({"body": {"ok": true}, "v": [1]})).1.contains("$.v"));
    }

    #[test]
    fn judge_fails_with_every_failed_hook_in_one_sentence() {
        let ok = run(HookKind::Function, None, Some(json!({})), None);
        assert!(
            judge(JudgeInput {
                action: JUDGE_ACTION.into(),
                point: Point::EachStep,
                runs: vec![ok.clone()],
                control: None,
                execution: None
            })
            .is_ok()
        );
        let mut bad = run(HookKind::Function, None, None, Some(("States.Timeout", "")));
        bad.hook.name = "load".into();
        let e = judge(JudgeInput {
            action: JUDGE_ACTION.into(),
            point: Point::EachStep,
            runs: vec![ok, bad],
            control: None,
            execution: None,
        })
        .unwrap_err();
        assert_eq!(e.error_name(), ErrorName::HookFailed);
        assert_eq!(e.to_string(), "the tests at step 2 failed: load: did not answer within 30 s (timeout_seconds)");
    }

    #[test]
    fn plan_invokes_each_candidate_and_names_the_candidates_for_test_functions() {
        use crate::routers::Route;
        use crate::routers::alias::AliasRoute;
        let target = |f: &str| {
            PlannedTarget::new(Route::Alias(AliasRoute { function: f.into(), alias: "live".into() }), "41", "42")
        };
        let hooks = Hooks {
            before_traffic: vec![Hook { name: Some("health".into()), ..Hook::invoke_candidate(json!({"path": "/"})) }],
            each_step: vec![Hook::function("smoke"), Hook::function("smoke")],
            after_promotion: Vec::new(),
        };
        let execution = "arn:aws:states:eu-west-1:123456789012:execution:stepshift:orders-42";
        let planned = plan(&hooks, &[target("orders"), target("billing")], execution);
        let names: Vec<&str> = planned.before_traffic.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["health (orders:live)", "health (billing:live)"]);
        let invoked: Vec<&str> = planned.before_traffic.iter().map(|h| h.function.as_str()).collect();
        assert_eq!(invoked, ["orders:42", "billing:42"], "by qualified name, never the alias");
        assert_eq!(planned.before_traffic[1].payload, json!({"path": "/"}));
        assert_eq!(
            planned.before_traffic[1].candidate.qualified_arn.as_deref(),
            Some("arn:aws:lambda:eu-west-1:123456789012:function:billing:42")
        );
        let step: Vec<&str> = planned.each_step.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(step, ["smoke #1", "smoke #2"]);
        assert_eq!(planned.each_step[0].candidates.len(), 2);
        assert_eq!(planned.each_step[0].payload, Value::Null);
        assert!(planned.after_promotion.is_empty());
    }

    #[test]
    fn iam_patterns_match_names_as_iam_does() {
        for (p, n) in [
            ("*", "x"),
            ("orders-*", "orders-smoke"),
            ("orders-?moke", "orders-smoke"),
            ("*-smoke*", "a-smoke-2"),
            ("a", "a"),
        ] {
            assert!(matches_pattern(p, n), "{p} {n}");
        }
        for (p, n) in [("orders-*", "billing-smoke"), ("a", "ab"), ("?", ""), ("a*b", "acbd"), ("", "a")] {
            assert!(!matches_pattern(p, n), "{p} {n}");
        }
    }

    #[test]
    fn test_functions_must_be_in_the_pattern_region_and_account() {
        let exec = "arn:aws:states:eu-west-1:123456789012:execution:stepshift:x";
        assert_eq!(test_function_refused("orders-smoke", exec, None), None);
        assert_eq!(test_function_refused("orders-smoke:live", exec, Some("orders-*")), None);
        assert!(test_function_refused("anything:live", exec, Some("orders-*")).unwrap().contains("does not match"));
        assert!(test_function_refused("orders-smoke", exec, Some("")).unwrap().contains("is empty"));
        let other = "arn:aws:lambda:us-east-1:123456789012:function:orders-smoke";
        assert!(test_function_refused(other, exec, None).unwrap().contains("region and account"));
        let same = "arn:aws:lambda:eu-west-1:123456789012:function:orders-smoke";
        assert_eq!(test_function_refused(same, exec, Some("orders-*")), None);
    }

    #[test]
    fn function_references_are_names_qualified_names_or_arns() {
        for ok in ["orders-smoke", "a_b", "orders-smoke:live", "arn:aws:lambda:eu-west-1:123456789012:function:smoke"] {
            assert!(is_function_reference(ok), "{ok}");
        }
        for bad in ["", "has space", "a:b:c", "arn:aws:lambda:eu-west-1:1234:function:x", "ünïcode", &"x".repeat(65)]
        {
            assert!(!is_function_reference(bad), "{bad}");
        }
        assert_eq!(function_name("arn:aws:lambda:eu-west-1:123456789012:function:smoke:3"), "smoke");
        assert_eq!(function_name("smoke:live"), "smoke");
    }
}
