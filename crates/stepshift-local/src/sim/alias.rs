//! The simulator model of the Lambda alias router: a function whose alias takes traffic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stepshift_core::memory::MemoryAws;
use stepshift_core::ports::AliasRouting;

use super::{Behavior, Published, SimRoute, VersionModel};

/// One simulated function with one alias taking traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionModel {
    /// Function name.
    pub function: String,
    /// Alias name.
    pub alias: String,
    /// Published versions 1..=N exist.
    pub versions: u64,
    /// The version the alias serves at the start.
    pub serving: String,
    /// Requests per second through the alias.
    pub requests_per_second: f64,
    /// Behavior per version; versions not listed behave like `default_behavior`.
    #[serde(default)]
    pub behaviors: BTreeMap<String, VersionModel>,
    /// The behavior of every unlisted version.
    #[serde(default)]
    pub default_behavior: Behavior,
}

impl SimRoute for FunctionModel {
    fn install(&self, aws: &MemoryAws) {
        aws.add_function(&self.function, self.versions);
        aws.put_alias(&self.function, &self.alias, AliasRouting::single(self.serving.clone()));
    }

    fn routing(&self, aws: &MemoryAws) -> Option<AliasRouting> {
        aws.alias(&self.function, &self.alias).map(|a| a.routing)
    }

    fn requests_per_second(&self) -> f64 {
        self.requests_per_second
    }

    fn model_of(&self, version: &str) -> VersionModel {
        self.behaviors.get(version).cloned().unwrap_or_else(|| VersionModel::steady(self.default_behavior.clone()))
    }

    fn published(&self) -> Published {
        Published::Lambda { function: self.function.clone(), alias: self.alias.clone() }
    }

    fn name(&self) -> String {
        self.function.clone()
    }
}
