//! The log input: a CloudWatch Logs subscription batch into one [`Outcome`] per
//! invocation.
//!
//! A batch is `{"awslogs": {"data": base64(gzip(JSON))}}`; the JSON names the log group,
//! one log stream, the subscription filters that matched (ours carry the function, the
//! alias and the slow threshold, see [`FilterName`](stepshift_core::outcomes::FilterName))
//! and the stream's events. `CONTROL_MESSAGE` batches (CloudWatch Logs checking that the
//! destination is reachable) are ignored.
//!
//! **The version** comes from the stream's name, `YYYY/MM/DD/[VERSION]id` (or
//! `YYYY/MM/DD/function[VERSION]id` in a log group shared by several functions). A
//! `$LATEST` stream is not counted: it is not a published version, so no alias routes
//! to it.
//!
//! **One outcome per invocation**, taken at its report line: text
//! `REPORT RequestId: <id>\tDuration: 12.34 ms\t...`, which ends in `Status: timeout`,
//! `Status: error\tError Type: Runtime.ExitError` and the like when the invocation
//! crashed, timed out or ran out of memory (any status but `success` is a failure), or
//! the JSON log format's `{"type": "platform.report", "record": {"requestId": ...,
//! "metrics": {"durationMs": ...}, "status": "success|failure|error|timeout"}}`.
//!
//! A report's status does not mark an ordinary function error, so the error lines the
//! runtimes write mark the invocation they belong to as failed: the one named by the
//! request id the line carries, else the one in progress in that stream (between its
//! `START`/`platform.start` and its report; a stream runs one invocation at a time). The
//! error lines read, per runtime:
//!
//! | runtime | text log format | JSON log format |
//! |---|---|---|
//! | all | `Task timed out after N seconds`; a report whose `Status:` is not `success` | `platform.report` whose `status` is not `success` |
//! | Node.js | `<time>\t<request id>\tERROR\tInvoke Error \t{...}` (also `Uncaught Exception`, `Unhandled Promise Rejection`) | `{"level": "ERROR", "requestId": ..., "message": {"errorType": ..., "errorMessage": ...}}` |
//! | Python | `[ERROR] KeyError: 'id'` followed by `Traceback (most recent call last):` | `{"level": "ERROR", "errorType": ..., "errorMessage": ..., "requestId": ...}` (no `message`) |
//! | Java | `boom: java.lang.IllegalStateException` followed by `java.lang.IllegalStateException: boom` and its stack; the older runtimes' `{"errorMessage": ..., "errorType": ...}` | `{"level": "ERROR", "message": "boom: java.lang.IllegalStateException\n...", "AWSRequestId": ...}` |
//! | Rust (`lambda_runtime` 1.x) | `ERROR Lambda runtime invoke{requestId="<id>" ...}: <the error>` | `{"level": "ERROR", "fields": {...}, "span": {"requestId": ..., "name": "Lambda runtime invoke"}}` |
//! | others (.NET, Go, Ruby, custom runtimes) | the report's `Status:` only | the report's `status` only |
//!
//! What these rules get wrong errs towards fewer failures, never more, except where a
//! handled log line looks exactly like a runtime's error line: Node.js's
//! `console.error(err)` of an `Error` object in the JSON format, and, in a Rust
//! function, a `tracing::error!` the handler writes outside any span of its own (the
//! runtime's own line is the only event directly in its `Lambda runtime invoke` span).
//! Handled lines that differ are not read: Node.js's `console.error` in text, Python's
//! `logging.error` (`[ERROR]\t<time>\t<id>\t...`) and `logger.exception` (JSON with a
//! `message`), Node.js's `console.error("text", err)` (JSON with a string `message`).
//!
//! Events are deduplicated by their id, and invocations by request id (the first report
//! wins). An error line whose report is not in the batch is dropped, and so is one
//! before any invocation started (an init error; its invocation's report says
//! `Status: error`).

use std::collections::HashSet;
use std::io::Read;

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use stepshift_core::Timestamp;

use crate::aggregate::Outcome;

/// The `messageType` of the batches CloudWatch Logs sends to check the destination.
pub const CONTROL_MESSAGE: &str = "CONTROL_MESSAGE";

/// The most a batch may inflate to. CloudWatch Logs sends at most about 1 MB of events
/// per batch; anything larger is not one of its batches.
pub const MAX_BATCH_BYTES: u64 = 16 * 1024 * 1024;

/// The span `lambda_runtime` opens around each invocation.
const RUST_SPAN: &str = "Lambda runtime invoke";

