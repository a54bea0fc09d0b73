//! The releases the simulations play most, and [`Scenario::play`], which turns a
//! request's targets into their simulator models. The releases played most: `orders:live` moving from version 41 to 42,
//! and a web front end's Route53 record moving from blue to green; with builder methods
//! for what the callers vary (seed, traffic, CloudWatch's lag, the stable behavior).
//!
//! ```
//! use stepshift_local::sim::{Behavior, VersionModel};
//! use stepshift_local::{Scenario, Simulation, scenario};
//!
//! let s = Scenario::orders(VersionModel::steady(Behavior::default())).with_seed(7).with_rps(50.0);
//! let o = Simulation::new(s).unwrap().run(scenario::orders_request(serde_json::json!("all-at-once"), 0));
//! assert_eq!(o.status, "SUCCEEDED");
//! ```

use serde_json::{Value, json};
use stepshift_core::ports::AliasRouting;
use stepshift_core::request::Targets;
use stepshift_core::routers::route53::RecordTarget;
use stepshift_core::routers::web::RevisionWeight;

use crate::runner::{Action, Scenario};
use crate::sim::{Behavior, FunctionModel, SiteModel, StreamAlarm, VersionModel, WebModel};

/// Requests per second through each alias (or to each site) unless a scenario says otherwise.
pub const RPS: f64 = 20.0;

/// The function of the common release.
pub const ORDERS: &str = "orders";
/// Its alias.
pub const LIVE: &str = "live";
/// The version the alias serves before the release.
pub const STABLE_VERSION: u64 = 41;
/// The version the release moves the alias to.
pub const CANDIDATE_VERSION: u64 = 42;

impl FunctionModel {
    /// `function:alias` serving version `candidate_version - 1` of versions
    /// 1..=`candidate_version`, about to move to `candidate_version`, at [`RPS`]: every
    /// version behaves as [`Behavior::default`], the candidate as `candidate`.
    pub fn release(function: &str, alias: &str, candidate_version: u64, candidate: VersionModel) -> FunctionModel {
        FunctionModel {
            function: function.to_owned(),
            alias: alias.to_owned(),
            versions: candidate_version,
            serving: candidate_version.saturating_sub(1).to_string(),
            requests_per_second: RPS,
            behaviors: [(candidate_version.to_string(), candidate)].into(),
            default_behavior: Behavior::default(),
        }
    }

    /// `function:live` moving from version 41 to 42 (the common release), 42 behaving as
    /// `candidate`.
    pub fn live(function: &str, candidate: VersionModel) -> FunctionModel {
        FunctionModel::release(function, LIVE, CANDIDATE_VERSION, candidate)
    }
}

impl SiteModel {
    /// The site behind `record` at [`RPS`]: the blue distribution (and any other)
    /// behaves as [`Behavior::default`], the green one as `green`.
    pub fn release(record: RecordTarget, green: VersionModel) -> SiteModel {
        let green_id = record.green.distribution_id.clone().unwrap_or_default();
        SiteModel {
            record,
            requests_per_second: RPS,
            behaviors: [(green_id, green)].into(),
            default_behavior: Behavior::default(),
        }
    }
}

impl Scenario {
    /// The common release: `orders:live` moving from version 41 to 42 at [`RPS`], 41
    /// behaving as [`Behavior::default`] and 42 as `candidate`; everything else as
    /// [`Scenario::default`]. Its request: [`orders_request`].
    pub fn orders(candidate: VersionModel) -> Scenario {
        Scenario { functions: vec![FunctionModel::live(ORDERS, candidate)], ..Scenario::default() }
    }

    /// A front end's release: `record` moving from its blue endpoint to its green one at
    /// [`RPS`], blue behaving as [`Behavior::default`] and green as `green`.
    pub fn site(record: RecordTarget, green: VersionModel) -> Scenario {
        Scenario { sites: vec![SiteModel::release(record, green)], ..Scenario::default() }
    }

    /// The same with seed `seed`.
    pub fn with_seed(self, seed: u64) -> Scenario {
        Scenario { seed, ..self }
    }

    /// The same with `rps` requests per second through every alias and to every site.
    pub fn with_rps(mut self, rps: f64) -> Scenario {
        self.functions.iter_mut().for_each(|f| f.requests_per_second = rps);
        self.sites.iter_mut().for_each(|s| s.requests_per_second = rps);
        self.web_functions.iter_mut().for_each(|w| w.requests_per_second = rps);
        self
    }

