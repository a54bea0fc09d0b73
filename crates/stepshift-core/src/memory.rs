//! In-memory implementations of every port, for tests and for the local simulation.
//!
//! [`MemoryAws`] enforces the AWS rules that emulators skip: an alias routes to at most
//! two versions, both published (never `$LATEST`), with a weight from 0.0 to 1.0, and
//! every update changes its RevisionId. It counts writes per service, so tests can prove
//! that a rejected request changed nothing, and it can be told to fail chosen calls.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::error::{PortError, Service};
use crate::ports::{
    AlarmSource, AlarmStatus, AlarmValue, AliasRouter, AliasRouting, AliasState, CustomPoint, CustomSeries,
    MAX_METRIC_QUERIES, MetricQuery, MetricSeriesKey, MetricsSource, MinuteCounts, ParameterStore, PortResult,
    VersionCatalog, VersionMetrics,
};
use crate::routers::route53::health::{DistributionMetrics, DistributionMetricsSource};
use crate::routers::route53::{Action, Change, ChangeStatus, RecordRouter, RecordSet, fqdn};
use crate::time::{Clock, Timestamp};

/// Every port call [`MemoryAws`] serves, for counting and fault injection. It
/// serializes as its variant's name (`"GetAlias"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Call {
    /// Lambda GetAlias.
    GetAlias,
    /// Lambda UpdateAlias.
    UpdateAlias,
    /// Lambda ListVersionsByFunction.
    ListVersions,
    /// Lambda ListAliases.
    ListAliases,
    /// Lambda DeleteFunction with a version qualifier.
    DeleteVersion,
    /// CloudWatch GetMetricData.
    GetMetricData,
    /// CloudWatch DescribeAlarms.
    DescribeAlarms,
    /// SSM GetParameters.
    GetParameters,
    /// SSM PutParameter with Overwrite.
    PutParameter,
    /// SSM PutParameter without Overwrite.
    CreateParameter,
    /// SSM DeleteParameter.
    DeleteParameter,
    /// Route53 ListResourceRecordSets.
    ListRecordSets,
    /// Route53 ChangeResourceRecordSets.
    ChangeRecordSets,
    /// Route53 GetChange.
    GetChange,
    /// Lambda Web GetWebFunctionEndpoint.
    GetWebFunctionEndpoint,
    /// Lambda Web UpdateWebFunctionEndpoint.
    UpdateWebFunctionEndpoint,
    /// Lambda Web GetWebFunctionRevision.
    GetWebFunctionRevision,
    /// Lambda GetFunctionConfiguration (a function's log group).
    GetFunctionConfiguration,
    /// CloudWatch Logs DescribeSubscriptionFilters.
    DescribeSubscriptionFilters,
    /// CloudWatch Logs PutSubscriptionFilter.
    PutSubscriptionFilter,
    /// CloudWatch Logs DeleteSubscriptionFilter.
    DeleteSubscriptionFilter,
    /// CloudWatch PutMetricData (the fast path's outcome counts; reads are GetMetricData).
    PutMetricData,
    /// EventBridge PutEvents (the lifecycle events). Not a write: it changes no resource
    /// a deployment reads, and a retried task publishes again.
    PutEvents,
}

impl Call {
    /// Whether the call changes state.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Call::UpdateAlias
                | Call::DeleteVersion
                | Call::PutParameter
                | Call::CreateParameter
                | Call::DeleteParameter
                | Call::ChangeRecordSets
                | Call::UpdateWebFunctionEndpoint
                | Call::PutSubscriptionFilter
                | Call::DeleteSubscriptionFilter
                | Call::PutMetricData
        )
    }

    /// Whether the call goes to Lambda's control plane (15 requests/s per account).
    pub fn is_lambda_control_plane(self) -> bool {
        matches!(
            self,
            Call::GetAlias
                | Call::UpdateAlias
                | Call::ListVersions
                | Call::ListAliases
                | Call::DeleteVersion
                | Call::GetFunctionConfiguration
        )
    }

    /// The service the call goes to.
    pub fn service(self) -> Service {
        match self {
            Call::GetMetricData | Call::DescribeAlarms | Call::PutMetricData => Service::CloudWatch,
            Call::DescribeSubscriptionFilters | Call::PutSubscriptionFilter | Call::DeleteSubscriptionFilter => {
                Service::CloudWatchLogs
            }
            Call::GetParameters | Call::PutParameter | Call::CreateParameter | Call::DeleteParameter => Service::Ssm,
            Call::ListRecordSets | Call::ChangeRecordSets | Call::GetChange => Service::Route53,
            Call::GetWebFunctionEndpoint | Call::UpdateWebFunctionEndpoint | Call::GetWebFunctionRevision => {
                Service::LambdaWeb
            }
            Call::PutEvents => crate::events::SERVICE,
            _ => Service::Lambda,
        }
    }
}

