//! [`LogSubscriptions`] on CloudWatch Logs, and Lambda for where a function logs.
//!
//! A log group takes at most two subscription filters; a third is refused with
//! LimitExceededException, which becomes [`PortError::Invalid`] with the service's
//! message (the caller turns it into "no fast path" and a warning). A put or delete
//! racing another one on the same log group is OperationAbortedException: a
//! [`PortError::Conflict`], retryable.

use aws_sdk_cloudwatchlogs::error::{ProvideErrorMetadata, SdkError};
use stepshift_core::outcomes::LogSubscriptions;
use stepshift_core::ports::PortResult;
use stepshift_core::{PortError, Service};

use crate::{AwsPorts, classify};

const SERVICE: Service = Service::CloudWatchLogs;

/// Classifies a CloudWatch Logs error: its own codes first, then the shared table.
fn err<E>(e: SdkError<E, aws_sdk_cloudwatchlogs::config::http::HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = e.code().unwrap_or_default().to_owned();
    let message = || e.message().map_or_else(|| code.clone(), str::to_owned);
    match code.as_str() {
        // A log group's two filters are taken (or another account limit).
        "LimitExceededException" | "InvalidParameterException" => {
            PortError::Invalid { service: SERVICE, message: message() }
        }
        "OperationAbortedException" => PortError::Conflict { service: SERVICE, message: message() },
        "ServiceUnavailableException" => PortError::Unavailable { service: SERVICE, message: message() },
        _ => classify(SERVICE, e),
    }
}

fn lambda_err<E>(e: aws_sdk_lambda::error::SdkError<E, aws_sdk_lambda::config::http::HttpResponse>) -> PortError
where
    E: aws_sdk_lambda::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    classify(Service::Lambda, e)
}

impl LogSubscriptions for AwsPorts {
    async fn log_group_of(&self, function: &str) -> PortResult<String> {
        let out = self.lambda.get_function_configuration().function_name(function).send().await.map_err(lambda_err)?;
        if let Some(group) = out.logging_config().and_then(|c| c.log_group()).filter(|g| !g.is_empty()) {
            return Ok(group.to_owned());
        }
        // `function` may be an ARN; the default group is named after the bare name.
        let name = out.function_name().unwrap_or(function);
        Ok(format!("/aws/lambda/{name}"))
    }

    async fn filters(&self, log_group: &str) -> PortResult<Vec<String>> {
        let mut pages = self.logs.describe_subscription_filters().log_group_name(log_group).into_paginator().send();
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(err)?;
            names.extend(page.subscription_filters().iter().filter_map(|f| f.filter_name()).map(str::to_owned));
        }
        Ok(names)
    }

    async fn put_filter(&self, log_group: &str, name: &str, pattern: &str, destination_arn: &str) -> PortResult<()> {
        self.logs
            .put_subscription_filter()
            .log_group_name(log_group)
            .filter_name(name)
            .filter_pattern(pattern)
            .destination_arn(destination_arn)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn delete_filter(&self, log_group: &str, name: &str) -> PortResult<()> {
        match self.logs.delete_subscription_filter().log_group_name(log_group).filter_name(name).send().await {
            Ok(_) => Ok(()),
            // The filter, or its whole log group, is gone: what deleting wanted.
            Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }
}