/// A decoded subscription batch.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogBatch {
    /// `DATA_MESSAGE` or [`CONTROL_MESSAGE`].
    pub message_type: String,
    /// The log group.
    #[serde(default)]
    pub log_group: String,
    /// The log stream all the events come from.
    #[serde(default)]
    pub log_stream: String,
    /// The names of the subscription filters the events matched.
    #[serde(default)]
    pub subscription_filters: Vec<String>,
    /// The events, in the stream's order.
    #[serde(default)]
    pub log_events: Vec<LogEvent>,
}

/// One log event.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct LogEvent {
    /// CloudWatch Logs' id of the event.
    #[serde(default)]
    pub id: String,
    /// When it was written, in milliseconds since the epoch.
    pub timestamp: i64,
    /// The line.
    pub message: String,
}

/// Encodes a batch as CloudWatch Logs sends it: `{"awslogs": {"data": base64(gzip(JSON))}}`
/// (tests and benchmarks build their events with it).
pub fn encode_payload(batch: &Value) -> Value {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(batch.to_string().as_bytes());
    let zipped = gz.finish().unwrap_or_default();
    serde_json::json!({"awslogs": {"data": base64::engine::general_purpose::STANDARD.encode(zipped)}})
}

/// Decodes `{"awslogs": {"data": ...}}`.
pub fn decode_payload(payload: &Value) -> Result<LogBatch, String> {
    let data = payload
        .get("awslogs")
        .and_then(|a| a.get("data"))
        .and_then(Value::as_str)
        .ok_or("awslogs.data is missing or not a string")?;
    decode(data)
}

/// Decodes the `awslogs.data` text: base64 of gzip of the batch's JSON.
pub fn decode(data: &str) -> Result<LogBatch, String> {
    let zipped = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| format!("awslogs.data is not base64: {e}"))?;
    let mut json = Vec::new();
    flate2::read::MultiGzDecoder::new(zipped.as_slice())
        .take(MAX_BATCH_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(|e| format!("awslogs.data is not gzip: {e}"))?;
    if json.len() as u64 > MAX_BATCH_BYTES {
        return Err(format!("awslogs.data inflates to more than {MAX_BATCH_BYTES} bytes"));
    }
    serde_json::from_slice(&json).map_err(|e| format!("awslogs.data is not a subscription batch: {e}"))
}

/// What a log stream's name says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamName<'a> {
    /// The function, in a log group shared by several functions.
    pub function: Option<&'a str>,
    /// The published version that wrote it.
    pub version: &'a str,
}

/// Reads `YYYY/MM/DD/[VERSION]id` or `YYYY/MM/DD/function[VERSION]id`; `None` for
/// `$LATEST` and for names of another shape.
pub fn stream_name(stream: &str) -> Option<StreamName<'_>> {
    let mut parts = stream.splitn(4, '/');
    let date_ok = [4, 2, 2]
        .iter()
        .all(|&len| parts.next().is_some_and(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit())));
    let rest = parts.next().filter(|_| date_ok)?;
    let open = rest.find('[')?;
    let close = open + rest[open..].find(']')?;
    let version = &rest[open + 1..close];
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let function = (open > 0).then(|| &rest[..open]);
    Some(StreamName { function, version })
}

/// What one log line means to `tally`.
#[derive(Clone, Debug, PartialEq)]
enum Line {
    /// An invocation started.
    Start(String),
    /// An invocation's report: request id, duration, whether its status is a failure.
    Report(String, Option<f64>, bool),
    /// A runtime's error line, for the request id it names or the one in progress.
    Failure(Option<String>),
    /// Anything else.
    Other,
}

/// Counts one stream's events: one outcome per report, in the stream's order.
pub fn outcomes(version: &str, events: &[LogEvent]) -> Vec<Outcome> {
    let mut seen = HashSet::new();
    let mut unique: Vec<&LogEvent> = events.iter().filter(|e| e.id.is_empty() || seen.insert(e.id.as_str())).collect();
    unique.sort_by_key(|e| e.timestamp);
    let mut current: Option<String> = None;
    let mut failed: HashSet<String> = HashSet::new();
    let mut reports: Vec<(String, Option<f64>, bool, i64)> = Vec::new();
    for (i, e) in unique.iter().enumerate() {
        let next = unique.get(i + 1).map(|n| n.message.as_str());
        match classify(&e.message, next) {
            Line::Start(id) => current = Some(id),
            Line::Report(id, duration, status_failed) => {
                if current.as_ref() == Some(&id) {
                    current = None;
                }
                reports.push((id, duration, status_failed, e.timestamp));
            }
            Line::Failure(id) => {
                if let Some(id) = id.or_else(|| current.clone()) {
                    failed.insert(id);
                }
            }
            Line::Other => {}
        }
    }
    let mut reported: HashSet<String> = HashSet::new();
    reports
        .into_iter()
        .filter(|(id, ..)| reported.insert(id.clone()))
        .map(|(id, duration_ms, status_failed, at)| Outcome {
            failed: status_failed || failed.contains(&id),
            request_id: id,
            version: version.to_owned(),
            at: Timestamp::from_millis(at),
            duration_ms,
        })
        .collect()
}

