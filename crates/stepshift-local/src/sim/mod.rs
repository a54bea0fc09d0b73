//! Simulated AWS for the local runner: Lambda aliases (with AWS's rules, from
//! [`MemoryAws`]), traffic routed by the alias weights with Lambda's probabilistic split,
//! per-version error and latency models that can change over time, CloudWatch's
//! 1-minute buckets delivered with a random lag, scheduled alarms, and SSM.
//! Seeded and deterministic.

mod alias;
pub mod latency;
mod site;
mod tally;
mod web;

pub use alias::FunctionModel;
pub use site::SiteModel;
pub use web::WebModel;

use std::collections::BTreeMap;
use std::sync::Mutex;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution, Poisson};
use serde::{Deserialize, Serialize};
use stepshift_core::memory::MemoryAws;
use stepshift_core::ports::{
    AlarmSource, AlarmStatus, AlarmValue, AliasRouter, AliasRouting, AliasState, CustomPoint, CustomSeries,
    MetricQuery, MetricsSource, MinuteCounts, ParameterStore, PortResult, VersionCatalog, VersionMetrics,
};
use stepshift_core::routers::route53::health::{DistributionMetrics, DistributionMetricsSource};
use stepshift_core::routers::route53::{ChangeStatus, RecordRouter, RecordSet};
use stepshift_core::{Clock, Timestamp};

use latency::{Histogram, LogNormal};

/// How one version behaves under traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Behavior {
    /// Share of invocations that fail, 0 to 1.
    pub error_rate: f64,
    /// Median duration, ms.
    pub latency_p50_ms: f64,
    /// p99 duration, ms.
    pub latency_p99_ms: f64,
    /// Share of requests throttled (they count in neither Invocations nor Errors), 0 to 1.
    pub throttle_rate: f64,
    /// Share of the successful invocations that answer a handled 500: a success to Lambda,
    /// an `Http5xx` in the function's own metrics ([`CUSTOM_METRICS`]), 0 to 1.
    pub handled_error_rate: f64,
}

impl Default for Behavior {
    fn default() -> Self {
        Self {
            error_rate: 0.001,
            latency_p50_ms: 40.0,
            latency_p99_ms: 180.0,
            throttle_rate: 0.0,
            handled_error_rate: 0.0,
        }
    }
}

/// The metrics every simulated Lambda function emits per version, as the example
/// orders-api does with Embedded Metric Format: `Requests` (every invocation that
/// answered) and `Http5xx` (the handled 500s), with the dimensions `Service` (the
/// function's name) and `Version`, in any namespace. A custom series with other names
/// has no data.
pub const CUSTOM_METRICS: [&str; 2] = ["Requests", "Http5xx"];

/// The dimension that names the function in [`CUSTOM_METRICS`].
pub const SERVICE_DIMENSION: &str = "Service";

/// The dimension that names the version in [`CUSTOM_METRICS`].
pub const VERSION_DIMENSION: &str = "Version";

/// A behavior that takes effect some time after the simulation starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// Seconds after the start.
    pub after_seconds: u64,
    /// The behavior from then on.
    pub behavior: Behavior,
}

/// One version's behavior over time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VersionModel {
    /// The behavior from the start.
    pub behavior: Behavior,
    /// Later changes, in any order.
    pub changes: Vec<Change>,
}

impl VersionModel {
    /// A version that always behaves like `behavior`.
    pub fn steady(behavior: Behavior) -> Self {
        Self { behavior, changes: Vec::new() }
    }

    fn at(&self, since_start: i64) -> &Behavior {
        self.changes
            .iter()
            .filter(|c| c.after_seconds as i64 <= since_start)
            .max_by_key(|c| c.after_seconds)
            .map_or(&self.behavior, |c| &c.behavior)
    }
}

/// An alarm whose state changes on a schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledAlarm {
    /// Alarm name.
    pub name: String,
    /// `(seconds after the start, state)`; the alarm is OK before the first.
    pub states: Vec<(u64, AlarmValue)>,
}

#[derive(Default)]
struct Bucket {
    invocations: u64,
    errors: u64,
    /// Handled 500s among the successful invocations.
    handled: u64,
    throttles: u64,
    durations: Histogram,
    visible_at: Timestamp,
}

