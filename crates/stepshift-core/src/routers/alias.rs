//! The Lambda alias router: an alias's weights between two published versions of a
//! function (AWS's rule: a primary version and at most one additional version).
//!
//! - **Moves** through [`AliasRouter`], writing with the RevisionId stepshift last saw,
//!   so a change made behind its back is `AliasDrift`, never overwritten. Every alias
//!   is read and checked before any is written.
//! - **Syncs** never: an alias update is in effect when the call returns.
//! - **Observes** Lambda's per-version metrics through the alias (`Resource =
//!   function:alias`, `ExecutedVersion`), one GetMetricData call for every alias of a
//!   check, and the stable version's history in two more at Begin.

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{
    Identity, Member, Moves, Named, Observed, Observes, PendingChange, RequestedTarget, Requests, Resolved, Resolves,
    Route, Router, RouterKind, Side,
};
use crate::baseline::History;
use crate::custom;
use crate::deployment::{Plan, PlannedTarget, Revision, Traffic};
use crate::error::{FieldError, PortError, Service, TaskError};
use crate::ports::{AliasRouter, AliasRouting, MetricQuery, MetricSeriesKey, MetricsSource, VersionCatalog};
use crate::request::{Target, Targets};
use crate::tasks::traffic::{RollbackAction, RolledBackTarget};
use crate::time::{Clock, Timestamp};

/// A Lambda alias.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasRoute {
    /// Function name.
    pub function: String,
    /// Alias name.
    pub alias: String,
}

impl AliasRoute {
    /// `function:alias`.
    pub fn qualified(&self) -> String {
        format!("{}:{}", self.function, self.alias)
    }
}

impl Named for AliasRoute {
    fn identity(&self) -> Identity {
        Identity::new(&self.function, &self.alias)
    }

    fn label(&self) -> String {
        self.qualified()
    }

    fn name(&self, version: &str, _side: Side) -> String {
        if version.is_empty() { "the stable version".to_owned() } else { format!("version {version}") }
    }

    fn manual_restore(&self, stable: &str) -> String {
        format!("stepshift rollback --function {} --alias {} --to {stable}", self.function, self.alias)
    }

    fn prunable_function(&self) -> Option<&str> {
        Some(&self.function)
    }

    fn counted_alias(&self) -> Option<&AliasRoute> {
        Some(self)
    }
}

impl Router for AliasRoute {
    const KIND: RouterKind = RouterKind::Alias;
    const SYNCS: bool = false;

    fn of(route: &Route) -> Option<&Self> {
        match route {
            Route::Alias(r) => Some(r),
            _ => None,
        }
    }
}

impl Requests for AliasRoute {
    type Requested = Target;

    fn requested(targets: &Targets) -> Vec<(usize, &Target)> {
        targets.aliases.iter().enumerate().collect()
    }

    fn identify(t: &Target) -> RequestedTarget {
        RequestedTarget {
            identity: Identity::new(&t.function, &t.alias),
            label: t.qualified(),
            short: t.function.clone(),
            candidate: t.version.clone(),
        }
    }
}

impl<P: AliasRouter + VersionCatalog> Resolves<P> for AliasRoute {
    async fn resolve(ports: &P, t: &Target, at: &str) -> Result<Result<Resolved, Vec<FieldError>>, TaskError> {
        let field = |name: &str| format!("{at}.{name}");
        let versions = match ports.list_versions(&t.function).await {
            Ok(v) => v,
            Err(PortError::NotFound { .. }) => {
                return Ok(Err(vec![FieldError::new(
                    field("function"),
                    format!("no function named {} in this account and region", t.function),
                )]));
            }
            Err(e) => return Err(e.into()),
        };
        let alias = match ports.get_alias(&t.function, &t.alias).await {
            Ok(a) => a,
            Err(PortError::NotFound { .. }) => {
                return Ok(Err(vec![FieldError::new(
                    field("alias"),
                    format!("{} has no alias {}; create it pointing at the stable version first", t.function, t.alias),
                )]));
            }
            Err(e) => return Err(e.into()),
        };
        let mut errors = Vec::new();
        if !versions.contains(&t.version) {
            let mut numbers: Vec<u64> = versions.iter().filter_map(|v| v.parse().ok()).collect();
            numbers.sort_unstable();
            let newest = numbers.last().map_or("none".to_owned(), u64::to_string);
            errors.push(FieldError::new(
                field("version"),
                format!(
                    "version {} of {} is not published (newest published version: {newest})",
                    t.version, t.function
                ),
            ));
        }
        if let Some((_, w)) = &alias.routing.additional
            && *w > 0.0
        {
            errors.push(FieldError::new(
                field("alias"),
                format!(
                    "{} already splits traffic: {}; finish or roll back that release first",
                    t.qualified(),
                    alias.routing.describe()
                ),
            ));
        }
        if alias.routing.version == t.version {
            errors.push(FieldError::new(
                field("version"),
                format!("{} already serves version {}; there is nothing to deploy", t.qualified(), t.version),
            ));
        }
        if !errors.is_empty() {
            return Ok(Err(errors));
        }
        let route = AliasRoute { function: t.function.clone(), alias: t.alias.clone() };
        Ok(Ok(Resolved {
            target: PlannedTarget::new(Route::Alias(route), alias.routing.version.clone(), t.version.clone()),
            revision: Some(Revision {
                function: t.function.clone(),
                alias: t.alias.clone(),
                revision_id: alias.revision_id,
            }),
        }))
    }
}

