//! An interpreter for the Amazon States Language subset stepshift's state machine uses
//! (JSONPath query language): Task, Pass, Wait, Choice, Succeed, Fail, Parallel and
//! inline Map; InputPath, Parameters, ResultSelector, ResultPath and OutputPath;
//! ItemsPath, ItemSelector (and the legacy Parameters) and MaxConcurrency; intrinsic
//! functions; Retry and Catch; TimeoutSeconds of tasks and of the execution; task
//! durations and hung tasks ([`TaskResult::Took`], [`TaskResult::Never`]); the context
//! object (with `$$.Map.Item` in ItemSelector); `.waitForTaskToken` (outside Parallel
//! branches and Map iterations).
//!
//! Parallel branches and Map iterations run concurrently on the execution's one virtual
//! clock, their events interleaved in the one history; see [`execution`] for how.
//! Everything else (distributed Map, ItemReader, ResultWriter, tolerated failures,
//! JSONata, variables, other task resources) is a load-time error, never a silent
//! difference from Step Functions.

pub mod choice;
pub mod execution;
pub mod intrinsics;
pub mod model;
pub mod path;
pub mod template;

pub use execution::{Environment, Event, Execution, Options, Status, TaskCall, TaskResult};
pub use model::StateMachine;
