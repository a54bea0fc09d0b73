//! Choice rules: every comparison operator of the Amazon States Language, and
//! `And`/`Or`/`Not`.

use serde_json::{Map, Value};
use stepshift_core::Timestamp;

use super::path::Path;

/// What a comparison compares against: a literal, or another path (`...Path` operators).
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// A literal from the definition.
    Literal(Value),
    /// A path into the input.
    Path(Path),
}

/// A comparison operator, without its `Path` suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `StringEquals`...
    StringEquals,
    StringLessThan,
    StringGreaterThan,
    StringLessThanEquals,
    StringGreaterThanEquals,
    /// `StringMatches`: `*` wildcards, `\*` a literal star.
    StringMatches,
    NumericEquals,
    NumericLessThan,
    NumericGreaterThan,
    NumericLessThanEquals,
    NumericGreaterThanEquals,
    BooleanEquals,
    TimestampEquals,
    TimestampLessThan,
    TimestampGreaterThan,
    TimestampLessThanEquals,
    TimestampGreaterThanEquals,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

const OPS: [(&str, Op); 23] = [
    ("StringEquals", Op::StringEquals),
    ("StringLessThan", Op::StringLessThan),
    ("StringGreaterThan", Op::StringGreaterThan),
    ("StringLessThanEquals", Op::StringLessThanEquals),
    ("StringGreaterThanEquals", Op::StringGreaterThanEquals),
    ("StringMatches", Op::StringMatches),
    ("NumericEquals", Op::NumericEquals),
    ("NumericLessThan", Op::NumericLessThan),
    ("NumericGreaterThan", Op::NumericGreaterThan),
    ("NumericLessThanEquals", Op::NumericLessThanEquals),
    ("NumericGreaterThanEquals", Op::NumericGreaterThanEquals),
    ("BooleanEquals", Op::BooleanEquals),
    ("TimestampEquals", Op::TimestampEquals),
    ("TimestampLessThan", Op::TimestampLessThan),
    ("TimestampGreaterThan", Op::TimestampGreaterThan),
    ("TimestampLessThanEquals", Op::TimestampLessThanEquals),
    ("TimestampGreaterThanEquals", Op::TimestampGreaterThanEquals),
    ("IsNull", Op::IsNull),
    ("IsPresent", Op::IsPresent),
    ("IsNumeric", Op::IsNumeric),
    ("IsString", Op::IsString),
    ("IsBoolean", Op::IsBoolean),
    ("IsTimestamp", Op::IsTimestamp),
];

/// A Choice rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// All must hold.
    And(Vec<Rule>),
    /// Any must hold.
    Or(Vec<Rule>),
    /// Must not hold.
    Not(Box<Rule>),
    /// `Variable` compared with `Op`.
    Compare {
        /// The input value compared.
        variable: Path,
        /// The operator.
        op: Op,
        /// The other side.
        operand: Operand,
    },
}

impl Rule {
    /// Parses a rule object; `top` rules carry `Next`, nested ones must not.
    pub fn parse(obj: &Map<String, Value>, top: bool) -> Result<Rule, String> {
        let allowed_extra = if top { ["Next", "Comment"].as_slice() } else { ["Comment"].as_slice() };
        let nested = |v: &Value| -> Result<Rule, String> {
            v.as_object()
                .ok_or_else(|| "a nested rule must be an object".to_owned())
                .and_then(|o| Rule::parse(o, false))
        };
        let keys: Vec<&str> = obj.keys().map(String::as_str).filter(|k| !allowed_extra.contains(k)).collect();
        if keys == ["And"] || keys == ["Or"] {
            let list = obj[keys[0]].as_array().ok_or_else(|| format!("{} must be a list of rules", keys[0]))?;
            if list.is_empty() {
                return Err(format!("{} must not be empty", keys[0]));
            }
            let rules = list.iter().map(nested).collect::<Result<Vec<_>, _>>()?;
            return Ok(if keys[0] == "And" { Rule::And(rules) } else { Rule::Or(rules) });
        }
        if keys == ["Not"] {
            return Ok(Rule::Not(Box::new(nested(&obj["Not"])?)));
        }
        let variable = obj
            .get("Variable")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("a rule needs a Variable, or And/Or/Not (has: {})", keys.join(", ")))?;
        let variable = Path::parse(variable)?;
        let ops: Vec<&str> = keys.iter().copied().filter(|k| *k != "Variable").collect();
        let [op_name] = ops.as_slice() else {
            return Err(format!("a rule needs exactly one comparison operator, found: {}", ops.join(", ")));
        };
        let (base, is_path) = match op_name.strip_suffix("Path") {
            Some(b) if !b.starts_with("Is") => (b, true),
            _ => (*op_name, false),
        };
        let op = OPS
            .iter()
            .find(|(n, _)| *n == base)
            .map(|(_, o)| *o)
            .ok_or_else(|| format!("unknown comparison operator `{op_name}`"))?;
        let raw = &obj[*op_name];
        let operand = if is_path {
            Operand::Path(Path::parse(raw.as_str().ok_or_else(|| format!("{op_name} must be a path"))?)?)
        } else {
            check_literal(op, raw).map_err(|e| format!("{op_name}: {e}"))?;
            Operand::Literal(raw.clone())
        };
        Ok(Rule::Compare { variable, op, operand })
    }

    /// Whether the rule holds for `input`.
    pub fn holds(&self, input: &Value) -> bool {
        match self {
            Rule::And(rules) => rules.iter().all(|r| r.holds(input)),
            Rule::Or(rules) => rules.iter().any(|r| r.holds(input)),
            Rule::Not(rule) => !rule.holds(input),
            Rule::Compare { variable, op, operand } => {
                let value = variable.get(input);
                let other = match operand {
                    Operand::Literal(v) => Some(v),
                    Operand::Path(p) => p.get(input),
                };
                compare(*op, value, other)
            }
        }
    }
}

