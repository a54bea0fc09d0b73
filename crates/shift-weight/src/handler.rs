use serde_json::Value;
use stepshift_core::routers::MovePorts;
use stepshift_core::tasks::{TaskConfig, decode, traffic};
use stepshift_core::{TaskError, encode};

/// Decodes the input, shifts the traffic, encodes the new traffic state. With
/// `"action": "sync"` ("Check sync") it polls the pending Route53 changes instead.
pub async fn handle<P: MovePorts>(ports: &P, _config: &TaskConfig, mut input: Value) -> Result<Value, TaskError> {
    if input.get("action").and_then(Value::as_str) == Some("sync") {
        input.as_object_mut().map(|m| m.remove("action"));
        let input: traffic::SyncInput = decode("shift-weight (sync)", input)?;
        return encode(traffic::sync(ports, input).await?);
    }
    let input: traffic::ShiftInput = decode("shift-weight", input)?;
    encode(traffic::shift(ports, input).await?)
}
