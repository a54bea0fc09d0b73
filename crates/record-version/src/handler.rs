use serde_json::Value;
use stepshift_core::TaskError;
use stepshift_core::tasks::record::RecordPorts;
use stepshift_core::tasks::{TaskConfig, decode, record};

/// Decodes the action and runs it.
pub async fn handle<P: RecordPorts>(ports: &P, config: &TaskConfig, input: Value) -> Result<Value, TaskError> {
    let input: record::RecordInput = decode("record-version", input)?;
    record::record(ports, config, input).await
}
