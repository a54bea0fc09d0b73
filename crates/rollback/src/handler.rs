use serde_json::Value;
use stepshift_core::events;
use stepshift_core::ports::EventSink;
use stepshift_core::routers::MovePorts;
use stepshift_core::tasks::{TaskConfig, decode, traffic};
use stepshift_core::{TaskError, encode};

/// Decodes the input, rolls every target back, publishes `Deployment Rolled Back` with
/// the reason, or `Deployment Failed` when the rollback failed with an error the state
/// machine does not retry ([`events::after_rollback`]; best effort), encodes the report.
pub async fn handle<P: MovePorts + EventSink>(
    ports: &P,
    _config: &TaskConfig,
    input: Value,
) -> Result<Value, TaskError> {
    let input: traffic::RollbackInput = decode("rollback", input)?;
    let result = traffic::rollback(ports, input.targets()).await;
    if let Some(event) = events::after_rollback(&input, &result, ports.now()) {
        events::publish(ports, &[event]).await;
    }
    encode(result?)
}
