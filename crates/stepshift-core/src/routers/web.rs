//! The Lambda Web Function router: an endpoint's `revisionWeights` between two
//! revisions of a Web Function (`"kind": "lambda_web"` in the execution input).
//!
//! The rules it follows, from the Lambda Web Functions documentation ("Deployment
//! patterns") and the API model (`lambda-web` 2025-03-07):
//! - The endpoint's `autoDeploymentMode` must be `Disabled`: with `LatestRevision` the
//!   endpoint moves all traffic to each new revision by itself. Begin refuses it.
//! - `revisionWeights` holds one or two entries; each weight is a whole number from 1
//!   to 100 and they add up to 100. So there is no "0%" entry: all traffic to one
//!   revision is a single entry at 100. A stepshift step maps onto the weights exactly
//!   or not at all: the request must give whole percentages from 1 to 99 for the steps
//!   before promotion, and a fractional one is refused with its step named
//!   ([`step_problems`]), rather than rounded to a share nobody asked for.
//! - Weight changes are asynchronous endpoint updates: stepshift waits until
//!   `updateStatus` is `Successful` before the bake ("Check sync", as Route53's INSYNC
//!   wait), and `Failed` stops the release with `EndpointUpdateFailed` (its
//!   `updateStatusReason` in the cause).
//! - Rolling back is routing all traffic to the earlier revision, which must still be
//!   `Active`.
//!
//! The API has no concurrency token (no ETag, no RevisionId on endpoints), so drift is
//! detected as Route53's is: the endpoint is read before every write, and a write goes
//! ahead only from the weights stepshift last left. A change made in the moment between
//! that read and the write cannot be seen; Lambda aliases do not have that gap.
//!
//! **Health.** AWS/Lambda/Web publishes request metrics (5xx and so on) per endpoint,
//! not per revision, as far as its documentation says, so they cannot tell the
//! candidate from the stable revision. A Web Function endpoint is therefore judged on
//! its CloudWatch alarms (validation asks for at least one), for example an alarm on
//! the endpoint's `HTTPResponseStatusClass5XX`. Nothing here has been run against AWS:
//! no emulator serves this API. The requests are pinned with aws-smithy-mocks in
//! `stepshift-aws`, and [`crate::memory`] models these rules.

use std::future::Future;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{
    Identity, Member, Moves, Named, Observed, Observes, PendingChange, RequestedTarget, Requests, Resolved, Resolves,
    Route, Router, RouterKind, Side,
};
use crate::baseline::History;
use crate::deployment::{Plan, PlannedTarget, Traffic};
use crate::error::{FieldError, PortError, TaskError};
use crate::ports::PortResult;
use crate::request::Targets;
use crate::strategy::Step;
use crate::tasks::traffic::{RollbackAction, RolledBackTarget};
use crate::time::{Clock, Timestamp};

/// How the version records of every endpoint begin: `lambda-web-{function}`.
pub const SCOPE_PREFIX: &str = "lambda-web-";

/// The `kind` of a Lambda Web Function endpoint target.
pub const KIND: &str = "lambda_web";

/// An endpoint moved to a new revision (`"kind": "lambda_web"` in the execution input).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebTarget {
    /// The Web Function's name.
    pub function: String,
    /// The endpoint whose traffic moves.
    pub endpoint: String,
    /// The candidate revision's id.
    pub revision: String,
}

impl WebTarget {
    /// `function/endpoint`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.function, self.endpoint)
    }

    /// Every problem with this target, each naming its field under `at` (`targets[0]`).
    pub fn problems(&self, at: &str) -> Vec<FieldError> {
        let mut out = Vec::new();
        let name_ok = |s: &str| {
            !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if !name_ok(&self.function) {
            out.push(FieldError::new(
                format!("{at}.function"),
                "must be a Web Function name: 1 to 64 letters, digits, hyphens or underscores",
            ));
        }
        if !name_ok(&self.endpoint) {
            out.push(FieldError::new(
                format!("{at}.endpoint"),
                "must be an endpoint name: 1 to 64 letters, digits, hyphens or underscores",
            ));
        }
        if self.revision.is_empty() || self.revision.len() > 256 || self.revision.chars().any(char::is_whitespace) {
            out.push(FieldError::new(
                format!("{at}.revision"),
                "must be a revision id (1 to 256 characters, no spaces), as CreateWebFunctionRevision returned it",
            ));
        }
        out
    }
}