    /// The same with every version but the candidates (every distribution but the
    /// greens) behaving as `stable`.
    pub fn with_stable(mut self, stable: Behavior) -> Scenario {
        self.functions.iter_mut().for_each(|f| f.default_behavior = stable.clone());
        self.sites.iter_mut().for_each(|s| s.default_behavior = stable.clone());
        self.web_functions.iter_mut().for_each(|w| w.default_behavior = stable.clone());
        self
    }

    /// The same with CloudWatch delivering each minute `lag` seconds after it ends (a
    /// range, drawn per minute).
    pub fn with_lag(self, lag: (u64, u64)) -> Scenario {
        Scenario { metric_lag_seconds: lag, ..self }
    }
}

/// The request of [`Scenario::orders`]: `orders:live` to version 42 with `strategy` (a
/// preset's name or a list of steps) and a lock-in of `lock_in_seconds`.
pub fn orders_request(strategy: Value, lock_in_seconds: u64) -> Value {
    json!({
        "schema": 1,
        "targets": [{"function": ORDERS, "alias": LIVE, "version": CANDIDATE_VERSION.to_string()}],
        "strategy": strategy,
        "lock_in_seconds": lock_in_seconds
    })
}

/// The share of the stable version's requests that answer a handled 500 when a
/// scenario has them (`simulate --scenario handled-5xx`).
pub const STABLE_HANDLED_RATE: f64 = 0.001;

/// The custom rule that judges handled 500s on the simulated functions' own metrics
/// ([`crate::sim::CUSTOM_METRICS`]), as a request would state it: `Http5xx` over
/// `Requests` per version, no worse than the stable version, and at most 2%.
pub fn handled_5xx_rule() -> Value {
    let metric = |name: &str| {
        json!({
            "namespace": "stepshift-demo",
            "metric": name,
            "dimensions": {crate::sim::SERVICE_DIMENSION: "${function}", crate::sim::VERSION_DIMENSION: "${version}"}
        })
    };
    json!({
        "name": "http-5xx",
        "bad": metric(crate::sim::CUSTOM_METRICS[1]),
        "all": metric(crate::sim::CUSTOM_METRICS[0]),
        "max_increase_percent": 0,
        "max_percent": 2
    })
}

/// The Web Function of the common endpoint release.
pub const ORDERS_WEB: &str = "orders-web";
/// Its endpoint.
pub const WEB_ENDPOINT: &str = "live";
/// The revision the endpoint serves before the release.
pub const STABLE_REVISION: &str = "rev-41";
/// The revision the release moves the endpoint to.
pub const CANDIDATE_REVISION: &str = "rev-42";
/// The alarm on the endpoint's 5xx share that judges it.
pub const WEB_ALARM: &str = "orders-web-5xx";

impl WebModel {
    /// `orders-web/live` serving [`STABLE_REVISION`] at [`RPS`], about to move to
    /// [`CANDIDATE_REVISION`], which behaves as `candidate`; an alarm ([`WEB_ALARM`]) on
    /// the endpoint's 5xx share above 2% over 3 minutes; updates take 15 seconds.
    pub fn release(candidate: VersionModel) -> WebModel {
        WebModel::release_of(ORDERS_WEB, WEB_ENDPOINT, CANDIDATE_REVISION, candidate)
    }

    /// The same for `function/endpoint` moving to `revision` (from [`STABLE_REVISION`],
    /// or `rev-40` when `revision` is that).
    pub fn release_of(function: &str, endpoint: &str, revision: &str, candidate: VersionModel) -> WebModel {
        let stable = if revision == STABLE_REVISION { "rev-40" } else { STABLE_REVISION };
        WebModel {
            function: function.to_owned(),
            endpoint: endpoint.to_owned(),
            revisions: vec![stable.to_owned(), revision.to_owned()],
            serving: stable.to_owned(),
            requests_per_second: RPS,
            behaviors: [(revision.to_owned(), candidate)].into(),
            default_behavior: Behavior::default(),
            alarm: Some(StreamAlarm {
                name: WEB_ALARM.to_owned(),
                threshold_percent: 2.0,
                minutes: 3,
                min_requests: 100,
            }),
            update_seconds: 15,
        }
    }
}

impl Scenario {
    /// A Web Function endpoint's release ([`WebModel::release`]). Its request:
    /// [`web_request`].
    pub fn web_function(candidate: VersionModel) -> Scenario {
        Scenario { web_functions: vec![WebModel::release(candidate)], ..Scenario::default() }
    }
}