struct Stream {
    /// What routes it, and how each version behaves.
    route: Box<dyn SimRoute>,
    generated_until: Timestamp,
    buckets: BTreeMap<(String, i64), Bucket>,
    /// When each minute's datapoints arrive: one draw per alias and minute, because
    /// CloudWatch delivers a function's datapoints of one minute together.
    arrivals: BTreeMap<i64, Timestamp>,
    /// What the simulated `tally` published, per version and 10-second bucket.
    tally: BTreeMap<(String, i64), tally::TallyBucket>,
    /// When each 10-second bucket's counts arrive: one draw per stream and bucket.
    tally_arrivals: BTreeMap<i64, Timestamp>,
}

impl Stream {
    /// A stream with no traffic generated yet, from `start`.
    fn new(route: Box<dyn SimRoute>, start: Timestamp) -> Self {
        Stream {
            route,
            generated_until: start,
            buckets: BTreeMap::new(),
            arrivals: BTreeMap::new(),
            tally: BTreeMap::new(),
            tally_arrivals: BTreeMap::new(),
        }
    }

    /// Every visible minute of every version, summed: what an endpoint-wide metric sees.
    fn totals(&self, start: Timestamp, end: Timestamp, now: Timestamp) -> BTreeMap<i64, (u64, u64)> {
        let mut out: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
        for ((_, minute), b) in &self.buckets {
            if *minute >= start.millis() && *minute < end.millis() && b.visible_at <= now {
                let e = out.entry(*minute).or_default();
                e.0 += b.invocations;
                e.1 += b.errors;
            }
        }
        out
    }
}

/// What routes a simulated stream of requests: a Lambda alias ([`FunctionModel`]), a
/// Route53 record ([`SiteModel`]), a Web Function endpoint ([`WebModel`]). Each
/// router's simulator model implements it in its own module; the simulation itself
/// never asks which kind a stream is.
pub trait SimRoute: Send + Sync + std::fmt::Debug {
    /// Creates what the route needs in the account (functions and aliases, zones and
    /// records, endpoints and revisions).
    fn install(&self, aws: &MemoryAws);
    /// How traffic splits between versions now; `None` when the route is gone.
    fn routing(&self, aws: &MemoryAws) -> Option<AliasRouting>;
    /// Requests per second.
    fn requests_per_second(&self) -> f64;
    /// How `version` behaves.
    fn model_of(&self, version: &str) -> VersionModel;
    /// What CloudWatch publishes per version of this stream.
    fn published(&self) -> Published;
    /// The stream's name in [`SimAws::served`]: a function, a site, an endpoint.
    fn name(&self) -> String;
    /// An alarm on the whole stream's error share, if the route has one.
    fn alarm(&self) -> Option<&StreamAlarm> {
        None
    }
}

/// What CloudWatch publishes per version of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    /// AWS/Lambda per `ExecutedVersion` through `function:alias`.
    Lambda {
        /// Function name.
        function: String,
        /// Alias name.
        alias: String,
    },
    /// AWS/CloudFront per distribution (each version is a distribution id).
    CloudFront,
    /// Nothing per version (AWS/Lambda/Web publishes per endpoint).
    PerEndpointOnly,
}

/// An alarm on a stream's share of errors (5xx), as a team would put on an endpoint:
/// ALARM when the newest `minutes` delivered minutes hold at least `min_requests`
/// requests and more than `threshold_percent` of them failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamAlarm {
    /// Alarm name.
    pub name: String,
    /// Error share above which it alarms, in percent.
    pub threshold_percent: f64,
    /// Minutes it evaluates.
    pub minutes: u64,
    /// Requests it needs to decide; fewer is OK.
    pub min_requests: u64,
}

struct Traffic {
    streams: Vec<Stream>,
    rng: ChaCha8Rng,
    /// The simulated tally's own draws ([`tally`]).
    tally_rng: ChaCha8Rng,
}

/// Simulated Lambda, CloudWatch, alarms and SSM on a virtual clock.
pub struct SimAws {
    /// Aliases, versions, parameters and plain alarms, with AWS's rules.
    pub aws: MemoryAws,
    origin: Timestamp,
    history_start: Timestamp,
    lag_seconds: (u64, u64),
    /// How long the simulated tally's buckets take to arrive after they end, seconds.
    tally_delay_seconds: (u64, u64),
    alarms: Vec<ScheduledAlarm>,
    traffic: Mutex<Traffic>,
}

