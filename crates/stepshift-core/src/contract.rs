//! The names the Rust code shares with `statemachine/deployment.asl.json`: the states
//! ([`State`]) and the errors ([`ErrorName`]).
//!
//! Both are enums rather than string constants: [`State::ALL`] and [`ErrorName::ALL`]
//! are complete lists, so `tests/static_checks.rs` can check both directions (every
//! name here is in the ASL, and the ASL has no state or error name missing here), and
//! code that branches on a name matches on a variant, where a typo does not compile.
//! [`State::as_str`] is a `const fn`, so a test can still build `&str` arrays from them,
//! and a `String` compares equal to a variant (`o.path == [State::Bake, ...]`).

use std::fmt;

/// An enum of names, each spelled exactly as the state machine spells it, with `ALL`,
/// `as_str`, `from_name`, `Display`, and comparisons with `str` and `String`.
macro_rules! names {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Every one, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The name, as `statemachine/deployment.asl.json` spells it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The one spelled `name`, if any.
            pub fn from_name(name: &str) -> Option<$name> {
                match name {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.as_str()
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.as_str()
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                self == other.as_str()
            }
        }
    };
}

names! {
    /// A state of `statemachine/deployment.asl.json`. The state machine's history names
    /// states by these strings; the CLI, the local runner, the benchmarks and the tests
    /// refer to them through this enum.
    pub enum State {
        /// Task (record-version `begin`): validate, lock and plan.
        BeginDeployment = "Begin deployment",
        /// Task (events:putEvents): publish `Deployment Started` ([`crate::events`]).
        AnnounceTheStart = "Announce the start",
        /// Task (record-version `rejected`): release the locks and explain.
        RecordRejection = "Record rejection",
        /// Fail: the request was refused and nothing moved.
        DeploymentRejected = "Deployment rejected",
        /// Choice: whether the plan has hooks before traffic.
        TestsBeforeTrafficChoice = "Tests before traffic?",
        /// Map: the hooks before traffic ([`crate::hooks`]).
        TestBeforeTraffic = "Test before traffic",
        /// Choice (in "Test before traffic"): which kind of hook.
        BeforeTrafficWhichTest = "Before traffic: which test?",
        /// Task (`lambda:invoke`): invoke the candidate version.
        BeforeTrafficInvokeCandidate = "Before traffic: invoke the candidate",
        /// Task (`lambda:invoke`): run a test function.
        BeforeTrafficRunTestFunction = "Before traffic: run the test function",
        /// Succeed: one hook ran (passed or caught).
        BeforeTrafficTestDone = "Before traffic: test done",
        /// Task (check-health `judge_hooks`): judge the hooks before traffic.
        JudgeTestsBeforeTraffic = "Judge the tests before traffic",
        /// Choice: whether the request asked for the fast path.
        FastPathChoice = "Fast path?",
        /// Task (tally `start`): subscribe tally to the target functions' log groups.
        StartFastPath = "Start fast path",
        /// Choice: the last check's decision, then the next step's needs.
        ChooseNextStep = "Choose next step",
        /// Task (EventBridge, waits for the task token): the approval pause.
        AwaitApproval = "Await approval",
        /// Pass: nobody answered the approval in time; writes the `ApprovalTimedOut`
        /// failure before Roll back.
        ApprovalTimedOut = "Approval timed out",
        /// Choice: where an approved step goes.
        ContinueAfterApproval = "Continue after approval",
        /// Task (shift-weight): a step through a router whose changes are in effect at once (Lambda aliases).
        ShiftTraffic = "Shift traffic",
        /// Task (shift-weight): a step through a router whose changes take effect later
        /// (`$.plan.syncs`: Route53 records, Web Function endpoints).
        ShiftThenSync = "Shift traffic, then sync",
        /// Task (shift-weight): a step with hooks at every step; "Test the step" follows.
        ShiftThenTest = "Shift traffic, then test",
        /// Parallel: the step's hooks beside its bake and checks.
        TestTheStep = "Test the step",
        /// Map (in "Test the step"): the hooks at the step.
        TestAtStep = "Test at the step",
        /// Choice (in "Test at the step"): which kind of hook.
        AtStepWhichTest = "At the step: which test?",
        /// Task (`lambda:invoke`): invoke the candidate version.
        AtStepInvokeCandidate = "At the step: invoke the candidate",
        /// Task (`lambda:invoke`): run a test function.
        AtStepRunTestFunction = "At the step: run the test function",
        /// Succeed: one hook ran.
        AtStepTestDone = "At the step: test done",
        /// Task (check-health `judge_hooks`): judge the hooks at the step.
        JudgeTestsAtStep = "Judge the tests at the step",
        /// Wait (in "Test the step"): the bake before a check.
        BakeTheStep = "Bake the step",
        /// Task (check-health, in "Test the step"): judge the candidate and decide.
        CheckTheStep = "Check the step",
        /// Choice (in "Test the step"): the check's decision.
        StepChecked = "Step checked?",
        /// Fail (in "Test the step"): the check decided to roll back; carries the progress.
        StepRollsBack = "Step rolls back",
        /// Succeed (in "Test the step"): the step's checks are done.
        StepBaked = "Step baked",
        /// Choice: whether a change is still pending; then whether the step has hooks.
        InSync = "In sync?",
        /// Wait: between sync polls.
        WaitForSync = "Wait for sync",
        /// Task (shift-weight `sync`): asks each pending change's router whether it is in effect.
        CheckSync = "Check sync",
        /// Wait: the bake before a check.
        Bake = "Bake",
        /// Task (check-health): judge the candidate and decide.
        CheckHealth = "Check health",
        /// Task (promote): the candidate takes all traffic.
        Promote = "Promote",
        /// Task (record-version `promoted`).
        RecordPromotion = "Record promotion",
        /// Choice (in "Test the step"): the hooks after promotion at the promotion step,
        /// the step hooks at any other.
        WhichTests = "Which tests?",
        /// Choice: whether the plan has hooks after promotion.
        TestsAfterPromotionChoice = "Tests after promotion?",
        /// Map (in "Test the step", at the promotion step): the hooks after promotion.
        TestAfterPromotion = "Test after promotion",
        /// Choice (in "Test after promotion"): which kind of hook.
        AfterPromotionWhichTest = "After promotion: which test?",
        /// Task (`lambda:invoke`): invoke the candidate version.
        AfterPromotionInvokeCandidate = "After promotion: invoke the candidate",
        /// Task (`lambda:invoke`): run a test function.
        AfterPromotionRunTestFunction = "After promotion: run the test function",
        /// Succeed: one hook ran.
        AfterPromotionTestDone = "After promotion: test done",
        /// Task (check-health `judge_hooks`): judge the hooks after promotion.
        JudgeTestsAfterPromotion = "Judge the tests after promotion",
        /// Task (record-version `confirmed`): the lock-in passed.
        ConfirmRelease = "Confirm release",
        /// Choice: whether a released deployment has a fast path to stop.
        ReleasedWithFastPath = "Released with a fast path?",
        /// Task (tally `stop`): remove the execution's subscription filters.
        StopFastPathReleased = "Stop fast path, released",
        /// Succeed.
        DeploymentSucceeded = "Deployment succeeded",
        /// Task (rollback): the stable version takes all traffic again.
        RollBack = "Roll back",
        /// Task (record-version `rolled_back`).
        RecordRollback = "Record rollback",
        /// Choice: whether a rolled-back deployment has a fast path to stop.
        RolledBackWithFastPath = "Rolled back with a fast path?",
        /// Task (tally `stop`): remove the execution's subscription filters.
        StopFastPathRolledBack = "Stop fast path, rolled back",
        /// Fail: the deployment rolled back (or its rollback failed).
        DeploymentRolledBack = "Deployment rolled back",
    }
}

