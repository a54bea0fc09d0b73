//! The simulator model of the Route53 router: a web front end whose record sends
//! clients to the blue or the green CloudFront distribution.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stepshift_core::memory::MemoryAws;
use stepshift_core::ports::AliasRouting;
use stepshift_core::routers::route53::{BLUE_ID, Endpoint, GREEN_ID, RecordSet, RecordTarget, share_of_green};

use super::{Behavior, Published, SimRoute, VersionModel};

/// One simulated web front end: a Route53 record that sends clients to the blue or the
/// green CloudFront distribution, by the weights of its record sets. The site's
/// requests per distribution, and their 5xx responses (as errors), are CloudFront's
/// metrics of that distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteModel {
    /// The record, with both endpoints; each needs a `distribution_id`.
    pub record: RecordTarget,
    /// Requests per second to the site.
    pub requests_per_second: f64,
    /// Behavior per distribution id (only `error_rate` counts: the 5xx share).
    #[serde(default)]
    pub behaviors: BTreeMap<String, VersionModel>,
    /// The behavior of every unlisted distribution.
    #[serde(default)]
    pub default_behavior: Behavior,
}

impl SiteModel {
    fn ids(&self) -> (String, String) {
        let id = |e: &Endpoint| e.distribution_id.clone().unwrap_or_else(|| e.label());
        (id(&self.record.blue), id(&self.record.green))
    }

    /// Where the record sets send clients, as a routing between the distributions.
    fn routing_of(&self, found: &[RecordSet]) -> AliasRouting {
        let (blue, green) = self.ids();
        let weight = |id: &str| found.iter().find(|r| r.set_identifier.as_deref() == Some(id)).and_then(|r| r.weight);
        let share = match (weight(BLUE_ID), weight(GREEN_ID)) {
            (Some(b), Some(g)) => share_of_green(b, g) / 100.0,
            _ if found.iter().any(|r| *r == self.record.promoted()) => 1.0,
            _ => 0.0,
        };
        if share <= 0.0 {
            AliasRouting::single(blue)
        } else if share >= 1.0 {
            AliasRouting::single(green)
        } else {
            AliasRouting::split(blue, green, share)
        }
    }
}

impl SimRoute for SiteModel {
    fn install(&self, aws: &MemoryAws) {
        let zone = &self.record.hosted_zone_id;
        let mut records = aws.record_sets(zone);
        records.push(self.record.before_release());
        aws.add_zone(zone, records);
    }

    fn routing(&self, aws: &MemoryAws) -> Option<AliasRouting> {
        let r = &self.record;
        Some(self.routing_of(&aws.records_named(&r.hosted_zone_id, &r.name(), r.record_type.as_str())))
    }

    fn requests_per_second(&self) -> f64 {
        self.requests_per_second
    }

    fn model_of(&self, distribution: &str) -> VersionModel {
        self.behaviors.get(distribution).cloned().unwrap_or_else(|| VersionModel::steady(self.default_behavior.clone()))
    }

    fn published(&self) -> Published {
        Published::CloudFront
    }

    fn name(&self) -> String {
        format!("site {}", self.record.label())
    }
}
