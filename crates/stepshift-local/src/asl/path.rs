//! JSONPath reference paths, as the Amazon States Language uses them in `InputPath`,
//! `OutputPath`, `ResultPath`, `Variable`, `*Path` fields and `.$` keys: `$`, `$.a.b`,
//! `$['a b']`, `$.list[0]`, and `$$.` for the context object.
//!
//! Written here rather than taken from a JSONPath crate because ASL also needs to
//! *write* through a path (ResultPath), which JSONPath libraries do not do, and because
//! anything beyond reference paths (wildcards, filters) must be refused at load time
//! rather than evaluated differently from Step Functions.

use std::fmt;

use serde_json::{Map, Value};

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// An object member.
    Field(String),
    /// An array element.
    Index(usize),
}

/// Which document a path reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    /// `$`: the state's input.
    Input,
    /// `$$`: the context object.
    Context,
}

/// A parsed reference path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    /// The document it reads.
    pub root: Root,
    /// The steps from the root.
    pub segments: Vec<Segment>,
    text: String,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Path {
    /// Parses `text`; the error says what is not supported.
    pub fn parse(text: &str) -> Result<Path, String> {
        let (root, mut rest) = if let Some(r) = text.strip_prefix("$$") {
            (Root::Context, r)
        } else if let Some(r) = text.strip_prefix('$') {
            (Root::Input, r)
        } else {
            return Err(format!("`{text}` is not a path: it must start with $"));
        };
        let mut segments = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("['") {
                let end = r.find("']").ok_or_else(|| format!("`{text}`: unclosed ['"))?;
                segments.push(Segment::Field(r[..end].to_owned()));
                rest = &r[end + 2..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').ok_or_else(|| format!("`{text}`: unclosed ["))?;
                let index = r[..end].trim().parse::<usize>().map_err(|_| {
                    format!("`{text}`: `[{}]` is not supported; stepshift-local reads reference paths only (no wildcards, slices or filters)", &r[..end])
                })?;
                segments.push(Segment::Index(index));
                rest = &r[end + 1..];
            } else if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let name = &r[..end];
                if name.is_empty() || name == "*" || name.starts_with('.') {
                    return Err(format!("`{text}`: `..`, `.*` and empty names are not supported in reference paths"));
                }
                segments.push(Segment::Field(name.to_owned()));
                rest = &r[end..];
            } else {
                return Err(format!("`{text}`: unexpected `{rest}`"));
            }
        }
        Ok(Path { root, segments, text: text.to_owned() })
    }

    /// The value at this path in `doc`, if present.
    pub fn get<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        self.segments.iter().try_fold(doc, |v, s| match s {
            Segment::Field(name) => v.as_object()?.get(name),
            Segment::Index(i) => v.as_array()?.get(*i),
        })
    }

    /// The value at this path, reading `$` from `input` and `$$` from `context`.
    pub fn read<'a>(&self, input: &'a Value, context: &'a Value) -> Option<&'a Value> {
        match self.root {
            Root::Input => self.get(input),
            Root::Context => self.get(context),
        }
    }

    /// `doc` with `value` placed at this path (ResultPath semantics): `$` replaces the
    /// document; missing objects on the way are created; stepping into something that
    /// is not an object fails.
    pub fn set(&self, doc: Value, value: Value) -> Result<Value, String> {
        if self.root == Root::Context {
            return Err(format!("`{self}`: ResultPath cannot write to the context object"));
        }
        if self.segments.is_empty() {
            return Ok(value);
        }
        let mut doc = doc;
        let mut slot = &mut doc;
        for s in &self.segments {
            slot = match s {
                Segment::Field(name) => {
                    let Value::Object(map) = slot else {
                        return Err(format!("`{self}`: cannot set field `{name}` inside a non-object"));
                    };
                    map.entry(name.clone()).or_insert_with(|| Value::Object(Map::new()))
                }
                Segment::Index(i) => {
                    let Some(item) = slot.as_array_mut().and_then(|a| a.get_mut(*i)) else {
                        return Err(format!("`{self}`: no array element [{i}] to set"));
                    };
                    item
                }
            };
        }
        *slot = value;
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_and_reads_reference_paths() {
        let doc = json!({"a": {"b c": [10, {"d": true}]}, "x": null});
        assert_eq!(Path::parse("$").unwrap().get(&doc), Some(&doc));
        assert_eq!(Path::parse("$.a['b c'][1].d").unwrap().get(&doc), Some(&json!(true)));
        assert_eq!(Path::parse("$.x").unwrap().get(&doc), Some(&Value::Null));
        assert_eq!(Path::parse("$.missing").unwrap().get(&doc), None);
        assert_eq!(Path::parse("$.a[5]").unwrap().get(&doc), None);
        let ctx = Path::parse("$$.Execution.Id").unwrap();
        assert_eq!(ctx.root, Root::Context);
        assert_eq!(ctx.read(&doc, &json!({"Execution": {"Id": "arn"}})), Some(&json!("arn")));
    }

    #[test]
    fn refuses_what_it_does_not_implement() {
        for bad in ["a.b", "$..a", "$.a[*]", "$.a[?(@.b)]", "$.a[1:2]", "$.", "$.*"] {
            assert!(Path::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sets_like_result_path() {
        let doc = json!({"a": 1});
        assert_eq!(Path::parse("$").unwrap().set(doc.clone(), json!(2)).unwrap(), json!(2));
        assert_eq!(Path::parse("$.b.c").unwrap().set(doc.clone(), json!(2)).unwrap(), json!({"a": 1, "b": {"c": 2}}));
        assert_eq!(Path::parse("$.a").unwrap().set(doc.clone(), json!({"z": 0})).unwrap(), json!({"a": {"z": 0}}));
        assert!(Path::parse("$.a.b").unwrap().set(doc, json!(2)).is_err(), "1 is not an object");
        assert!(Path::parse("$$.x").unwrap().set(json!({}), json!(2)).is_err());
    }
}
