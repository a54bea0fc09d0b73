//! "Start fast path" and "Stop fast path": the `tally` Lambda's subscription filters on
//! the target functions' log groups ([`crate::outcomes`]).
//!
//! - **Start** subscribes `tally` to the log group of every Lambda alias target, named
//!   with [`FilterName`] so that `tally` can count a batch without any state, and
//!   publishes a zero for the stable and the candidate version so that the metrics
//!   exist before "Check health" reads them. A target whose log group already has its
//!   two subscription filters, or whose filter cannot be put (access denied, no log
//!   group), falls back to Lambda Destinations events if the request lists that
//!   source, and otherwise has no fast path: it is judged on CloudWatch's minute
//!   metrics alone, and its note says why. Only a retryable error fails the task, so
//!   that the state machine retries it; a retry is idempotent (a filter already there
//!   is left as it is).
//! - **Stop** deletes every filter on the functions' log groups that this execution
//!   created, and nothing else. A filter or log group already gone counts as done. It
//!   runs at every ending: the state machine's, and the EventBridge rule on the
//!   execution's status change (which also covers an execution stopped from outside).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::deployment::{Plan, PlannedTarget};
use crate::error::{PortError, TaskError};
use crate::outcomes::{
    BucketCounts, DEFAULT_FAST_CHECK_SECONDS, FastPath, FastTarget, FilterName, LogSubscriptions,
    MAX_SUBSCRIPTION_FILTERS, OutcomeSeries, OutcomeSink, Source, bucket_of, execution_name,
};
use crate::routers::alias::AliasRoute;
use crate::time::Clock;

/// The subscription filter pattern: every log line.
///
/// `tally` needs START and REPORT lines, the JSON format's `platform.start` and
/// `platform.report` records, and the error lines of each runtime (see `tally`'s `logs`
/// module). No narrowing pattern selects those in both places the filter must work:
/// - AWS's pattern syntax can (`?START ?REPORT ?ERROR ...` is an OR of terms), but
///   ministack 1.5.33 (`cloudwatch_logs._subscription_pattern_matches`) matches bare
///   terms only, all of which must appear in a line, so an OR pattern matches nothing
///   there;
/// - no single term appears in all of those lines (a Python traceback line carries no
///   request id, a `platform.report` record no `REPORT`), and AWS matches a term only
///   as a whole word.
///
/// So the filter sends everything, and `tally` ignores the lines it does not read. The
/// cost is CloudWatch Logs' delivery of every line the function writes (see the README's
/// cost table), not only the one or two per invocation `tally` counts.
pub const FILTER_PATTERN: &str = "";

/// The note of a target that is not a Lambda alias.
pub const NOT_AN_ALIAS: &str =
    "the fast path counts Lambda alias targets only; this target is judged on its minute metrics alone";

/// What "Stop fast path" did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopped {
    /// The filters deleted, by name.
    pub removed: Vec<String>,
    /// What was already gone, or could not be looked at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The functions of the plan's Lambda alias targets, each once, in plan order.
pub fn alias_functions(plan: &Plan) -> Vec<String> {
    let mut seen = BTreeSet::new();
    plan.targets
        .iter()
        .filter_map(|t| t.route.counted_alias().map(|a| a.function.clone()))
        .filter(|f| seen.insert(f.clone()))
        .collect()
}

/// The slow threshold of a target in whole milliseconds, rounded up: `tally` then counts
/// at most what CloudWatch counts above the fractional threshold, never more.
fn slow_threshold_ms(target: &PlannedTarget) -> Option<u64> {
    let ms = target.history.as_ref()?.slow_above_ms?;
    (ms.is_finite() && ms >= 0.0).then(|| ms.ceil() as u64)
}

/// The name of this execution's filter for `target`.
pub fn filter_name(plan: &Plan, target: &PlannedTarget, route: &AliasRoute) -> String {
    FilterName {
        function: route.function.clone(),
        alias: route.alias.clone(),
        slow_above_ms: slow_threshold_ms(target),
        execution: execution_name(&plan.execution).to_owned(),
    }
    .render()
}

