use serde_json::Value;
use stepshift_core::ports::{AlarmSource, MetricsSource};
use stepshift_core::route53::health::DistributionMetricsSource;
use stepshift_core::tasks::{TaskConfig, check, decode};
use stepshift_core::{Clock, TaskError, encode};

/// Decodes the input, judges the step, encodes the new progress.
pub async fn handle<P: MetricsSource + DistributionMetricsSource + AlarmSource + Clock>(
    ports: &P,
    _config: &TaskConfig,
    input: Value,
) -> Result<Value, TaskError> {
    let input: check::CheckInput = decode("check-health", input)?;
    encode(check::check(ports, input).await?)
}
