//! Traffic routers: what moves a release's traffic from the stable to the candidate.
//!
//! A router is one way of splitting traffic between two things that serve the same
//! requests. stepshift has three, one module each:
//! - [`alias`]: a Lambda alias's weights between two published versions;
//! - [`route53`]: a Route53 record's weights between a blue and a green endpoint;
//! - [`web`]: a Lambda Web Function endpoint's weights between two revisions.
//!
//! Each router says, through the traits here, everything the tasks need to know:
//! - what it moves and how the version records name it ([`Router::identity`]);
//! - how Begin finds and checks its targets ([`Resolves`]);
//! - how it reads and writes weights, with drift detection, and whether a change must
//!   sync before the bake ([`Moves`], [`RouterKind::syncs`]);
//! - where its health data comes from ([`Observes`]).
//!
//! The tasks, the judge, the simulator and the CLI reach a router only through
//! [`Route`] and the functions of this module; none of them asks which kind a target
//! is. Adding a router is a module here, its `Route` variant, and its line in each
//! dispatch function below.

pub mod alias;
pub mod route53;
pub mod web;

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::baseline::History;
use crate::deployment::{Plan, PlannedTarget, Revision, Traffic};
use crate::error::{FieldError, TaskError};
use crate::ports::{MinuteCounts, PortResult, VersionMetrics};
use crate::request::{DeploymentRequest, Targets};
use crate::tasks::traffic::RolledBackTarget;
use crate::time::{Clock, Timestamp};

/// The kinds of router, as plans name them (`$.plan.router`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouterKind {
    /// Lambda alias weights.
    #[default]
    Alias,
    /// Route53 weighted records.
    Route53,
    /// Lambda Web Function endpoint revision weights.
    LambdaWeb,
}

impl RouterKind {
    /// Whether a weight change takes effect some time after it is made, so that the
    /// state machine polls it ("Check sync") before the bake starts counting.
    pub fn syncs(self) -> bool {
        match self {
            RouterKind::Alias => alias::AliasRoute::SYNCS,
            RouterKind::Route53 => route53::PlannedRecord::SYNCS,
            RouterKind::LambdaWeb => web::PlannedEndpoint::SYNCS,
        }
    }
}

/// What moves one target's traffic, and where: the router's part of a planned target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Route {
    /// A Lambda alias.
    Alias(alias::AliasRoute),
    /// A Route53 record and its original state (boxed: it is the largest by far).
    Route53(Box<route53::PlannedRecord>),
    /// A Lambda Web Function endpoint.
    LambdaWeb(web::PlannedEndpoint),
}

impl Route {
    fn router(&self) -> &dyn Named {
        match self {
            Route::Alias(r) => r,
            Route::Route53(r) => r.as_ref(),
            Route::LambdaWeb(r) => r,
        }
    }

    /// The kind of router.
    pub fn kind(&self) -> RouterKind {
        match self {
            Route::Alias(_) => RouterKind::Alias,
            Route::Route53(_) => RouterKind::Route53,
            Route::LambdaWeb(_) => RouterKind::LambdaWeb,
        }
    }

    /// How the version records, the lock and the history name the target.
    pub fn identity(&self) -> Identity {
        self.router().identity()
    }

    /// The target in a sentence: `orders:live`, `www.example.com. A`, `orders-web/live`.
    pub fn label(&self) -> String {
        self.router().label()
    }

    /// A version (or endpoint, or revision) in a sentence: `version 42`, `green E2…`.
    pub fn name(&self, version: &str, side: Side) -> String {
        self.router().name(version, side)
    }

    /// What a person does to put the stable side back when stepshift's rollback failed.
    pub fn manual_restore(&self, stable: &str) -> String {
        self.router().manual_restore(stable)
    }

    /// The function whose old versions a confirmed release may prune, if the router
    /// releases function versions.
    pub fn prunable_function(&self) -> Option<&str> {
        self.router().prunable_function()
    }

    /// The Lambda alias whose invocations the fast path counts, if the router releases
    /// Lambda versions behind one ([`crate::outcomes`]).
    pub fn counted_alias(&self) -> Option<&alias::AliasRoute> {
        self.router().counted_alias()
    }
}

/// Which side of a release a version is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// What served traffic before the release.
    Stable,
    /// What the release moves traffic to.
    Candidate,
}

/// How the version records of a target are named: `{prefix}/{scope}/{name}/...`. For a
/// Lambda alias, the function and the alias.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity {
    /// The first level: a function, or a router's namespace (`route53-Z…`).
    pub scope: String,
    /// The second level: an alias, a record, an endpoint.
    pub name: String,
}

impl Identity {
    /// An identity from its two levels.
    pub fn new(scope: impl Into<String>, name: impl Into<String>) -> Self {
        Self { scope: scope.into(), name: name.into() }
    }
}

