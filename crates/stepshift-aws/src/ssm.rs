//! [`ParameterStore`] on SSM Parameter Store (standard String parameters).

use aws_sdk_ssm::types::ParameterType;
use stepshift_core::ports::{ParameterStore, PortResult};
use stepshift_core::{PortError, Service};

use crate::{AwsPorts, classify};

fn err<E>(e: aws_sdk_ssm::error::SdkError<E, aws_sdk_ssm::config::http::HttpResponse>) -> PortError
where
    E: aws_sdk_ssm::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    classify(Service::Ssm, e)
}

/// GetParameters takes at most 10 names a call.
const NAMES_PER_CALL: usize = 10;

impl ParameterStore for AwsPorts {
    async fn get_many(&self, names: &[String]) -> PortResult<Vec<(String, String)>> {
        let mut found = Vec::new();
        for chunk in names.chunks(NAMES_PER_CALL) {
            let out = self.ssm.get_parameters().set_names(Some(chunk.to_vec())).send().await.map_err(err)?;
            for p in out.parameters() {
                if let (Some(name), Some(value)) = (p.name(), p.value()) {
                    found.push((name.to_owned(), value.to_owned()));
                }
            }
        }
        Ok(found)
    }

    async fn put(&self, name: &str, value: &str) -> PortResult<()> {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn create(&self, name: &str, value: &str) -> PortResult<()> {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(false)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(se) if se.is_parameter_already_exists() => {
                    PortError::AlreadyExists { service: Service::Ssm, message: format!("{name} already exists") }
                }
                _ => err(e),
            })?;
        Ok(())
    }

    async fn delete(&self, name: &str) -> PortResult<()> {
        match self.ssm.delete_parameter().name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_parameter_not_found()) => Ok(()),
            Err(e) => match err(e) {
                PortError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }
}
