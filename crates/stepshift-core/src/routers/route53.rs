//! Front-end blue/green at the DNS level: one Route53 record moved from a blue endpoint
//! (say the CloudFront distribution serving today's site) to a green one, in weighted
//! steps, and put back exactly as it was on rollback.
//!
//! This module is the pure part: the target as the execution input states it, its
//! validation, the percentage → weight mapping, and the change batches for each phase
//! of a release. Every batch is applied with one `ChangeResourceRecordSets` call, which
//! Route53 applies atomically: all of it or none of it. The [`RecordRouter`] port
//! applies them; [`crate::memory`] holds a fake that enforces Route53's rules.
//!
//! The phases:
//! - **split** (the first shift): DELETE the simple record exactly as found, CREATE a
//!   blue and a green weighted record. Route53 refuses a simple and a weighted record of
//!   the same name and type side by side, so this must be one batch.
//! - **step**: UPSERT both weighted records with the step's weights.
//! - **promote**: DELETE both weighted records, CREATE a simple record for green. Simple
//!   routing again, so the next release starts from the same shape.
//! - **restore** (rollback): DELETE the weighted records as found, CREATE the original
//!   simple record as recorded at the start.

pub mod health;
pub mod release;
mod router;

pub use router::PlannedRecord;

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::ports::PortResult;

/// The SetIdentifier of the blue weighted record.
pub const BLUE_ID: &str = "stepshift-blue";
/// The SetIdentifier of the green weighted record.
pub const GREEN_ID: &str = "stepshift-green";
/// How the version records of every record begin: `route53-{zone}`.
pub const SCOPE_PREFIX: &str = "route53-";
/// Route53's largest weight.
pub const MAX_WEIGHT: u16 = 255;

/// A record moved from `blue` to `green` (`"kind": "route53"` in the execution input).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordTarget {
    /// The hosted zone holding the record, e.g. `Z0123456789ABCDEFGHIJ`.
    pub hosted_zone_id: String,
    /// The record's name, e.g. `www.example.com` (a final dot is optional).
    pub record_name: String,
    /// `A`, `AAAA` or `CNAME`.
    pub record_type: RecordType,
    /// Where the record points today.
    pub blue: Endpoint,
    /// Where it should point when the release is done.
    pub green: Endpoint,
}

/// The record types a front end is released through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordType {
    /// IPv4: a CloudFront alias, or addresses.
    A,
    /// IPv6: a CloudFront alias, or addresses.
    #[serde(rename = "AAAA")]
    Aaaa,
    /// A canonical name.
    #[serde(rename = "CNAME")]
    Cname,
}

impl RecordType {
    /// The name Route53 uses.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
        }
    }
}

/// One side of the release: an alias target (a CloudFront distribution) or plain values
/// with a TTL, plus the CloudFront distribution whose metrics judge it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// A Route53 alias target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_target: Option<AliasTarget>,
    /// Record values (addresses or a name), used with `ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// The TTL of `values`, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// The CloudFront distribution behind this endpoint (`E2QWRUHEXAMPLE`), whose
    /// `AWS/CloudFront` metrics the health check reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution_id: Option<String>,
}

/// The hosted zone id of every CloudFront distribution, for alias targets.
pub const CLOUDFRONT_ZONE: &str = "Z2FDTNDATAQYW2";

impl Endpoint {
    /// What the records call this endpoint, as a Lambda target calls a version: its
    /// distribution id, else its alias target's name, else its values.
    pub fn label(&self) -> String {
        if let Some(d) = &self.distribution_id {
            return d.clone();
        }
        match (&self.alias_target, &self.values) {
            (Some(a), _) => a.dns_name.trim_end_matches('.').to_owned(),
            (None, Some(v)) => v.join(","),
            (None, None) => "nothing".to_owned(),
        }
    }

    /// An alias to a CloudFront distribution's domain name (`d111111abcdef8.cloudfront.net`).
    pub fn cloudfront(dns_name: &str, distribution_id: Option<&str>) -> Self {
        Endpoint {
            alias_target: Some(AliasTarget {
                dns_name: dns_name.to_owned(),
                hosted_zone_id: CLOUDFRONT_ZONE.to_owned(),
                evaluate_target_health: false,
            }),
            values: None,
            ttl: None,
            distribution_id: distribution_id.map(str::to_owned),
        }
    }
}

