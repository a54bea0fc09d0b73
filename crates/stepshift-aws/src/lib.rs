//! stepshift's ports on the AWS SDK for Rust.
//!
//! [`AwsPorts`] holds one client per service, all built from one `SdkConfig`, so
//! `AWS_ENDPOINT_URL` (and the per-service `AWS_ENDPOINT_URL_LAMBDA`, `_SSM`,
//! `_CLOUDWATCH`) point them at an emulator. Build it once per process: loading the
//! configuration is the expensive part, building clients is cheap.

mod classify;
mod cloudwatch;
mod lambda;
#[cfg(feature = "lambda")]
pub mod runtime;
mod ssm;

pub use classify::classify;

use aws_config::{BehaviorVersion, SdkConfig};
use stepshift_core::{Clock, SystemClock, Timestamp};

/// Lambda, CloudWatch and SSM clients implementing every stepshift port.
#[derive(Clone, Debug)]
pub struct AwsPorts {
    lambda: aws_sdk_lambda::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    ssm: aws_sdk_ssm::Client,
}

impl AwsPorts {
    /// Clients built from one shared configuration.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            lambda: aws_sdk_lambda::Client::new(config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
        }
    }

    /// Ports on existing clients (tests use mocked ones).
    pub fn from_clients(
        lambda: aws_sdk_lambda::Client,
        cloudwatch: aws_sdk_cloudwatch::Client,
        ssm: aws_sdk_ssm::Client,
    ) -> Self {
        Self { lambda, cloudwatch, ssm }
    }

    /// Clients from the environment's configuration (region, credentials, endpoints).
    pub async fn from_env() -> Self {
        Self::new(&load_config().await)
    }
}

/// Loads the AWS configuration from the environment the way the AWS CLI does.
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

impl Clock for AwsPorts {
    fn now(&self) -> Timestamp {
        SystemClock.now()
    }
}

fn to_smithy(t: Timestamp) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_millis(t.millis())
}

fn from_smithy(t: &aws_smithy_types::DateTime) -> Timestamp {
    Timestamp::from_millis(t.to_millis().unwrap_or(0))
}
