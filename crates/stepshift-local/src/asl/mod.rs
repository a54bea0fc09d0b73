//! An interpreter for the Amazon States Language subset stepshift's state machine uses
//! (JSONPath query language): Task, Pass, Wait, Choice, Succeed and Fail; InputPath,
//! Parameters, ResultSelector, ResultPath and OutputPath; intrinsic functions; Retry and
//! Catch; TimeoutSeconds; the context object; `.waitForTaskToken`.

pub mod choice;
pub mod execution;
pub mod intrinsics;
pub mod model;
pub mod path;
pub mod template;

pub use execution::{Environment, Event, Execution, Options, Status, TaskCall, TaskResult};
pub use model::StateMachine;
