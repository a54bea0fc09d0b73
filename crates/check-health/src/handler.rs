use serde_json::Value;
use stepshift_core::outcomes::OutcomeSource;
use stepshift_core::ports::AlarmSource;
use stepshift_core::routers::ObservePorts;
use stepshift_core::tasks::{TaskConfig, check, decode};
use stepshift_core::{Clock, TaskError, encode};

/// Decodes the input, judges the step, encodes the new progress.
pub async fn handle<P: ObservePorts + AlarmSource + OutcomeSource + Clock>(
    ports: &P,
    _config: &TaskConfig,
    input: Value,
) -> Result<Value, TaskError> {
    let input: check::CheckInput = decode("check-health", input)?;
    encode(check::check(ports, input).await?)
}
