//! Shared by the adapter tests that talk to an emulator.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_lambda::config::Credentials;
use stepshift_testkit::Emulator;

/// The emulator's endpoint, reached through the HTTP client the Lambdas use.
pub async fn config(emulator: &Emulator) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(stepshift_aws::https_client())
        .region(Region::new("us-east-1"))
        .endpoint_url(&emulator.url)
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .load()
        .await
}