/// The object-safe part of a router: naming.
pub trait Named: Send + Sync {
    /// How the version records name the target.
    fn identity(&self) -> Identity;
    /// The target in a sentence.
    fn label(&self) -> String;
    /// A version of the target in a sentence.
    fn name(&self, version: &str, side: Side) -> String;
    /// What a person does when stepshift's rollback failed.
    fn manual_restore(&self, stable: &str) -> String;
    /// The function whose old versions may be pruned after a confirmed release.
    fn prunable_function(&self) -> Option<&str> {
        None
    }
    /// The Lambda alias whose invocations the fast path counts.
    fn counted_alias(&self) -> Option<&alias::AliasRoute> {
        None
    }
}

/// A router: its planned form, as [`Route`] holds it.
pub trait Router: Named + Clone + Sized + 'static {
    /// Its kind.
    const KIND: RouterKind;
    /// Whether a weight change must be polled until it is in effect before the bake.
    const SYNCS: bool;
    /// This router's part of `route`, if it is one of this router's targets.
    fn of(route: &Route) -> Option<&Self>;
}

/// A planned target with its router's part.
pub type Member<'a, R> = (&'a PlannedTarget, &'a R);

/// The targets of `plan` that router `R` moves, in plan order.
pub fn members<R: Router>(targets: &[PlannedTarget]) -> Vec<Member<'_, R>> {
    targets.iter().filter_map(|t| R::of(&t.route).map(|r| (t, r))).collect()
}

/// What Begin found for one requested target.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// The target, its stable and candidate versions known.
    pub target: PlannedTarget,
    /// A revision to guard the first write with (a Lambda alias's RevisionId).
    pub revision: Option<Revision>,
}

/// A router's targets as the request states them.
pub trait Requests: Router {
    /// The request's form of a target.
    type Requested: Sync;
    /// This router's targets in the request, with their index in `targets`.
    fn requested(targets: &Targets) -> Vec<(usize, &Self::Requested)>;
    /// What a requested target is called.
    fn identify(requested: &Self::Requested) -> RequestedTarget;
}

/// Begin's read-only look at a router's targets in the account.
pub trait Resolves<P>: Requests {
    /// Finds the target and checks that a release can start from it. Problems with the
    /// request come back as field errors (named under `at`, such as `targets[0]`);
    /// failed calls as the task error.
    fn resolve(
        ports: &P,
        requested: &Self::Requested,
        at: &str,
    ) -> impl Future<Output = Result<Result<Resolved, Vec<FieldError>>, TaskError>> + Send;
}

/// A change of weights not yet in effect, which "Check sync" polls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingChange {
    /// The target, by label.
    pub target: String,
    /// The router's id of the change (a Route53 change id; an endpoint's name).
    pub id: String,
}

