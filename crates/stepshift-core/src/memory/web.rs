//! In-memory Lambda Web Function endpoints, with the rules the documentation and the
//! API model state (no emulator serves this API):
//! - `revisionWeights` holds 1 or 2 entries of distinct, existing revisions; each weight
//!   is a whole number from 1 to 100, and they add up to 100 (ValidationException);
//! - weights cannot be set while `autoDeploymentMode` is `LatestRevision`
//!   (ValidationException, as SAM refuses the combination);
//! - an update is asynchronous: the endpoint reports the new weights with `updateStatus`
//!   `InProgress` and keeps serving the old ones until the update is `Successful`,
//!   [`MemoryAws::set_web_update_seconds`] after it was made (by the account's clock,
//!   whether anyone reads it or not); an update while one is in progress is refused
//!   with ConflictException;
//! - an update can be made to fail ([`MemoryAws::fail_next_web_update`]): it ends
//!   `Failed` with its reason, and the endpoint keeps serving the old weights.
//!
//! Where the documentation is silent, this model assumes that GetWebFunctionEndpoint
//! returns the requested weights while an update is in progress.

use std::collections::BTreeMap;

use super::{Call, MemoryAws, invalid, not_found};
use crate::error::{PortError, Service};
use crate::ports::PortResult;
use crate::routers::web::{DeploymentMode, EndpointState, RevisionState, RevisionWeight, UpdateStatus, WebEndpoints};
use crate::time::{Clock, Timestamp};

#[derive(Debug, Default)]
pub(super) struct WebState {
    endpoints: BTreeMap<(String, String), Endpoint>,
    revisions: BTreeMap<(String, String), RevisionState>,
    update_seconds: i64,
    fail_next: Option<String>,
}

#[derive(Clone, Debug)]
struct Endpoint {
    mode: DeploymentMode,
    /// What the endpoint reports.
    weights: Vec<RevisionWeight>,
    /// What it serves.
    serving: Vec<RevisionWeight>,
    update: UpdateStatus,
    /// When the update in progress takes effect.
    done_at: Timestamp,
    /// How the update in progress ends: `None` succeeds.
    failure: Option<String>,
}

impl Endpoint {
    fn state(&self) -> EndpointState {
        EndpointState { mode: self.mode.clone(), weights: self.weights.clone(), update: self.update.clone() }
    }

    /// Ends the update in progress if its time has come.
    fn settle(&mut self, now: Timestamp) {
        if self.update != UpdateStatus::InProgress || now < self.done_at {
            return;
        }
        match self.failure.take() {
            None => {
                self.serving = self.weights.clone();
                self.update = UpdateStatus::Successful;
            }
            Some(reason) => {
                self.weights = self.serving.clone();
                self.update = UpdateStatus::Failed(reason);
            }
        }
    }
}

fn key(function: &str, name: &str) -> (String, String) {
    (function.to_owned(), name.to_owned())
}

fn missing(function: &str, endpoint: &str) -> PortError {
    not_found(Service::LambdaWeb, format!("Web Function {function} has no endpoint {endpoint}"))
}

impl MemoryAws {
    /// Adds revisions of a Web Function, in the given state.
    pub fn add_web_revisions(&self, function: &str, revisions: &[&str], state: RevisionState) {
        let mut s = self.lock();
        for r in revisions {
            s.web.revisions.insert(key(function, r), state.clone());
        }
    }

    /// Adds an endpoint serving `revision` alone, with `autoDeploymentMode` `mode`.
    pub fn add_web_endpoint(&self, function: &str, endpoint: &str, revision: &str, mode: DeploymentMode) {
        let weights = vec![RevisionWeight { revision: revision.to_owned(), weight: 100 }];
        let e = Endpoint {
            mode,
            weights: weights.clone(),
            serving: weights,
            update: UpdateStatus::None,
            done_at: Timestamp::default(),
            failure: None,
        };
        self.lock().web.endpoints.insert(key(function, endpoint), e);
    }