names! {
    /// An error name: one a task fails with ([`TaskError::name`](crate::TaskError::name)),
    /// one a deployment ends with (the `Error` of its Fail state), or one of Step
    /// Functions' and Lambda's own that the state machine matches.
    pub enum ErrorName {
        // What the task Lambdas fail with: `TaskError::name`.
        /// The deployment request is invalid.
        InvalidRequest = "InvalidRequest",
        /// Another execution holds an alias's lock.
        DeploymentInProgress = "DeploymentInProgress",
        /// Someone changed an alias during the deployment.
        AliasDrift = "AliasDrift",
        /// Someone changed a Route53 record during the release.
        RecordDrift = "RecordDrift",
        /// Someone changed a Lambda Web Function endpoint during the release.
        EndpointDrift = "EndpointDrift",
        /// A Lambda Web Function endpoint update failed.
        EndpointUpdateFailed = "EndpointUpdateFailed",
        /// A router's change was not in effect in time.
        NotInSync = "NotInSync",
        /// This execution no longer holds its lock.
        LockLost = "LockLost",
        /// An AWS API throttled the call.
        Throttled = "Throttled",
        /// An AWS resource was busy.
        Conflict = "Conflict",
        /// An AWS API timed out or answered 5xx.
        AwsUnavailable = "AwsUnavailable",
        /// An AWS API refused the call for another reason.
        AwsError = "AwsError",
        /// A task's input does not have the shape the task expects.
        InvalidTaskInput = "InvalidTaskInput",
        /// A validation hook failed ([`crate::hooks`]).
        HookFailed = "HookFailed",

        // How a deployment ends besides a task error: the outcome's `Error`.
        /// The judge found the candidate unhealthy.
        Unhealthy = "Unhealthy",
        /// Not enough data to judge, after every bake extension.
        InsufficientData = "InsufficientData",
        /// A person rejected the approval (`stepshift reject`: SendTaskFailure).
        ApprovalRejected = "ApprovalRejected",
        /// Nobody answered the approval within `approval_timeout_seconds`: the failure
        /// the "Approval timed out" Pass state writes.
        ApprovalTimedOut = "ApprovalTimedOut",
        /// A check inside "Test the step" decided to roll back: the "Step rolls back" Fail
        /// state's error, whose cause is the progress (`States.JsonToString($.progress)`).
        RollBackDecided = "RollBackDecided",
        /// A person aborted the deployment (`stepshift abort`), at a check or by failing
        /// an approval's task token ([`crate::control`]).
        Aborted = "Aborted",
        /// A pause (`stepshift pause`) ran out with `pause_timeout: roll_back`.
        PauseTimedOut = "PauseTimedOut",
        /// Rolled back for no reason the records name.
        RolledBack = "RolledBack",
        /// The rollback itself failed after its retries.
        RollbackFailed = "RollbackFailed",

        // Step Functions' and Lambda's names.
        /// Matches every error but `States.Runtime` and `States.DataLimitExceeded`.
        StatesAll = "States.ALL",
        /// A task's result or a state's output was larger than 256 KiB; `States.ALL`
        /// does not catch it, so the hooks' tasks name it.
        StatesDataLimitExceeded = "States.DataLimitExceeded",
        /// A task ran longer than its `TimeoutSeconds` (or `TimeoutSecondsPath`).
        StatesTimeout = "States.Timeout",
        /// Lambda throttled the invocation.
        LambdaTooManyRequestsException = "Lambda.TooManyRequestsException",
        /// Lambda's service failed.
        LambdaServiceException = "Lambda.ServiceException",
        /// Lambda's service failed.
        LambdaAwsLambdaException = "Lambda.AWSLambdaException",
        /// The Step Functions Lambda integration failed to call Lambda.
        LambdaSdkClientException = "Lambda.SdkClientException",
        /// The invocation's process died.
        LambdaUnknown = "Lambda.Unknown",
        /// The invocation hit the function's own timeout.
        SandboxTimedout = "Sandbox.Timedout",
    }
}