/// Reading and writing weights. Every write is drift-aware: a router reads what is
/// there, writes only from the state stepshift last left, treats "already there" as
/// done (a retry after a lost answer), and reports anything else as drift.
pub trait Moves<P: Clock>: Router {
    /// Moves every member to `to` percent for the candidate (0 < to < 100). A router
    /// whose changes take effect later appends them to `traffic.pending_changes`.
    fn shift(
        ports: &P,
        members: &[Member<'_, Self>],
        traffic: &mut Traffic,
        to: f64,
    ) -> impl Future<Output = Result<(), TaskError>> + Send;

    /// Gives every member's candidate all traffic, in the router's final shape.
    fn promote(
        ports: &P,
        members: &[Member<'_, Self>],
        traffic: &mut Traffic,
    ) -> impl Future<Output = Result<(), TaskError>> + Send;

    /// Puts the stable side back on one member, if it is still stepshift's to restore.
    fn restore(ports: &P, member: Member<'_, Self>)
    -> impl Future<Output = Result<RolledBackTarget, TaskError>> + Send;

    /// Whether one pending change is in effect. `Err` when it failed for good.
    fn in_effect(
        ports: &P,
        member: Member<'_, Self>,
        change: &PendingChange,
    ) -> impl Future<Output = Result<bool, TaskError>> + Send;
}

/// One target's minutes, as a check compares them: the candidate and the stable side
/// over the same minutes, and a front end's 4xx minutes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// The candidate's minutes: invocations (requests), errors (5xx), throttles,
    /// durations and slow counts where the router has them.
    pub candidate: VersionMetrics,
    /// The stable side's minutes.
    pub stable: VersionMetrics,
    /// 4xx minutes of the candidate and the stable side, for a front end.
    pub client_errors: Option<(Vec<MinuteCounts>, Vec<MinuteCounts>)>,
}

/// Where a router's health data comes from.
pub trait Observes<P>: Router {
    /// The stable side's history over `[start, end)`, one per member in order, with the
    /// custom metrics of `rules` where the router reads them.
    fn history(
        ports: &P,
        members: &[Member<'_, Self>],
        rules: &[crate::custom::MetricRule],
        start: Timestamp,
        end: Timestamp,
    ) -> impl Future<Output = PortResult<Vec<Option<History>>>> + Send;

    /// Every member's minutes over `[since, end)`, one per member in order; `None` for
    /// a member judged on its alarms only.
    fn observe(
        ports: &P,
        plan: &Plan,
        members: &[Member<'_, Self>],
        since: Timestamp,
        end: Timestamp,
    ) -> impl Future<Output = PortResult<Vec<Option<Observed>>>> + Send;
}

/// Everything the routers' writes need.
pub trait MovePorts:
    crate::ports::AliasRouter + route53::RecordRouter + web::WebEndpoints + Clock + Send + Sync
{
}
impl<T> MovePorts for T where
    T: crate::ports::AliasRouter + route53::RecordRouter + web::WebEndpoints + Clock + Send + Sync
{
}

/// Everything the routers' health reads need.
pub trait ObservePorts: crate::ports::MetricsSource + route53::health::DistributionMetricsSource + Send + Sync {}
impl<T> ObservePorts for T where
    T: crate::ports::MetricsSource + route53::health::DistributionMetricsSource + Send + Sync
{
}

/// The kind of router a request's targets use (validation allows one kind per release).
pub fn kind_of(targets: &Targets) -> RouterKind {
    if !targets.records.is_empty() {
        RouterKind::Route53
    } else if !targets.endpoints.is_empty() {
        RouterKind::LambdaWeb
    } else {
        RouterKind::Alias
    }
}

/// What a requested target is called, before Begin has looked at the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedTarget {
    /// How the version records, the lock and the history name it.
    pub identity: Identity,
    /// The target in a sentence: `orders:live`.
    pub label: String,
    /// A short name for execution names: a function, a record name.
    pub short: String,
    /// The candidate as requested: a version, a green endpoint, a revision.
    pub candidate: String,
}

/// Every target of the request, named, in request order.
pub fn identities(targets: &Targets) -> Vec<RequestedTarget> {
    let mut out: Vec<(usize, RequestedTarget)> = Vec::new();
    out.extend(identify_all::<alias::AliasRoute>(targets));
    out.extend(identify_all::<route53::PlannedRecord>(targets));
    out.extend(identify_all::<web::PlannedEndpoint>(targets));
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, x)| x).collect()
}

fn identify_all<R: Requests>(targets: &Targets) -> Vec<(usize, RequestedTarget)> {
    R::requested(targets).into_iter().map(|(i, r)| (i, R::identify(r))).collect()
}

/// Why `stepshift rollback` (which points a Lambda alias at a version by hand) must
/// not act on the version records under `scope`, if they are another router's: a
/// record or an endpoint is restored by its deployment's rollback, or by hand as the
/// deployment's cause says.
pub fn refuse_hand_rollback(scope: &str) -> Option<String> {
    let owner = [(route53::SCOPE_PREFIX, "a Route53 record"), (web::SCOPE_PREFIX, "a Lambda Web Function endpoint")]
        .into_iter()
        .find(|(prefix, _)| scope.starts_with(prefix))?
        .1;
    Some(format!(
        "these are the version records of {owner}; stepshift rollback moves Lambda aliases. {owner} is restored \
         by its deployment's rollback, or by hand as the deployment's cause says"
    ))
}

/// Begin's look at every target of the request, in request order. Reports every
/// problem of every target.
pub async fn resolve<P>(
    ports: &P,
    request: &DeploymentRequest,
) -> Result<Result<Vec<Resolved>, Vec<FieldError>>, TaskError>
where
    P: MovePorts + crate::ports::VersionCatalog,
{
    let mut found: Vec<(usize, Resolved)> = Vec::new();
    let mut errors = Vec::new();
    resolve_all::<alias::AliasRoute, P>(ports, request, &mut found, &mut errors).await?;
    resolve_all::<route53::PlannedRecord, P>(ports, request, &mut found, &mut errors).await?;
    resolve_all::<web::PlannedEndpoint, P>(ports, request, &mut found, &mut errors).await?;
    found.sort_by_key(|(i, _)| *i);
    Ok(if errors.is_empty() { Ok(found.into_iter().map(|(_, r)| r).collect()) } else { Err(errors) })
}

async fn resolve_all<R: Resolves<P>, P>(
    ports: &P,
    request: &DeploymentRequest,
    found: &mut Vec<(usize, Resolved)>,
    errors: &mut Vec<FieldError>,
) -> Result<(), TaskError> {
    for (i, requested) in R::requested(&request.targets) {
        match Box::pin(R::resolve(ports, requested, &format!("targets[{i}]"))).await? {
            Ok(r) => found.push((i, r)),
            Err(problems) => errors.extend(problems),
        }
    }
    Ok(())
}

/// Shifts every target to `to` percent.
pub async fn shift<P: MovePorts>(
    ports: &P,
    targets: &[PlannedTarget],
    traffic: &mut Traffic,
    to: f64,
) -> Result<(), TaskError> {
    Box::pin(alias::AliasRoute::shift(ports, &members(targets), traffic, to)).await?;
    Box::pin(route53::PlannedRecord::shift(ports, &members(targets), traffic, to)).await?;
    Box::pin(web::PlannedEndpoint::shift(ports, &members(targets), traffic, to)).await
}

/// Gives every target's candidate all traffic.
pub async fn promote<P: MovePorts>(
    ports: &P,
    targets: &[PlannedTarget],
    traffic: &mut Traffic,
) -> Result<(), TaskError> {
    Box::pin(alias::AliasRoute::promote(ports, &members(targets), traffic)).await?;
    Box::pin(route53::PlannedRecord::promote(ports, &members(targets), traffic)).await?;
    Box::pin(web::PlannedEndpoint::promote(ports, &members(targets), traffic)).await
}

/// Puts the stable side back on one target.
pub async fn restore<P: MovePorts>(ports: &P, target: &PlannedTarget) -> Result<RolledBackTarget, TaskError> {
    match &target.route {
        Route::Alias(r) => Box::pin(alias::AliasRoute::restore(ports, (target, r))).await,
        Route::Route53(r) => Box::pin(route53::PlannedRecord::restore(ports, (target, r.as_ref()))).await,
        Route::LambdaWeb(r) => Box::pin(web::PlannedEndpoint::restore(ports, (target, r))).await,
    }
}

/// Whether one pending change of one target is in effect.
pub async fn in_effect<P: MovePorts>(
    ports: &P,
    target: &PlannedTarget,
    change: &PendingChange,
) -> Result<bool, TaskError> {
    match &target.route {
        Route::Alias(r) => Box::pin(alias::AliasRoute::in_effect(ports, (target, r), change)).await,
        Route::Route53(r) => Box::pin(route53::PlannedRecord::in_effect(ports, (target, r.as_ref()), change)).await,
        Route::LambdaWeb(r) => Box::pin(web::PlannedEndpoint::in_effect(ports, (target, r), change)).await,
    }
}

/// Every target's stable history, in plan order.
pub async fn history<P: ObservePorts>(
    ports: &P,
    targets: &[PlannedTarget],
    rules: &[crate::custom::MetricRule],
    start: Timestamp,
    end: Timestamp,
) -> PortResult<Vec<Option<History>>> {
    let mut out = vec![None; targets.len()];
    place::<_, alias::AliasRoute>(
        &mut out,
        targets,
        Box::pin(<alias::AliasRoute as Observes<P>>::history(ports, &members(targets), rules, start, end)).await?,
    );
    place::<_, route53::PlannedRecord>(
        &mut out,
        targets,
        Box::pin(<route53::PlannedRecord as Observes<P>>::history(ports, &members(targets), rules, start, end)).await?,
    );
    place::<_, web::PlannedEndpoint>(
        &mut out,
        targets,
        Box::pin(<web::PlannedEndpoint as Observes<P>>::history(ports, &members(targets), rules, start, end)).await?,
    );
    Ok(out)
}

/// Every target's minutes of one check, in plan order.
pub async fn observe<P: ObservePorts>(
    ports: &P,
    plan: &Plan,
    since: Timestamp,
    end: Timestamp,
) -> PortResult<Vec<Option<Observed>>> {
    let targets = &plan.targets;
    let mut out = vec![None; targets.len()];
    place::<_, alias::AliasRoute>(
        &mut out,
        targets,
        Box::pin(<alias::AliasRoute as Observes<P>>::observe(ports, plan, &members(targets), since, end)).await?,
    );
    place::<_, route53::PlannedRecord>(
        &mut out,
        targets,
        Box::pin(<route53::PlannedRecord as Observes<P>>::observe(ports, plan, &members(targets), since, end)).await?,
    );
    place::<_, web::PlannedEndpoint>(
        &mut out,
        targets,
        Box::pin(<web::PlannedEndpoint as Observes<P>>::observe(ports, plan, &members(targets), since, end)).await?,
    );
    Ok(out)
}

/// Puts one router's results (one per member, in member order) at their targets' places.
fn place<T, R: Router>(out: &mut [Option<T>], targets: &[PlannedTarget], results: Vec<Option<T>>) {
    let slots = targets.iter().enumerate().filter(|(_, t)| R::of(&t.route).is_some()).map(|(i, _)| i);
    for (i, r) in slots.zip(results) {
        out[i] = r;
    }
}
