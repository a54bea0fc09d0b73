//! Payload templates: `Parameters` and `ResultSelector` objects whose `.$` keys take
//! their values from paths or intrinsic functions.

use rand::Rng;
use serde_json::{Map, Value};

use super::intrinsics::{self, Call};
use super::path::Path;

/// A compiled payload template.
#[derive(Clone, Debug, PartialEq)]
pub enum Template {
    /// A value copied as is.
    Literal(Value),
    /// An object; `.$` fields are computed.
    Object(Vec<(String, Field)>),
    /// An array whose elements may hold templates.
    Array(Vec<Template>),
}

/// One member of a template object.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    /// A nested template.
    Value(Template),
    /// A `.$` key with a path.
    Path(Path),
    /// A `.$` key with an intrinsic call.
    Call(Call),
}

impl Template {
    /// Compiles `value`; every path and call is checked now.
    pub fn compile(value: &Value) -> Result<Template, String> {
        Ok(match value {
            Value::Object(map) => {
                let mut fields = Vec::with_capacity(map.len());
                for (key, v) in map {
                    if let Some(name) = key.strip_suffix(".$") {
                        let Some(text) = v.as_str() else {
                            return Err(format!("`{key}` must be a path or an intrinsic call (a string)"));
                        };
                        let field = if intrinsics::is_call(text) {
                            Field::Call(intrinsics::parse(text)?)
                        } else {
                            Field::Path(Path::parse(text).map_err(|e| format!("`{key}`: {e}"))?)
                        };
                        fields.push((name.to_owned(), field));
                    } else {
                        fields.push((key.clone(), Field::Value(Template::compile(v)?)));
                    }
                }
                Template::Object(fields)
            }
            Value::Array(items) => Template::Array(items.iter().map(Template::compile).collect::<Result<_, _>>()?),
            other => Template::Literal(other.clone()),
        })
    }

    /// Fills the template from `input` (`$`) and `context` (`$$`).
    pub fn eval(&self, input: &Value, context: &Value, rng: &mut impl Rng) -> Result<Value, String> {
        Ok(match self {
            Template::Literal(v) => v.clone(),
            Template::Array(items) => {
                Value::Array(items.iter().map(|t| t.eval(input, context, rng)).collect::<Result<_, _>>()?)
            }
            Template::Object(fields) => {
                let mut out = Map::new();
                for (name, field) in fields {
                    let v = match field {
                        Field::Value(t) => t.eval(input, context, rng)?,
                        Field::Path(p) => p.read(input, context).cloned().ok_or_else(|| {
                            format!(
                                "The JSONPath '{p}' specified for the field '{name}.$' could not be found in the input"
                            )
                        })?,
                        Field::Call(c) => {
                            intrinsics::eval(c, input, context, rng).map_err(|e| format!("field '{name}.$': {e}"))?
                        }
                    };
                    out.insert(name.clone(), v);
                }
                Value::Object(out)
            }
        })
    }

    /// Every path the template reads, for static checks.
    pub fn paths(&self) -> Vec<&Path> {
        match self {
            Template::Literal(_) => Vec::new(),
            Template::Array(items) => items.iter().flat_map(Template::paths).collect(),
            Template::Object(fields) => fields
                .iter()
                .flat_map(|(_, f)| match f {
                    Field::Value(t) => t.paths(),
                    Field::Path(p) => vec![p],
                    Field::Call(_) => Vec::new(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;

    use super::*;

    #[test]
    fn fills_paths_calls_and_nested_values() {
        let t = Template::compile(&json!({
            "action": "begin",
            "request.$": "$",
            "id.$": "$$.Execution.Id",
            "nested": {"n.$": "$.n", "list": [{"m.$": "$.n"}, 3]},
            "label.$": "States.Format('n={}', $.n)"
        }))
        .unwrap();
        let out =
            t.eval(&json!({"n": 4}), &json!({"Execution": {"Id": "arn"}}), &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        assert_eq!(
            out,
            json!({"action": "begin", "request": {"n": 4}, "id": "arn", "nested": {"n": 4, "list": [{"m": 4}, 3]}, "label": "n=4"})
        );
    }

    #[test]
    fn a_missing_path_is_an_error_naming_the_field() {
        let t = Template::compile(&json!({"x.$": "$.nope"})).unwrap();
        let err = t.eval(&json!({}), &json!({}), &mut ChaCha8Rng::seed_from_u64(1)).unwrap_err();
        assert!(err.contains("'$.nope'") && err.contains("'x.$'"), "{err}");
    }

    #[test]
    fn bad_templates_fail_to_compile() {
        assert!(Template::compile(&json!({"x.$": 3})).is_err());
        assert!(Template::compile(&json!({"x.$": "$.a[*]"})).is_err());
        assert!(Template::compile(&json!({"x.$": "States.Nope()"})).is_err());
    }
}
