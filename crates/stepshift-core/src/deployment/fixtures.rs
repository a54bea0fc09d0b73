//! What the tests of the progression rule, the run-time commands and the lifecycle
//! events share: a clock and a verdict.

use crate::judge::{Verdict, VerdictStatus, Window};
use crate::time::Timestamp;

/// `secs` seconds after a fixed start.
pub fn t(secs: i64) -> Timestamp {
    Timestamp::from_secs(1_700_000_000 + secs)
}

/// A verdict of `status` at `at` seconds, with one reason naming it.
pub fn verdict(status: VerdictStatus, at: i64) -> Verdict {
    Verdict {
        status,
        reasons: vec![format!("{status:?} reason")],
        checked_at: t(at),
        window: Window { start: t(0), end: t(at) },
        targets: Vec::new(),
        alarms: Vec::new(),
        notes: Vec::new(),
        observed: Vec::new(),
    }
}