/// The default delivery delay of the simulated fast path: CloudWatch Logs delivers a
/// subscription's batches within seconds, and tally publishes at once.
pub const TALLY_DELAY_SECONDS: (u64, u64) = (3, 30);

impl SimAws {
    /// An account holding `functions` at `start`, with CloudWatch delivering each
    /// minute's metrics `lag_seconds.0..=lag_seconds.1` seconds after it ends. Every
    /// alias (and site) has served traffic under its starting routing for
    /// `history_seconds` before `start`, so the stable version has a history to read.
    pub fn new(
        start: Timestamp,
        seed: u64,
        functions: Vec<FunctionModel>,
        lag_seconds: (u64, u64),
        alarms: Vec<ScheduledAlarm>,
        history_seconds: u64,
    ) -> Self {
        let aws = MemoryAws::new(start);
        for a in &alarms {
            aws.set_alarm(&a.name, AlarmValue::Ok);
        }
        let since = start.plus_secs(-i64::try_from(history_seconds).unwrap_or(0));
        SimAws {
            aws,
            origin: start,
            history_start: since,
            lag_seconds: (lag_seconds.0.min(lag_seconds.1), lag_seconds.1.max(lag_seconds.0)),
            tally_delay_seconds: TALLY_DELAY_SECONDS,
            alarms,
            traffic: Mutex::new(Traffic {
                streams: Vec::new(),
                rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_cafe),
                tally_rng: ChaCha8Rng::seed_from_u64(seed ^ 0x7a11_7a11),
            }),
        }
        .with_routes(functions.into_iter().map(|f| Box::new(f) as Box<dyn SimRoute>).collect())
    }

    /// Adds routes and their traffic, which has flowed under their starting routing
    /// since the history began.
    pub fn with_routes(self, routes: Vec<Box<dyn SimRoute>>) -> Self {
        let start = self.history_start;
        let mut traffic = self.traffic();
        for r in routes {
            r.install(&self.aws);
            if let Some(alarm) = r.alarm() {
                self.aws.set_alarm(&alarm.name, AlarmValue::Ok);
            }
            traffic.streams.push(Stream::new(r, start));
        }
        drop(traffic);
        self
    }

    /// Adds web front ends released through Route53 records.
    pub fn with_sites(self, sites: Vec<SiteModel>) -> Self {
        self.with_routes(sites.into_iter().map(|s| Box::new(s) as Box<dyn SimRoute>).collect())
    }

    /// Adds Web Function endpoints.
    pub fn with_web(self, endpoints: Vec<WebModel>) -> Self {
        self.with_routes(endpoints.into_iter().map(|w| Box::new(w) as Box<dyn SimRoute>).collect())
    }

    /// The fast path's delivery delay: each version's 10-second bucket arrives
    /// `delay.0..=delay.1` seconds after it ends.
    pub fn with_tally_delay(mut self, delay: (u64, u64)) -> Self {
        self.tally_delay_seconds = (delay.0.min(delay.1), delay.1.max(delay.0));
        self
    }

    /// Moves the clock to `now`.
    pub fn set_now(&self, now: Timestamp) {
        self.aws.set_now(now);
    }

    fn traffic(&self) -> std::sync::MutexGuard<'_, Traffic> {
        self.traffic.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Generates every alias's traffic up to now under its current routing. Called before
    /// anything that changes routing or reads metrics, so routing is piecewise constant.
    pub fn generate(&self) {
        let now = self.aws.now();
        let mut traffic = self.traffic();
        let Traffic { streams, rng, tally_rng } = &mut *traffic;
        for s in streams.iter_mut() {
            let subscribed = match s.route.published() {
                Published::Lambda { function, .. } => self.subscription(&function),
                _ => None,
            };
            let feed = subscribed.map(|f| tally::Feed {
                delay: self.tally_delay_seconds,
                slow_above_ms: f.slow_above_ms,
                rng: &mut *tally_rng,
            });
            match s.route.routing(&self.aws) {
                Some(routing) => generate_stream(s, &routing, now, self.origin, self.lag_seconds, rng, feed),
                None => s.generated_until = now,
            }
        }
    }

    /// Invocations per version served through each alias so far (visible or not).
    pub fn served(&self) -> BTreeMap<(String, String), (u64, u64)> {
        self.generate();
        let traffic = self.traffic();
        let mut out: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
        for s in &traffic.streams {
            for ((version, _), b) in &s.buckets {
                let e = out.entry((s.route.name(), version.clone())).or_default();
                e.0 += b.invocations;
                e.1 += b.errors;
            }
        }
        out
    }
}