/// `text` without ANSI escape sequences (a `tracing` subscriber may colour its output).
fn strip_ansi(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\x1b') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            for f in chars.by_ref() {
                if ('\x40'..='\x7e').contains(&f) {
                    break;
                }
            }
        }
    }
    out.into()
}

/// A request id as a line carries it; runtimes print `undefined` or nothing outside an
/// invocation.
fn request_id(text: &str) -> Option<String> {
    let id = text.trim().trim_matches('"');
    (!id.is_empty() && id != "undefined" && id != "null" && !id.contains(char::is_whitespace)).then(|| id.to_owned())
}

/// Whether `token` looks like a Lambda request id (a UUID).
fn is_uuid(token: &str) -> bool {
    token.len() == 36
        && token
            .bytes()
            .enumerate()
            .all(|(i, b)| if [8, 13, 18, 23].contains(&i) { b == b'-' } else { b.is_ascii_alphanumeric() })
}

fn classify(message: &str, next: Option<&str>) -> Line {
    let text = strip_ansi(message);
    let line = text.trim_start();
    if line.starts_with('{')
        && let Ok(Value::Object(json)) = serde_json::from_str::<Value>(line.trim_end())
    {
        return classify_json(&json);
    }
    if let Some(rest) = line.strip_prefix("START RequestId: ") {
        return rest.split_whitespace().next().and_then(request_id).map_or(Line::Other, Line::Start);
    }
    if let Some(rest) = line.strip_prefix("REPORT RequestId: ") {
        return report(rest);
    }
    if is_python_unhandled(line, next) || is_java_unhandled(line, next) {
        return Line::Failure(None);
    }
    if let Some(id) = node_error(line) {
        return Line::Failure(id);
    }
    if let Some(id) = rust_runtime_error(line) {
        return Line::Failure(id);
    }
    if let Some(at) = line.find("Task timed out after ") {
        let id = line[..at].split_whitespace().find(|t| is_uuid(t)).map(str::to_owned);
        return Line::Failure(id);
    }
    Line::Other
}

/// A text REPORT line after `REPORT RequestId: `.
fn report(rest: &str) -> Line {
    let Some(id) = rest.split_whitespace().next().and_then(request_id) else { return Line::Other };
    let fields: Vec<&str> = rest.split(['\t', '\n', '\r']).map(str::trim).collect();
    let field = |name: &str| {
        let prefix = format!("{name}: ");
        fields.iter().find_map(|f| f.strip_prefix(prefix.as_str())).or_else(|| {
            // A line whose tabs became spaces: the first `name: ` that is not the end
            // of another field's name (`Billed Duration: `, `Init Duration: `).
            rest.match_indices(prefix.as_str())
                .find(|(at, _)| {
                    let before = &rest[..*at];
                    let word = before.trim_end().rsplit(char::is_whitespace).next().unwrap_or("");
                    before.ends_with(' ') && !["Billed", "Init", "Restore"].contains(&word)
                })
                .map(|(at, _)| &rest[at + prefix.len()..])
        })
    };
    let duration = field("Duration").and_then(|d| d.split_whitespace().next()).and_then(|d| d.parse::<f64>().ok());
    let status = field("Status").and_then(|s| s.split_whitespace().next());
    Line::Report(id, duration, status.is_some_and(|s| !s.eq_ignore_ascii_case("success")))
}

