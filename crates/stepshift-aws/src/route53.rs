//! [`RecordRouter`] on Route53: list a record's sets, apply a change batch, poll it.

use aws_sdk_route53::types::{self as r53, ChangeAction, ResourceRecord, ResourceRecordSet, RrType};
use stepshift_core::ports::PortResult;
use stepshift_core::routers::route53::{Action, AliasTarget, Change, ChangeStatus, RecordRouter, RecordSet, fqdn};
use stepshift_core::{PortError, Service};

use crate::{AwsPorts, classify};

fn err<E>(e: aws_sdk_route53::error::SdkError<E, aws_sdk_route53::config::http::HttpResponse>) -> PortError
where
    E: aws_sdk_route53::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    classify(Service::Route53, e)
}

fn invalid(message: String) -> PortError {
    PortError::Invalid { service: Service::Route53, message }
}

/// Route53 answers zone ids as `/hostedzone/Z...`; requests take either form.
fn zone_id(zone: &str) -> &str {
    zone.trim_start_matches("/hostedzone/")
}

/// Route53 escapes some characters in names (`*` as `\052`); stepshift's names are
/// plain host names, so lowercasing and the final dot are all the normalising needed.
fn from_sdk(r: &ResourceRecordSet) -> RecordSet {
    RecordSet {
        name: fqdn(r.name()),
        record_type: r.r#type().as_str().to_owned(),
        set_identifier: r.set_identifier().map(str::to_owned),
        weight: r.weight().and_then(|w| u16::try_from(w).ok()),
        ttl: r.ttl().and_then(|t| u32::try_from(t).ok()),
        values: r.resource_records().iter().map(|v| v.value().to_owned()).collect(),
        alias_target: r.alias_target().map(|a| AliasTarget {
            dns_name: fqdn(a.dns_name()),
            hosted_zone_id: a.hosted_zone_id().to_owned(),
            evaluate_target_health: a.evaluate_target_health(),
        }),
    }
}

fn to_sdk(r: &RecordSet) -> PortResult<ResourceRecordSet> {
    let mut b = ResourceRecordSet::builder()
        .name(&r.name)
        .r#type(RrType::from(r.record_type.as_str()))
        .set_set_identifier(r.set_identifier.clone())
        .set_weight(r.weight.map(i64::from))
        .set_ttl(r.ttl.map(i64::from));
    for v in &r.values {
        b = b.resource_records(ResourceRecord::builder().value(v).build().map_err(|e| invalid(e.to_string()))?);
    }
    if let Some(a) = &r.alias_target {
        b = b.alias_target(
            r53::AliasTarget::builder()
                .dns_name(&a.dns_name)
                .hosted_zone_id(&a.hosted_zone_id)
                .evaluate_target_health(a.evaluate_target_health)
                .build()
                .map_err(|e| invalid(e.to_string()))?,
        );
    }
    b.build().map_err(|e| invalid(e.to_string()))
}

impl RecordRouter for AwsPorts {
    async fn list_record_sets(&self, zone: &str, name: &str, record_type: &str) -> PortResult<Vec<RecordSet>> {
        // The listing starts at (name, type) in Route53's order, so the sets we want come
        // first; a page that ends inside them continues from where it stopped.
        let wanted = fqdn(name);
        let mut found = Vec::new();
        let mut start = (wanted.clone(), RrType::from(record_type), None::<String>);
        loop {
            let out = self
                .route53
                .list_resource_record_sets()
                .hosted_zone_id(zone_id(zone))
                .start_record_name(&start.0)
                .start_record_type(start.1.clone())
                .set_start_record_identifier(start.2.clone())
                .send()
                .await
                .map_err(err)?;
            let page: Vec<RecordSet> = out.resource_record_sets().iter().map(from_sdk).collect();
            let before = found.len();
            found.extend(page.iter().filter(|r| r.name == wanted && r.record_type == record_type).cloned());
            let ours_to_the_end = found.len() - before == page.len();
            match (out.is_truncated(), out.next_record_name(), out.next_record_type()) {
                (true, Some(n), Some(t)) if ours_to_the_end && fqdn(n) == wanted && t.as_str() == record_type => {
                    start = (n.to_owned(), t.clone(), out.next_record_identifier().map(str::to_owned));
                }
                _ => return Ok(found),
            }
        }
    }

    async fn change_record_sets(&self, zone: &str, changes: &[Change], comment: &str) -> PortResult<String> {
        let mut batch = r53::ChangeBatch::builder().comment(comment);
        for c in changes {
            let action = match c.action {
                Action::Create => ChangeAction::Create,
                Action::Delete => ChangeAction::Delete,
                Action::Upsert => ChangeAction::Upsert,
            };
            let change = r53::Change::builder()
                .action(action)
                .resource_record_set(to_sdk(&c.record)?)
                .build()
                .map_err(|e| invalid(e.to_string()))?;
            batch = batch.changes(change);
        }
        let out = self
            .route53
            .change_resource_record_sets()
            .hosted_zone_id(zone_id(zone))
            .change_batch(batch.build().map_err(|e| invalid(e.to_string()))?)
            .send()
            .await
            .map_err(err)?;
        Ok(out.change_info().map(|i| i.id().to_owned()).unwrap_or_default())
    }

    async fn change_status(&self, change_id: &str) -> PortResult<ChangeStatus> {
        let id = change_id.trim_start_matches("/change/");
        let out = self.route53.get_change().id(id).send().await.map_err(err)?;
        match out.change_info().map(|i| i.status()) {
            Some(r53::ChangeStatus::Insync) => Ok(ChangeStatus::Insync),
            Some(r53::ChangeStatus::Pending) => Ok(ChangeStatus::Pending),
            other => Err(PortError::Other {
                service: Service::Route53,
                message: format!("change {id} has an unknown status: {other:?}"),
            }),
        }
    }
}
