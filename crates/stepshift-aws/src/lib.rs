//! stepshift's ports on the AWS SDK for Rust.
//!
//! [`AwsPorts`] holds one client per service, all built from one `SdkConfig`, so
//! `AWS_ENDPOINT_URL` (and the per-service `AWS_ENDPOINT_URL_LAMBDA`, `_SSM`,
//! `_CLOUDWATCH`, `_CLOUDWATCH_LOGS`, `_EVENTBRIDGE`) point them at an emulator. Build it once per process: loading the
//! configuration is the expensive part, building clients is cheap.

mod classify;
#[cfg(feature = "cloudwatch-api")]
mod cloudwatch;
#[cfg(feature = "events-api")]
pub mod events;
#[cfg(feature = "lambda-api")]
mod lambda;
#[cfg(feature = "lambdaweb-api")]
mod lambdaweb;
#[cfg(all(feature = "logs-api", feature = "lambda-api"))]
mod logs;
#[cfg(feature = "cloudwatch-api")]
mod outcomes;
#[cfg(feature = "route53-api")]
mod route53;
#[cfg(feature = "lambda")]
pub mod runtime;
#[cfg(feature = "ssm-api")]
mod ssm;

pub use classify::classify;

use aws_config::{BehaviorVersion, SdkConfig};
use stepshift_core::{Clock, SystemClock, Timestamp};

/// Clients implementing the stepshift ports of the enabled services: Lambda
/// (`AliasRouter`, `VersionCatalog`), CloudWatch (`MetricsSource`, `AlarmSource`,
/// `OutcomeSource`, `OutcomeSink`), SSM (`ParameterStore`), CloudWatch Logs with
/// Lambda (`LogSubscriptions`) and EventBridge (`EventSink`).
#[derive(Clone, Debug)]
pub struct AwsPorts {
    #[cfg(feature = "lambda-api")]
    lambda: aws_sdk_lambda::Client,
    #[cfg(feature = "cloudwatch-api")]
    cloudwatch: aws_sdk_cloudwatch::Client,
    #[cfg(feature = "ssm-api")]
    ssm: aws_sdk_ssm::Client,
    #[cfg(feature = "route53-api")]
    route53: aws_sdk_route53::Client,
    #[cfg(feature = "lambdaweb-api")]
    lambdaweb: aws_sdk_lambdaweb::Client,
    #[cfg(feature = "logs-api")]
    #[cfg_attr(not(feature = "lambda-api"), allow(dead_code))] // `LogSubscriptions` needs both
    logs: aws_sdk_cloudwatchlogs::Client,
    #[cfg(feature = "events-api")]
    events: aws_sdk_eventbridge::Client,
    /// The bus lifecycle events go to (`STEPSHIFT_EVENT_BUS`); `None` publishes nothing.
    #[cfg(feature = "events-api")]
    event_bus: Option<String>,
}

impl AwsPorts {
    /// Clients built from one shared configuration. With `events-api`, the event bus
    /// comes from `STEPSHIFT_EVENT_BUS` ([`events::EVENT_BUS_VAR`]).
    pub fn new(#[allow(unused_variables)] config: &SdkConfig) -> Self {
        Self {
            #[cfg(feature = "lambda-api")]
            lambda: aws_sdk_lambda::Client::new(config),
            #[cfg(feature = "cloudwatch-api")]
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            #[cfg(feature = "ssm-api")]
            ssm: aws_sdk_ssm::Client::new(config),
            #[cfg(feature = "route53-api")]
            route53: aws_sdk_route53::Client::new(config),
            #[cfg(feature = "lambdaweb-api")]
            lambdaweb: aws_sdk_lambdaweb::Client::new(config),
            #[cfg(feature = "logs-api")]
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            #[cfg(feature = "events-api")]
            events: events::client(config),
            #[cfg(feature = "events-api")]
            event_bus: events::bus_from_env(),
        }
    }

    /// Ports on existing clients (tests use mocked ones).
    /// With `route53-api`, `lambdaweb-api` and `logs-api`, those clients are unconfigured
    /// ones; set them with [`AwsPorts::with_route53`], [`AwsPorts::with_lambdaweb`] and
    /// [`AwsPorts::with_logs`].
    #[cfg(all(feature = "lambda-api", feature = "cloudwatch-api", feature = "ssm-api"))]
    pub fn from_clients(
        lambda: aws_sdk_lambda::Client,
        cloudwatch: aws_sdk_cloudwatch::Client,
        ssm: aws_sdk_ssm::Client,
    ) -> Self {
        Self {
            lambda,
            cloudwatch,
            ssm,
            #[cfg(feature = "route53-api")]
            route53: aws_sdk_route53::Client::from_conf(
                aws_sdk_route53::Config::builder().behavior_version(BehaviorVersion::latest()).build(),
            ),
            #[cfg(feature = "lambdaweb-api")]
            lambdaweb: aws_sdk_lambdaweb::Client::from_conf(
                aws_sdk_lambdaweb::Config::builder().behavior_version(BehaviorVersion::latest()).build(),
            ),
            #[cfg(feature = "logs-api")]
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(
                aws_sdk_cloudwatchlogs::Config::builder().behavior_version(BehaviorVersion::latest()).build(),
            ),
            #[cfg(feature = "events-api")]
            events: aws_sdk_eventbridge::Client::from_conf(
                aws_sdk_eventbridge::Config::builder().behavior_version(BehaviorVersion::latest()).build(),
            ),
            #[cfg(feature = "events-api")]
            event_bus: None,
        }
    }

    /// Ports on an existing Route53 client, the others built from `config`.
    #[cfg(feature = "route53-api")]
    #[allow(clippy::needless_update)] // with route53-api alone, route53 is the only field
    pub fn with_route53(self, route53: aws_sdk_route53::Client) -> Self {
        Self { route53, ..self }
    }

    /// Ports on an existing Lambda Web client, the others as they are.
    #[cfg(feature = "lambdaweb-api")]
    #[allow(clippy::needless_update)] // with lambdaweb-api alone, lambdaweb is the only field
    pub fn with_lambdaweb(self, lambdaweb: aws_sdk_lambdaweb::Client) -> Self {
        Self { lambdaweb, ..self }
    }

    /// Ports on an existing CloudWatch Logs client, the others as they are.
    #[cfg(feature = "logs-api")]
    #[allow(clippy::needless_update)] // with logs-api alone, logs is the only field
    pub fn with_logs(self, logs: aws_sdk_cloudwatchlogs::Client) -> Self {
        Self { logs, ..self }
    }

    /// Ports on an existing EventBridge client publishing to `bus` (`None`: nothing), the
    /// others as they are.
    #[cfg(feature = "events-api")]
    #[allow(clippy::needless_update)] // with events-api alone, these are the only fields
    pub fn with_events(self, events: aws_sdk_eventbridge::Client, bus: Option<String>) -> Self {
        Self { events, event_bus: bus, ..self }
    }

    /// Clients from the environment's configuration (region, credentials, endpoints).
    pub async fn from_env() -> Self {
        Self::new(&load_config().await)
    }
}

/// Loads the AWS configuration from the environment the way the AWS CLI does, with
/// [`https_client`] for every request (credential providers included). Nothing here
/// touches the network: credentials are resolved on the first request.
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).http_client(https_client()).load().await
}

/// The one HTTPS client of stepshift: hyper with rustls on ring. Connections are pooled
/// in the client, and the client lives as long as the process, so a warm Lambda reuses
/// its TLS connections across invocations.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

impl Clock for AwsPorts {
    fn now(&self) -> Timestamp {
        SystemClock.now()
    }
}