/// A Route53 alias target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasTarget {
    /// e.g. `d111111abcdef8.cloudfront.net`
    pub dns_name: String,
    /// The target's hosted zone; `Z2FDTNDATAQYW2` for every CloudFront distribution.
    pub hosted_zone_id: String,
    /// Whether Route53 checks the target's health.
    #[serde(default)]
    pub evaluate_target_health: bool,
}

/// A record set as Route53 holds it: simple when `set_identifier` is `None`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSet {
    /// Fully qualified, with the final dot.
    pub name: String,
    /// `A`, `AAAA`, `CNAME`, ...
    pub record_type: String,
    /// Weighted records only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_identifier: Option<String>,
    /// Weighted records only: 0 to 255.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    /// Plain records only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// Plain records only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Alias records only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_target: Option<AliasTarget>,
}

/// What a change does to one record set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Action {
    /// Fails if the record set exists.
    Create,
    /// Fails unless the record set exists exactly as given.
    Delete,
    /// Creates or replaces.
    Upsert,
}

/// One change of a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What to do.
    pub action: Action,
    /// To which record set.
    pub record: RecordSet,
}

/// Whether Route53 has applied a change on all of its name servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeStatus {
    /// Accepted, still propagating.
    Pending,
    /// On every authoritative name server.
    Insync,
}

/// Moves a DNS record between endpoints through Route53.
pub trait RecordRouter: Send + Sync {
    /// Every record set of the zone with this name and type (simple or weighted).
    /// `NotFound` if the zone does not exist.
    fn list_record_sets(
        &self,
        zone: &str,
        name: &str,
        record_type: &str,
    ) -> impl Future<Output = PortResult<Vec<RecordSet>>> + Send;

    /// Applies the batch atomically and returns the change's id. A DELETE that does not
    /// match exactly, or a CREATE of an existing set, fails the whole batch with
    /// `PreconditionFailed`.
    fn change_record_sets(
        &self,
        zone: &str,
        changes: &[Change],
        comment: &str,
    ) -> impl Future<Output = PortResult<String>> + Send;

    /// The status of a change `change_record_sets` returned.
    fn change_status(&self, change_id: &str) -> impl Future<Output = PortResult<ChangeStatus>> + Send;
}

/// `www.example.com` → `www.example.com.`, lowercased: the form Route53 returns for
/// record names and alias targets.
pub fn fqdn(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    if lower.ends_with('.') { lower } else { format!("{lower}.") }
}

/// The (blue, green) weights that send `percent` of the traffic to green.
///
/// Route53 sends each weighted record `weight / sum of weights` of the answers, with
/// integer weights from 0 to 255. Whole percentages map exactly to `(100 - p, p)`;
/// other percentages to `(200 - 2p, 2p)`, rounded to the nearest half percent, which is
/// what [`share_of_green`] reports back. 100% is `(0, 100)`: a weight-0 record gets no
/// answers while another record has a weight above 0.
pub fn weights(percent: f64) -> (u16, u16) {
    let p = percent.clamp(0.0, 100.0);
    if (p - p.round()).abs() < 1e-9 {
        let g = p.round() as u16;
        (100 - g, g)
    } else {
        let g = (p * 2.0).round() as u16;
        (200 - g, g)
    }
}

/// The share of answers green gets with these weights, in percent.
pub fn share_of_green(blue: u16, green: u16) -> f64 {
    if blue + green == 0 { 50.0 } else { 100.0 * f64::from(green) / f64::from(blue + green) }
}

impl RecordTarget {
    /// The record name in Route53's form.
    pub fn name(&self) -> String {
        fqdn(&self.record_name)
    }

    /// `www.example.com. A`, for messages.
    pub fn label(&self) -> String {
        format!("{} {}", self.name(), self.record_type.as_str())
    }

    /// The names the record's version records and lock go under, in place of a
    /// function and an alias: `route53-Z0123…` and `www.example.com-A`. The SSM
    /// parameter names are then `{prefix}/route53-Z0123…/www.example.com-A/current`, and
    /// `stepshift history --function route53-Z0123… --alias www.example.com-A` shows them.
    /// Characters SSM refuses in a name (a wildcard's `*`) become `_`.
    pub fn identity(&self) -> (String, String) {
        let clean = |s: &str| {
            s.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect::<String>()
        };
        let zone = self.hosted_zone_id.trim_start_matches("/hostedzone/");
        (
            format!("{SCOPE_PREFIX}{}", clean(zone)),
            format!("{}-{}", clean(self.record_name.trim_end_matches('.')), self.record_type.as_str()),
        )
    }

