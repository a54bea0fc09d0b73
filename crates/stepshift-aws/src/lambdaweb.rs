//! [`WebEndpoints`] on the `lambda-web` API (Lambda Web Functions): read an endpoint,
//! set its revision weights, read a revision's state.
//!
//! No emulator serves this API (neither ministack nor moto): `tests/lambdaweb.rs` pins
//! the requests and answers with aws-smithy-mocks, and `stepshift_core::memory` models
//! the service's documented rules for everything above this adapter.

use aws_sdk_lambdaweb::types::{self as web, AutoDeploymentMode, EndpointUpdateStatus};
use stepshift_core::ports::PortResult;
use stepshift_core::routers::web::{
    DeploymentMode, EndpointState, RevisionState, RevisionWeight, UpdateStatus, WebEndpoints,
};
use stepshift_core::{PortError, Service};

use crate::{AwsPorts, classify};

fn err<E>(e: aws_sdk_lambdaweb::error::SdkError<E, aws_sdk_lambdaweb::config::http::HttpResponse>) -> PortError
where
    E: aws_sdk_lambdaweb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    classify(Service::LambdaWeb, e)
}

/// [`endpoint`] of a Get or an Update answer: the two outputs have the same getters
/// but are different types, with no trait in common.
macro_rules! endpoint_of {
    ($out:expr) => {
        endpoint(
            $out.auto_deployment_mode(),
            $out.revision_weights(),
            $out.update_status(),
            $out.update_status_reason(),
        )
    };
}

/// The endpoint fields stepshift reads.
fn endpoint(
    mode: &AutoDeploymentMode,
    weights: &[web::RevisionWeight],
    update: Option<&EndpointUpdateStatus>,
    reason: Option<&str>,
) -> EndpointState {
    EndpointState {
        mode: match mode {
            AutoDeploymentMode::Disabled => DeploymentMode::Disabled,
            AutoDeploymentMode::LatestRevision => DeploymentMode::LatestRevision,
            other => DeploymentMode::Other(other.as_str().to_owned()),
        },
        weights: weights
            .iter()
            .map(|w| RevisionWeight {
                revision: w.revision_id().to_owned(),
                weight: u8::try_from(w.weight().clamp(0, 100)).unwrap_or(0),
            })
            .collect(),
        update: match update {
            None => UpdateStatus::None,
            Some(EndpointUpdateStatus::InProgress) => UpdateStatus::InProgress,
            Some(EndpointUpdateStatus::Successful) => UpdateStatus::Successful,
            Some(EndpointUpdateStatus::Failed) => {
                UpdateStatus::Failed(reason.unwrap_or("no updateStatusReason given").to_owned())
            }
            // A status this SDK does not know yet: keep waiting, the sync limit ends it.
            Some(_) => UpdateStatus::InProgress,
        },
    }
}

impl WebEndpoints for AwsPorts {
    async fn get_endpoint(&self, function: &str, endpoint_name: &str) -> PortResult<EndpointState> {
        let out = self
            .lambdaweb
            .get_web_function_endpoint()
            .function_name(function)
            .endpoint_name(endpoint_name)
            .send()
            .await
            .map_err(err)?;
        Ok(endpoint_of!(out))
    }

    async fn update_weights(
        &self,
        function: &str,
        endpoint_name: &str,
        weights: &[RevisionWeight],
    ) -> PortResult<EndpointState> {
        let weights = weights
            .iter()
            .map(|w| web::RevisionWeight::builder().revision_id(&w.revision).weight(i32::from(w.weight)).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PortError::Invalid { service: Service::LambdaWeb, message: e.to_string() })?;
        // Only the weights: every other field of the endpoint is left as it is.
        let out = self
            .lambdaweb
            .update_web_function_endpoint()
            .function_name(function)
            .endpoint_name(endpoint_name)
            .set_revision_weights(Some(weights))
            .send()
            .await
            .map_err(err)?;
        Ok(endpoint_of!(out))
    }

    async fn revision_state(&self, function: &str, revision: &str) -> PortResult<RevisionState> {
        let out = self
            .lambdaweb
            .get_web_function_revision()
            .function_name(function)
            .revision_id(revision)
            .send()
            .await
            .map_err(err)?;
        Ok(match out.state() {
            web::RevisionState::Active => RevisionState::Active,
            web::RevisionState::Pending => RevisionState::Pending,
            web::RevisionState::Failed => RevisionState::Failed,
            other => RevisionState::Other(other.as_str().to_owned()),
        })
    }
}
