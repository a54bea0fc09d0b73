//! Shared by the adapter tests that talk to an emulator.

use aws_config::SdkConfig;
use stepshift_testkit::Emulator;

/// The emulator's endpoint, reached through the HTTP client the Lambdas use.
pub async fn config(emulator: &Emulator) -> SdkConfig {
    emulator.sdk_config_loader().http_client(stepshift_aws::https_client()).load().await
}
