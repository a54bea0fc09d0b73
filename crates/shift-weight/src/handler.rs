use serde_json::Value;
use stepshift_core::events;
use stepshift_core::ports::EventSink;
use stepshift_core::routers::MovePorts;
use stepshift_core::tasks::{TaskConfig, decode, traffic};
use stepshift_core::{TaskError, encode};

/// Decodes the input, shifts the traffic, publishes `Traffic Shifted` (best effort:
/// [`events::publish`]), encodes the new traffic state. With `"action": "sync"` ("Check
/// sync") it polls the pending Route53 changes instead, and publishes nothing.
pub async fn handle<P: MovePorts + EventSink>(
    ports: &P,
    _config: &TaskConfig,
    mut input: Value,
) -> Result<Value, TaskError> {
    if input.get("action").and_then(Value::as_str) == Some("sync") {
        input.as_object_mut().map(|m| m.remove("action"));
        let input: traffic::SyncInput = decode("shift-weight (sync)", input)?;
        return encode(traffic::sync(ports, input).await?);
    }
    let input: traffic::ShiftInput = decode("shift-weight", input)?;
    let (execution, targets, cursor, steps) =
        (input.execution.clone(), input.targets.clone(), input.cursor.clone(), input.steps);
    let shifted = traffic::shift(ports, input).await?;
    if let Some(execution) = &execution {
        let event = events::traffic_shifted(execution, &targets, &cursor, steps, &shifted, ports.now());
        events::publish(ports, &[event]).await;
    }
    encode(shifted)
}
