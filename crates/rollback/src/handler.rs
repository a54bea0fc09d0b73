use serde_json::Value;
use stepshift_core::routers::MovePorts;
use stepshift_core::tasks::{TaskConfig, decode, traffic};
use stepshift_core::{TaskError, encode};

/// Decodes the input, rolls every target back, encodes the report.
pub async fn handle<P: MovePorts>(ports: &P, _config: &TaskConfig, input: Value) -> Result<Value, TaskError> {
    let input: traffic::RollbackInput = decode("rollback", input)?;
    encode(traffic::rollback(ports, input.targets()).await?)
}
