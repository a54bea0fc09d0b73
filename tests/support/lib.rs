//! Shared helpers of the scenario and end-to-end tests.

use serde_json::Value;
use stepshift_core::ports::AliasRouting;
use stepshift_local::sim::{Behavior, FunctionModel, VersionModel};
use stepshift_local::{Outcome, Scenario};

/// The stable version's usual behavior: 0.1% errors, 40 ms median, 180 ms p99.
pub fn stable() -> Behavior {
    Behavior::default()
}

/// A function `name` with versions 1..=42, alias live → 41, at `rps`, where version 42
/// behaves as `candidate`.
pub fn function(name: &str, rps: f64, candidate: VersionModel) -> FunctionModel {
    FunctionModel { requests_per_second: rps, ..FunctionModel::live(name, candidate) }
}

/// One function, orders, at 20 requests/s.
pub fn scenario(candidate: VersionModel) -> Scenario {
    Scenario::orders(candidate).with_seed(42).with_lag((60, 120))
}

/// A candidate that behaves like `b` throughout.
pub fn steady(b: Behavior) -> VersionModel {
    VersionModel::steady(b)
}

/// A candidate with an error rate of `rate` (0-1).
pub fn failing(rate: f64) -> VersionModel {
    steady(Behavior { error_rate: rate, ..stable() })
}

/// A deployment request for orders:live → 42 with `strategy`.
pub fn request(strategy: Value) -> Value {
    stepshift_local::scenario::orders_request(strategy, 300)
}

/// [`request`] in three steps: 10% for 2 minutes, 50% after an approval (which waits
/// at most 600 s) for 2 minutes, then 100%.
pub fn approval_request() -> Value {
    let mut req = request(serde_json::json!([
        {"weight_percent": 10, "bake_seconds": 120},
        {"weight_percent": 50, "bake_seconds": 120, "approval": true},
        {"weight_percent": 100}
    ]));
    req["approval_timeout_seconds"] = serde_json::json!(600);
    req
}

/// [`request`] with the preset `strategy` and a lock-in of `lock_in_seconds`.
pub fn with_lock_in(strategy: &str, lock_in_seconds: u64) -> Value {
    let mut r = request(serde_json::json!(strategy));
    r["lock_in_seconds"] = serde_json::json!(lock_in_seconds);
    r
}

/// Asserts the alias ended at `version` alone, the lock is free, and the records match.
pub fn assert_settled(o: &Outcome, function: &str, version: &str) {
    assert_eq!(o.routing(function, "live"), Some(&AliasRouting::single(version)), "{function}:live routing; {o:#?}");
    let lock = format!("/stepshift/{function}/live/lock");
    assert_eq!(o.parameter(&lock), None, "the lock on {function}:live is released");
    assert_eq!(
        o.parameter(&format!("/stepshift/{function}/live/current-version")),
        Some(version),
        "current-version of {function}"
    );
}

/// The history events of one type, as `(state or resource, details)`.
pub fn events<'a>(o: &'a Outcome, kind: &str) -> Vec<&'a Value> {
    o.history.iter().filter(|e| e.kind == kind).map(|e| &e.details).collect()
}

/// The recorded history entries of an alias.
pub fn history(o: &Outcome, function: &str) -> Vec<Value> {
    o.parameter(&format!("/stepshift/{function}/live/history"))
        .map(|h| serde_json::from_str::<Vec<Value>>(h).unwrap())
        .unwrap_or_default()
}