    /// A record set of this name and type pointing at `endpoint`.
    fn record(&self, endpoint: &Endpoint, set_identifier: Option<&str>, weight: Option<u16>) -> RecordSet {
        RecordSet {
            name: self.name(),
            record_type: self.record_type.as_str().to_owned(),
            set_identifier: set_identifier.map(str::to_owned),
            weight,
            ttl: endpoint.alias_target.is_none().then_some(endpoint.ttl).flatten(),
            values: endpoint.values.clone().unwrap_or_default(),
            alias_target: endpoint
                .alias_target
                .as_ref()
                .map(|a| AliasTarget { dns_name: fqdn(&a.dns_name), ..a.clone() }),
        }
    }

    /// The two weighted records for `percent` to green.
    pub fn weighted(&self, percent: f64) -> [RecordSet; 2] {
        let (b, g) = weights(percent);
        [self.record(&self.blue, Some(BLUE_ID), Some(b)), self.record(&self.green, Some(GREEN_ID), Some(g))]
    }

    /// The simple record pointing at blue, where a release starts.
    pub fn before_release(&self) -> RecordSet {
        self.record(&self.blue, None, None)
    }

    /// The simple record pointing at green, where a promoted release ends.
    pub fn promoted(&self) -> RecordSet {
        self.record(&self.green, None, None)
    }