/// Python's runtime on an unhandled exception: `[ERROR] Type: message`, then
/// `Traceback (most recent call last):` (in the same event, or the next one where lines
/// were split). Python's `logging.error` writes `[ERROR]\t<time>\t<id>\t...` instead.
fn is_python_unhandled(line: &str, next: Option<&str>) -> bool {
    const TRACEBACK: &str = "Traceback (most recent call last):";
    let Some(rest) = line.strip_prefix("[ERROR] ") else { return false };
    let first = rest.split(['\n', '\r']).next().unwrap_or("");
    let typed = first
        .split_once(':')
        .is_some_and(|(t, _)| !t.is_empty() && t.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.'));
    let traced = rest.contains(&format!("\n{TRACEBACK}"))
        || rest.contains(&format!("\r{TRACEBACK}"))
        || next.is_some_and(|n| n.trim_start().starts_with(TRACEBACK));
    typed && traced
}

/// Whether `name` is a Java class name: dotted identifiers.
fn is_java_class(name: &str) -> bool {
    name.contains('.')
        && name.split('.').all(|p| {
            p.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
                && p.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        })
}

/// Java's runtime on an unhandled exception: `<message>: <class>`, then the stack
/// trace, whose first line starts with the class (in the same event, or the next one).
fn is_java_unhandled(line: &str, next: Option<&str>) -> bool {
    let mut lines = line.split(['\n', '\r']);
    let first = lines.next().unwrap_or("").trim_end();
    let Some((_, class)) = first.rsplit_once(": ") else { return false };
    if !is_java_class(class) {
        return false;
    }
    let second = lines.find(|l| !l.trim().is_empty()).or(next).unwrap_or("");
    second.strip_prefix(class).is_some_and(|r| r.is_empty() || r.starts_with(':'))
}

/// Node.js's runtime: `<time>\t<request id>\tERROR\tInvoke Error \t{...}`.
fn node_error(line: &str) -> Option<Option<String>> {
    const RUNTIME_ERRORS: [&str; 3] = ["Invoke Error", "Uncaught Exception", "Unhandled Promise Rejection"];
    let fields: Vec<&str> = line.splitn(5, '\t').collect();
    let [_, id, level, what, ..] = fields.as_slice() else { return None };
    (*level == "ERROR" && RUNTIME_ERRORS.contains(&what.trim())).then(|| request_id(id))
}

/// `lambda_runtime`'s line for a handler error or panic, with `tracing_subscriber`'s
/// text format: `ERROR Lambda runtime invoke{requestId="<id>" ...}: <error>`, directly in
/// the invocation's span (a handler's own span would follow it: `...}:handler{...}:`).
fn rust_runtime_error(line: &str) -> Option<Option<String>> {
    let marker = format!("ERROR {RUST_SPAN}");
    let at = line.find(&marker)?;
    if !line[..at].is_empty() && !line[..at].ends_with(char::is_whitespace) {
        return None;
    }
    let rest = &line[at + marker.len()..];
    let (fields, after) = match rest.strip_prefix('{') {
        Some(r) => r.split_once("}:")?,
        None => ("", rest.strip_prefix(':')?),
    };
    if !after.starts_with(' ') {
        return None;
    }
    let id = fields.split_whitespace().find_map(|f| f.strip_prefix("requestId=")).and_then(request_id);
    Some(id)
}

fn str_of<'a>(json: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    json.get(key).and_then(Value::as_str)
}

fn has_error(json: &serde_json::Map<String, Value>) -> bool {
    json.get("errorType").is_some_and(Value::is_string) && json.get("errorMessage").is_some()
}

fn classify_json(json: &serde_json::Map<String, Value>) -> Line {
    let record = json.get("record").and_then(Value::as_object);
    let record_id = || record.and_then(|r| str_of(r, "requestId")).and_then(request_id);
    match str_of(json, "type") {
        Some("platform.start") => return record_id().map_or(Line::Other, Line::Start),
        Some("platform.report") => {
            let Some(id) = record_id() else { return Line::Other };
            let duration =
                record.and_then(|r| r.get("metrics")).and_then(|m| m.get("durationMs")).and_then(Value::as_f64);
            let status = record.and_then(|r| str_of(r, "status"));
            return Line::Report(id, duration, status.is_some_and(|s| s != "success"));
        }
        Some(_) => return Line::Other,
        None => {}
    }
    let id = ["requestId", "AWSRequestId", "AWSrequestId"].iter().find_map(|k| str_of(json, k)).and_then(request_id);
    let error_level = str_of(json, "level").is_some_and(|l| l.eq_ignore_ascii_case("ERROR"));
    // lambda_runtime with tracing_subscriber's JSON format.
    let span = json.get("span").and_then(Value::as_object);
    if error_level && span.and_then(|s| str_of(s, "name")) == Some(RUST_SPAN) {
        let direct = json.get("spans").and_then(Value::as_array).is_none_or(|spans| spans.len() <= 1);
        return if direct {
            Line::Failure(span.and_then(|s| str_of(s, "requestId")).and_then(request_id))
        } else {
            Line::Other
        };
    }
    match json.get("message") {
        // Python's runtime (and older Java runtimes): the error itself, no message.
        None if has_error(json) => Line::Failure(id),
        // Node.js's runtime: the error as the message.
        Some(Value::Object(m)) if has_error(m) => Line::Failure(id),
        // Java's runtime: its text line as the message, at ERROR.
        Some(Value::String(m)) if error_level && is_java_unhandled(m, None) => Line::Failure(id),
        _ => Line::Other,
    }
}

#[cfg(test)]
mod tests;