/// A non-retryable error as a reason, a retryable one as the task's error.
fn reason(e: PortError, what: impl FnOnce(&PortError) -> String) -> Result<String, TaskError> {
    if e.is_retryable() { Err(e.into()) } else { Ok(what(&e)) }
}

/// Puts this execution's filter on the function's log group. `Ok(Ok(group))` when it is
/// there; `Ok(Err((group, why)))` when it cannot be.
async fn subscribe<P: LogSubscriptions>(
    ports: &P,
    route: &AliasRoute,
    name: &str,
    destination_arn: &str,
) -> Result<Result<String, (Option<String>, String)>, TaskError> {
    let group = match ports.log_group_of(&route.function).await {
        Ok(g) => g,
        Err(e) => {
            let why = reason(e, |e| format!("the log group of {} could not be read ({e})", route.function))?;
            return Ok(Err((None, why)));
        }
    };
    let filters = match ports.filters(&group).await {
        Ok(f) => f,
        Err(e) => {
            let why = reason(e, |e| format!("the subscription filters of {group} could not be read ({e})"))?;
            return Ok(Err((Some(group), why)));
        }
    };
    if filters.iter().any(|f| f == name) {
        info!(log_group = %group, filter = %name, "subscription filter already in place");
        return Ok(Ok(group));
    }
    if filters.len() >= MAX_SUBSCRIPTION_FILTERS {
        let why = format!(
            "the log group {group} already has two subscription filters ({}), CloudWatch Logs' limit",
            filters.join(", ")
        );
        return Ok(Err((Some(group), why)));
    }
    match ports.put_filter(&group, name, FILTER_PATTERN, destination_arn).await {
        Ok(()) => {
            info!(log_group = %group, filter = %name, "subscribed");
            Ok(Ok(group))
        }
        Err(e) => {
            let why = reason(e, |e| format!("the subscription filter could not be put on {group} ({e})"))?;
            Ok(Err((Some(group), why)))
        }
    }
}

/// Starts the fast path of one alias target on the first source available.
async fn start_target<P: LogSubscriptions>(
    ports: &P,
    plan: &Plan,
    target: &PlannedTarget,
    route: &AliasRoute,
    destination_arn: &str,
) -> Result<FastTarget, TaskError> {
    let label = target.qualified();
    let mut sources: Vec<Source> = Vec::new();
    for s in &plan.health.fast_path.sources {
        if !sources.contains(s) {
            sources.push(*s);
        }
    }
    let mut why_not: Vec<String> = Vec::new();
    let mut log_group = None;
    for source in &sources {
        match source {
            Source::Logs => match subscribe(ports, route, &filter_name(plan, target, route), destination_arn).await? {
                Ok(group) => {
                    let note = (!why_not.is_empty()).then(|| why_not.join("; "));
                    return Ok(FastTarget {
                        target: label,
                        source: Source::Logs,
                        live: true,
                        log_group: Some(group),
                        note,
                    });
                }
                Err((group, why)) => {
                    log_group = group.or(log_group);
                    why_not.push(why);
                }
            },
            Source::Destinations => {
                why_not.push(
                    "it counts Lambda Destinations events, which cover asynchronous invocations only (a failure \
                     arrives after Lambda's retries)"
                        .to_owned(),
                );
                return Ok(FastTarget {
                    target: label,
                    source: Source::Destinations,
                    live: true,
                    log_group: None,
                    note: Some(why_not.join("; ")),
                });
            }
        }
    }
    if sources.is_empty() {
        why_not.push("health.fast_path.sources lists no source".to_owned());
    }
    warn!(target = %label, reasons = %why_not.join("; "), "no fast path");
    why_not.push(format!("no fast path for {label}: it is judged on its minute metrics alone"));
    Ok(FastTarget {
        target: label,
        source: sources.first().copied().unwrap_or_default(),
        live: false,
        log_group,
        note: Some(why_not.join("; ")),
    })
}

