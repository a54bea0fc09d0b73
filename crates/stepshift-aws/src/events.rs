//! EventBridge: the lifecycle events ([`stepshift_core::events`]), with PutEvents on the
//! bus named by [`EVENT_BUS_VAR`] (template.yaml sets it to the approval bus). Without
//! a bus, nothing is published.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_smithy_types::timeout::TimeoutConfig;
use stepshift_core::events::{LifecycleEvent, SERVICE, SOURCE};
use stepshift_core::ports::{EventSink, PortResult};
use stepshift_core::{PortError, truncate};

use crate::AwsPorts;
use crate::classify::classify;

/// Environment variable naming the event bus; unset or empty: publish nothing.
pub const EVENT_BUS_VAR: &str = "STEPSHIFT_EVENT_BUS";

/// Most entries one PutEvents call takes.
pub const MAX_ENTRIES: usize = 10;

/// The bus from the environment, if one is named.
pub(crate) fn bus_from_env() -> Option<String> {
    std::env::var(EVENT_BUS_VAR).ok().map(|b| b.trim().to_owned()).filter(|b| !b.is_empty())
}

/// The EventBridge client of `config`, with tight timeouts: a notification that hangs
/// must not hold a task until its own timeout (the publish is best effort, the task's
/// work is already done).
pub(crate) fn client(config: &SdkConfig) -> aws_sdk_eventbridge::Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(4))
        .operation_timeout(Duration::from_secs(10))
        .build();
    aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(config).timeout_config(timeouts).build(),
    )
}

/// One PutEvents entry: source `stepshift`, the detail-type, the detail as JSON, the
/// execution as the event's resource, and the event's time.
fn entry(bus: &str, event: &LifecycleEvent) -> PortResult<PutEventsRequestEntry> {
    let detail = serde_json::to_string(&event.detail).map_err(|e| PortError::Invalid {
        service: SERVICE,
        message: format!("the {} event could not be encoded: {e}", event.detail_type),
    })?;
    Ok(PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(SOURCE)
        .detail_type(event.detail_type.as_str())
        .detail(detail)
        .resources(&event.detail.execution)
        .time(aws_smithy_types::DateTime::from_millis(event.detail.at.millis()))
        .build())
}

impl EventSink for AwsPorts {
    async fn publish(&self, events: &[LifecycleEvent]) -> PortResult<()> {
        let Some(bus) = self.event_bus.as_deref() else { return Ok(()) };
        for chunk in events.chunks(MAX_ENTRIES) {
            let entries = chunk.iter().map(|e| entry(bus, e)).collect::<PortResult<Vec<_>>>()?;
            let out =
                self.events.put_events().set_entries(Some(entries)).send().await.map_err(|e| classify(SERVICE, e))?;
            if out.failed_entry_count() > 0 {
                return Err(failed_entries(bus, chunk, out.entries()));
            }
        }
        Ok(())
    }
}

/// The error of a PutEvents call that refused some entries (it answers 200 with
/// `FailedEntryCount`): throttled or internal failures may pass on a retry.
fn failed_entries(
    bus: &str,
    sent: &[LifecycleEvent],
    results: &[aws_sdk_eventbridge::types::PutEventsResultEntry],
) -> PortError {
    let failed: Vec<(&str, String)> = sent
        .iter()
        .zip(results)
        .filter_map(|(e, r)| {
            let code = r.error_code()?;
            Some((code, format!("{} ({code}: {})", e.detail_type, r.error_message().unwrap_or(""))))
        })
        .collect();
    let message = truncate(
        &format!(
            "PutEvents on {bus} refused {} of {} events: {}",
            failed.len().max(1),
            sent.len(),
            failed.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; ")
        ),
        1000,
    );
    let any = |codes: &[&str]| failed.iter().any(|(c, _)| codes.contains(c));
    if any(&["ThrottlingException"]) {
        PortError::Throttled { service: SERVICE, message }
    } else if any(&["InternalFailure", "InternalException", "ServiceUnavailable"]) {
        PortError::Unavailable { service: SERVICE, message }
    } else {
        PortError::Other { service: SERVICE, message }
    }
}