/// Problems with the steps of a release through Web Function endpoints: each weight
/// before the promotion must be a whole percentage from 1 to 99.
pub fn step_problems(steps: &[Step]) -> Vec<FieldError> {
    let last = steps.len().saturating_sub(1);
    steps
        .iter()
        .enumerate()
        .filter(|(i, s)| *i < last && candidate_weight(s.weight_percent).is_none())
        .map(|(i, s)| {
            let w = s.weight_percent;
            FieldError::new(
                "strategy",
                format!(
                    "step {} is {}%, but a Lambda Web Function endpoint's revision weights are whole percentages \
                     from 1 to 99 while two revisions share traffic; use {} or {}",
                    i + 1,
                    crate::percent_text(w / 100.0),
                    w.floor().max(1.0),
                    w.ceil().min(99.0)
                ),
            )
        })
        .collect()
}

/// The candidate's weight for a split at `percent`, if the endpoint can express it.
pub fn candidate_weight(percent: f64) -> Option<u8> {
    (percent.fract() == 0.0 && (1.0..=99.0).contains(&percent)).then_some(percent as u8)
}

/// One entry of an endpoint's `revisionWeights`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionWeight {
    /// The revision's id.
    pub revision: String,
    /// Its share of traffic, 1 to 100.
    pub weight: u8,
}

/// An endpoint's `autoDeploymentMode`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentMode {
    /// Revision routing stays fixed until someone changes it.
    Disabled,
    /// The endpoint serves the newest revision by itself.
    LatestRevision,
    /// A mode this version of stepshift does not know.
    Other(String),
}

/// An endpoint's `updateStatus`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateStatus {
    /// No update was ever made, or the service did not say.
    None,
    /// The last update is being applied.
    InProgress,
    /// The last update is in effect.
    Successful,
    /// The last update failed, with the `updateStatusReason`.
    Failed(String),
}

/// An endpoint as `GetWebFunctionEndpoint` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointState {
    /// `autoDeploymentMode`.
    pub mode: DeploymentMode,
    /// `revisionWeights`, in the order the service gives them.
    pub weights: Vec<RevisionWeight>,
    /// `updateStatus` and its reason.
    pub update: UpdateStatus,
}

/// A revision's `state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevisionState {
    /// Ready to serve traffic.
    Active,
    /// Still being created.
    Pending,
    /// Creation failed.
    Failed,
    /// A state this version of stepshift does not know.
    Other(String),
}

/// Moves traffic between the revisions of a Web Function endpoint (the `lambda-web` API).
pub trait WebEndpoints: Send + Sync {
    /// The endpoint. `NotFound` if the function or the endpoint does not exist.
    fn get_endpoint(&self, function: &str, endpoint: &str) -> impl Future<Output = PortResult<EndpointState>> + Send;

    /// Sets the endpoint's `revisionWeights` (and nothing else). The update is
    /// asynchronous: the answer has `updateStatus` `InProgress`. `Conflict` if another
    /// update is in progress.
    fn update_weights(
        &self,
        function: &str,
        endpoint: &str,
        weights: &[RevisionWeight],
    ) -> impl Future<Output = PortResult<EndpointState>> + Send;

    /// A revision's state. `NotFound` if there is no such revision.
    fn revision_state(&self, function: &str, revision: &str) -> impl Future<Output = PortResult<RevisionState>> + Send;
}

/// The weights of a split at `percent` for the candidate, stable first.
pub fn split(stable: &str, candidate: &str, percent: f64) -> Vec<RevisionWeight> {
    let w = candidate_weight(percent).unwrap_or_else(|| percent.round().clamp(1.0, 99.0) as u8);
    vec![
        RevisionWeight { revision: stable.to_owned(), weight: 100 - w },
        RevisionWeight { revision: candidate.to_owned(), weight: w },
    ]
}

/// All traffic to `revision`.
pub fn single(revision: &str) -> Vec<RevisionWeight> {
    vec![RevisionWeight { revision: revision.to_owned(), weight: 100 }]
}