/// "Start fast path": subscribes `tally` (`destination_arn`, its unqualified ARN) to
/// every alias target's log group, and publishes a zero for the stable and candidate
/// versions of every live target.
pub async fn start<P: LogSubscriptions + OutcomeSink + Clock>(
    ports: &P,
    plan: &Plan,
    destination_arn: &str,
) -> Result<FastPath, TaskError> {
    let mut targets = Vec::with_capacity(plan.targets.len());
    let mut zeros: Vec<(OutcomeSeries, BucketCounts)> = Vec::new();
    let start = bucket_of(ports.now());
    for t in &plan.targets {
        let Some(route) = t.route.counted_alias() else {
            targets.push(FastTarget {
                target: t.qualified(),
                source: Source::Logs,
                live: false,
                log_group: None,
                note: Some(NOT_AN_ALIAS.to_owned()),
            });
            continue;
        };
        let fast = start_target(ports, plan, t, route, destination_arn).await?;
        if fast.live {
            let mut versions = vec![t.candidate.as_str(), t.stable.as_str()];
            versions.dedup();
            for version in versions.into_iter().filter(|v| !v.is_empty()) {
                let series = OutcomeSeries {
                    function: route.function.clone(),
                    alias: route.alias.clone(),
                    version: version.to_owned(),
                    source: fast.source,
                };
                zeros.push((series, BucketCounts { start, ..BucketCounts::default() }));
            }
        }
        targets.push(fast);
    }
    if !zeros.is_empty()
        && let Err(e) = ports.publish(&zeros).await
    {
        let why = reason(e, |e| format!("the outcome counts cannot be published to CloudWatch ({e})"))?;
        warn!(reason = %why, "fast path down");
        for t in targets.iter_mut().filter(|t| t.live) {
            t.live = false;
            t.note = Some(match t.note.take() {
                Some(n) => format!("{n}; {why}"),
                None => why.clone(),
            });
        }
    }
    let check_every_seconds = plan.health.fast_path.check_interval_seconds.unwrap_or(DEFAULT_FAST_CHECK_SECONDS);
    Ok(FastPath { check_every_seconds, targets })
}

