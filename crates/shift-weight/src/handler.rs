use serde_json::Value;
use stepshift_core::ports::AliasRouter;
use stepshift_core::tasks::{TaskConfig, decode, traffic};
use stepshift_core::{Clock, TaskError, encode};

/// Decodes the input, shifts the traffic, encodes the new traffic state.
pub async fn handle<P: AliasRouter + Clock>(ports: &P, _config: &TaskConfig, input: Value) -> Result<Value, TaskError> {
    let input: traffic::ShiftInput = decode("shift-weight", input)?;
    encode(traffic::shift(ports, input).await?)
}
