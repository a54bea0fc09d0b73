//! Version records kept in the parameter store, per alias: the current, previous and
//! last-known-good versions, the last deployment's timestamp, a bounded history, and
//! the deployment lock. Also the rule for pruning old versions.
//!
//! Parameter names, under a prefix (default `/stepshift`):
//! `{prefix}/{function}/{alias}/current-version`, `previous-version`,
//! `last-known-good-version`, `deployment-timestamp`, `history` (JSON array) and `lock` (JSON).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::{PortError, TaskError};
use crate::ports::{ParameterStore, PortResult};
use crate::time::Timestamp;

/// The default parameter prefix.
pub const DEFAULT_PREFIX: &str = "/stepshift";
/// Most history entries kept per alias.
pub const HISTORY_ENTRIES: usize = 20;
/// Largest history value: SSM standard parameters hold 4 KB.
pub const HISTORY_BYTES: usize = 4096;

const CURRENT: &str = "current-version";
const PREVIOUS: &str = "previous-version";
const LAST_KNOWN_GOOD: &str = "last-known-good-version";
const TIMESTAMP: &str = "deployment-timestamp";
const HISTORY: &str = "history";
const LOCK: &str = "lock";

/// Checks a parameter prefix: starts with `/`, no trailing `/`, only characters SSM allows.
pub fn validate_prefix(prefix: &str) -> Result<(), String> {
    let ok = prefix.starts_with('/')
        && !prefix.ends_with('/')
        && prefix.len() <= 512
        && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b))
        && !prefix.contains("//");
    if ok { Ok(()) } else { Err(format!("`{prefix}` is not a parameter prefix such as /stepshift")) }
}

/// The parameter names of one alias's records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordKeys {
    base: String,
}

impl RecordKeys {
    /// Names under `{prefix}/{function}/{alias}`.
    pub fn new(prefix: &str, function: &str, alias: &str) -> Self {
        Self { base: format!("{prefix}/{function}/{alias}") }
    }

    /// Names under `{prefix}/{scope}/{name}` of a router's identity.
    pub fn of(prefix: &str, identity: &crate::routers::Identity) -> Self {
        Self::new(prefix, &identity.scope, &identity.name)
    }

    /// The full name of one record.
    pub fn name(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.base)
    }

    /// The lock's parameter name.
    pub fn lock(&self) -> String {
        self.name(LOCK)
    }

    /// The control record's parameter name ([`crate::control`]).
    pub fn control(&self) -> String {
        self.name(crate::control::LEAF)
    }

    fn all(&self) -> Vec<String> {
        [CURRENT, PREVIOUS, LAST_KNOWN_GOOD, TIMESTAMP, HISTORY, LOCK].iter().map(|l| self.name(l)).collect()
    }
}

/// Which versions an alias serves and served.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecords {
    /// The version the alias serves.
    pub current: Option<String>,
    /// The version it served before `current`.
    pub previous: Option<String>,
    /// The last version that passed a whole deployment, lock-in included.
    pub last_known_good: Option<String>,
    /// When `current` was promoted.
    pub deployed_at: Option<Timestamp>,
}

impl VersionRecords {
    /// The versions that must never be pruned.
    pub fn protected(&self) -> impl Iterator<Item = &str> {
        [&self.current, &self.previous, &self.last_known_good].into_iter().flatten().map(String::as_str)
    }
}

/// What happened, in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryEvent {
    /// A deployment began.
    Started,
    /// The candidate took all traffic.
    Promoted,
    /// The candidate passed lock-in and became last-known-good.
    Confirmed,
    /// A deployment rolled back to its stable version.
    RolledBack,
    /// A deployment that had begun stopped before moving any traffic.
    Aborted,
    /// A person rolled the alias back with `stepshift rollback`.
    ManualRollback,
    /// A person released a stale lock with `stepshift unlock`.
    LockReleased,
}

/// One history entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When.
    pub at: Timestamp,
    /// What.
    pub event: HistoryEvent,
    /// The execution (or person) responsible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// The version traffic moved from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The version traffic moved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Why, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The deployment lock's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// The execution holding it.
    pub execution: String,
    /// The version it deploys.
    pub candidate: String,
    /// When it was taken.
    pub acquired_at: Timestamp,
}

/// Everything stored for one alias.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AliasRecords {
    /// The version records.
    pub records: VersionRecords,
    /// The history, oldest first.
    pub history: Vec<HistoryEntry>,
    /// The lock, if held. A value that cannot be read counts as held by "unknown".
    pub lock: Option<Lock>,
}

/// Reads one alias's records with a single call.
pub async fn load<S: ParameterStore>(store: &S, keys: &RecordKeys) -> PortResult<AliasRecords> {
    let values = store.get_many(&keys.all()).await?;
    let get = |leaf: &str| {
        let name = keys.name(leaf);
        values.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
    };
    let records = VersionRecords {
        current: get(CURRENT),
        previous: get(PREVIOUS),
        last_known_good: get(LAST_KNOWN_GOOD),
        deployed_at: get(TIMESTAMP).and_then(|t| Timestamp::parse_rfc3339(&t).ok()),
    };
    let history = get(HISTORY).and_then(|h| serde_json::from_str(&h).ok()).unwrap_or_default();
    let lock = get(LOCK).map(|raw| {
        serde_json::from_str(&raw).unwrap_or(Lock {
            execution: format!("unknown (unreadable lock value {raw:?})"),
            candidate: "unknown".into(),
            acquired_at: Timestamp::from_millis(0),
        })
    });
    Ok(AliasRecords { records, history, lock })
}

