//! The destinations input: the EventBridge events Lambda Destinations send for an
//! asynchronously invoked function whose on-success and on-failure destinations are an
//! event bus.
//!
//! An event's `detail` is Lambda's invocation record: `requestContext` (`requestId`,
//! `functionArn` with the qualifier the caller invoked, `condition`,
//! `approximateInvokeCount`) and `responseContext` (`statusCode`, `executedVersion`,
//! `functionError`). It failed when its `detail-type` is
//! `Lambda Function Invocation Result - Failure` or its response carries a
//! `functionError`.
//!
//! What it cannot tell:
//! - the alias comes from the function ARN's qualifier; an event for a function invoked
//!   by version number (or unqualified, or as `$LATEST`) names no alias, and is not
//!   counted;
//! - a failure record arrives only after Lambda's retries of the event (up to two, with
//!   back-off, by default), and one record stands for all of its attempts: this input
//!   sees failures later, and fewer, than the function's logs;
//! - there is no duration, so no slow count.

use serde_json::Value;
use stepshift_core::Timestamp;

use crate::aggregate::Outcome;

/// The `detail-type` of a successful invocation's record.
pub const SUCCESS: &str = "Lambda Function Invocation Result - Success";
/// The `detail-type` of a failed invocation's record.
pub const FAILURE: &str = "Lambda Function Invocation Result - Failure";
/// What both `detail-type`s start with.
pub const DETAIL_TYPE_PREFIX: &str = "Lambda Function Invocation Result";

/// One counted invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    /// The function.
    pub function: String,
    /// The alias it was invoked through.
    pub alias: String,
    /// The outcome.
    pub outcome: Outcome,
}

/// `(function, qualifier)` of `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`.
pub fn function_arn(arn: &str) -> Option<(&str, Option<&str>)> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", name, rest @ ..] if !name.is_empty() && rest.len() <= 1 => {
            Some((name, rest.first().copied().filter(|q| !q.is_empty())))
        }
        _ => None,
    }
}

/// Whether Lambda would take `qualifier` for a version rather than an alias.
fn is_version(qualifier: &str) -> bool {
    qualifier == "$LATEST" || qualifier.bytes().all(|b| b.is_ascii_digit())
}

/// Reads a destination event; `Err` says why it is not counted.
pub fn parse(event: &Value) -> Result<Invocation, String> {
    let detail_type = event.get("detail-type").and_then(Value::as_str).unwrap_or_default();
    if detail_type != SUCCESS && detail_type != FAILURE {
        return Err(format!("detail-type {detail_type:?} is not a Lambda Destinations record"));
    }
    let detail = event.get("detail").ok_or("the event has no detail")?;
    let request = detail.get("requestContext").ok_or("the record has no requestContext")?;
    let response = detail.get("responseContext");
    let arn = request.get("functionArn").and_then(Value::as_str).ok_or("requestContext.functionArn is missing")?;
    let (function, qualifier) = function_arn(arn).ok_or_else(|| format!("{arn} is not a Lambda function ARN"))?;
    let alias = match qualifier {
        Some(q) if !is_version(q) => q,
        _ => {
            return Err(format!(
                "{arn} names no alias (it was invoked by version or unqualified), so it counts for no deployment"
            ));
        }
    };
    let version = response
        .and_then(|r| r.get("executedVersion"))
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("the record of {arn} names no published executedVersion"))?;
    let function_error = response.and_then(|r| r.get("functionError")).is_some_and(|e| !e.is_null());
    let at = [detail.get("timestamp"), event.get("time")]
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(|t| Timestamp::parse_rfc3339(t).ok())
        .ok_or("the record has no timestamp")?;
    let request_id = request.get("requestId").and_then(Value::as_str).unwrap_or_default();
    Ok(Invocation {
        function: function.to_owned(),
        alias: alias.to_owned(),
        outcome: Outcome {
            request_id: request_id.to_owned(),
            version: version.to_owned(),
            at,
            failed: detail_type == FAILURE || function_error,
            duration_ms: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Value {
        let path = format!("{}/tests/samples/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn success_and_failure_records_through_an_alias() {
        let ok = parse(&sample("destinations-success.json")).unwrap();
        assert_eq!((ok.function.as_str(), ok.alias.as_str()), ("orders", "live"));
        assert_eq!(ok.outcome.version, "42");
        assert!(!ok.outcome.failed);
        assert_eq!(ok.outcome.at, Timestamp::parse_rfc3339("2026-11-24T20:00:04.568Z").unwrap());
        assert_eq!(ok.outcome.request_id, "c2a8b6f4-8f3b-4e0e-9b4d-4d7d0c6a2b11");
        assert_eq!(ok.outcome.duration_ms, None);

        let failed = parse(&sample("destinations-failure.json")).unwrap();
        assert!(failed.outcome.failed);
        assert_eq!((failed.alias.as_str(), failed.outcome.version.as_str()), ("live", "42"));
    }

    #[test]
    fn a_function_error_on_a_success_record_still_fails() {
        let mut event = sample("destinations-success.json");
        event["detail"]["responseContext"]["functionError"] = "Handled".into();
        assert!(parse(&event).unwrap().outcome.failed);
    }

    #[test]
    fn events_without_an_alias_or_a_version_are_not_counted() {
        let mut event = sample("destinations-success.json");
        for arn in [
            "arn:aws:lambda:us-east-1:123456789012:function:orders:42",
            "arn:aws:lambda:us-east-1:123456789012:function:orders:$LATEST",
            "arn:aws:lambda:us-east-1:123456789012:function:orders",
            "arn:aws:sqs:us-east-1:123456789012:orders",
        ] {
            event["detail"]["requestContext"]["functionArn"] = arn.into();
            let why = parse(&event).unwrap_err();
            assert!(why.contains(arn), "{why}");
        }
        let mut latest = sample("destinations-success.json");
        latest["detail"]["responseContext"]["executedVersion"] = "$LATEST".into();
        assert!(parse(&latest).unwrap_err().contains("executedVersion"));
        let mut other = sample("destinations-success.json");
        other["detail-type"] = "Something Else".into();
        assert!(parse(&other).is_err());
    }

    #[test]
    fn function_arns() {
        assert_eq!(function_arn("arn:aws:lambda:eu-west-1:1:function:f:live"), Some(("f", Some("live"))));
        assert_eq!(function_arn("arn:aws:lambda:eu-west-1:1:function:f"), Some(("f", None)));
        assert_eq!(function_arn("arn:aws:lambda:eu-west-1:1:function:f:a:b"), None);
        assert_eq!(function_arn("f"), None);
    }
}
