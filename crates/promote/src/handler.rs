use serde_json::Value;
use stepshift_core::events;
use stepshift_core::ports::EventSink;
use stepshift_core::routers::MovePorts;
use stepshift_core::tasks::{TaskConfig, decode, traffic};
use stepshift_core::{TaskError, encode};

/// Decodes the input, promotes every candidate, publishes `Deployment Promoted` (best
/// effort: [`events::publish`]), encodes the new traffic state.
pub async fn handle<P: MovePorts + EventSink>(
    ports: &P,
    _config: &TaskConfig,
    input: Value,
) -> Result<Value, TaskError> {
    let input: traffic::TargetsInput = decode("promote", input)?;
    let (execution, targets) = (input.execution.clone(), input.targets.clone());
    let promoted = traffic::promote(ports, input).await?;
    if let Some(execution) = &execution {
        events::publish(ports, &[events::promoted(execution, &targets, &promoted, ports.now())]).await;
    }
    encode(promoted)
}