    /// Sets an endpoint's weights at once, as a person with the console would, bypassing
    /// the rules.
    pub fn put_web_weights(&self, function: &str, endpoint: &str, weights: Vec<RevisionWeight>) {
        if let Some(e) = self.lock().web.endpoints.get_mut(&key(function, endpoint)) {
            e.weights = weights.clone();
            e.serving = weights;
            e.update = UpdateStatus::Successful;
        }
    }

    /// What an endpoint serves now (the weights of its last successful update).
    pub fn web_serving(&self, function: &str, endpoint: &str) -> Option<Vec<RevisionWeight>> {
        let now = self.now();
        let mut s = self.lock();
        let e = s.web.endpoints.get_mut(&key(function, endpoint))?;
        e.settle(now);
        Some(e.serving.clone())
    }

    /// How long an update stays `InProgress` (default 0: done by the next look).
    pub fn set_web_update_seconds(&self, seconds: i64) {
        self.lock().web.update_seconds = seconds;
    }

    /// Makes the next endpoint update end `Failed` with `reason`.
    pub fn fail_next_web_update(&self, reason: &str) {
        self.lock().web.fail_next = Some(reason.to_owned());
    }
}

fn check_weights(
    revisions: &BTreeMap<(String, String), RevisionState>,
    function: &str,
    weights: &[RevisionWeight],
) -> PortResult<()> {
    let refuse = |why: String| Err(invalid(Service::LambdaWeb, why));
    if weights.is_empty() || weights.len() > 2 {
        return refuse(format!("revisionWeights must have 1 or 2 entries, not {}", weights.len()));
    }
    if weights.iter().any(|w| !(1..=100).contains(&w.weight)) {
        return refuse("each weight must be an integer from 1 to 100".into());
    }
    if weights.iter().map(|w| u32::from(w.weight)).sum::<u32>() != 100 {
        return refuse("the weights must add up to 100".into());
    }
    if weights.len() == 2 && weights[0].revision == weights[1].revision {
        return refuse("a revision can appear once".into());
    }
    for w in weights {
        match revisions.get(&key(function, &w.revision)) {
            Some(RevisionState::Active) => {}
            Some(state) => return refuse(format!("revision {} is {state:?}, not Active", w.revision)),
            None => return Err(not_found(Service::LambdaWeb, format!("{function} has no revision {}", w.revision))),
        }
    }
    Ok(())
}

impl WebEndpoints for MemoryAws {
    async fn get_endpoint(&self, function: &str, endpoint: &str) -> PortResult<EndpointState> {
        let now = self.now();
        self.serve(Call::GetWebFunctionEndpoint, |s| {
            let e = s.web.endpoints.get_mut(&key(function, endpoint)).ok_or_else(|| missing(function, endpoint))?;
            e.settle(now);
            Ok(e.state())
        })
    }

    async fn update_weights(
        &self,
        function: &str,
        endpoint: &str,
        weights: &[RevisionWeight],
    ) -> PortResult<EndpointState> {
        let now = self.now();
        self.serve(Call::UpdateWebFunctionEndpoint, |s| {
            let seconds = s.web.update_seconds;
            check_weights(&s.web.revisions, function, weights)?;
            let e = s.web.endpoints.get_mut(&key(function, endpoint)).ok_or_else(|| missing(function, endpoint))?;
            e.settle(now);
            if e.mode == DeploymentMode::LatestRevision {
                return Err(invalid(
                    Service::LambdaWeb,
                    "revisionWeights cannot be set while autoDeploymentMode is LatestRevision".into(),
                ));
            }
            if e.update == UpdateStatus::InProgress {
                return Err(PortError::Conflict {
                    service: Service::LambdaWeb,
                    message: format!("{function}/{endpoint} is being modified by another request"),
                });
            }
            e.weights = weights.to_vec();
            e.update = UpdateStatus::InProgress;
            e.done_at = now.plus_secs(seconds);
            e.failure = s.web.fail_next.take();
            Ok(e.state())
        })
    }

