use serde_json::Value;
use stepshift_core::routers::MovePorts;
use stepshift_core::tasks::{TaskConfig, decode, traffic};
use stepshift_core::{TaskError, encode};

/// Decodes the input, promotes every candidate, encodes the new traffic state.
pub async fn handle<P: MovePorts>(ports: &P, _config: &TaskConfig, input: Value) -> Result<Value, TaskError> {
    let input: traffic::TargetsInput = decode("promote", input)?;
    encode(traffic::promote(ports, input).await?)
}