/// Checks a routing against Lambda's rules, which the emulators do not all enforce.
pub fn check_routing(routing: &AliasRouting) -> Result<(), String> {
    if routing.versions().contains(&"$LATEST") {
        return Err("an alias cannot route to $LATEST".into());
    }
    if let Some((extra, w)) = &routing.additional {
        if extra == &routing.version {
            return Err(format!("version {extra} cannot be both primary and additional"));
        }
        if !w.is_finite() || *w <= 0.0 || *w >= 1.0 {
            return Err(format!("weight {w} must be above 0 and below 1"));
        }
    }
    Ok(())
}

/// The routing stepshift last left `t` in, given where traffic stands.
fn expected(t: &PlannedTarget, traffic: &Traffic) -> AliasRouting {
    if traffic.weight_percent <= 0.0 {
        AliasRouting::single(t.stable.clone())
    } else if traffic.weight_percent >= 100.0 {
        AliasRouting::single(t.candidate.clone())
    } else {
        AliasRouting::split(t.stable.clone(), t.candidate.clone(), traffic.weight_percent / 100.0)
    }
}

fn drift(r: &AliasRoute, detail: impl Into<String>) -> TaskError {
    TaskError::AliasDrift { function: r.function.clone(), alias: r.alias.clone(), detail: detail.into() }
}