    /// Checks the record as found before the first shift: one simple record pointing at
    /// blue. Returns it, to be recorded for the rollback.
    pub fn original(&self, found: &[RecordSet]) -> Result<RecordSet, String> {
        match found {
            [] => Err(format!("{} does not exist in the hosted zone", self.label())),
            [one] if one.set_identifier.is_some() => Err(format!(
                "{} is a weighted record ({}); stepshift starts from a simple record",
                self.label(),
                one.set_identifier.as_deref().unwrap_or_default()
            )),
            [one] if !points_at(one, &self.blue) => Err(format!(
                "{} points at {}, not at blue ({})",
                self.label(),
                describe(one),
                describe_endpoint(&self.blue)
            )),
            [one] => Ok(one.clone()),
            many => Err(format!(
                "{} has {} record sets ({}); stepshift starts from one simple record",
                self.label(),
                many.len(),
                many.iter().map(describe).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// The first shift: the original simple record becomes two weighted records.
    pub fn split_batch(&self, original: &RecordSet, percent: f64) -> Vec<Change> {
        let mut changes = vec![Change { action: Action::Delete, record: original.clone() }];
        changes.extend(self.weighted(percent).map(|record| Change { action: Action::Create, record }));
        changes
    }

    /// A later step: both weights at once.
    pub fn step_batch(&self, percent: f64) -> Vec<Change> {
        self.weighted(percent).map(|record| Change { action: Action::Upsert, record }).into()
    }

    /// Promotion: the weighted records as found give way to a simple record for green.
    pub fn promote_batch(&self, found: &[RecordSet]) -> Vec<Change> {
        let promoted = self.promoted();
        if found == std::slice::from_ref(&promoted) {
            return Vec::new();
        }
        let mut changes: Vec<Change> =
            found.iter().map(|r| Change { action: Action::Delete, record: r.clone() }).collect();
        changes.push(Change { action: Action::Create, record: promoted });
        changes
    }

    /// Rollback: whatever record sets are there give way to the original, exactly. Empty
    /// when the original is already all there is (a retried rollback, or none needed).
    pub fn restore_batch(&self, found: &[RecordSet], original: &RecordSet) -> Vec<Change> {
        if found == std::slice::from_ref(original) {
            return Vec::new();
        }
        let mut changes: Vec<Change> =
            found.iter().map(|r| Change { action: Action::Delete, record: r.clone() }).collect();
        changes.push(Change { action: Action::Create, record: original.clone() });
        changes
    }

    /// Whether the record sets are still what stepshift last wrote (`expected`, in any
    /// order). A person or another tool changing them mid-release is drift: stop, report.
    pub fn drift(&self, found: &[RecordSet], expected: &[RecordSet]) -> Option<String> {
        let same = found.len() == expected.len() && expected.iter().all(|e| found.contains(e));
        (!same).then(|| {
            format!(
                "{} changed outside stepshift: expected {}, found {}",
                self.label(),
                list(expected),
                if found.is_empty() { "nothing".to_owned() } else { list(found) }
            )
        })
    }

    /// Every problem with this target, each naming its field under `at` (`targets[0]`).
    pub fn problems(&self, at: &str) -> Vec<FieldError> {
        let mut out = Vec::new();
        let zone = self.hosted_zone_id.trim_start_matches("/hostedzone/");
        if zone.is_empty() || zone.len() > 32 || !zone.chars().all(|c| c.is_ascii_alphanumeric()) {
            out.push(FieldError::new(
                format!("{at}.hosted_zone_id"),
                "must be a hosted zone id such as Z0123456789ABCDEFGHIJ (letters and digits, at most 32)",
            ));
        }
        let name = self.record_name.trim_end_matches('.');
        if name.is_empty() || name.len() > 253 || name.split('.').any(|l| l.is_empty() || l.len() > 63) {
            out.push(FieldError::new(
                format!("{at}.record_name"),
                "must be a DNS name such as www.example.com (labels of 1 to 63 characters, 253 in all)",
            ));
        }
        out.extend(endpoint_problems(&self.blue, self.record_type, &format!("{at}.blue")));
        out.extend(endpoint_problems(&self.green, self.record_type, &format!("{at}.green")));
        if same_destination(&self.blue, &self.green) {
            out.push(FieldError::new(
                format!("{at}.green"),
                "points where blue points; a release needs a different endpoint",
            ));
        }
        out
    }

    /// Advice that does not stop a release: a step whose bake is shorter than the TTL
    /// clients cache answers for is judged on traffic that mostly has not moved yet.
    pub fn warnings(&self, at: &str, shortest_bake_seconds: u64) -> Vec<String> {
        let ttl = [&self.blue, &self.green]
            .iter()
            .map(|e| if e.alias_target.is_some() { 60 } else { e.ttl.unwrap_or(0) })
            .max()
            .unwrap_or(0);
        if u64::from(ttl) > shortest_bake_seconds {
            vec![format!(
                "{at}: a step bakes {shortest_bake_seconds} s but resolvers cache {} for {ttl} s; \
                 most clients keep the old answer for the whole step",
                self.label()
            )]
        } else {
            Vec::new()
        }
    }
}

fn endpoint_problems(e: &Endpoint, record_type: RecordType, at: &str) -> Vec<FieldError> {
    let mut out = Vec::new();
    match (&e.alias_target, &e.values) {
        (Some(_), Some(_)) => out.push(FieldError::new(at, "give either alias_target or values with ttl, not both")),
        (None, None) => out.push(FieldError::new(at, "give alias_target, or values with ttl")),
        (Some(a), None) => {
            if a.dns_name.trim().is_empty() {
                out.push(FieldError::new(format!("{at}.alias_target.dns_name"), "must not be empty"));
            }
            let zone = a.hosted_zone_id.trim_start_matches("/hostedzone/");
            if zone.is_empty() || !zone.chars().all(|c| c.is_ascii_alphanumeric()) {
                out.push(FieldError::new(
                    format!("{at}.alias_target.hosted_zone_id"),
                    "must be a hosted zone id (Z2FDTNDATAQYW2 for CloudFront)",
                ));
            }
            if e.ttl.is_some() {
                out.push(FieldError::new(format!("{at}.ttl"), "an alias target has no TTL; remove it"));
            }
        }
        (None, Some(values)) => {
            if values.is_empty() || values.iter().any(|v| v.trim().is_empty()) {
                out.push(FieldError::new(format!("{at}.values"), "must hold at least one non-empty value"));
            }
            if record_type == RecordType::Cname && values.len() > 1 {
                out.push(FieldError::new(format!("{at}.values"), "a CNAME record holds exactly one name"));
            }
            for (i, v) in values.iter().enumerate().filter(|(_, v)| !v.trim().is_empty()) {
                if let Some(why) = value_problem(record_type, v) {
                    out.push(FieldError::new(format!("{at}.values[{i}]"), why));
                }
            }
            match e.ttl {
                None => out.push(FieldError::new(format!("{at}.ttl"), "is required with values (seconds)")),
                Some(t) if t > 172_800 => out.push(FieldError::new(format!("{at}.ttl"), "at most 172800 s (2 days)")),
                Some(_) => {}
            }
        }
    }
    if let Some(d) = &e.distribution_id
        && (d.is_empty() || !d.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        out.push(FieldError::new(
            format!("{at}.distribution_id"),
            "must be a CloudFront distribution id such as E2QWRUHEXAMPLE",
        ));
    }
    out
}

/// Why `value` cannot be a value of a `record_type` record, if it cannot: Route53 would
/// refuse it only at the first shift, after the lock is taken.
fn value_problem(record_type: RecordType, value: &str) -> Option<String> {
    match record_type {
        RecordType::A => value
            .parse::<std::net::Ipv4Addr>()
            .is_err()
            .then(|| format!("`{value}` is not an IPv4 address, which an A record holds (such as 192.0.2.10)")),
        RecordType::Aaaa => value
            .parse::<std::net::Ipv6Addr>()
            .is_err()
            .then(|| format!("`{value}` is not an IPv6 address, which an AAAA record holds (such as 2001:db8::10)")),
        RecordType::Cname => {
            let name = value.trim_end_matches('.');
            let label_ok = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            };
            let ok = !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok);
            (!ok).then(|| format!("`{value}` is not a host name, which a CNAME record holds (such as app.example.com)"))
        }
    }
}

fn same_destination(a: &Endpoint, b: &Endpoint) -> bool {
    match (&a.alias_target, &b.alias_target) {
        (Some(x), Some(y)) => fqdn(&x.dns_name) == fqdn(&y.dns_name),
        (None, None) => a.values.is_some() && a.values == b.values,
        _ => false,
    }
}

fn points_at(r: &RecordSet, e: &Endpoint) -> bool {
    match (&r.alias_target, &e.alias_target) {
        (Some(x), Some(y)) => fqdn(&x.dns_name) == fqdn(&y.dns_name),
        (None, None) => Some(&r.values) == e.values.as_ref(),
        _ => false,
    }
}

fn describe_endpoint(e: &Endpoint) -> String {
    match (&e.alias_target, &e.values) {
        (Some(a), _) => a.dns_name.clone(),
        (None, Some(v)) => v.join(","),
        (None, None) => "nothing".to_owned(),
    }
}

/// `stepshift-green (10): d2.cloudfront.net`, or `d1.cloudfront.net` for a simple record.
pub fn describe(r: &RecordSet) -> String {
    let to = match &r.alias_target {
        Some(a) => a.dns_name.clone(),
        None => r.values.join(","),
    };
    match (&r.set_identifier, r.weight) {
        (Some(id), Some(w)) => format!("{id} ({w}): {to}"),
        (Some(id), None) => format!("{id}: {to}"),
        _ => to,
    }
}

fn list(records: &[RecordSet]) -> String {
    records.iter().map(describe).collect::<Vec<_>>().join(" + ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloudfront(dns: &str, dist: &str) -> Endpoint {
        Endpoint::cloudfront(dns, Some(dist))
    }

    fn target() -> RecordTarget {
        RecordTarget {
            hosted_zone_id: "Z0123456789ABC".into(),
            record_name: "WWW.example.com".into(),
            record_type: RecordType::A,
            blue: cloudfront("d1.cloudfront.net", "E1BLUE"),
            green: cloudfront("d2.cloudfront.net", "E2GREEN"),
        }
    }

    #[test]
    fn whole_percentages_map_exactly_and_others_to_half_percents() {
        assert_eq!(weights(10.0), (90, 10));
        assert_eq!(weights(100.0), (0, 100));
        assert_eq!(weights(1.0), (99, 1));
        assert_eq!(weights(2.5), (195, 5));
        assert_eq!(share_of_green(195, 5), 2.5);
        // 33.3% rounds to 33.5%: the nearest half percent.
        assert_eq!(weights(33.3), (133, 67));
        assert_eq!(share_of_green(133, 67), 33.5);
        for p in 1..=100 {
            let (b, g) = weights(f64::from(p));
            assert!(b <= MAX_WEIGHT && g <= MAX_WEIGHT);
            assert_eq!(share_of_green(b, g), f64::from(p));
        }
    }

    #[test]
    fn a_release_splits_steps_promotes_and_restores_in_single_batches() {
        let t = target();
        let original = t.record(&t.blue, None, None);
        assert_eq!(t.original(std::slice::from_ref(&original)), Ok(original.clone()));

        let split = t.split_batch(&original, 10.0);
        assert_eq!(split.len(), 3);
        assert_eq!((split[0].action, &split[0].record), (Action::Delete, &original));
        assert_eq!(split[1].record.weight, Some(90));
        assert_eq!(split[2].record.set_identifier.as_deref(), Some(GREEN_ID));
        assert_eq!(split[2].record.name, "www.example.com.");

        let step = t.step_batch(50.0);
        assert!(step.iter().all(|c| c.action == Action::Upsert && c.record.weight == Some(50)));

        let weighted = t.weighted(50.0);
        let promote = t.promote_batch(&weighted);
        assert_eq!(promote.iter().filter(|c| c.action == Action::Delete).count(), 2);
        assert_eq!(promote.last().unwrap().record, t.promoted());
        assert!(t.promote_batch(&[t.promoted()]).is_empty(), "a retried promotion changes nothing");

        let restore = t.restore_batch(&weighted, &original);
        assert_eq!(restore.last().unwrap(), &Change { action: Action::Create, record: original.clone() });
        assert!(t.restore_batch(std::slice::from_ref(&original), &original).is_empty());
    }

    #[test]
    fn the_starting_record_must_be_one_simple_record_on_blue() {
        let t = target();
        assert!(t.original(&[]).unwrap_err().contains("does not exist"));
        assert!(t.original(&t.weighted(10.0)).unwrap_err().contains("2 record sets"));
        let on_green = t.promoted();
        assert!(t.original(&[on_green]).unwrap_err().contains("not at blue (d1.cloudfront.net)"));
    }

    #[test]
    fn drift_names_what_changed() {
        let t = target();
        let expected = t.weighted(10.0);
        assert_eq!(t.drift(&[expected[1].clone(), expected[0].clone()], &expected), None);
        let moved = t.weighted(30.0);
        let drift = t.drift(&moved, &expected).unwrap();
        assert!(drift.contains("stepshift-green (10): d2.cloudfront.net"), "{drift}");
        assert!(drift.contains("found stepshift-blue (70)"), "{drift}");
    }

    #[test]
    fn bad_targets_name_the_field() {
        let mut t = target();
        t.hosted_zone_id = "".into();
        t.record_name = "bad..name".into();
        t.green = t.blue.clone();
        t.blue.ttl = Some(60);
        let fields: Vec<String> = t.problems("targets[0]").into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["targets[0].hosted_zone_id", "targets[0].record_name", "targets[0].blue.ttl", "targets[0].green"]
        );

        let mut t = target();
        t.record_type = RecordType::Cname;
        t.green = Endpoint {
            alias_target: None,
            values: Some(vec!["a.".into(), "b.".into()]),
            ttl: None,
            distribution_id: None,
        };
        let fields: Vec<String> = t.problems("targets[1]").into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["targets[1].green.values", "targets[1].green.ttl"]);
        assert!(target().problems("targets[0]").is_empty());
    }

