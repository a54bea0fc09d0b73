use std::io::Write;

use base64::Engine;

use super::*;

/// A sample batch as CloudWatch Logs sends it: `{"awslogs": {"data": base64(gzip)}}`.
pub(crate) fn payload(name: &str) -> Value {
    let path = format!("{}/tests/samples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    serde_json::json!({"awslogs": {"data": data}})
}

/// The sample's outcomes as `(request id prefix, failed, duration)`.
fn counted(name: &str) -> (String, Vec<(String, bool, Option<f64>)>) {
    let batch = decode_payload(&payload(name)).unwrap();
    let version = stream_name(&batch.log_stream).expect("a published version's stream").version.to_owned();
    let out = outcomes(&version, &batch.log_events);
    assert!(out.iter().all(|o| o.version == version));
    (version, out.into_iter().map(|o| (o.request_id[..8].to_owned(), o.failed, o.duration_ms)).collect())
}

fn failed(name: &str) -> Vec<(String, bool)> {
    counted(name).1.into_iter().map(|(id, failed, _)| (id, failed)).collect()
}

fn pairs(expected: &[(&str, bool)]) -> Vec<(String, bool)> {
    expected.iter().map(|(id, f)| ((*id).to_owned(), *f)).collect()
}

#[test]
fn text_reports_fail_on_every_status_but_success() {
    let (version, out) = counted("text-report-statuses.json");
    assert_eq!(version, "42");
    let expected = [
        ("6f1c2d3e", false, Some(102.55)),
        ("7a2b3c4d", true, Some(3000.0)),
        ("8b3c4d5e", true, Some(4100.37)),
        ("9c4d5e6f", true, Some(51.2)),
        ("ad5e6f70", false, Some(812.0)),
    ];
    let expected: Vec<_> = expected.iter().map(|(id, f, d)| ((*id).to_owned(), *f, *d)).collect();
    assert_eq!(out, expected);
}

#[test]
fn json_reports_fail_on_every_status_but_success() {
    let (_, out) = counted("json-platform-report.json");
    let statuses: Vec<_> = out.iter().map(|(_, f, d)| (*f, *d)).collect();
    assert_eq!(statuses, [(false, Some(12.5)), (true, Some(30.1)), (true, Some(7.7)), (true, Some(3000.0))]);
}

#[test]
fn rust_runtime_errors_in_ministacks_text_and_in_json() {
    let (version, out) = counted("rust-text.json");
    assert_eq!(version, "3");
    let got: Vec<_> = out.iter().map(|(id, f, d)| (id.as_str(), *f, *d)).collect();
    assert_eq!(got, [("0d7c6b5a", true, Some(12.0)), ("1e8d7c6b", false, Some(301.0)), ("2f9e8d7c", true, Some(9.0))]);
    assert_eq!(failed("rust-json.json"), pairs(&[("3a0f9e8d", true), ("4b1a0f9e", false)]));
}

#[test]
fn nodejs_invoke_errors_but_not_console_error() {
    assert_eq!(failed("nodejs-text.json"), pairs(&[("5c2b1a0f", false), ("6d3c2b1a", true), ("7e4d3c2b", true)]));
    assert_eq!(failed("nodejs-json.json"), pairs(&[("5c2b1a0f", false), ("6d3c2b1a", true)]));
}

#[test]
fn python_unhandled_exceptions_but_not_logging_error() {
    assert_eq!(failed("python-text.json"), pairs(&[("8f5e4d3c", false), ("9a6f5e4d", true), ("ab7a6f5e", true)]));
    assert_eq!(failed("python-json.json"), pairs(&[("8f5e4d3c", false), ("9a6f5e4d", true)]));
}

#[test]
fn java_unhandled_exceptions() {
    assert_eq!(failed("java-text.json"), pairs(&[("bc8b7a6f", false), ("cd9c8b7a", true), ("deadc8b7", true)]));
    assert_eq!(failed("java-json.json"), pairs(&[("bc8b7a6f", false), ("cd9c8b7a", true)]));
}

#[test]
fn duplicates_count_once_and_an_error_without_its_report_is_dropped() {
    let batch = decode_payload(&payload("duplicates.json")).unwrap();
    assert_eq!(batch.log_events.len(), 12);
    assert_eq!(failed("duplicates.json"), pairs(&[("4c5d6e7f", true), ("5d6e7f80", false)]));
}

#[test]
fn latest_streams_and_control_messages_are_not_counted() {
    let latest = decode_payload(&payload("latest.json")).unwrap();
    assert_eq!(stream_name(&latest.log_stream), None);
    let control = decode_payload(&payload("control-message.json")).unwrap();
    assert_eq!(control.message_type, CONTROL_MESSAGE);
}

#[test]
fn stream_names() {
    let plain = stream_name("2026/11/24/[42]0f1e2d3c4b5a69788796a5b4c3d2e1f0");
    assert_eq!(plain, Some(StreamName { function: None, version: "42" }));
    let shared = stream_name("2026/11/24/orders[7]0f1e2d3c");
    assert_eq!(shared, Some(StreamName { function: Some("orders"), version: "7" }));
    for other in ["2026/11/24/[$LATEST]0f1e", "[42]abc", "2026/11/24/abc", "2026/1/24/[42]x", "2026/11/24/[]x"] {
        assert_eq!(stream_name(other), None, "{other}");
    }
}

#[test]
fn payloads_that_are_not_batches_are_refused() {
    assert!(decode_payload(&serde_json::json!({"awslogs": {}})).is_err());
    assert!(decode("not base64!").unwrap_err().contains("base64"));
    let not_gzip = base64::engine::general_purpose::STANDARD.encode(b"plain");
    assert!(decode(&not_gzip).unwrap_err().contains("gzip"));
}

#[test]
fn single_lines() {
    let id = "6f1c2d3e-0a1b-4c2d-8e3f-101112131415";
    // Tabs turned into spaces: the Duration is still the invocation's, not Billed or Init.
    let spaced = format!(
        "REPORT RequestId: {id} Init Duration: 9.00 ms Billed Duration: 20 ms Duration: 12.50 ms Status: timeout"
    );
    assert_eq!(classify(&spaced, None), Line::Report(id.into(), Some(12.5), true));
    let ok = format!("REPORT RequestId: {id}\tDuration: 1.00 ms\tBilled Duration: 1 ms\tStatus: success");
    assert_eq!(classify(&ok, None), Line::Report(id.into(), Some(1.0), false));
    assert_eq!(classify(&format!("START RequestId: {id} Version: 42"), None), Line::Start(id.into()));
    let logged = format!("[ERROR]\t2026-11-24T20:00:00.020Z\t{id}\tKeyError: retrying");
    assert_eq!(classify(&logged, Some("Traceback (most recent call last):")), Line::Other);
    assert_eq!(classify("[ERROR] a user's own line: no traceback", None), Line::Other);
    assert_eq!(classify(&format!("2026-11-24T20:00:00.000Z\t{id}\tERROR\toops"), None), Line::Other);
    assert_eq!(classify("Task timed out after 3.00 seconds", None), Line::Failure(None));
    assert_eq!(classify(" INFO Lambda runtime invoke{requestId=\"x\"}: fine", None), Line::Other);
    assert_eq!(classify("ERROR Lambda runtime invoke: no fields", None), Line::Failure(None));
    assert_eq!(classify("{\"level\":\"INFO\",\"message\":\"{not an error}\"}", None), Line::Other);
    assert_eq!(classify("{ not json", None), Line::Other);
}