fn check_literal(op: Op, v: &Value) -> Result<(), String> {
    use Op::*;
    let ok = match op {
        StringEquals
        | StringLessThan
        | StringGreaterThan
        | StringLessThanEquals
        | StringGreaterThanEquals
        | StringMatches => v.is_string(),
        NumericEquals | NumericLessThan | NumericGreaterThan | NumericLessThanEquals | NumericGreaterThanEquals => {
            v.is_number()
        }
        TimestampEquals
        | TimestampLessThan
        | TimestampGreaterThan
        | TimestampLessThanEquals
        | TimestampGreaterThanEquals => v.as_str().is_some_and(|s| Timestamp::parse_rfc3339(s).is_ok()),
        BooleanEquals | IsNull | IsPresent | IsNumeric | IsString | IsBoolean | IsTimestamp => v.is_boolean(),
    };
    if ok { Ok(()) } else { Err(format!("{v} is not a valid operand")) }
}

fn timestamp(v: &Value) -> Option<Timestamp> {
    v.as_str().and_then(|s| Timestamp::parse_rfc3339(s).ok())
}

fn wildcard(pattern: &str, text: &str) -> bool {
    // Tokens: literal chars, or a star. `\*` is a literal star, `\\` a backslash.
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => tokens.push(Some(chars.next().unwrap_or('\\'))),
            '*' => tokens.push(None),
            c => tokens.push(Some(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // Classic wildcard matching by dynamic programming over (token, char).
    let mut reach = vec![false; text.len() + 1];
    reach[0] = true;
    for t in &tokens {
        let mut next = vec![false; text.len() + 1];
        match t {
            None => {
                let mut seen = false;
                for i in 0..=text.len() {
                    seen |= reach[i];
                    next[i] = seen;
                }
            }
            Some(c) => {
                for i in 0..text.len() {
                    next[i + 1] = reach[i] && text[i] == *c;
                }
            }
        }
        reach = next;
    }
    reach[text.len()]
}

fn compare(op: Op, value: Option<&Value>, other: Option<&Value>) -> bool {
    use Op::*;
    let flag = other.and_then(Value::as_bool).unwrap_or(true);
    match op {
        IsPresent => value.is_some() == flag,
        IsNull => value.is_some_and(Value::is_null) == flag,
        IsNumeric => value.is_some_and(Value::is_number) == flag,
        IsString => value.is_some_and(Value::is_string) == flag,
        IsBoolean => value.is_some_and(Value::is_boolean) == flag,
        IsTimestamp => value.and_then(timestamp).is_some() == flag,
        BooleanEquals => {
            matches!((value.and_then(Value::as_bool), other.and_then(Value::as_bool)), (Some(a), Some(b)) if a == b)
        }
        StringEquals
        | StringLessThan
        | StringGreaterThan
        | StringLessThanEquals
        | StringGreaterThanEquals
        | StringMatches => {
            let (Some(a), Some(b)) = (value.and_then(Value::as_str), other.and_then(Value::as_str)) else {
                return false;
            };
            match op {
                StringEquals => a == b,
                StringLessThan => a < b,
                StringGreaterThan => a > b,
                StringLessThanEquals => a <= b,
                StringGreaterThanEquals => a >= b,
                _ => wildcard(b, a),
            }
        }
        NumericEquals | NumericLessThan | NumericGreaterThan | NumericLessThanEquals | NumericGreaterThanEquals => {
            let (Some(a), Some(b)) = (value.and_then(Value::as_f64), other.and_then(Value::as_f64)) else {
                return false;
            };
            match op {
                NumericEquals => a == b,
                NumericLessThan => a < b,
                NumericGreaterThan => a > b,
                NumericLessThanEquals => a <= b,
                _ => a >= b,
            }
        }
        TimestampEquals
        | TimestampLessThan
        | TimestampGreaterThan
        | TimestampLessThanEquals
        | TimestampGreaterThanEquals => {
            let (Some(a), Some(b)) = (value.and_then(timestamp), other.and_then(timestamp)) else {
                return false;
            };
            match op {
                TimestampEquals => a == b,
                TimestampLessThan => a < b,
                TimestampGreaterThan => a > b,
                TimestampLessThanEquals => a <= b,
                _ => a >= b,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule(v: Value) -> Rule {
        Rule::parse(v.as_object().unwrap(), true).unwrap()
    }

    #[test]
    fn comparisons() {
        let input = json!({"s": "canary", "n": 10, "b": true, "t": "2026-11-24T20:00:00Z", "other": 10, "x": null});
        let holds = |v: Value| rule(v).holds(&input);
        assert!(holds(json!({"Variable": "$.s", "StringEquals": "canary", "Next": "A"})));
        assert!(holds(json!({"Variable": "$.s", "StringLessThan": "linear", "Next": "A"})));
        assert!(holds(json!({"Variable": "$.s", "StringMatches": "can*y", "Next": "A"})));
        assert!(!holds(json!({"Variable": "$.s", "StringMatches": "can\\*y", "Next": "A"})));
        assert!(holds(json!({"Variable": "$.n", "NumericGreaterThanEquals": 10, "Next": "A"})));
        assert!(holds(json!({"Variable": "$.n", "NumericEqualsPath": "$.other", "Next": "A"})));
        assert!(!holds(json!({"Variable": "$.s", "NumericEquals": 10, "Next": "A"})), "a string is not a number");
        assert!(holds(json!({"Variable": "$.b", "BooleanEquals": true, "Next": "A"})));
        assert!(holds(json!({"Variable": "$.t", "TimestampLessThan": "2026-11-25T00:00:00Z", "Next": "A"})));
        assert!(holds(json!({"Variable": "$.x", "IsNull": true, "Next": "A"})));
        assert!(holds(json!({"Variable": "$.missing", "IsPresent": false, "Next": "A"})));
        assert!(holds(json!({"Variable": "$.t", "IsTimestamp": true, "Next": "A"})));
        assert!(holds(json!({"Variable": "$.n", "IsNumeric": true, "Next": "A"})));
        assert!(holds(json!({"Variable": "$.s", "IsString": true, "Next": "A"})));
        assert!(holds(json!({"Variable": "$.b", "IsBoolean": true, "Next": "A"})));
        assert!(!holds(json!({"Variable": "$.missing", "StringEquals": "x", "Next": "A"})), "missing never equals");
    }

    #[test]
    fn boolean_logic() {
        let input = json!({"a": 1, "b": 2});
        let r = rule(json!({"And": [
            {"Variable": "$.a", "NumericEquals": 1},
            {"Or": [{"Variable": "$.b", "NumericEquals": 5}, {"Not": {"Variable": "$.b", "NumericEquals": 3}}]}
        ], "Next": "A"}));
        assert!(r.holds(&input));
    }

    #[test]
    fn malformed_rules_are_refused() {
        let bad = [
            json!({"Variable": "$.a", "Next": "A"}),
            json!({"Variable": "$.a", "StringEquals": "x", "NumericEquals": 1, "Next": "A"}),
            json!({"Variable": "$.a", "StringEqual": "x", "Next": "A"}),
            json!({"Variable": "$.a", "NumericEquals": "1", "Next": "A"}),
            json!({"And": [], "Next": "A"}),
            json!({"Variable": "a", "IsNull": true, "Next": "A"}),
        ];
        for b in bad {
            assert!(Rule::parse(b.as_object().unwrap(), true).is_err(), "{b}");
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*.log", "a.log"));
        assert!(wildcard("a*b*c", "aXXbYc"));
        assert!(!wildcard("a*b", "ac"));
        assert!(wildcard("\\*", "*"));
    }
}