/// What an injected fault does.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The call fails with this error and changes nothing.
    Fail(PortError),
    /// The call takes effect, then its answer is lost and the caller sees this error
    /// (a timeout after the service acted).
    FailAfter(PortError),
    /// The calling process dies during this call: the call lands (or not), and every
    /// later call fails without effect until [`MemoryAws::take_crash`] is called. The
    /// task runner then reports the invocation as crashed.
    Crash {
        /// Whether the call took effect before the process died.
        after_effect: bool,
    },
}

#[derive(Debug, Default)]
struct Function {
    versions: BTreeSet<u64>,
    aliases: BTreeMap<String, AliasState>,
}

#[derive(Debug, Default)]
struct State {
    functions: BTreeMap<String, Function>,
    revision: u64,
    metrics: HashMap<MetricSeriesKey, VersionMetrics>,
    custom: HashMap<CustomSeries, Vec<CustomPoint>>,
    /// Duration samples per series and minute start (ms): `(duration, how many)`.
    durations: HashMap<(MetricSeriesKey, i64), Vec<(f64, u64)>>,
    alarms: BTreeMap<String, (AlarmValue, Option<String>)>,
    parameters: BTreeMap<String, String>,
    /// Hosted zones by id, with their record sets.
    zones: BTreeMap<String, Vec<RecordSet>>,
    /// Route53 changes by id, with the GetChange polls left before INSYNC.
    changes: BTreeMap<String, u32>,
    /// How many GetChange polls a new change stays PENDING.
    polls_until_insync: u32,
    /// CloudFront metrics by distribution id.
    distributions: BTreeMap<String, DistributionMetrics>,
    /// Lambda Web Function endpoints and revisions.
    web: web::WebState,
    /// Subscription filters, log groups and published outcome counts.
    outcomes: outcomes::OutcomeState,
    /// The lifecycle events published, in order.
    events: Vec<crate::events::LifecycleEvent>,
    calls: BTreeMap<Call, u64>,
    /// Faults by the call count of their kind at which they strike.
    faults: Vec<(Call, u64, Fault)>,
    crashed: bool,
    /// The account's request-rate quotas, when enforced ([`MemoryAws::limit_rate`]).
    quotas: quota::Quotas,
}

mod outcomes;
pub mod quota;
mod web;

pub use outcomes::{MAX_SUBSCRIPTION_FILTERS, SubscriptionFilter};

/// In-memory Lambda, CloudWatch, SSM, Route53 and Lambda Web, plus a settable clock.
#[derive(Debug, Default)]
pub struct MemoryAws {
    state: Mutex<State>,
    clock: AtomicI64,
}

fn not_found(service: Service, message: String) -> PortError {
    PortError::NotFound { service, message }
}

fn invalid(service: Service, message: String) -> PortError {
    PortError::Invalid { service, message }
}

