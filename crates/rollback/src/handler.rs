use serde_json::Value;
use stepshift_core::ports::AliasRouter;
use stepshift_core::route53::RecordRouter;
use stepshift_core::tasks::{TaskConfig, decode, traffic};
use stepshift_core::{TaskError, encode};

/// Decodes the input, rolls every target back, encodes the report.
pub async fn handle<P: AliasRouter + RecordRouter>(
    ports: &P,
    _config: &TaskConfig,
    input: Value,
) -> Result<Value, TaskError> {
    let input: traffic::TargetsInput = decode("rollback", input)?;
    encode(traffic::rollback(ports, input).await?)
}