/// Whether two weight lists route the same way, in any order.
pub fn same(a: &[RevisionWeight], b: &[RevisionWeight]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// `rev-1 (90%) + rev-2 (10%)`.
pub fn describe(weights: &[RevisionWeight]) -> String {
    if weights.is_empty() {
        return "no revision".to_owned();
    }
    weights.iter().map(|w| format!("{} ({}%)", w.revision, w.weight)).collect::<Vec<_>>().join(" + ")
}

/// A Web Function endpoint in a plan; the stable and candidate revisions are the
/// planned target's `stable` and `candidate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedEndpoint {
    /// The Web Function's name.
    pub function: String,
    /// The endpoint's name.
    pub endpoint: String,
}

impl Named for PlannedEndpoint {
    fn identity(&self) -> Identity {
        Identity::new(format!("{SCOPE_PREFIX}{}", self.function), &self.endpoint)
    }

    fn label(&self) -> String {
        format!("{}/{}", self.function, self.endpoint)
    }

    fn name(&self, revision: &str, _side: Side) -> String {
        format!("revision {revision}")
    }

    fn manual_restore(&self, stable: &str) -> String {
        format!(
            "aws lambda-web update-web-function-endpoint --function-name {} --endpoint-name {} \
             --revision-weights revisionId={stable},weight=100",
            self.function, self.endpoint
        )
    }
}

impl Router for PlannedEndpoint {
    const KIND: RouterKind = RouterKind::LambdaWeb;
    const SYNCS: bool = true;

    fn of(route: &Route) -> Option<&Self> {
        match route {
            Route::LambdaWeb(r) => Some(r),
            _ => None,
        }
    }
}

impl Requests for PlannedEndpoint {
    type Requested = WebTarget;

    fn requested(targets: &Targets) -> Vec<(usize, &WebTarget)> {
        targets.endpoints.iter().enumerate().collect()
    }

    fn identify(t: &WebTarget) -> RequestedTarget {
        let planned = PlannedEndpoint { function: t.function.clone(), endpoint: t.endpoint.clone() };
        RequestedTarget {
            identity: planned.identity(),
            label: planned.label(),
            short: t.function.clone(),
            candidate: t.revision.clone(),
        }
    }
}

impl<P: WebEndpoints> Resolves<P> for PlannedEndpoint {
    async fn resolve(ports: &P, t: &WebTarget, at: &str) -> Result<Result<Resolved, Vec<FieldError>>, TaskError> {
        let field = |name: &str| format!("{at}.{name}");
        let now = match ports.get_endpoint(&t.function, &t.endpoint).await {
            Ok(e) => e,
            Err(PortError::NotFound { .. }) => {
                return Ok(Err(vec![FieldError::new(
                    field("endpoint"),
                    format!("no endpoint {} of Web Function {} in this account and region", t.endpoint, t.function),
                )]));
            }
            Err(e) => return Err(e.into()),
        };
        let mut errors = Vec::new();
        if now.mode != DeploymentMode::Disabled {
            errors.push(FieldError::new(
                field("endpoint"),
                format!(
                    "{}'s autoDeploymentMode is {:?}; set it to Disabled first, or the endpoint moves traffic by itself",
                    t.label(),
                    now.mode
                ),
            ));
        }
        if now.update == UpdateStatus::InProgress {
            errors.push(FieldError::new(
                field("endpoint"),
                format!("{} has an update in progress; wait until its updateStatus is Successful", t.label()),
            ));
        }
        let stable = match now.weights.as_slice() {
            [only] if only.weight == 100 => Some(only.revision.clone()),
            _ => {
                errors.push(FieldError::new(
                    field("endpoint"),
                    format!(
                        "{} already splits traffic: {}; finish or roll back that release first",
                        t.label(),
                        describe(&now.weights)
                    ),
                ));
                None
            }
        };
        if stable.as_deref() == Some(t.revision.as_str()) {
            errors.push(FieldError::new(
                field("revision"),
                format!("{} already serves revision {}; there is nothing to deploy", t.label(), t.revision),
            ));
        }
        match ports.revision_state(&t.function, &t.revision).await {
            Ok(RevisionState::Active) => {}
            Ok(state) => errors.push(FieldError::new(
                field("revision"),
                format!("revision {} of {} is {state:?}, not Active; it cannot serve traffic", t.revision, t.function),
            )),
            Err(PortError::NotFound { .. }) => errors.push(FieldError::new(
                field("revision"),
                format!("Web Function {} has no revision {}", t.function, t.revision),
            )),
            Err(e) => return Err(e.into()),
        }
        match (stable, errors.is_empty()) {
            (Some(stable), true) => {
                let planned = PlannedEndpoint { function: t.function.clone(), endpoint: t.endpoint.clone() };
                Ok(Ok(Resolved {
                    target: PlannedTarget::new(Route::LambdaWeb(planned), stable, t.revision.clone()),
                    revision: None,
                }))
            }
            _ => Ok(Err(errors)),
        }
    }
}

