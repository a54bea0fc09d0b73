//! The `tally` Lambda: builds its AWS clients once at cold start, then serves.
//!
//! "Start fast path" subscribes this function to the target log groups, so it needs its
//! own unqualified ARN: `STEPSHIFT_TALLY_ARN` if set, else the ARN it was invoked by,
//! qualifier stripped. The serve loop is its own (not `stepshift_aws::runtime::serve`)
//! to read that ARN from the invocation's context.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

/// Environment variable overriding the ARN "Start fast path" subscribes.
const ARN_VAR: &str = "STEPSHIFT_TALLY_ARN";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let ports = stepshift_aws::AwsPorts::from_env().await;
    let configured = std::env::var(ARN_VAR).ok().filter(|arn| !arn.is_empty());
    let (ports, configured) = (&ports, &configured);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let arn = match configured {
            Some(arn) => arn.clone(),
            None => tally::unqualified_arn(&event.context.invoked_function_arn).to_owned(),
        };
        tally::handle(ports, &arn, event.payload).await.map_err(|e| {
            tracing::error!(error_type = e.name(), error = %e, "tally failed");
            stepshift_aws::runtime::diagnostic(e)
        })
    }))
    .await
}
