//! The functions that validation hooks invoke, simulated: test functions, and the
//! candidate versions that `invoke_candidate` hooks invoke by their qualified name.
//!
//! The state machine invokes them through `arn:aws:states:::lambda:invoke` with a
//! dynamic `FunctionName`; this answers as that integration does: `{"ExecutedVersion",
//! "Payload", "StatusCode"}` on success, the function's `errorType` as the error (and
//! its error object as the cause) on a FunctionError, `Lambda.ResourceNotFoundException`
//! for a function that does not exist. How long an answer takes is virtual time, and a
//! hang never answers, so the task's `TimeoutSecondsPath` decides.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stepshift_core::Timestamp;

use crate::asl::TaskResult;

/// The resource of Step Functions' optimised Lambda integration.
pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";

/// How a simulated hook function answers one invocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HookBehaviour {
    /// Passes: a test function answers `{"status": "passed"}`, a candidate version
    /// `{"statusCode": 200}`.
    Pass {
        /// Seconds it takes.
        #[serde(default = "one")]
        after_seconds: u64,
    },
    /// Fails: a test function answers `{"status": "failed", "reason": ...}`, a candidate
    /// version fails with a FunctionError (`errorType` `Error`).
    Fail {
        /// Seconds it takes.
        #[serde(default = "one")]
        after_seconds: u64,
        /// The reason.
        reason: String,
    },
    /// Answers with this payload.
    Respond {
        /// Seconds it takes.
        #[serde(default = "one")]
        after_seconds: u64,
        /// The response.
        payload: Value,
    },
    /// Never answers.
    Hang,
    /// Lambda throttles the invocation (`Lambda.TooManyRequestsException`), at once.
    Throttle,
}

fn one() -> u64 {
    1
}

/// One invocation a hook made.
#[derive(Clone, Debug, PartialEq)]
pub struct HookCall {
    /// When.
    pub at: Timestamp,
    /// The `FunctionName` as invoked: `orders-smoke`, `orders:42`.
    pub function: String,
    /// The payload sent.
    pub payload: Value,
}

/// The simulated hook functions of a scenario.
#[derive(Clone, Debug, Default)]
pub struct HookFunctions {
    scripts: BTreeMap<String, Vec<HookBehaviour>>,
    counts: BTreeMap<String, usize>,
    /// Every invocation, in order.
    pub calls: Vec<HookCall>,
}

impl HookFunctions {
    /// Functions answering by `scripts`: each invocation of a function takes the next
    /// behaviour of its list, and the last one repeats. A candidate version
    /// (`function:version`) with no script passes after a second.
    pub fn new(scripts: BTreeMap<String, Vec<HookBehaviour>>) -> Self {
        HookFunctions { scripts, counts: BTreeMap::new(), calls: Vec::new() }
    }

    /// The test functions the scenario defines (names without a qualifier), which the
    /// simulated account must hold so that "Begin deployment" finds them.
    pub fn test_functions(&self) -> Vec<&str> {
        self.scripts.keys().filter(|k| !k.contains(':')).map(String::as_str).collect()
    }

    /// Answers one `lambda:invoke` call, as Step Functions' integration would.
    pub fn invoke(&mut self, input: &Value, now: Timestamp, is_version: impl Fn(&str) -> bool) -> TaskResult {
        let function = input["FunctionName"].as_str().unwrap_or_default().to_owned();
        let payload = input.get("Payload").cloned().unwrap_or(Value::Null);
        self.calls.push(HookCall { at: now, function: function.clone(), payload });
        let candidate = is_version(&function);
        let behaviour = match self.scripts.get(&function) {
            Some(list) if !list.is_empty() => {
                let n = self.counts.entry(function.clone()).or_default();
                let b = list[(*n).min(list.len() - 1)].clone();
                *n += 1;
                b
            }
            _ if candidate => HookBehaviour::Pass { after_seconds: 1 },
            _ => {
                return TaskResult::Error {
                    error: "Lambda.ResourceNotFoundException".into(),
                    cause: format!("Function not found: {function}"),
                };
            }
        };
        let executed = if candidate { function.rsplit(':').next().unwrap_or("$LATEST") } else { "$LATEST" };
        let answer = |payload: Value| {
            TaskResult::Output(json!({"ExecutedVersion": executed, "Payload": payload, "StatusCode": 200}))
        };
        let took =
            |secs: u64, result: TaskResult| TaskResult::Took { millis: secs as i64 * 1000, result: Box::new(result) };
        match behaviour {
            HookBehaviour::Pass { after_seconds } => took(
                after_seconds,
                answer(if candidate { json!({"statusCode": 200}) } else { json!({"status": "passed"}) }),
            ),
            HookBehaviour::Fail { after_seconds, reason } if candidate => took(
                after_seconds,
                TaskResult::Error {
                    error: "Error".into(),
                    cause: json!({"errorType": "Error", "errorMessage": reason}).to_string(),
                },
            ),
            HookBehaviour::Fail { after_seconds, reason } => {
                took(after_seconds, answer(json!({"status": "failed", "reason": reason})))
            }
            HookBehaviour::Respond { after_seconds, payload } => took(after_seconds, answer(payload)),
            HookBehaviour::Hang => TaskResult::Never,
            HookBehaviour::Throttle => TaskResult::Error {
                error: "Lambda.TooManyRequestsException".into(),
                cause: "Rate Exceeded. (simulated)".into(),
            },
        }
    }
}