    #[test]
    fn values_must_fit_the_record_type() {
        let with = |record_type, values: &[&str]| {
            let mut t = target();
            t.record_type = record_type;
            t.green = Endpoint {
                alias_target: None,
                values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
                ttl: Some(60),
                distribution_id: None,
            };
            t.problems("targets[0]").into_iter().map(|e| format!("{}: {}", e.field, e.reason)).collect::<Vec<_>>()
        };
        assert!(with(RecordType::A, &["192.0.2.10", "192.0.2.11"]).is_empty());
        let bad = with(RecordType::A, &["192.0.2.10", "2001:db8::1"]);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(bad[0].starts_with("targets[0].green.values[1]: `2001:db8::1` is not an IPv4 address"), "{bad:?}");
        assert!(with(RecordType::Aaaa, &["2001:db8::10"]).is_empty());
        assert!(with(RecordType::Aaaa, &["192.0.2.10"])[0].contains("is not an IPv6 address"));
        assert!(with(RecordType::Cname, &["app.example.com."]).is_empty());
        assert!(with(RecordType::Cname, &["not a name"])[0].contains("is not a host name"));
        assert!(with(RecordType::Cname, &["-bad-.example.com"])[0].contains("is not a host name"));
        assert!(with(RecordType::A, &["256.0.0.1"])[0].contains("is not an IPv4 address"));
    }