fn generate_stream(
    s: &mut Stream,
    routing: &AliasRouting,
    now: Timestamp,
    origin: Timestamp,
    lag: (u64, u64),
    rng: &mut ChaCha8Rng,
    mut feed: Option<tally::Feed<'_>>,
) {
    let models: Vec<(String, f64, VersionModel)> = routing
        .versions()
        .into_iter()
        .map(|v| (v.to_owned(), routing.share_of(v), s.route.model_of(v)))
        .filter(|(_, share, _)| *share > 0.0)
        .collect();
    let mut t = s.generated_until;
    while t < now {
        // Slices end at minute boundaries and wherever a behavior changes.
        let mut end = now.min(t.floor_minute().plus_secs(60));
        for (_, _, m) in &models {
            for c in &m.changes {
                let at = origin.plus_secs(c.after_seconds as i64);
                if at > t && at < end {
                    end = at;
                }
            }
        }
        let secs = (end.millis() - t.millis()) as f64 / 1000.0;
        let lambda = s.route.requests_per_second() * secs;
        let total = if lambda > 0.0 { Poisson::new(lambda).map(|p| p.sample(rng) as u64).unwrap_or(0) } else { 0 };
        // Lambda routes each request independently by the weights.
        let mut left = total;
        for (i, (version, share, model)) in models.iter().enumerate() {
            let n = if i + 1 == models.len() {
                left
            } else {
                let share_left: f64 = models[i..].iter().map(|(_, s, _)| s).sum();
                binomial(left, share / share_left, rng)
            };
            left -= n;
            let b = model.at(t.secs_since(origin));
            let throttled = binomial(n, b.throttle_rate, rng);
            let invoked = n - throttled;
            let errors = binomial(invoked, b.error_rate, rng);
            // Drawn only when the behavior has handled errors, so that other runs'
            // random sequences stay as they were.
            let handled = binomial(invoked - errors, b.handled_error_rate, rng);
            let minute = t.floor_minute();
            let visible_at = *s
                .arrivals
                .entry(minute.millis())
                .or_insert_with(|| minute.plus_secs(60 + rng.random_range(lag.0..=lag.1) as i64));
            let bucket = s
                .buckets
                .entry((version.clone(), minute.millis()))
                .or_insert_with(|| Bucket { visible_at, ..Bucket::default() });
            bucket.invocations += invoked;
            bucket.errors += errors;
            bucket.handled += handled;
            bucket.throttles += throttled;
            let latency = LogNormal::from_percentiles(b.latency_p50_ms, b.latency_p99_ms);
            bucket.durations.add(invoked, latency, rng);
            if let Some(feed) = feed.as_mut() {
                feed.count(&mut s.tally, &mut s.tally_arrivals, version, t, end, invoked, errors, latency);
            }
        }
        t = end;
    }
    s.generated_until = s.generated_until.max(now);
}

fn binomial(n: u64, p: f64, rng: &mut ChaCha8Rng) -> u64 {
    if n == 0 || p <= 0.0 {
        0
    } else if p >= 1.0 {
        n
    } else {
        Binomial::new(n, p).map(|d| d.sample(rng)).unwrap_or(0)
    }
}

impl AliasRouter for SimAws {
    async fn get_alias(&self, function: &str, alias: &str) -> PortResult<AliasState> {
        self.aws.get_alias(function, alias).await
    }

    async fn update_alias(
        &self,
        function: &str,
        alias: &str,
        routing: &AliasRouting,
        expected_revision: Option<&str>,
    ) -> PortResult<AliasState> {
        self.generate();
        self.aws.update_alias(function, alias, routing, expected_revision).await
    }
}

