//! Simulated AWS for the local runner: Lambda aliases (with AWS's rules, from
//! [`MemoryAws`]), traffic routed by the alias weights with Lambda's probabilistic split,
//! per-version error and latency models that can change over time, CloudWatch's
//! 1-minute buckets delivered with a random lag, scheduled alarms, and SSM.
//! Seeded and deterministic.

pub mod latency;

use std::collections::BTreeMap;
use std::sync::Mutex;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution, Poisson};
use serde::{Deserialize, Serialize};
use stepshift_core::memory::MemoryAws;
use stepshift_core::ports::{
    AlarmSource, AlarmStatus, AlarmValue, AliasRouter, AliasRouting, AliasState, MetricQuery, MetricsSource,
    MinuteCounts, ParameterStore, PortResult, VersionCatalog, VersionMetrics,
};
use stepshift_core::route53::health::{DistributionMetrics, DistributionMetricsSource};
use stepshift_core::route53::{ChangeStatus, RecordRouter, RecordSet, RecordTarget, share_of_green};
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
}

impl Default for Behavior {
    fn default() -> Self {
        Self { error_rate: 0.001, latency_p50_ms: 40.0, latency_p99_ms: 180.0, throttle_rate: 0.0 }
    }
}

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

/// One simulated function with one alias taking traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionModel {
    /// Function name.
    pub function: String,
    /// Alias name.
    pub alias: String,
    /// Published versions 1..=N exist.
    pub versions: u64,
    /// The version the alias serves at the start.
    pub serving: String,
    /// Requests per second through the alias.
    pub requests_per_second: f64,
    /// Behavior per version; versions not listed behave like `default_behavior`.
    #[serde(default)]
    pub behaviors: BTreeMap<String, VersionModel>,
    /// The behavior of every unlisted version.
    #[serde(default)]
    pub default_behavior: Behavior,
}

impl FunctionModel {
    fn model_of(&self, version: &str) -> VersionModel {
        self.behaviors.get(version).cloned().unwrap_or_else(|| VersionModel::steady(self.default_behavior.clone()))
    }
}

/// One simulated web front end: a Route53 record that sends clients to the blue or the
/// green CloudFront distribution, by the weights of its record sets. The site's
/// requests per distribution, and their 5xx responses (as errors), are CloudFront's
/// metrics of that distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteModel {
    /// The record, with both endpoints; each needs a `distribution_id`.
    pub record: RecordTarget,
    /// Requests per second to the site.
    pub requests_per_second: f64,
    /// Behavior per distribution id (only `error_rate` counts: the 5xx share).
    #[serde(default)]
    pub behaviors: BTreeMap<String, VersionModel>,
    /// The behavior of every unlisted distribution.
    #[serde(default)]
    pub default_behavior: Behavior,
}

impl SiteModel {
    fn ids(&self) -> (String, String) {
        let id = |e: &stepshift_core::route53::Endpoint| e.distribution_id.clone().unwrap_or_else(|| e.label());
        (id(&self.record.blue), id(&self.record.green))
    }

    /// Where the record sets send clients, as a routing between the distributions.
    fn routing(&self, found: &[RecordSet]) -> AliasRouting {
        let (blue, green) = self.ids();
        let weight = |id: &str| found.iter().find(|r| r.set_identifier.as_deref() == Some(id)).and_then(|r| r.weight);
        let share = match (weight(stepshift_core::route53::BLUE_ID), weight(stepshift_core::route53::GREEN_ID)) {
            (Some(b), Some(g)) => share_of_green(b, g) / 100.0,
            _ if found.iter().any(|r| *r == self.record.promoted()) => 1.0,
            _ => 0.0,
        };
        if share <= 0.0 {
            AliasRouting::single(blue)
        } else if share >= 1.0 {
            AliasRouting::single(green)
        } else {
            AliasRouting::split(blue, green, share)
        }
    }