    #[test]
    fn a_bake_shorter_than_the_ttl_is_warned_about() {
        let mut t = target();
        assert!(t.warnings("targets[0]", 300).is_empty());
        t.green = Endpoint {
            alias_target: None,
            values: Some(vec!["192.0.2.1".into()]),
            ttl: Some(3600),
            distribution_id: None,
        };
        let w = t.warnings("targets[0]", 300);
        assert!(w[0].contains("resolvers cache www.example.com. A for 3600 s"), "{w:?}");
    }

    /// A whole release through the in-memory Route53, which enforces its batch rules.
    #[tokio::test]
    async fn batches_apply_atomically_under_route53_rules() {
        use crate::memory::MemoryAws;
        let t = target();
        let aws = MemoryAws::default();
        let original = t.record(&t.blue, None, None);
        let other = RecordSet { name: "api.example.com.".into(), ..original.clone() };
        aws.add_zone("Z0123456789ABC", vec![original.clone(), other.clone()]);
        let zone = "Z0123456789ABC";
        let found = aws.list_record_sets(zone, "www.example.com", "A").await.unwrap();
        assert_eq!(found, std::slice::from_ref(&original));

        // Weighted records beside the simple one: refused, nothing changes.
        let refused = aws.change_record_sets(zone, &t.step_batch(10.0), "").await.unwrap_err();
        assert!(refused.to_string().contains("cannot coexist"), "{refused}");
        // A DELETE that does not match exactly fails the whole batch.
        let mut stale = original.clone();
        stale.alias_target.as_mut().unwrap().dns_name = "d9.cloudfront.net".into();
        let refused = aws.change_record_sets(zone, &t.split_batch(&stale, 10.0), "").await.unwrap_err();
        assert!(matches!(refused, crate::PortError::PreconditionFailed { .. }), "{refused}");
        assert_eq!(aws.record_sets(zone), [original.clone(), other.clone()]);

        aws.set_polls_until_insync(1);
        let change = aws.change_record_sets(zone, &t.split_batch(&original, 10.0), "").await.unwrap();
        assert_eq!(aws.change_status(&change).await.unwrap(), ChangeStatus::Pending);
        assert_eq!(aws.change_status(&change).await.unwrap(), ChangeStatus::Insync);
        let found = aws.list_record_sets(zone, "www.example.com.", "A").await.unwrap();
        assert_eq!(t.drift(&found, &t.weighted(10.0)), None);

        aws.change_record_sets(zone, &t.step_batch(60.0), "").await.unwrap();
        let found = aws.list_record_sets(zone, "www.example.com.", "A").await.unwrap();
        assert_eq!(t.drift(&found, &t.weighted(60.0)), None);

        aws.change_record_sets(zone, &t.promote_batch(&found), "").await.unwrap();
        assert_eq!(aws.list_record_sets(zone, "www.example.com.", "A").await.unwrap(), [t.promoted()]);
        // Restoring from the promoted record puts back the original exactly.
        let found = aws.list_record_sets(zone, "www.example.com.", "A").await.unwrap();
        aws.change_record_sets(zone, &t.restore_batch(&found, &original), "").await.unwrap();
        assert_eq!(aws.record_sets(zone), [other, original]);
    }

    #[test]
    fn targets_parse_strictly() {
        let json = serde_json::json!({
            "hosted_zone_id": "Z1", "record_name": "www.example.com", "record_type": "AAAA",
            "blue": {"alias_target": {"dns_name": "d1.cloudfront.net", "hosted_zone_id": "Z2FDTNDATAQYW2"}},
            "green": {"values": ["2001:db8::1"], "ttl": 60}
        });
        let t: RecordTarget = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(t.record_type, RecordType::Aaaa);
        let mut extra = json;
        extra["blue"]["weight"] = 5.into();
        assert!(
            serde_json::from_value::<RecordTarget>(extra).unwrap_err().to_string().contains("unknown field `weight`")
        );
    }
}