/// Moves every alias to `wanted(t)`. Every alias is read and checked for drift before
/// any is written, so that drift on one stops the step before traffic moves on the others.
async fn apply<P: AliasRouter>(
    ports: &P,
    members: &[Member<'_, AliasRoute>],
    traffic: &mut Traffic,
    wanted: impl Fn(&PlannedTarget) -> AliasRouting,
) -> Result<(), TaskError> {
    let mut writes: Vec<(&AliasRoute, AliasRouting, String)> = Vec::new();
    for &(t, r) in members {
        let now = match ports.get_alias(&r.function, &r.alias).await {
            Ok(now) => now,
            Err(PortError::NotFound { .. }) => return Err(drift(r, "the alias no longer exists")),
            Err(e) => return Err(e.into()),
        };
        let want = wanted(t);
        check_routing(&want).map_err(|reason| TaskError::InvalidTaskInput(format!("{}: {reason}", r.qualified())))?;
        if now.routing.same_as(&want) {
            // Already there: a retry after a write whose answer was lost.
            traffic.set_revision(&r.function, &r.alias, now.revision_id);
        } else if traffic.revision(&r.function, &r.alias) == Some(now.revision_id.as_str()) {
            writes.push((r, want, now.revision_id));
        } else {
            return Err(drift(
                r,
                format!(
                    "it routes {}, where stepshift left {}",
                    now.routing.describe(),
                    expected(t, traffic).describe()
                ),
            ));
        }
    }
    for (r, want, revision) in writes {
        match ports.update_alias(&r.function, &r.alias, &want, Some(&revision)).await {
            Ok(written) => traffic.set_revision(&r.function, &r.alias, written.revision_id),
            Err(PortError::PreconditionFailed { .. }) => {
                return Err(drift(r, "it changed while stepshift was updating it"));
            }
            Err(e) => return Err(e.into()),
        }
        info!(function = %r.function, alias = %r.alias, routing = %want.describe(), "alias updated");
    }
    Ok(())
}

impl<P: AliasRouter + Clock> Moves<P> for AliasRoute {
    async fn shift(ports: &P, members: &[Member<'_, Self>], traffic: &mut Traffic, to: f64) -> Result<(), TaskError> {
        apply(ports, members, traffic, |t| AliasRouting::split(t.stable.clone(), t.candidate.clone(), to / 100.0)).await
    }

    async fn promote(ports: &P, members: &[Member<'_, Self>], traffic: &mut Traffic) -> Result<(), TaskError> {
        apply(ports, members, traffic, |t| AliasRouting::single(t.candidate.clone())).await
    }

    async fn restore(ports: &P, (t, r): Member<'_, Self>) -> Result<RolledBackTarget, TaskError> {
        let stable = AliasRouting::single(t.stable.clone());
        let entry = |action, routing: Option<AliasRouting>| RolledBackTarget {
            target: r.qualified(),
            stable: t.stable.clone(),
            action,
            now: Some(routing.map_or("nothing (the alias is gone)".to_owned(), |r| r.describe())),
        };
        // A person may be changing the alias at the same moment; re-read and re-decide.
        for _ in 0..3 {
            let now = match ports.get_alias(&r.function, &r.alias).await {
                Ok(a) => a,
                Err(PortError::NotFound { .. }) => return Ok(entry(RollbackAction::LeftAlone, None)),
                Err(e) => return Err(e.into()),
            };
            if now.routing.same_as(&stable) {
                return Ok(entry(RollbackAction::AlreadyStable, Some(now.routing)));
            }
            let ours = now.routing.versions().iter().all(|v| *v == t.stable || *v == t.candidate);
            if !ours {
                warn!(function = %r.function, alias = %r.alias, routing = %now.routing.describe(), "alias changed by someone else; left alone");
                return Ok(entry(RollbackAction::LeftAlone, Some(now.routing)));
            }
            match ports.update_alias(&r.function, &r.alias, &stable, Some(&now.revision_id)).await {
                Ok(written) => {
                    info!(function = %r.function, alias = %r.alias, stable = %t.stable, "rolled back");
                    return Ok(entry(RollbackAction::Restored, Some(written.routing)));
                }
                Err(PortError::PreconditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(TaskError::Conflict(PortError::Conflict {
            service: Service::Lambda,
            message: format!("{} kept changing while stepshift rolled it back", r.qualified()),
        }))
    }

    async fn in_effect(_: &P, _: Member<'_, Self>, _: &PendingChange) -> Result<bool, TaskError> {
        Ok(true)
    }
}

/// The queries a check makes for `members`: each alias's candidate, then its stable
/// version, with the history's p99 as the slow threshold, the absolute p99 limit, and
/// the version's custom metrics.
pub fn metric_queries(plan: &Plan, members: &[Member<'_, AliasRoute>]) -> Vec<MetricQuery> {
    let mut out = Vec::new();
    for (t, r) in members {
        for version in [&t.candidate, &t.stable] {
            out.push(MetricQuery {
                series: series(r, version),
                slow_above_ms: t.history.as_ref().and_then(|h| h.slow_above_ms),
                limit_ms: plan.health.p99_duration.max_ms,
                custom: custom::series_of(&plan.health.metrics, &r.function, &r.alias, version),
            });
        }
    }
    out
}

fn series(r: &AliasRoute, version: &str) -> MetricSeriesKey {
    MetricSeriesKey { function: r.function.clone(), alias: r.alias.clone(), version: version.to_owned() }
}

impl<P: MetricsSource> Observes<P> for AliasRoute {
    /// The stable version's per-minute Invocations, Errors and Throttles, its Duration
    /// p99, and the invocations slower than that p99 (CloudWatch's `TC(p99:)` with
    /// Duration's SampleCount). That p99 is the threshold of "slow" for the whole
    /// deployment. Two GetMetricData calls: the second needs the threshold the first
    /// reads. The first also reads the custom metrics of `rules`.
    async fn history(
        ports: &P,
        members: &[Member<'_, Self>],
        rules: &[custom::MetricRule],
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Option<History>>, PortError> {
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let sums: Vec<MetricQuery> = members.iter().map(|(t, r)| MetricQuery::sums(series(r, &t.stable))).collect();
        let with_custom: Vec<MetricQuery> = sums
            .iter()
            .zip(members)
            .map(|(q, (t, r))| MetricQuery {
                custom: custom::series_of(rules, &r.function, &r.alias, &t.stable),
                ..q.clone()
            })
            .collect();
        let first = ports.fetch(&with_custom, start, end).await?;
        let customs: Vec<Vec<custom::CustomHistory>> = first
            .iter()
            .map(|m| {
                let split = custom::split(rules, &m.custom);
                rules.iter().zip(split).map(|(rule, s)| custom::CustomHistory::of(rule, s)).collect()
            })
            .collect();
        let thresholds: Vec<Option<f64>> = first.iter().map(|m| m.p99_duration_ms).collect();
        let metrics = if thresholds.iter().any(Option::is_some) {
            let slow: Vec<MetricQuery> =
                sums.into_iter().zip(&thresholds).map(|(q, t)| MetricQuery { slow_above_ms: *t, ..q }).collect();
            ports.fetch(&slow, start, end).await?
        } else {
            first
        };
        Ok(metrics
            .iter()
            .zip(&thresholds)
            .zip(customs)
            .map(|((m, t), custom)| Some(History { custom, ..History::from_metrics(start, end, m, *t) }))
            .collect())
    }

    /// One GetMetricData call for every alias: invocations, errors, throttles,
    /// Duration's sample count, and the invocations slower than the history's p99 and
    /// than the absolute p99 limit, for the candidate and the stable version.
    async fn observe(
        ports: &P,
        plan: &Plan,
        members: &[Member<'_, Self>],
        since: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Option<Observed>>, PortError> {
        let queries = metric_queries(plan, members);
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let metrics = ports.fetch(&queries, since, end).await?;
        Ok(metrics
            .chunks(2)
            .map(|pair| Some(Observed { candidate: pair[0].clone(), stable: pair[1].clone(), client_errors: None }))
            .collect())
    }
}
