//! The simulator model of the Lambda Web Function router: an endpoint whose revision
//! weights split its requests. The endpoint's rules (asynchronous updates, whole
//! weights, at most two revisions) are `MemoryAws`'s; traffic follows the weights of
//! the last update that took effect.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stepshift_core::memory::MemoryAws;
use stepshift_core::ports::{AliasRouting, PortResult};
use stepshift_core::routers::web::{DeploymentMode, EndpointState, RevisionState, RevisionWeight, WebEndpoints};

use super::{Behavior, Published, SimAws, SimRoute, StreamAlarm, VersionModel};

/// One simulated Web Function endpoint taking traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebModel {
    /// The Web Function's name.
    pub function: String,
    /// The endpoint's name.
    pub endpoint: String,
    /// The revisions that exist, all Active.
    pub revisions: Vec<String>,
    /// The revision the endpoint serves at the start.
    pub serving: String,
    /// Requests per second to the endpoint.
    pub requests_per_second: f64,
    /// Behavior per revision (`error_rate` is the 5xx share).
    #[serde(default)]
    pub behaviors: BTreeMap<String, VersionModel>,
    /// The behavior of every unlisted revision.
    #[serde(default)]
    pub default_behavior: Behavior,
    /// An alarm on the endpoint's 5xx share (AWS/Lambda/Web `HTTPResponseStatusClass5XX`
    /// over its requests), which is what judges a Web Function endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<StreamAlarm>,
    /// How long an endpoint update stays InProgress, in seconds.
    #[serde(default)]
    pub update_seconds: i64,
}

impl SimRoute for WebModel {
    fn install(&self, aws: &MemoryAws) {
        let revisions: Vec<&str> = self.revisions.iter().map(String::as_str).collect();
        aws.add_web_revisions(&self.function, &revisions, RevisionState::Active);
        aws.add_web_endpoint(&self.function, &self.endpoint, &self.serving, DeploymentMode::Disabled);
        aws.set_web_update_seconds(self.update_seconds);
    }

    fn routing(&self, aws: &MemoryAws) -> Option<AliasRouting> {
        let serving = aws.web_serving(&self.function, &self.endpoint)?;
        Some(match serving.as_slice() {
            [a, b] => AliasRouting::split(a.revision.clone(), b.revision.clone(), f64::from(b.weight) / 100.0),
            [only, ..] => AliasRouting::single(only.revision.clone()),
            [] => return None,
        })
    }

    fn requests_per_second(&self) -> f64 {
        self.requests_per_second
    }

    fn model_of(&self, revision: &str) -> VersionModel {
        self.behaviors.get(revision).cloned().unwrap_or_else(|| VersionModel::steady(self.default_behavior.clone()))
    }

    fn published(&self) -> Published {
        Published::PerEndpointOnly
    }

    fn name(&self) -> String {
        format!("{}/{}", self.function, self.endpoint)
    }

    fn alarm(&self) -> Option<&StreamAlarm> {
        self.alarm.as_ref()
    }
}

impl WebEndpoints for SimAws {
    async fn get_endpoint(&self, function: &str, endpoint: &str) -> PortResult<EndpointState> {
        // A read can complete an update, which changes where traffic goes from now on.
        self.generate();
        self.aws.get_endpoint(function, endpoint).await
    }

    async fn update_weights(
        &self,
        function: &str,
        endpoint: &str,
        weights: &[RevisionWeight],
    ) -> PortResult<EndpointState> {
        self.generate();
        self.aws.update_weights(function, endpoint, weights).await
    }

    async fn revision_state(&self, function: &str, revision: &str) -> PortResult<RevisionState> {
        self.aws.revision_state(function, revision).await
    }
}