    async fn revision_state(&self, function: &str, revision: &str) -> PortResult<RevisionState> {
        self.serve(Call::GetWebFunctionRevision, |s| {
            s.web
                .revisions
                .get(&key(function, revision))
                .cloned()
                .ok_or_else(|| not_found(Service::LambdaWeb, format!("{function} has no revision {revision}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    fn w(revision: &str, weight: u8) -> RevisionWeight {
        RevisionWeight { revision: revision.into(), weight }
    }

    fn account() -> MemoryAws {
        let aws = MemoryAws::new(Timestamp::from_secs(1_800_000_000));
        aws.add_web_revisions("web", &["rev-1", "rev-2"], RevisionState::Active);
        aws.add_web_revisions("web", &["rev-3"], RevisionState::Pending);
        aws.add_web_endpoint("web", "live", "rev-1", DeploymentMode::Disabled);
        aws
    }

    #[tokio::test]
    async fn weights_follow_the_documented_rules() {
        let aws = account();
        for bad in [
            vec![],
            vec![w("rev-1", 50), w("rev-2", 40)],
            vec![w("rev-1", 0), w("rev-2", 100)],
            vec![w("rev-1", 50), w("rev-1", 50)],
        ] {
            let e = aws.update_weights("web", "live", &bad).await.unwrap_err();
            assert!(matches!(e, PortError::Invalid { .. }), "{bad:?}: {e}");
        }
        let pending = aws.update_weights("web", "live", &[w("rev-1", 90), w("rev-3", 10)]).await.unwrap_err();
        assert!(pending.to_string().contains("Pending, not Active"), "{pending}");
        assert!(matches!(
            aws.update_weights("web", "live", &[w("rev-9", 100)]).await.unwrap_err(),
            PortError::NotFound { .. }
        ));
        assert_eq!(aws.web_serving("web", "live").unwrap(), [w("rev-1", 100)], "nothing changed");
    }

    #[tokio::test]
    async fn an_update_is_asynchronous_and_a_second_one_waits() {
        let aws = account();
        aws.set_web_update_seconds(20);
        let split = [w("rev-1", 90), w("rev-2", 10)];
        let answer = aws.update_weights("web", "live", &split).await.unwrap();
        assert_eq!(answer.update, UpdateStatus::InProgress);
        assert_eq!(aws.web_serving("web", "live").unwrap(), [w("rev-1", 100)], "still the old weights");
        let busy = aws.update_weights("web", "live", &[w("rev-1", 100)]).await.unwrap_err();
        assert!(matches!(busy, PortError::Conflict { .. }), "{busy}");
        aws.advance(10);
        assert_eq!(aws.get_endpoint("web", "live").await.unwrap().update, UpdateStatus::InProgress);
        aws.advance(10);
        assert_eq!(aws.web_serving("web", "live").unwrap(), split, "in effect on time, read or not");
        assert_eq!(aws.get_endpoint("web", "live").await.unwrap().update, UpdateStatus::Successful);

        aws.fail_next_web_update("capacity");
        aws.update_weights("web", "live", &[w("rev-2", 100)]).await.unwrap();
        aws.advance(20);
        let after = aws.get_endpoint("web", "live").await.unwrap();
        assert_eq!(after.update, UpdateStatus::Failed("capacity".into()));
        assert_eq!(after.weights, split, "a failed update leaves the old weights");
    }

    #[tokio::test]
    async fn latest_revision_endpoints_refuse_weights() {
        let aws = account();
        aws.add_web_endpoint("web", "auto", "rev-1", DeploymentMode::LatestRevision);
        let e = aws.update_weights("web", "auto", &[w("rev-1", 90), w("rev-2", 10)]).await.unwrap_err();
        assert!(e.to_string().contains("LatestRevision"), "{e}");
    }
}