impl ErrorName {
    /// What the state machine retries soon and often: [`ErrorName::THROTTLING`] (the
    /// first retrier of every task's `Retry`), then [`ErrorName::BUSY`] (the second).
    pub const TRANSIENT: &'static [ErrorName] = &[
        ErrorName::Throttled,
        ErrorName::LambdaTooManyRequestsException,
        ErrorName::Conflict,
        ErrorName::AwsUnavailable,
        ErrorName::LambdaServiceException,
        ErrorName::LambdaAwsLambdaException,
        ErrorName::LambdaSdkClientException,
    ];

    /// Throttling: an AWS API's rate quota (shared by every deployment in the account),
    /// or Lambda refusing to invoke a task. Retried from 1 s and longest, as fifty
    /// deployments started at once need (`make bench-scale`). In the ASL's order.
    pub const THROTTLING: &'static [ErrorName] = &[ErrorName::Throttled, ErrorName::LambdaTooManyRequestsException];

    /// The other transient errors: a busy resource, an AWS API or Lambda's service
    /// failing. In the ASL's order.
    pub const BUSY: &'static [ErrorName] = &[
        ErrorName::Conflict,
        ErrorName::AwsUnavailable,
        ErrorName::LambdaServiceException,
        ErrorName::LambdaAwsLambdaException,
        ErrorName::LambdaSdkClientException,
    ];

    /// What the state machine retries twice (the second retrier): the invocation died
    /// or ran out of time, and the tasks are idempotent. In the ASL's order.
    pub const INTERRUPTED: &'static [ErrorName] =
        &[ErrorName::LambdaUnknown, ErrorName::SandboxTimedout, ErrorName::StatesTimeout];

    /// Every name `statemachine/deployment.asl.json` mentions: in `ErrorEquals`, and
    /// as the `Error` a state writes. `tests/static_checks.rs` checks that the ASL
    /// mentions exactly these.
    pub const IN_STATE_MACHINE: &'static [ErrorName] = &[
        ErrorName::Throttled,
        ErrorName::Conflict,
        ErrorName::AwsUnavailable,
        ErrorName::LambdaTooManyRequestsException,
        ErrorName::LambdaServiceException,
        ErrorName::LambdaAwsLambdaException,
        ErrorName::LambdaSdkClientException,
        ErrorName::LambdaUnknown,
        ErrorName::SandboxTimedout,
        ErrorName::StatesTimeout,
        ErrorName::StatesAll,
        ErrorName::ApprovalTimedOut,
        ErrorName::StatesDataLimitExceeded,
        ErrorName::RollBackDecided,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_so_they_are_unique() {
        for s in State::ALL {
            assert_eq!(State::from_name(s.as_str()), Some(*s));
        }
        for e in ErrorName::ALL {
            assert_eq!(ErrorName::from_name(e.as_str()), Some(*e));
        }
        assert_eq!(State::from_name("Shift Traffic"), None);
    }

    #[test]
    fn names_compare_with_strings() {
        let path = vec!["Shift traffic".to_owned(), "Bake".to_owned()];
        assert_eq!(path, [State::ShiftTraffic, State::Bake]);
        assert!(path[0] == State::ShiftTraffic && State::Bake == path[1] && "Bake" == State::Bake);
        assert_eq!(ErrorName::StatesTimeout.to_string(), "States.Timeout");
    }

    #[test]
    fn the_retried_names_are_in_the_state_machine() {
        for e in ErrorName::TRANSIENT.iter().chain(ErrorName::INTERRUPTED) {
            assert!(ErrorName::IN_STATE_MACHINE.contains(e), "{e}");
        }
    }
}