/// The request of [`Scenario::web_function`]: `orders-web/live` to [`CANDIDATE_REVISION`]
/// with `strategy`, judged on [`WEB_ALARM`].
pub fn web_request(strategy: Value, lock_in_seconds: u64) -> Value {
    json!({
        "schema": 1,
        "targets": [{"kind": "lambda_web", "function": ORDERS_WEB, "endpoint": WEB_ENDPOINT, "revision": CANDIDATE_REVISION}],
        "strategy": strategy,
        "lock_in_seconds": lock_in_seconds,
        "health": {"alarms": [WEB_ALARM]}
    })
}

/// The request's targets as the simulation plays them: each target's model goes into
/// `scenario` (its candidate behaving as `candidate`, at the scenario's defaults for the
/// rest), one loop per kind of target.
impl Scenario {
    /// Adds `targets` to the scenario as the simulation plays them: each target's
    /// simulator model, its candidate behaving as `candidate` (at the scenario's
    /// defaults for the rest), one loop per kind of target; with a label per target and a
    /// person moving the first target back by hand. The error says which flag or field
    /// the simulation cannot play.
    pub fn play(&mut self, targets: &Targets, candidate: &VersionModel) -> Result<Played, String> {
        let scenario = self;
        let mut labels = Vec::new();
        let mut drifts = Vec::new();
        for t in &targets.aliases {
            let n: u64 = t.version.parse().unwrap_or(0);
            if n < 2 {
                return Err(format!(
                    "--version: simulate needs a candidate above 1 (version {} plays the stable one)",
                    n.saturating_sub(1)
                ));
            }
            if scenario.functions.iter().any(|f| f.function == t.function) {
                return Err(format!(
                    "--function: simulate plays one alias per function ({} is listed twice)",
                    t.function
                ));
            }
            scenario.functions.push(FunctionModel::release(&t.function, &t.alias, n, candidate.clone()));
            labels.push(format!("{} → {}", t.qualified(), t.version));
            // Someone points the alias back at the stable version by hand.
            drifts.push(Action::SetAlias {
                function: t.function.clone(),
                alias: t.alias.clone(),
                routing: AliasRouting::single((n - 1).to_string()),
            });
        }
        for r in &targets.records {
            scenario.sites.push(SiteModel::release(r.clone(), candidate.clone()));
            labels.push(format!("{} → green {}", r.label(), r.green.label()));
            // Someone points the record back at blue by hand.
            drifts.push(Action::SetRecords {
                hosted_zone_id: r.hosted_zone_id.clone(),
                records: vec![r.before_release()],
            });
        }
        for e in &targets.endpoints {
            let model = WebModel::release_of(&e.function, &e.endpoint, &e.revision, candidate.clone());
            labels.push(format!("{} → revision {}", e.label(), e.revision));
            // Someone points the endpoint back at the stable revision by hand.
            drifts.push(Action::SetWebWeights {
                function: e.function.clone(),
                endpoint: e.endpoint.clone(),
                weights: vec![RevisionWeight { revision: model.serving.clone(), weight: 100 }],
            });
            scenario.web_functions.push(model);
        }
        let drift = drifts.into_iter().next().ok_or_else(|| "the request has no targets".to_owned())?;
        Ok(Played { labels, drift })
    }
}

/// What [`Scenario::play`] says of the request's targets.
pub struct Played {
    /// Each target's release, for the headline: `orders-api:live → 42`.
    pub labels: Vec<String>,
    /// A person moving the first target back by hand (`--scenario drift`).
    pub drift: Action,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_release_moves_orders_live_from_41_to_42() {
        let candidate = VersionModel::steady(Behavior { error_rate: 0.2, ..Behavior::default() });
        let s = Scenario::orders(candidate.clone()).with_seed(3).with_rps(5.0).with_lag((60, 120));
        assert_eq!((s.seed, s.metric_lag_seconds, s.history_seconds), (3, (60, 120), 3600));
        let f = &s.functions[0];
        assert_eq!(
            (f.function.as_str(), f.alias.as_str(), f.versions, f.serving.as_str()),
            ("orders", "live", 42, "41")
        );
        assert_eq!(f.requests_per_second, 5.0);
        assert_eq!(f.behaviors["42"], candidate);
        assert_eq!(orders_request(json!("all-at-once"), 300)["targets"][0]["version"], "42");
    }

    #[test]
    fn a_scenario_without_fields_is_the_default() {
        let parsed: Scenario = serde_json::from_value(json!({})).unwrap();
        assert_eq!(parsed, Scenario::default());
    }
}
