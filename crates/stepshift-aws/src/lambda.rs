//! [`AliasRouter`] and [`VersionCatalog`] on AWS Lambda's control plane.

use std::collections::HashMap;

use aws_sdk_lambda::types::{AliasConfiguration, AliasRoutingConfiguration};
use stepshift_core::ports::{AliasRouter, AliasRouting, AliasState, PortResult, VersionCatalog};
use stepshift_core::{PortError, Service};

use crate::{AwsPorts, classify};

fn routing_of(function_version: Option<&str>, routing: Option<&AliasRoutingConfiguration>) -> AliasRouting {
    let additional = routing
        .and_then(|r| r.additional_version_weights())
        .and_then(|weights| weights.iter().next())
        .map(|(v, w)| (v.clone(), *w));
    AliasRouting { version: function_version.unwrap_or_default().to_owned(), additional }
}

fn state_of(alias: &AliasConfiguration) -> AliasState {
    AliasState {
        routing: routing_of(alias.function_version(), alias.routing_config()),
        revision_id: alias.revision_id().unwrap_or_default().to_owned(),
    }
}

fn err<E>(e: aws_sdk_lambda::error::SdkError<E, aws_sdk_lambda::config::http::HttpResponse>) -> PortError
where
    E: aws_sdk_lambda::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    classify(Service::Lambda, e)
}

fn not_found(function: &str, alias: &str) -> PortError {
    PortError::NotFound { service: Service::Lambda, message: format!("{function}:{alias} does not exist") }
}

impl AliasRouter for AwsPorts {
    async fn get_alias(&self, function: &str, alias: &str) -> PortResult<AliasState> {
        let out = self.lambda.get_alias().function_name(function).name(alias).send().await.map_err(|e| {
            match e.as_service_error() {
                Some(se) if se.is_resource_not_found_exception() => not_found(function, alias),
                _ => err(e),
            }
        })?;
        Ok(AliasState {
            routing: routing_of(out.function_version(), out.routing_config()),
            revision_id: out.revision_id().unwrap_or_default().to_owned(),
        })
    }

    async fn update_alias(
        &self,
        function: &str,
        alias: &str,
        routing: &AliasRouting,
        expected_revision: Option<&str>,
    ) -> PortResult<AliasState> {
        // Always send a routing configuration: leaving it out keeps the old one, and an
        // empty map is how Lambda clears it.
        let weights: HashMap<String, f64> = routing.additional.iter().cloned().collect();
        let config = AliasRoutingConfiguration::builder().set_additional_version_weights(Some(weights)).build();
        let out = self
            .lambda
            .update_alias()
            .function_name(function)
            .name(alias)
            .function_version(&routing.version)
            .routing_config(config)
            .set_revision_id(expected_revision.map(str::to_owned))
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(se) if se.is_precondition_failed_exception() => PortError::PreconditionFailed {
                    service: Service::Lambda,
                    message: format!("{function}:{alias} changed since revision {}", expected_revision.unwrap_or("?")),
                },
                Some(se) if se.is_resource_not_found_exception() => not_found(function, alias),
                _ => err(e),
            })?;
        Ok(AliasState {
            routing: routing_of(out.function_version(), out.routing_config()),
            revision_id: out.revision_id().unwrap_or_default().to_owned(),
        })
    }
}

impl VersionCatalog for AwsPorts {
    async fn list_versions(&self, function: &str) -> PortResult<Vec<String>> {
        let mut pages = self.lambda.list_versions_by_function().function_name(function).into_paginator().items().send();
        let mut versions = Vec::new();
        while let Some(item) = pages.next().await {
            let config = item.map_err(err)?;
            match config.version() {
                Some(v) if v != "$LATEST" => versions.push(v.to_owned()),
                _ => {}
            }
        }
        Ok(versions)
    }

    async fn list_aliases(&self, function: &str) -> PortResult<Vec<(String, AliasRouting)>> {
        let mut pages = self.lambda.list_aliases().function_name(function).into_paginator().items().send();
        let mut aliases = Vec::new();
        while let Some(item) = pages.next().await {
            let alias = item.map_err(err)?;
            aliases.push((alias.name().unwrap_or_default().to_owned(), state_of(&alias).routing));
        }
        Ok(aliases)
    }

    async fn delete_version(&self, function: &str, version: &str) -> PortResult<()> {
        self.lambda.delete_function().function_name(function).qualifier(version).send().await.map_err(err)?;
        Ok(())
    }
}
