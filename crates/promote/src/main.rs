//! The `promote` Lambda: builds its AWS clients once at cold start, then serves.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = stepshift_aws::runtime::task_config()?;
    let ports = stepshift_aws::AwsPorts::from_env().await;
    stepshift_aws::runtime::serve(|input| promote::handle(&ports, &config, input)).await
}