impl VersionCatalog for SimAws {
    async fn list_versions(&self, function: &str) -> PortResult<Vec<String>> {
        self.aws.list_versions(function).await
    }

    async fn list_aliases(&self, function: &str) -> PortResult<Vec<(String, AliasRouting)>> {
        self.aws.list_aliases(function).await
    }

    async fn delete_version(&self, function: &str, version: &str) -> PortResult<()> {
        self.aws.delete_version(function, version).await
    }
}

impl MetricsSource for SimAws {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: Timestamp,
        end: Timestamp,
    ) -> PortResult<Vec<VersionMetrics>> {
        // The call is counted (and faults injected) by the in-memory CloudWatch; the data
        // comes from the traffic simulation.
        self.aws.fetch(&[], start, end).await?;
        self.generate();
        let now = self.aws.now();
        let traffic = self.traffic();
        Ok(queries
            .iter()
            .map(|q| {
                let k = &q.series;
                let lambda = Published::Lambda { function: k.function.clone(), alias: k.alias.clone() };
                let Some(s) = traffic.streams.iter().find(|s| s.route.published() == lambda) else {
                    return VersionMetrics::default();
                };
                let range = (k.version.clone(), start.millis())..(k.version.clone(), end.millis());
                let custom = q.custom.iter().map(|c| custom_points(&traffic.streams, c, start, end, now)).collect();
                let mut durations = Histogram::default();
                let mut minutes = Vec::new();
                for ((_, minute), b) in s.buckets.range(range) {
                    if b.visible_at > now || (b.invocations == 0 && b.throttles == 0) {
                        continue;
                    }
                    durations.merge(&b.durations);
                    let above = |x: Option<f64>| x.map_or(0, |x| b.durations.count_above(x));
                    minutes.push(MinuteCounts {
                        start: Timestamp::from_millis(*minute),
                        invocations: b.invocations,
                        errors: b.errors,
                        throttles: b.throttles,
                        durations: b.durations.len(),
                        slow: above(q.slow_above_ms),
                        over_limit: above(q.limit_ms),
                    });
                }
                VersionMetrics { minutes, p99_duration_ms: durations.quantile(0.99), custom }
            })
            .collect())
    }
}

/// One custom series's minutes ([`CUSTOM_METRICS`]), as CloudWatch would deliver them by `now`.
fn custom_points(
    streams: &[Stream],
    c: &CustomSeries,
    start: Timestamp,
    end: Timestamp,
    now: Timestamp,
) -> Vec<CustomPoint> {
    let dimension = |name: &str| c.dimensions.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let (Some(function), Some(version)) = (dimension(SERVICE_DIMENSION), dimension(VERSION_DIMENSION)) else {
        return Vec::new();
    };
    let found =
        streams.iter().find(|s| matches!(s.route.published(), Published::Lambda { function: f, .. } if f == function));
    let (Some(s), true) = (found, CUSTOM_METRICS.contains(&c.metric.as_str()) && c.stat == "Sum") else {
        return Vec::new();
    };
    let range = (version.to_owned(), start.millis())..(version.to_owned(), end.millis());
    s.buckets
        .range(range)
        .filter(|(_, b)| b.visible_at <= now && b.invocations > 0)
        .map(|((_, minute), b)| {
            let value = if c.metric == CUSTOM_METRICS[0] { b.invocations - b.errors } else { b.handled };
            (Timestamp::from_millis(*minute), value as f64)
        })
        .collect()
}

impl RecordRouter for SimAws {
    async fn list_record_sets(&self, zone: &str, name: &str, record_type: &str) -> PortResult<Vec<RecordSet>> {
        self.aws.list_record_sets(zone, name, record_type).await
    }

    async fn change_record_sets(
        &self,
        zone: &str,
        changes: &[stepshift_core::routers::route53::Change],
        comment: &str,
    ) -> PortResult<String> {
        self.generate();
        self.aws.change_record_sets(zone, changes, comment).await
    }

    async fn change_status(&self, change_id: &str) -> PortResult<ChangeStatus> {
        self.aws.change_status(change_id).await
    }
}