/// Deletes this execution's filters on one function's log group.
async fn stop_function<P: LogSubscriptions>(
    ports: &P,
    execution: &str,
    function: &str,
    stopped: &mut Stopped,
) -> Result<(), PortError> {
    let group = match ports.log_group_of(function).await {
        Ok(g) => g,
        Err(PortError::NotFound { .. }) => {
            stopped.notes.push(format!("the function {function} no longer exists"));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let filters = match ports.filters(&group).await {
        Ok(f) => f,
        Err(PortError::NotFound { .. }) => {
            stopped.notes.push(format!("the log group {group} no longer exists"));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let ours = filters.into_iter().filter(|f| FilterName::parse(f).is_some_and(|n| n.execution == execution));
    for name in ours {
        match ports.delete_filter(&group, &name).await {
            Ok(()) => {
                info!(log_group = %group, filter = %name, "subscription filter deleted");
                stopped.removed.push(name);
            }
            Err(PortError::NotFound { .. }) => stopped.notes.push(format!("{name} was already gone")),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Advice before a deployment starts (`stepshift deploy` prints it): each Lambda alias
/// target whose log group already has CloudWatch Logs' two subscription filters, none of
/// them this deployment's, gets no logs input. Nothing here stops the deployment; a
/// target that cannot be looked at is named too.
pub async fn preflight<P: LogSubscriptions>(ports: &P, request: &crate::request::DeploymentRequest) -> Vec<String> {
    let mut out = Vec::new();
    if !request.health.fast_path.enabled {
        return out;
    }
    for target in &request.targets.aliases {
        let label = target.qualified();
        let group = match ports.log_group_of(&target.function).await {
            Ok(group) => group,
            Err(e) => {
                out.push(format!("fast path: could not find the log group of {label} ({e})"));
                continue;
            }
        };
        match ports.filters(&group).await {
            Ok(filters) if filters.len() >= MAX_SUBSCRIPTION_FILTERS => out.push(format!(
                "fast path: {group} already has {} subscription filters ({}), CloudWatch Logs' limit: {label} gets no \
                 logs input{}",
                filters.len(),
                filters.join(", "),
                if request.health.fast_path.sources.contains(&Source::Destinations) {
                    "; it counts Lambda Destinations events instead"
                } else {
                    ", and is judged on the minute metrics alone"
                }
            )),
            Ok(_) => {}
            Err(e) => out.push(format!("fast path: could not read the subscription filters of {group} ({e})")),
        }
    }
    out
}

/// "Stop fast path": deletes every subscription filter the execution `execution_arn`
/// put on the log groups of `functions`, and nothing else. It tries every function
/// before it reports an error (a retryable one first, so that the caller retries).
pub async fn stop<P: LogSubscriptions>(
    ports: &P,
    execution_arn: &str,
    functions: &[String],
) -> Result<Stopped, TaskError> {
    let execution = execution_name(execution_arn);
    let mut stopped = Stopped::default();
    let mut failure: Option<PortError> = None;
    let mut seen = BTreeSet::new();
    for function in functions.iter().filter(|f| seen.insert(f.as_str())) {
        if let Err(e) = stop_function(ports, execution, function, &mut stopped).await {
            warn!(function = %function, error = %e, "could not remove the fast path's filters");
            if failure.as_ref().is_none_or(|f| !f.is_retryable() && e.is_retryable()) {
                failure = Some(e);
            }
        }
    }
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(stopped),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::History;
    use crate::compare::BaselineRate;
    use crate::error::Service;
    use crate::memory::{Call, Fault, MemoryAws};
    use crate::outcomes::OutcomeSource;
    use crate::request::HealthSettings;
    use crate::routers::Route;
    use crate::routers::web::PlannedEndpoint;
    use crate::time::Timestamp;

    const EXECUTION: &str = "arn:aws:states:us-east-1:123456789012:execution:stepshift:orders-42";
    const TALLY: &str = "arn:aws:lambda:us-east-1:123456789012:function:stepshift-tally";

    fn alias(function: &str, alias: &str, stable: &str, candidate: &str, slow: Option<f64>) -> PlannedTarget {
        let mut t = PlannedTarget::new(
            Route::Alias(AliasRoute { function: function.into(), alias: alias.into() }),
            stable,
            candidate,
        );
        t.history = slow.map(|ms| History {
            start: Timestamp::from_secs(0),
            end: Timestamp::from_secs(3600),
            minutes: 60,
            errors: BaselineRate { invocations: 6000, events: 6 },
            client_errors: None,
            slow_above_ms: Some(ms),
            slow: None,
            throttles: 0,
            custom: Vec::new(),
        });
        t
    }

    fn plan(targets: Vec<PlannedTarget>, sources: &[Source]) -> Plan {
        let mut health = HealthSettings::default();
        health.fast_path.enabled = true;
        health.fast_path.sources = sources.to_vec();
        Plan {
            execution: EXECUTION.into(),
            started_at: Timestamp::from_secs(1_800_000_000),
            router: Default::default(),
            syncs: false,
            targets,
            steps: Vec::new(),
            health,
            lock_in_seconds: 300,
            keep_versions: None,
            approval_timeout_seconds: 3600,
            fast_path: None,
            hooks: Default::default(),
            control: None,
            pause_timeout: Default::default(),
        }
    }

    fn account() -> MemoryAws {
        let aws = MemoryAws::new(Timestamp::from_millis(1_800_000_012_345));
        aws.add_function("orders", 42);
        aws.add_function("billing", 7);
        aws
    }

    fn series(function: &str, version: &str, source: Source) -> OutcomeSeries {
        OutcomeSeries { function: function.into(), alias: "live".into(), version: version.into(), source }
    }

    #[tokio::test]
    async fn start_subscribes_each_alias_and_publishes_zeros_and_a_retry_changes_nothing() {
        let aws = account();
        aws.set_log_group("billing", "/shared/billing");
        let p = plan(
            vec![alias("orders", "live", "41", "42", Some(250.4)), alias("billing", "live", "6", "7", None)],
            &[Source::Logs],
        );
        let fast = start(&aws, &p, TALLY).await.unwrap();
        assert_eq!(fast.check_every_seconds, DEFAULT_FAST_CHECK_SECONDS);
        assert!(fast.targets.iter().all(|t| t.live && t.source == Source::Logs && t.note.is_none()), "{fast:?}");
        assert_eq!(fast.targets[1].log_group.as_deref(), Some("/shared/billing"));
        let name = "stepshift/orders/live/251/orders-42";
        assert_eq!(aws.subscription_filters("/aws/lambda/orders"), [name]);
        let filter = aws.subscription_filter("/aws/lambda/orders", name).unwrap();
        assert_eq!((filter.pattern.as_str(), filter.destination_arn.as_str()), (FILTER_PATTERN, TALLY));
        assert_eq!(aws.subscription_filters("/shared/billing"), ["stepshift/billing/live/-/orders-42"]);

        let bucket = Timestamp::from_secs(1_800_000_010);
        let zero = BucketCounts { start: bucket, ..BucketCounts::default() };
        for (f, v) in [("orders", "42"), ("orders", "41"), ("billing", "7"), ("billing", "6")] {
            assert_eq!(aws.published(&series(f, v, Source::Logs)), [zero], "{f} {v}");
        }
        let read = aws.outcomes(&[series("orders", "42", Source::Logs)], bucket, bucket.plus_secs(10)).await.unwrap();
        assert_eq!(read, [vec![zero]]);
        assert_eq!(aws.calls()[&Call::PutMetricData], 1, "one call for every zero");

        let again = start(&aws, &p, TALLY).await.unwrap();
        assert_eq!(again, fast);
        assert_eq!(aws.calls()[&Call::PutSubscriptionFilter], 2, "a retry puts nothing");
        assert_eq!(aws.subscription_filters("/aws/lambda/orders"), [name]);
    }

    #[tokio::test]
    async fn a_log_group_with_two_foreign_filters_gets_no_fast_path_unless_destinations_may_count() {
        let aws = account();
        aws.add_foreign_filter("/aws/lambda/orders", "datadog");
        aws.add_foreign_filter("/aws/lambda/orders", "splunk");
        let targets = vec![alias("orders", "live", "41", "42", None), alias("billing", "live", "6", "7", None)];

        let fast = start(&aws, &plan(targets.clone(), &[Source::Logs]), TALLY).await.unwrap();
        let orders = &fast.targets[0];
        assert!(!orders.live, "{orders:?}");
        let note = orders.note.as_deref().unwrap();
        assert!(note.contains("/aws/lambda/orders") && note.contains("datadog, splunk"), "{note}");
        assert!(fast.targets[1].live && fast.live());
        assert_eq!(aws.subscription_filters("/aws/lambda/orders"), ["datadog", "splunk"]);
        assert!(aws.published(&series("orders", "42", Source::Logs)).is_empty());

        let fast = start(&aws, &plan(targets, &[Source::Logs, Source::Destinations]), TALLY).await.unwrap();
        let orders = &fast.targets[0];
        assert!(orders.live && orders.source == Source::Destinations, "{orders:?}");
        let note = orders.note.as_deref().unwrap();
        assert!(note.contains("datadog, splunk") && note.contains("asynchronous invocations only"), "{note}");
        let zero = BucketCounts { start: Timestamp::from_secs(1_800_000_010), ..BucketCounts::default() };
        assert_eq!(aws.published(&series("orders", "42", Source::Destinations)), [zero]);
        assert_eq!(fast.targets[1].source, Source::Logs);
    }

    #[tokio::test]
    async fn preflight_warns_of_a_full_log_group_before_anything_starts() {
        let aws = account();
        aws.add_foreign_filter("/aws/lambda/orders", "datadog");
        aws.add_foreign_filter("/aws/lambda/orders", "splunk");
        let request = |fast: serde_json::Value| {
            crate::request::DeploymentRequest::from_value(serde_json::json!({
                "schema": 1,
                "targets": [{"function": "orders", "alias": "live", "version": "42"},
                            {"function": "billing", "alias": "live", "version": "7"}],
                "strategy": "canary-10-5m",
                "health": {"fast_path": fast}
            }))
            .unwrap()
        };
        let warnings = preflight(&aws, &request(serde_json::json!({"enabled": true}))).await;
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("/aws/lambda/orders already has 2 subscription filters (datadog, splunk)"));
        assert!(warnings[0].contains("orders:live gets no logs input, and is judged on the minute metrics alone"));
        let both = request(serde_json::json!({"enabled": true, "sources": ["logs", "destinations"]}));
        assert!(preflight(&aws, &both).await[0].contains("Lambda Destinations events instead"));
        assert!(preflight(&aws, &request(serde_json::json!({}))).await.is_empty(), "off: nothing to say");
        assert_eq!(aws.writes(), 0, "a preflight changes nothing");
    }

    #[tokio::test]
    async fn a_failing_call_costs_its_target_and_a_retryable_one_fails_the_task() {
        let aws = account();
        let denied = PortError::Other { service: Service::CloudWatchLogs, message: "AccessDeniedException".into() };
        aws.inject(Call::PutSubscriptionFilter, Fault::Fail(denied));
        let mut p = plan(
            vec![alias("orders", "live", "41", "42", None), alias("billing", "live", "6", "7", None)],
            &[Source::Logs],
        );
        p.health.fast_path.check_interval_seconds = Some(30);
        let fast = start(&aws, &p, TALLY).await.unwrap();
        assert_eq!(fast.check_every_seconds, 30);
        assert!(!fast.targets[0].live && fast.targets[0].note.as_deref().unwrap().contains("AccessDenied"));
        assert!(fast.targets[1].live);

        aws.delete_log_group("/aws/lambda/billing");
        let fast = start(&aws, &p, TALLY).await.unwrap();
        assert!(fast.targets[0].live, "the retry subscribes orders");
        assert!(!fast.targets[1].live && fast.targets[1].note.as_deref().unwrap().contains("not found"));

        let slow = PortError::Throttled { service: Service::CloudWatchLogs, message: "Rate exceeded".into() };
        aws.inject(Call::DescribeSubscriptionFilters, Fault::Fail(slow));
        let e = start(&aws, &p, TALLY).await.unwrap_err();
        assert_eq!(e.name(), "Throttled");
    }

    #[tokio::test]
    async fn other_routers_are_not_counted() {
        let aws = account();
        let web = PlannedTarget::new(
            Route::LambdaWeb(PlannedEndpoint { function: "web".into(), endpoint: "live".into() }),
            "r1",
            "r2",
        );
        let fast = start(&aws, &plan(vec![web], &[Source::Logs]), TALLY).await.unwrap();
        assert!(!fast.live());
        assert_eq!(fast.targets[0].note.as_deref(), Some(NOT_AN_ALIAS));
        assert!(aws.published_series().is_empty());
        assert_eq!(aws.writes(), 0);
    }

    #[tokio::test]
    async fn stop_removes_this_executions_filters_only_and_again_is_a_no_op() {
        let aws = account();
        let p = plan(
            vec![alias("orders", "live", "41", "42", None), alias("orders", "beta", "41", "42", None)],
            &[Source::Logs],
        );
        start(&aws, &p, TALLY).await.unwrap();
        aws.add_foreign_filter("/aws/lambda/billing", "stepshift/billing/live/-/another-execution");
        aws.add_foreign_filter("/aws/lambda/billing", "datadog");
        let functions = vec!["orders".to_owned(), "billing".to_owned(), "orders".to_owned(), "gone".to_owned()];
        assert_eq!(alias_functions(&p), ["orders"]);

        let stopped = stop(&aws, EXECUTION, &functions).await.unwrap();
        assert_eq!(stopped.removed, ["stepshift/orders/beta/-/orders-42", "stepshift/orders/live/-/orders-42"]);
        assert!(stopped.notes.iter().any(|n| n.contains("gone")), "{stopped:?}");
        assert!(aws.subscription_filters("/aws/lambda/orders").is_empty());
        assert_eq!(
            aws.subscription_filters("/aws/lambda/billing"),
            ["datadog", "stepshift/billing/live/-/another-execution"]
        );

        let again = stop(&aws, EXECUTION, &functions).await.unwrap();
        assert!(again.removed.is_empty());
        aws.delete_log_group("/aws/lambda/orders");
        let gone = stop(&aws, EXECUTION, &functions).await.unwrap();
        assert!(gone.notes.iter().any(|n| n.contains("/aws/lambda/orders no longer exists")), "{gone:?}");

        let busy = PortError::Unavailable { service: Service::CloudWatchLogs, message: "503".into() };
        aws.inject(Call::DescribeSubscriptionFilters, Fault::Fail(busy));
        assert_eq!(stop(&aws, EXECUTION, &functions).await.unwrap_err().name(), "AwsUnavailable");
    }
}