    fn stream_model(&self) -> FunctionModel {
        FunctionModel {
            function: format!("site {}", self.record.label()),
            alias: String::new(),
            versions: 0,
            serving: self.ids().0,
            requests_per_second: self.requests_per_second,
            behaviors: self.behaviors.clone(),
            default_behavior: self.default_behavior.clone(),
        }
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
    throttles: u64,
    durations: Histogram,
    visible_at: Timestamp,
}

struct Stream {
    model: FunctionModel,
    /// A site's stream is routed by its record, not by an alias.
    site: Option<SiteModel>,
    generated_until: Timestamp,
    buckets: BTreeMap<(String, i64), Bucket>,
    /// When each minute's datapoints arrive: one draw per alias and minute, because
    /// CloudWatch delivers a function's datapoints of one minute together.
    arrivals: BTreeMap<i64, Timestamp>,
}

impl Stream {
    /// A stream with no traffic generated yet, from `start`.
    fn new(model: FunctionModel, site: Option<SiteModel>, start: Timestamp) -> Self {
        Stream { model, site, generated_until: start, buckets: BTreeMap::new(), arrivals: BTreeMap::new() }
    }
}

struct Traffic {
    streams: Vec<Stream>,
    rng: ChaCha8Rng,
}

/// Simulated Lambda, CloudWatch, alarms and SSM on a virtual clock.
pub struct SimAws {
    /// Aliases, versions, parameters and plain alarms, with AWS's rules.
    pub aws: MemoryAws,
    origin: Timestamp,
    history_start: Timestamp,
    lag_seconds: (u64, u64),
    alarms: Vec<ScheduledAlarm>,
    traffic: Mutex<Traffic>,
}

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
        for f in &functions {
            aws.add_function(&f.function, f.versions);
            aws.put_alias(&f.function, &f.alias, AliasRouting::single(f.serving.clone()));
        }
        for a in &alarms {
            aws.set_alarm(&a.name, AlarmValue::Ok);
        }
        let since = start.plus_secs(-i64::try_from(history_seconds).unwrap_or(0));
        let streams = functions.into_iter().map(|model| Stream::new(model, None, since)).collect();
        SimAws {
            aws,
            origin: start,
            history_start: since,
            lag_seconds: (lag_seconds.0.min(lag_seconds.1), lag_seconds.1.max(lag_seconds.0)),
            alarms,
            traffic: Mutex::new(Traffic { streams, rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_cafe) }),
        }
    }

    /// Adds web front ends: each record's hosted zone, holding the simple record for
    /// blue, and the site's traffic.
    pub fn with_sites(self, sites: Vec<SiteModel>) -> Self {
        let start = self.history_start;
        for s in &sites {
            let zone = &s.record.hosted_zone_id;
            let mut records = self.aws.record_sets(zone);
            records.push(s.record.before_release());
            self.aws.add_zone(zone, records);
        }
        let mut traffic = self.traffic();
        for s in sites {
            traffic.streams.push(Stream::new(s.stream_model(), Some(s), start));
        }
        drop(traffic);
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
        let Traffic { streams, rng } = &mut *traffic;
        for s in streams.iter_mut() {
            if let Some(site) = &s.site {
                let r = &site.record;
                let found = self.aws.records_named(&r.hosted_zone_id, &r.name(), r.record_type.as_str());
                let routing = site.routing(&found);
                generate_stream(s, &routing, now, self.origin, self.lag_seconds, rng);
                continue;
            }
            let Some(alias) = self.aws.alias(&s.model.function, &s.model.alias) else {
                s.generated_until = now;
                continue;
            };
            generate_stream(s, &alias.routing, now, self.origin, self.lag_seconds, rng);
        }
    }

    /// Invocations per version served through each alias so far (visible or not).
    pub fn served(&self) -> BTreeMap<(String, String), (u64, u64)> {
        self.generate();
        let traffic = self.traffic();
        let mut out: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
        for s in &traffic.streams {
            for ((version, _), b) in &s.buckets {
                let e = out.entry((s.model.function.clone(), version.clone())).or_default();
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
) {
    let models: Vec<(String, f64, VersionModel)> = routing
        .versions()
        .into_iter()
        .map(|v| (v.to_owned(), routing.share_of(v), s.model.model_of(v)))
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
        let lambda = s.model.requests_per_second * secs;
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
            bucket.throttles += throttled;
            bucket.durations.add(invoked, LogNormal::from_percentiles(b.latency_p50_ms, b.latency_p99_ms), rng);
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
                let Some(s) =
                    traffic.streams.iter().find(|s| s.model.function == k.function && s.model.alias == k.alias)
                else {
                    return VersionMetrics::default();
                };
                let range = (k.version.clone(), start.millis())..(k.version.clone(), end.millis());
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
                VersionMetrics { minutes, p99_duration_ms: durations.quantile(0.99) }
            })
            .collect())
    }
}

impl RecordRouter for SimAws {
    async fn list_record_sets(&self, zone: &str, name: &str, record_type: &str) -> PortResult<Vec<RecordSet>> {
        self.aws.list_record_sets(zone, name, record_type).await
    }

    async fn change_record_sets(
        &self,
        zone: &str,
        changes: &[stepshift_core::route53::Change],
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
                for s in traffic.streams.iter().filter(|s| s.site.is_some()) {
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
        for s in &mut states {
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

#[cfg(test)]
mod tests;