impl DistributionMetricsSource for SimAws {
    async fn distribution_metrics(
        &self,
        distribution_ids: &[String],
        start: Timestamp,
        end: Timestamp,
    ) -> PortResult<Vec<DistributionMetrics>> {
        // Counted (and faults injected) by the in-memory CloudWatch, as `fetch` is.
        self.aws.distribution_metrics(&[], start, end).await?;
        self.generate();
        let now = self.aws.now();
        let traffic = self.traffic();
        Ok(distribution_ids
            .iter()
            .map(|id| {
                let mut out = DistributionMetrics::default();
                for s in traffic.streams.iter().filter(|s| s.route.published() == Published::CloudFront) {
                    let range = (id.clone(), start.millis())..(id.clone(), end.millis());
                    for ((_, minute), b) in s.buckets.range(range) {
                        if b.visible_at > now || b.invocations == 0 {
                            continue;
                        }
                        let at = Timestamp::from_millis(*minute);
                        out.requests.push((at, b.invocations as f64));
                        out.error_rate_5xx.push((at, 100.0 * b.errors as f64 / b.invocations as f64));
                    }
                }
                out
            })
            .collect())
    }
}

impl AlarmSource for SimAws {
    async fn alarm_states(&self, names: &[String]) -> PortResult<Vec<AlarmStatus>> {
        let mut states = self.aws.alarm_states(names).await?;
        let since = self.aws.now().secs_since(self.origin);
        self.generate();
        let now = self.aws.now();
        let traffic = self.traffic();
        for s in &mut states {
            if let Some((stream, alarm)) =
                traffic.streams.iter().find_map(|t| t.route.alarm().filter(|a| a.name == s.name).map(|a| (t, a)))
            {
                // Like CloudWatch with TreatMissingData "missing": the most recent
                // `minutes` periods that have data, looking back past the ones not yet
                // delivered (their lag is up to three minutes).
                let span = i64::try_from(alarm.minutes).unwrap_or(5) * 60 + 180;
                let delivered = stream.totals(now.floor_minute().plus_secs(-span), now, now);
                let recent = delivered.values().rev().take(usize::try_from(alarm.minutes).unwrap_or(5));
                let (n, k) = recent.fold((0, 0), |(n, k), (a, b)| (n + a, k + b));
                let breaching = n >= alarm.min_requests && 100.0 * k as f64 > alarm.threshold_percent * n as f64;
                s.state = Some(if breaching { AlarmValue::Alarm } else { AlarmValue::Ok });
                s.reason = Some(format!(
                    "simulated: {k} errors in {n} requests over the last {} minutes (threshold {}%)",
                    alarm.minutes, alarm.threshold_percent
                ));
                continue;
            }
            if let Some(a) = self.alarms.iter().find(|a| a.name == s.name) {
                let current = a.states.iter().filter(|(at, _)| *at as i64 <= since).max_by_key(|(at, _)| *at);
                if let Some((at, value)) = current {
                    s.state = Some(*value);
                    s.reason = Some(format!("simulated: {value:?} since {at} s after the start"));
                }
            }
        }
        Ok(states)
    }
}

impl ParameterStore for SimAws {
    async fn get_many(&self, names: &[String]) -> PortResult<Vec<(String, String)>> {
        self.aws.get_many(names).await
    }

    async fn put(&self, name: &str, value: &str) -> PortResult<()> {
        self.aws.put(name, value).await
    }

    async fn create(&self, name: &str, value: &str) -> PortResult<()> {
        self.aws.create(name, value).await
    }

    async fn delete(&self, name: &str) -> PortResult<()> {
        self.aws.delete(name).await
    }
}

impl Clock for SimAws {
    fn now(&self) -> Timestamp {
        self.aws.now()
    }
}

/// The lifecycle events go to [`MemoryAws`], which records them in order: read them
/// with [`SimAws::lifecycle_events`].
impl stepshift_core::ports::EventSink for SimAws {
    async fn publish(&self, events: &[stepshift_core::events::LifecycleEvent]) -> PortResult<()> {
        stepshift_core::ports::EventSink::publish(&self.aws, events).await
    }
}

impl SimAws {
    /// The lifecycle events the tasks published so far, in order.
    pub fn lifecycle_events(&self) -> Vec<stepshift_core::events::LifecycleEvent> {
        self.aws.lifecycle_events()
    }
}

#[cfg(test)]
mod tests;