/// Writes the records that differ from `before`; a `None` deletes the record.
pub async fn save<S: ParameterStore>(
    store: &S,
    keys: &RecordKeys,
    before: &VersionRecords,
    after: &VersionRecords,
) -> PortResult<()> {
    let fields = [
        (CURRENT, &before.current, &after.current),
        (PREVIOUS, &before.previous, &after.previous),
        (LAST_KNOWN_GOOD, &before.last_known_good, &after.last_known_good),
    ];
    for (leaf, old, new) in fields {
        if old != new {
            match new {
                Some(v) => store.put(&keys.name(leaf), v).await?,
                None => store.delete(&keys.name(leaf)).await?,
            }
        }
    }
    if before.deployed_at != after.deployed_at {
        match after.deployed_at {
            Some(t) => store.put(&keys.name(TIMESTAMP), &t.to_rfc3339()).await?,
            None => store.delete(&keys.name(TIMESTAMP)).await?,
        }
    }
    Ok(())
}

/// Appends `entry` unless the history already records the same event of the same
/// execution (so that a retried task writes it once), keeping the newest entries that
/// fit [`HISTORY_ENTRIES`] and [`HISTORY_BYTES`].
pub async fn append_history<S: ParameterStore>(
    store: &S,
    keys: &RecordKeys,
    history: &[HistoryEntry],
    entry: HistoryEntry,
) -> PortResult<Vec<HistoryEntry>> {
    let duplicate =
        entry.execution.is_some() && history.iter().any(|h| h.execution == entry.execution && h.event == entry.event);
    if duplicate {
        return Ok(history.to_vec());
    }
    let mut next = history.to_vec();
    next.push(entry);
    let start = next.len().saturating_sub(HISTORY_ENTRIES);
    next.drain(..start);
    let mut text = serde_json::to_string(&next).unwrap_or_default();
    while text.len() > HISTORY_BYTES && next.len() > 1 {
        next.remove(0);
        text = serde_json::to_string(&next).unwrap_or_default();
    }
    store.put(&keys.name(HISTORY), &text).await?;
    Ok(next)
}

/// Takes the alias's lock for `lock.execution`. Taking a lock the same execution already
/// holds succeeds, so that a retried task does not lock itself out.
pub async fn acquire_lock<S: ParameterStore>(
    store: &S,
    keys: &RecordKeys,
    target: &str,
    lock: &Lock,
) -> Result<(), TaskError> {
    let value = serde_json::to_string(lock).unwrap_or_default();
    // Two rounds: the holder may release between our create and our read.
    for _ in 0..2 {
        match store.create(&keys.lock(), &value).await {
            Ok(()) => return Ok(()),
            Err(PortError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let current = load(store, keys).await?.lock;
        match current {
            Some(held) if held.execution == lock.execution => return Ok(()),
            Some(held) => {
                return Err(TaskError::DeploymentInProgress {
                    target: target.into(),
                    holder: held.execution,
                    candidate: held.candidate,
                    since: held.acquired_at.to_rfc3339(),
                });
            }
            None => continue,
        }
    }
    Err(TaskError::Conflict(PortError::Conflict {
        service: crate::error::Service::Ssm,
        message: format!("the lock {} changed hands twice while being taken", keys.lock()),
    }))
}

/// Releases the alias's lock if `execution` holds it, and the control record beside it
/// (a command given too late to be applied, [`crate::control`]), first, so that nothing
/// is left for the next deployment. Returns whether it did; a lock held by someone else
/// is left alone.
pub async fn release_lock<S: ParameterStore>(store: &S, keys: &RecordKeys, execution: &str) -> PortResult<bool> {
    match load(store, keys).await?.lock {
        Some(held) if held.execution == execution => {
            store.delete(&keys.control()).await?;
            store.delete(&keys.lock()).await?;
            Ok(true)
        }
        _ => {
            // A retry after an attempt that released the lock and then failed: a command
            // given in between (`stepshift abort` while the task was retried) must not
            // outlive the deployment. Another deployment's command is left alone.
            let control = keys.control();
            let values = store.get_many(std::slice::from_ref(&control)).await?;
            let mine = values.iter().any(|(_, raw)| {
                serde_json::from_str::<crate::control::Command>(raw).is_ok_and(|c| c.execution == execution)
            });
            if mine {
                store.delete(&control).await?;
            }
            Ok(false)
        }
    }
}

/// The versions to delete so that only the newest `keep` published versions remain,
/// never deleting a protected one (current, previous, last-known-good, or any version an
/// alias routes to). Returned oldest first.
pub fn versions_to_prune(published: &[String], keep: usize, protected: &HashSet<String>) -> Vec<String> {
    let mut numbered: Vec<(u64, &String)> =
        published.iter().filter_map(|v| v.parse::<u64>().ok().map(|n| (n, v))).collect();
    numbered.sort_unstable_by_key(|&(n, _)| std::cmp::Reverse(n));
    numbered.dedup_by_key(|(n, _)| *n);
    let mut doomed: Vec<String> =
        numbered.into_iter().skip(keep).filter(|(_, v)| !protected.contains(*v)).map(|(_, v)| v.clone()).collect();
    doomed.reverse();
    doomed
}

#[cfg(test)]
mod tests;