fn drift(r: &PlannedEndpoint, detail: impl Into<String>) -> TaskError {
    TaskError::EndpointDrift { endpoint: r.label(), detail: detail.into() }
}

/// The weights stepshift last left `t` at, given where traffic stands.
fn expected(t: &PlannedTarget, traffic: &Traffic) -> Vec<RevisionWeight> {
    let w = traffic.weight_percent;
    if w <= 0.0 {
        single(&t.stable)
    } else if w >= 100.0 {
        single(&t.candidate)
    } else {
        split(&t.stable, &t.candidate, w)
    }
}

/// Moves every endpoint to `wanted(t)`, reading all before writing any. Each write is
/// left pending for "Check sync".
async fn apply<P: WebEndpoints>(
    ports: &P,
    members: &[Member<'_, PlannedEndpoint>],
    traffic: &mut Traffic,
    wanted: impl Fn(&PlannedTarget) -> Vec<RevisionWeight>,
) -> Result<(), TaskError> {
    let mut writes = Vec::new();
    for &(t, r) in members {
        let now = match ports.get_endpoint(&r.function, &r.endpoint).await {
            Ok(now) => now,
            Err(PortError::NotFound { .. }) => return Err(drift(r, "the endpoint no longer exists")),
            Err(e) => return Err(e.into()),
        };
        let want = wanted(t);
        if now.mode != DeploymentMode::Disabled {
            return Err(drift(r, format!("its autoDeploymentMode is now {:?}", now.mode)));
        }
        if same(&now.weights, &want) {
            // Already there (a retry after a lost answer): wait for it if it is not yet.
            if now.update == UpdateStatus::InProgress {
                traffic.pending_changes.push(PendingChange { target: r.label(), id: r.endpoint.clone() });
            }
        } else if same(&now.weights, &expected(t, traffic)) {
            writes.push((r, want));
        } else {
            return Err(drift(
                r,
                format!(
                    "it routes {}, where stepshift left {}",
                    describe(&now.weights),
                    describe(&expected(t, traffic))
                ),
            ));
        }
    }
    for (r, want) in writes {
        ports.update_weights(&r.function, &r.endpoint, &want).await?;
        info!(endpoint = %r.label(), weights = %describe(&want), "endpoint update requested");
        traffic.pending_changes.push(PendingChange { target: r.label(), id: r.endpoint.clone() });
    }
    Ok(())
}

impl<P: WebEndpoints + Clock> Moves<P> for PlannedEndpoint {
    async fn shift(ports: &P, members: &[Member<'_, Self>], traffic: &mut Traffic, to: f64) -> Result<(), TaskError> {
        apply(ports, members, traffic, |t| split(&t.stable, &t.candidate, to)).await
    }

    async fn promote(ports: &P, members: &[Member<'_, Self>], traffic: &mut Traffic) -> Result<(), TaskError> {
        apply(ports, members, traffic, |t| single(&t.candidate)).await
    }

    /// Routes all traffic to the stable revision again if the endpoint still routes only
    /// between the two revisions of this release; anything else was someone else's
    /// change and is left as they set it. The update is asynchronous: it is requested
    /// here, and takes effect within the endpoint's update time.
    async fn restore(ports: &P, (t, r): Member<'_, Self>) -> Result<RolledBackTarget, TaskError> {
        let entry = |action, weights: &[RevisionWeight]| RolledBackTarget {
            target: r.label(),
            stable: t.stable.clone(),
            action,
            now: Some(describe(weights)),
        };
        let now = match ports.get_endpoint(&r.function, &r.endpoint).await {
            Ok(now) => now,
            Err(PortError::NotFound { .. }) => {
                return Ok(RolledBackTarget {
                    target: r.label(),
                    stable: t.stable.clone(),
                    action: RollbackAction::LeftAlone,
                    now: Some("nothing (the endpoint is gone)".to_owned()),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let stable = single(&t.stable);
        if same(&now.weights, &stable) {
            return Ok(entry(RollbackAction::AlreadyStable, &now.weights));
        }
        let ours = now.mode == DeploymentMode::Disabled
            && now.weights.iter().all(|w| w.revision == t.stable || w.revision == t.candidate);
        if !ours {
            warn!(endpoint = %r.label(), weights = %describe(&now.weights), "endpoint changed by someone else; left alone");
            return Ok(entry(RollbackAction::LeftAlone, &now.weights));
        }
        // An update of ours still in progress answers Conflict; the task's retries wait it out.
        let written = ports.update_weights(&r.function, &r.endpoint, &stable).await?;
        info!(endpoint = %r.label(), stable = %t.stable, "endpoint rolled back (update requested)");
        Ok(entry(RollbackAction::Restored, &written.weights))
    }

    async fn in_effect(ports: &P, (_, r): Member<'_, Self>, _: &PendingChange) -> Result<bool, TaskError> {
        match ports.get_endpoint(&r.function, &r.endpoint).await?.update {
            UpdateStatus::InProgress => Ok(false),
            UpdateStatus::Successful | UpdateStatus::None => Ok(true),
            UpdateStatus::Failed(reason) => Err(TaskError::EndpointUpdateFailed { endpoint: r.label(), reason }),
        }
    }
}

impl<P: Sync> Observes<P> for PlannedEndpoint {
    /// No per-revision history: AWS/Lambda/Web's request metrics are per endpoint.
    async fn history(
        _: &P,
        members: &[Member<'_, Self>],
        _: &[crate::custom::MetricRule],
        _: Timestamp,
        _: Timestamp,
    ) -> Result<Vec<Option<History>>, PortError> {
        Ok(vec![None; members.len()])
    }

    /// Judged on its alarms only: see the module's documentation.
    async fn observe(
        _: &P,
        _: &Plan,
        members: &[Member<'_, Self>],
        _: Timestamp,
        _: Timestamp,
    ) -> Result<Vec<Option<Observed>>, PortError> {
        Ok(vec![None; members.len()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_percentages_map_and_fractions_are_refused_by_step() {
        assert_eq!(candidate_weight(10.0), Some(10));
        assert_eq!(candidate_weight(99.0), Some(99));
        assert_eq!(candidate_weight(2.5), None);
        assert_eq!(candidate_weight(0.5), None);
        assert_eq!(candidate_weight(100.0), None);
        let steps = |ws: &[f64]| -> Vec<Step> {
            ws.iter().map(|w| Step { weight_percent: *w, bake_seconds: 60, approval: false }).collect()
        };
        assert!(step_problems(&steps(&[10.0, 50.0, 100.0])).is_empty());
        let p = step_problems(&steps(&[2.5, 50.0, 100.0]));
        assert_eq!(p.len(), 1);
        assert!(p[0].reason.contains("step 1 is 2.5%"), "{}", p[0].reason);
        assert!(p[0].reason.contains("use 2 or 3"), "{}", p[0].reason);
    }

    #[test]
    fn weights_are_whole_and_add_up() {
        let w = split("rev-1", "rev-2", 10.0);
        assert_eq!(w.iter().map(|x| u32::from(x.weight)).sum::<u32>(), 100);
        assert_eq!(describe(&w), "rev-1 (90%) + rev-2 (10%)");
        assert!(same(&w, &[w[1].clone(), w[0].clone()]));
        assert_eq!(single("rev-2"), [RevisionWeight { revision: "rev-2".into(), weight: 100 }]);
    }

    #[test]
    fn targets_name_their_bad_fields() {
        let t = WebTarget { function: "orders web".into(), endpoint: "".into(), revision: "rev 1".into() };
        let fields: Vec<String> = t.problems("targets[0]").into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["targets[0].function", "targets[0].endpoint", "targets[0].revision"]);
        let ok = WebTarget { function: "orders-web".into(), endpoint: "live".into(), revision: "rev-def456".into() };
        assert!(ok.problems("targets[0]").is_empty());
    }

    mod release {
        use super::*;
        use crate::deployment::{Cursor, Traffic};
        use crate::memory::MemoryAws;
        use crate::tasks::traffic::{self, ShiftInput, SyncInput, TargetsInput};
        use crate::time::Timestamp;

        fn account() -> MemoryAws {
            let aws = MemoryAws::new(Timestamp::from_secs(1_800_000_000));
            aws.add_web_revisions("orders-web", &["rev-1", "rev-2"], RevisionState::Active);
            aws.add_web_revisions("orders-web", &["rev-3"], RevisionState::Pending);
            aws.add_web_endpoint("orders-web", "live", "rev-1", DeploymentMode::Disabled);
            aws
        }

        fn requested(revision: &str) -> WebTarget {
            WebTarget { function: "orders-web".into(), endpoint: "live".into(), revision: revision.into() }
        }

        async fn planned(aws: &MemoryAws) -> PlannedTarget {
            PlannedEndpoint::resolve(aws, &requested("rev-2"), "targets[0]").await.unwrap().unwrap().target
        }

        fn cursor(weight_percent: f64) -> Cursor {
            Cursor { index: 0, weight_percent, approval: false, promote: false, wait_seconds: 60, extensions_used: 0 }
        }

        fn start() -> Traffic {
            Traffic { weight_percent: 0.0, step_started_at: None, revisions: Vec::new(), pending_changes: Vec::new() }
        }

        /// "Check sync" every 10 seconds, as the state machine polls, until nothing is pending.
        async fn settle(aws: &MemoryAws, targets: &[PlannedTarget], mut traffic: Traffic) -> Traffic {
            for _ in 0..5 {
                if traffic.pending_changes.is_empty() {
                    break;
                }
                aws.advance(10);
                let input = SyncInput { targets: targets.to_vec(), traffic };
                traffic = traffic::sync(aws, input).await.unwrap();
            }
            traffic
        }

        #[tokio::test]
        async fn begin_refuses_what_cannot_be_released_and_names_the_field() {
            let aws = account();
            let problems = |r: Result<Result<Resolved, Vec<FieldError>>, TaskError>| match r.unwrap() {
                Ok(_) => Vec::new(),
                Err(p) => p.into_iter().map(|e| format!("{}: {}", e.field, e.reason)).collect::<Vec<_>>(),
            };
            let pending = problems(PlannedEndpoint::resolve(&aws, &requested("rev-3"), "targets[0]").await);
            assert!(
                pending[0].starts_with("targets[0].revision: revision rev-3 of orders-web is Pending"),
                "{pending:?}"
            );
            let same = problems(PlannedEndpoint::resolve(&aws, &requested("rev-1"), "targets[0]").await);
            assert!(same[0].contains("already serves revision rev-1"), "{same:?}");
            let gone = problems(PlannedEndpoint::resolve(&aws, &requested("rev-9"), "targets[0]").await);
            assert!(gone[0].contains("has no revision rev-9"), "{gone:?}");
            aws.add_web_endpoint("orders-web", "auto", "rev-1", DeploymentMode::LatestRevision);
            let auto = WebTarget { endpoint: "auto".into(), ..requested("rev-2") };
            let auto = problems(PlannedEndpoint::resolve(&aws, &auto, "targets[0]").await);
            assert!(auto[0].contains("autoDeploymentMode is LatestRevision"), "{auto:?}");
            let t = planned(&aws).await;
            assert_eq!(
                (t.stable.as_str(), t.candidate.as_str(), t.qualified()),
                ("rev-1", "rev-2", "orders-web/live".into())
            );
        }

        #[tokio::test]
        async fn a_release_waits_for_each_update_then_promotes() {
            let aws = account();
            aws.set_web_update_seconds(20);
            let targets = vec![planned(&aws).await];
            let input = ShiftInput {
                targets: targets.clone(),
                traffic: start(),
                cursor: cursor(10.0),
                execution: None,
                steps: None,
            };
            let traffic = traffic::shift(&aws, input).await.unwrap();
            assert_eq!(traffic.pending_changes.len(), 1, "the update is asynchronous");
            assert_eq!(aws.web_serving("orders-web", "live").unwrap(), single("rev-1"));
            let traffic = settle(&aws, &targets, traffic).await;
            assert!(traffic.pending_changes.is_empty());
            assert_eq!(aws.web_serving("orders-web", "live").unwrap(), split("rev-1", "rev-2", 10.0));

            // A retried shift finds its own weights and writes nothing.
            let writes = aws.writes();
            let input = ShiftInput {
                targets: targets.clone(),
                traffic: traffic.clone(),
                cursor: cursor(10.0),
                execution: None,
                steps: None,
            };
            traffic::shift(&aws, input).await.unwrap();
            assert_eq!(aws.writes(), writes);

            let input =
                ShiftInput { targets: targets.clone(), traffic, cursor: cursor(50.0), execution: None, steps: None };
            let traffic = settle(&aws, &targets, traffic::shift(&aws, input).await.unwrap()).await;
            let traffic = traffic::promote(&aws, TargetsInput { targets: targets.clone(), traffic, execution: None })
                .await
                .unwrap();
            assert_eq!(traffic.weight_percent, 100.0);
            aws.advance(20);
            assert_eq!(aws.web_serving("orders-web", "live").unwrap(), single("rev-2"));
        }

        #[tokio::test]
        async fn someone_elses_weights_are_drift_and_a_rollback_leaves_them_alone() {
            let aws = account();
            let targets = vec![planned(&aws).await];
            let input = ShiftInput {
                targets: targets.clone(),
                traffic: start(),
                cursor: cursor(10.0),
                execution: None,
                steps: None,
            };
            let traffic = settle(&aws, &targets, traffic::shift(&aws, input).await.unwrap()).await;
            aws.put_web_weights("orders-web", "live", split("rev-1", "rev-2", 30.0));
            let input = ShiftInput {
                targets: targets.clone(),
                traffic: traffic.clone(),
                cursor: cursor(50.0),
                execution: None,
                steps: None,
            };
            let e = traffic::shift(&aws, input).await.unwrap_err();
            assert_eq!(e.name(), "EndpointDrift");
            assert!(
                e.to_string().contains("rev-1 (70%) + rev-2 (30%), where stepshift left rev-1 (90%) + rev-2 (10%)"),
                "{e}"
            );
            // Its own two revisions at any weights are still stepshift's to restore.
            let report = traffic::rollback(
                &aws,
                TargetsInput { targets: targets.clone(), traffic: traffic.clone(), execution: None },
            )
            .await
            .unwrap();
            assert_eq!(report.targets[0].action, RollbackAction::Restored);
            assert_eq!(aws.web_serving("orders-web", "live").unwrap(), single("rev-1"));
            // A third revision is someone else's release.
            aws.add_web_revisions("orders-web", &["rev-4"], RevisionState::Active);
            aws.put_web_weights("orders-web", "live", single("rev-4"));
            let report = traffic::rollback(&aws, TargetsInput { targets, traffic, execution: None }).await.unwrap();
            assert_eq!(report.targets[0].action, RollbackAction::LeftAlone);
            assert_eq!(report.targets[0].now.as_deref(), Some("rev-4 (100%)"));
            assert_eq!(aws.web_serving("orders-web", "live").unwrap(), single("rev-4"));
        }

        #[tokio::test]
        async fn a_failed_update_stops_the_release_with_its_reason() {
            let aws = account();
            let targets = vec![planned(&aws).await];
            aws.fail_next_web_update("not enough capacity in us-east-1");
            let input = ShiftInput {
                targets: targets.clone(),
                traffic: start(),
                cursor: cursor(10.0),
                execution: None,
                steps: None,
            };
            let mut traffic = traffic::shift(&aws, input).await.unwrap();
            let mut last = None;
            for _ in 0..3 {
                match traffic::sync(&aws, SyncInput { targets: targets.clone(), traffic: traffic.clone() }).await {
                    Ok(t) => traffic = t,
                    Err(e) => {
                        last = Some(e);
                        break;
                    }
                }
            }
            let e = last.expect("the failed update is reported");
            assert_eq!(e.name(), "EndpointUpdateFailed");
            assert!(e.to_string().contains("not enough capacity in us-east-1"), "{e}");
            assert_eq!(aws.web_serving("orders-web", "live").unwrap(), single("rev-1"), "traffic never moved");
        }
    }
}
