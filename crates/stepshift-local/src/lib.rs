//! Runs stepshift's real state machine locally: the same `deployment.asl.json`, the same
//! task handlers, simulated AWS, and a virtual clock, so a one-hour deployment plays out
//! in milliseconds.

pub mod asl;
pub mod campaign;
pub mod fleet;
pub mod hooks;
pub mod runner;
pub mod scenario;
pub mod sim;

pub use runner::{Answer, Outcome, Scenario, Simulation};
