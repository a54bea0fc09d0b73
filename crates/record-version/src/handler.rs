use serde_json::Value;
use stepshift_core::ports::{AlarmSource, AliasRouter, MetricsSource, ParameterStore, VersionCatalog};
use stepshift_core::route53::RecordRouter;
use stepshift_core::route53::health::DistributionMetricsSource;
use stepshift_core::tasks::{TaskConfig, decode, record};
use stepshift_core::{Clock, TaskError};

/// Decodes the action and runs it.
pub async fn handle<P>(ports: &P, config: &TaskConfig, input: Value) -> Result<Value, TaskError>
where
    P: AliasRouter
        + RecordRouter
        + VersionCatalog
        + AlarmSource
        + MetricsSource
        + DistributionMetricsSource
        + ParameterStore
        + Clock,
{
    let input: record::RecordInput = decode("record-version", input)?;
    record::record(ports, config, input).await
}