impl MemoryAws {
    /// An empty account whose clock reads `now`.
    pub fn new(now: Timestamp) -> Self {
        let aws = Self::default();
        aws.set_now(now);
        aws
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written (every
        // mutation is a single assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the clock.
    pub fn set_now(&self, now: Timestamp) {
        self.clock.store(now.millis(), Ordering::SeqCst);
    }

    /// Moves the clock forward.
    pub fn advance(&self, secs: i64) {
        self.clock.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    /// Creates a function with published versions `1..=versions`.
    pub fn add_function(&self, name: &str, versions: u64) {
        let mut s = self.lock();
        let f = s.functions.entry(name.to_owned()).or_default();
        f.versions.extend(1..=versions);
    }

    /// Creates or replaces an alias, bypassing the checks (test setup).
    pub fn put_alias(&self, function: &str, alias: &str, routing: AliasRouting) {
        let mut s = self.lock();
        s.revision += 1;
        let revision_id = format!("rev-{}", s.revision);
        if let Some(f) = s.functions.get_mut(function) {
            f.aliases.insert(alias.to_owned(), AliasState { routing, revision_id });
        }
    }

    /// The alias's current state, if it exists.
    pub fn alias(&self, function: &str, alias: &str) -> Option<AliasState> {
        self.lock().functions.get(function)?.aliases.get(alias).cloned()
    }

    /// The function's published versions, ascending.
    pub fn versions(&self, function: &str) -> Vec<u64> {
        self.lock().functions.get(function).map(|f| f.versions.iter().copied().collect()).unwrap_or_default()
    }

    /// Sets the metrics a fetch for `key` returns (the window filters minutes).
    pub fn put_metrics(&self, key: MetricSeriesKey, metrics: VersionMetrics) {
        self.lock().metrics.insert(key, metrics);
    }

    /// Sets the datapoints of a custom series (1-minute values; the window filters them).
    pub fn put_custom(&self, series: CustomSeries, points: Vec<CustomPoint>) {
        self.lock().custom.insert(series, points);
    }

    /// Records Duration samples of one minute of `key`, as `(milliseconds, count)`. A
    /// fetch then answers CloudWatch's Duration statistics from them: SampleCount, p99
    /// over the window, and `TC(x:)` (values above `x`, exclusive, as CloudWatch defines
    /// it) for a query's thresholds.
    pub fn put_durations(&self, key: MetricSeriesKey, minute: Timestamp, samples: &[(f64, u64)]) {
        self.lock().durations.entry((key, minute.floor_minute().millis())).or_default().extend_from_slice(samples);
    }

    /// Creates or changes an alarm.
    pub fn set_alarm(&self, name: &str, value: AlarmValue) {
        self.lock().alarms.insert(name.to_owned(), (value, Some(format!("set to {value:?} by the test"))));
    }

    /// A parameter's value.
    pub fn parameter(&self, name: &str) -> Option<String> {
        self.lock().parameters.get(name).cloned()
    }

    /// All parameters, by name.
    pub fn parameters(&self) -> BTreeMap<String, String> {
        self.lock().parameters.clone()
    }

    /// Sets a parameter directly (test setup).
    pub fn put_parameter(&self, name: &str, value: &str) {
        self.lock().parameters.insert(name.to_owned(), value.to_owned());
    }

    /// Creates a hosted zone holding `records` (test setup).
    pub fn add_zone(&self, zone: &str, records: Vec<RecordSet>) {
        self.lock().zones.insert(zone.to_owned(), records);
    }

    /// Every record set of the zone, in the order they were created.
    pub fn record_sets(&self, zone: &str) -> Vec<RecordSet> {
        self.lock().zones.get(zone).cloned().unwrap_or_default()
    }

    /// The zone's record sets of one name and type, as ListResourceRecordSets answers,
    /// without counting a call (test and simulation reads).
    pub fn records_named(&self, zone: &str, name: &str, record_type: &str) -> Vec<RecordSet> {
        self.lock().zones.get(zone).map(|records| named(records, name, record_type)).unwrap_or_default()
    }

    /// Replaces a zone's record sets without a change batch (someone else's edit).
    pub fn put_record_sets(&self, zone: &str, records: Vec<RecordSet>) {
        self.lock().zones.insert(zone.to_owned(), records);
    }

    /// Sets a distribution's CloudFront metrics (test setup).
    pub fn set_distribution_metrics(&self, distribution_id: &str, metrics: DistributionMetrics) {
        self.lock().distributions.insert(distribution_id.to_owned(), metrics);
    }

    /// How many GetChange polls a change stays PENDING (default 0: INSYNC at once).
    pub fn set_polls_until_insync(&self, polls: u32) {
        self.lock().polls_until_insync = polls;
    }

    /// Makes the next call of kind `call` that no earlier fault claims fail with
    /// `fault`. Faults queue in order.
    pub fn inject(&self, call: Call, fault: Fault) {
        let mut s = self.lock();
        let made = s.calls.get(&call).copied().unwrap_or(0);
        let claimed = s.faults.iter().filter(|(c, _, _)| *c == call).map(|(_, at, _)| *at).max().unwrap_or(made);
        s.faults.push((call, claimed.max(made) + 1, fault));
    }

    /// Makes the `nth` next call of kind `call` (1 = the next one) fail with `fault`.
    pub fn inject_at(&self, call: Call, nth: u64, fault: Fault) {
        let mut s = self.lock();
        let at = s.calls.get(&call).copied().unwrap_or(0) + nth.max(1);
        s.faults.push((call, at, fault));
    }

    /// Whether the process "crashed" since the last call of this; clears the crash.
    pub fn take_crash(&self) -> bool {
        std::mem::take(&mut self.lock().crashed)
    }

    /// Injected faults that have not struck yet.
    pub fn pending_faults(&self) -> usize {
        self.lock().faults.len()
    }

    /// How many calls of each kind were made (including failed ones).
    pub fn calls(&self) -> BTreeMap<Call, u64> {
        self.lock().calls.clone()
    }

    /// The lifecycle events published so far, in order.
    pub fn lifecycle_events(&self) -> Vec<crate::events::LifecycleEvent> {
        self.lock().events.clone()
    }

    /// How many calls that change state were made.
    pub fn writes(&self) -> u64 {
        self.lock().calls.iter().filter(|(c, _)| c.is_write()).map(|(_, n)| n).sum()
    }

    /// Counts the call and takes the fault that strikes it, if any.
    fn enter(&self, s: &mut State, call: Call) -> Option<Fault> {
        let n = s.calls.entry(call).or_default();
        *n += 1;
        let n = *n;
        let i = s.faults.iter().position(|(c, at, _)| *c == call && *at == n)?;
        Some(s.faults.remove(i).2)
    }

    /// Runs `op` on the state under the fault rules of `call`.
    fn serve<T>(&self, call: Call, op: impl FnOnce(&mut State) -> PortResult<T>) -> PortResult<T> {
        let mut s = self.lock();
        let dead =
            |call: Call| PortError::Unavailable { service: call.service(), message: "the process crashed".into() };
        if s.crashed {
            *s.calls.entry(call).or_default() += 1;
            return Err(dead(call));
        }
        let fault = self.enter(&mut s, call);
        // An injected fault strikes first; a call it spares can still be throttled.
        if fault.is_none() {
            let now = Clock::now(self).millis();
            s.quotas.check(call, now)?;
        }
        match fault {
            Some(Fault::Fail(e)) => Err(e),
            Some(Fault::FailAfter(e)) => {
                let _ = op(&mut s);
                Err(e)
            }
            Some(Fault::Crash { after_effect }) => {
                if after_effect {
                    let _ = op(&mut s);
                }
                s.crashed = true;
                Err(dead(call))
            }
            None => op(&mut s),
        }
    }
}

fn check_routing(f: &Function, routing: &AliasRouting) -> PortResult<()> {
    let exists = |v: &str| v.parse::<u64>().ok().is_some_and(|n| f.versions.contains(&n));
    for v in routing.versions() {
        if v == "$LATEST" {
            return Err(invalid(Service::Lambda, "an alias cannot route to $LATEST".into()));
        }
        if !exists(v) {
            return Err(not_found(Service::Lambda, format!("version {v} does not exist")));
        }
    }
    if let Some((extra, w)) = &routing.additional {
        if extra == &routing.version {
            return Err(invalid(Service::Lambda, "the additional version must differ from the primary".into()));
        }
        if !(0.0..=1.0).contains(w) || !w.is_finite() {
            return Err(invalid(Service::Lambda, format!("weight {w} is outside 0.0..1.0")));
        }
    }
    Ok(())
}

impl AliasRouter for MemoryAws {
    async fn get_alias(&self, function: &str, alias: &str) -> PortResult<AliasState> {
        self.serve(Call::GetAlias, |s| {
            let f =
                s.functions.get(function).ok_or_else(|| not_found(Service::Lambda, format!("function {function}")))?;
            f.aliases.get(alias).cloned().ok_or_else(|| not_found(Service::Lambda, format!("alias {function}:{alias}")))
        })
    }

    async fn update_alias(
        &self,
        function: &str,
        alias: &str,
        routing: &AliasRouting,
        expected_revision: Option<&str>,
    ) -> PortResult<AliasState> {
        self.serve(Call::UpdateAlias, |s| {
            s.revision += 1;
            let revision_id = format!("rev-{}", s.revision);
            let f = s
                .functions
                .get_mut(function)
                .ok_or_else(|| not_found(Service::Lambda, format!("function {function}")))?;
            check_routing(f, routing)?;
            let current = f
                .aliases
                .get_mut(alias)
                .ok_or_else(|| not_found(Service::Lambda, format!("alias {function}:{alias}")))?;
            if let Some(expected) = expected_revision
                && expected != current.revision_id
            {
                return Err(PortError::PreconditionFailed {
                    service: Service::Lambda,
                    message: format!("RevisionId {expected} does not match {}", current.revision_id),
                });
            }
            *current = AliasState { routing: routing.clone(), revision_id };
            Ok(current.clone())
        })
    }
}

impl VersionCatalog for MemoryAws {
    async fn list_versions(&self, function: &str) -> PortResult<Vec<String>> {
        self.serve(Call::ListVersions, |s| {
            let f =
                s.functions.get(function).ok_or_else(|| not_found(Service::Lambda, format!("function {function}")))?;
            Ok(f.versions.iter().map(u64::to_string).collect())
        })
    }

    async fn list_aliases(&self, function: &str) -> PortResult<Vec<(String, AliasRouting)>> {
        self.serve(Call::ListAliases, |s| {
            let f =
                s.functions.get(function).ok_or_else(|| not_found(Service::Lambda, format!("function {function}")))?;
            Ok(f.aliases.iter().map(|(n, a)| (n.clone(), a.routing.clone())).collect())
        })
    }

    async fn delete_version(&self, function: &str, version: &str) -> PortResult<()> {
        self.serve(Call::DeleteVersion, |s| {
            let f = s
                .functions
                .get_mut(function)
                .ok_or_else(|| not_found(Service::Lambda, format!("function {function}")))?;
            if let Some((alias, _)) = f.aliases.iter().find(|(_, a)| a.routing.versions().contains(&version)) {
                return Err(PortError::Conflict {
                    service: Service::Lambda,
                    message: format!("alias {alias} routes to version {version}"),
                });
            }
            let n = version.parse::<u64>().map_err(|_| invalid(Service::Lambda, format!("bad version {version}")))?;
            f.versions.remove(&n);
            Ok(())
        })
    }
}

impl MetricsSource for MemoryAws {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: Timestamp,
        end: Timestamp,
    ) -> PortResult<Vec<VersionMetrics>> {
        self.serve(Call::GetMetricData, |s| {
            let cost: usize = queries.iter().map(MetricQuery::cost).sum();
            if cost > MAX_METRIC_QUERIES {
                return Err(invalid(
                    Service::CloudWatch,
                    format!("{cost} queries in one GetMetricData request; at most {MAX_METRIC_QUERIES}"),
                ));
            }
            Ok(queries
                .iter()
                .map(|q| {
                    let k = &q.series;
                    let all = s.metrics.get(k).cloned().unwrap_or_default();
                    let mut minutes: Vec<MinuteCounts> =
                        all.minutes.into_iter().filter(|m| m.start >= start && m.start < end).collect();
                    let mut window: Vec<(f64, u64)> = Vec::new();
                    for m in &mut minutes {
                        let Some(samples) = s.durations.get(&(k.clone(), m.start.millis())) else { continue };
                        let above = |x: Option<f64>| {
                            x.map_or(0, |x| samples.iter().filter(|(d, _)| *d > x).map(|(_, n)| n).sum())
                        };
                        m.durations = samples.iter().map(|(_, n)| n).sum();
                        m.slow = above(q.slow_above_ms);
                        m.over_limit = above(q.limit_ms);
                        window.extend_from_slice(samples);
                    }
                    let p99_duration_ms = if minutes.is_empty() {
                        None
                    } else if window.is_empty() {
                        all.p99_duration_ms
                    } else {
                        percentile(&mut window, 0.99)
                    };
                    let custom = q
                        .custom
                        .iter()
                        .map(|c| {
                            let points = s.custom.get(c).map_or(&[][..], Vec::as_slice);
                            points.iter().filter(|(t, _)| *t >= start && *t < end).copied().collect()
                        })
                        .collect();
                    VersionMetrics { minutes, p99_duration_ms, custom }
                })
                .collect())
        })
    }
}

/// The `q` quantile of weighted samples: the smallest value with at least `q` of the
/// weight at or below it.
fn percentile(samples: &mut [(f64, u64)], q: f64) -> Option<f64> {
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: u64 = samples.iter().map(|(_, n)| n).sum();
    let rank = ((q * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    samples
        .iter()
        .find(|(_, n)| {
            seen += n;
            seen >= rank
        })
        .map(|(d, _)| *d)
}

impl AlarmSource for MemoryAws {
    async fn alarm_states(&self, names: &[String]) -> PortResult<Vec<AlarmStatus>> {
        self.serve(Call::DescribeAlarms, |s| {
            Ok(names
                .iter()
                .map(|n| {
                    let found = s.alarms.get(n);
                    AlarmStatus { name: n.clone(), state: found.map(|a| a.0), reason: found.and_then(|a| a.1.clone()) }
                })
                .collect())
        })
    }
}

impl ParameterStore for MemoryAws {
    async fn get_many(&self, names: &[String]) -> PortResult<Vec<(String, String)>> {
        self.serve(Call::GetParameters, |s| {
            Ok(names.iter().filter_map(|n| s.parameters.get(n).map(|v| (n.clone(), v.clone()))).collect())
        })
    }

    async fn put(&self, name: &str, value: &str) -> PortResult<()> {
        self.serve(Call::PutParameter, |s| {
            s.parameters.insert(name.to_owned(), value.to_owned());
            Ok(())
        })
    }

    async fn create(&self, name: &str, value: &str) -> PortResult<()> {
        self.serve(Call::CreateParameter, |s| {
            if s.parameters.contains_key(name) {
                return Err(PortError::AlreadyExists { service: Service::Ssm, message: name.to_owned() });
            }
            s.parameters.insert(name.to_owned(), value.to_owned());
            Ok(())
        })
    }

    async fn delete(&self, name: &str) -> PortResult<()> {
        self.serve(Call::DeleteParameter, |s| {
            s.parameters.remove(name);
            Ok(())
        })
    }
}

impl crate::ports::EventSink for MemoryAws {
    async fn publish(&self, events: &[crate::events::LifecycleEvent]) -> PortResult<()> {
        self.serve(Call::PutEvents, |s| {
            s.events.extend_from_slice(events);
            Ok(())
        })
    }
}

impl Clock for MemoryAws {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.clock.load(Ordering::SeqCst))
    }
}

/// The record sets of one name and type.
fn named(records: &[RecordSet], name: &str, record_type: &str) -> Vec<RecordSet> {
    records.iter().filter(|r| fqdn(&r.name) == fqdn(name) && r.record_type == record_type).cloned().collect()
}

/// Route53's identity of a record set: name, type and SetIdentifier.
fn same_set(a: &RecordSet, b: &RecordSet) -> bool {
    fqdn(&a.name) == fqdn(&b.name) && a.record_type == b.record_type && a.set_identifier == b.set_identifier
}

/// Applies a batch to a copy of the zone under Route53's rules, all or nothing.
fn apply_batch(records: &[RecordSet], changes: &[Change]) -> PortResult<Vec<RecordSet>> {
    let refused = |message: String| PortError::PreconditionFailed { service: Service::Route53, message };
    if changes.is_empty() {
        return Err(invalid(Service::Route53, "a change batch needs at least one change".into()));
    }
    let mut next = records.to_vec();
    for (i, Change { action, record }) in changes.iter().enumerate() {
        if record.set_identifier.is_some() != record.weight.is_some() {
            return Err(invalid(
                Service::Route53,
                format!("change {i}: a weighted record needs both SetIdentifier and Weight"),
            ));
        }
        if record.weight.is_some_and(|w| w > crate::routers::route53::MAX_WEIGHT) {
            return Err(invalid(Service::Route53, format!("change {i}: weight above 255")));
        }
        let at = next.iter().position(|r| same_set(r, record));
        match (action, at) {
            (Action::Create, Some(_)) => {
                return Err(refused(format!(
                    "change {i}: {} already exists",
                    crate::routers::route53::describe(record)
                )));
            }
            (Action::Create, None) => next.push(record.clone()),
            (Action::Delete, Some(j)) if next[j] == *record => {
                next.remove(j);
            }
            (Action::Delete, _) => {
                return Err(refused(format!(
                    "change {i}: {} was not found with exactly these values",
                    crate::routers::route53::describe(record)
                )));
            }
            (Action::Upsert, Some(j)) => next[j] = record.clone(),
            (Action::Upsert, None) => next.push(record.clone()),
        }
    }
    // A simple record cannot share its name and type with weighted ones.
    for r in next.iter().filter(|r| r.set_identifier.is_none()) {
        if next
            .iter()
            .any(|o| o.set_identifier.is_some() && fqdn(&o.name) == fqdn(&r.name) && o.record_type == r.record_type)
        {
            return Err(invalid(
                Service::Route53,
                format!("{} {}: a simple record cannot coexist with weighted records", r.name, r.record_type),
            ));
        }
    }
    Ok(next)
}

impl DistributionMetricsSource for MemoryAws {
    async fn distribution_metrics(
        &self,
        distribution_ids: &[String],
        start: Timestamp,
        end: Timestamp,
    ) -> PortResult<Vec<DistributionMetrics>> {
        self.serve(Call::GetMetricData, |s| {
            let within = |points: &[(Timestamp, f64)]| {
                points.iter().filter(|(t, _)| *t >= start && *t < end).copied().collect::<Vec<_>>()
            };
            Ok(distribution_ids
                .iter()
                .map(|id| {
                    let all = s.distributions.get(id).cloned().unwrap_or_default();
                    DistributionMetrics {
                        requests: within(&all.requests),
                        error_rate_5xx: within(&all.error_rate_5xx),
                        error_rate_4xx: within(&all.error_rate_4xx),
                    }
                })
                .collect())
        })
    }
}

impl RecordRouter for MemoryAws {
    async fn list_record_sets(&self, zone: &str, name: &str, record_type: &str) -> PortResult<Vec<RecordSet>> {
        self.serve(Call::ListRecordSets, |s| {
            let records =
                s.zones.get(zone).ok_or_else(|| not_found(Service::Route53, format!("no hosted zone {zone}")))?;
            Ok(named(records, name, record_type))
        })
    }

    async fn change_record_sets(&self, zone: &str, changes: &[Change], _comment: &str) -> PortResult<String> {
        self.serve(Call::ChangeRecordSets, |s| {
            let records =
                s.zones.get(zone).ok_or_else(|| not_found(Service::Route53, format!("no hosted zone {zone}")))?;
            let next = apply_batch(records, changes)?;
            s.zones.insert(zone.to_owned(), next);
            let id = format!("C{:06}", s.changes.len() + 1);
            let polls = s.polls_until_insync;
            s.changes.insert(id.clone(), polls);
            Ok(id)
        })
    }

    async fn change_status(&self, change_id: &str) -> PortResult<ChangeStatus> {
        self.serve(Call::GetChange, |s| {
            let left = s
                .changes
                .get_mut(change_id)
                .ok_or_else(|| not_found(Service::Route53, format!("no change {change_id}")))?;
            if *left == 0 {
                Ok(ChangeStatus::Insync)
            } else {
                *left -= 1;
                Ok(ChangeStatus::Pending)
            }
        })
    }
}
