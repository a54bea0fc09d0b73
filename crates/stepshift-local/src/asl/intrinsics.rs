//! The intrinsic functions of the Amazon States Language (`States.Format(...)` and
//! friends), parsed once at load time and evaluated against a state's input.

use base64::Engine;
use rand::Rng;
use serde_json::{Map, Number, Value};

use super::path::Path;

/// An argument of an intrinsic call.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// A quoted string literal.
    Text(String),
    /// A number literal.
    Number(Number),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// A reference path into the input or the context.
    Path(Path),
    /// A nested call.
    Call(Box<Call>),
}

/// A parsed intrinsic call.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The function's name, e.g. `States.Format`.
    pub name: String,
    /// Its arguments.
    pub args: Vec<Arg>,
}

/// Every intrinsic function this interpreter evaluates.
pub const FUNCTIONS: [&str; 17] = [
    "States.Format",
    "States.StringToJson",
    "States.JsonToString",
    "States.Array",
    "States.ArrayPartition",
    "States.ArrayContains",
    "States.ArrayRange",
    "States.ArrayGetItem",
    "States.ArrayLength",
    "States.ArrayUnique",
    "States.Base64Encode",
    "States.Base64Decode",
    "States.JsonMerge",
    "States.MathRandom",
    "States.MathAdd",
    "States.StringSplit",
    "States.UUID",
];

/// Whether `text` looks like an intrinsic call rather than a path.
pub fn is_call(text: &str) -> bool {
    text.starts_with("States.")
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn skip_spaces(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
    }

    fn fail<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("intrinsic `{}`: {what} at position {}", self.text, self.pos))
    }

    fn call(&mut self) -> Result<Call, String> {
        self.skip_spaces();
        let end = self.rest().find('(').map(|i| self.pos + i);
        let Some(end) = end else {
            return self.fail("expected `(`");
        };
        let name = self.text[self.pos..end].trim().to_owned();
        if !FUNCTIONS.contains(&name.as_str()) {
            return Err(format!(
                "intrinsic function `{name}` is not supported by stepshift-local (supported: {})",
                FUNCTIONS.join(", ")
            ));
        }
        self.pos = end + 1;
        let mut args = Vec::new();
        self.skip_spaces();
        if self.rest().starts_with(')') {
            self.pos += 1;
            return Ok(Call { name, args });
        }
        loop {
            args.push(self.arg()?);
            self.skip_spaces();
            match self.rest().chars().next() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(Call { name, args });
                }
                _ => return self.fail("expected `,` or `)`"),
            }
        }
    }

    fn arg(&mut self) -> Result<Arg, String> {
        self.skip_spaces();
        let rest = self.rest();
        if let Some(quoted) = rest.strip_prefix('\'') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        // Escapes of the braces stay escaped for States.Format to read.
                        Some((_, e @ ('{' | '}'))) => {
                            out.push('\\');
                            out.push(e);
                        }
                        Some((_, e)) => out.push(e),
                        None => return self.fail("unfinished escape"),
                    },
                    '\'' => {
                        self.pos += i + 2;
                        return Ok(Arg::Text(out));
                    }
                    c => out.push(c),
                }
            }
            return self.fail("unclosed string");
        }
        if is_call(rest) {
            return Ok(Arg::Call(Box::new(self.call()?)));
        }
        let end = rest.find([',', ')']).unwrap_or(rest.len());
        let token = rest[..end].trim().to_owned();
        self.pos += end;
        let token = token.as_str();
        match token {
            "true" => Ok(Arg::Bool(true)),
            "false" => Ok(Arg::Bool(false)),
            "null" => Ok(Arg::Null),
            t if t.starts_with('$') => Path::parse(t).map(Arg::Path),
            t => match serde_json::from_str::<Number>(t) {
                Ok(n) => Ok(Arg::Number(n)),
                Err(_) => self.fail(&format!("`{t}` is not a string, number, path or call")),
            },
        }
    }
}

/// Parses an intrinsic call such as `States.Format('step {}', $.index)`.
pub fn parse(text: &str) -> Result<Call, String> {
    let mut p = Parser { text, pos: 0 };
    let call = p.call()?;
    p.skip_spaces();
    if !p.rest().is_empty() {
        return p.fail("unexpected text after the call");
    }
    Ok(call)
}

fn int(v: &Value, what: &str) -> Result<i64, String> {
    v.as_i64()
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        .ok_or_else(|| format!("{what} must be an integer, got {v}"))
}

fn text(v: &Value, what: &str) -> Result<String, String> {
    v.as_str().map(str::to_owned).ok_or_else(|| format!("{what} must be a string, got {v}"))
}

fn array(v: &Value, what: &str) -> Result<Vec<Value>, String> {
    v.as_array().cloned().ok_or_else(|| format!("{what} must be an array, got {v}"))
}

fn arity(call: &Call, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() == n { Ok(()) } else { Err(format!("{} takes {n} arguments, got {}", call.name, args.len())) }
}

/// Evaluates `call` with `$` = `input` and `$$` = `context`.
pub fn eval(call: &Call, input: &Value, context: &Value, rng: &mut impl Rng) -> Result<Value, String> {
    let mut args = Vec::with_capacity(call.args.len());
    for a in &call.args {
        args.push(match a {
            Arg::Text(s) => Value::String(s.clone()),
            Arg::Number(n) => Value::Number(n.clone()),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Null => Value::Null,
            Arg::Path(p) => p.read(input, context).cloned().ok_or_else(|| format!("path {p} not found"))?,
            Arg::Call(c) => eval(c, input, context, rng)?,
        });
    }
    let name = call.name.as_str();
    match name {
        "States.Format" => {
            let template = text(args.first().ok_or("States.Format needs a template")?, "the template")?;
            format(&template, &args[1..])
        }
        "States.StringToJson" => {
            arity(call, &args, 1)?;
            serde_json::from_str(&text(&args[0], "the argument")?).map_err(|e| format!("States.StringToJson: {e}"))
        }
        "States.JsonToString" => {
            arity(call, &args, 1)?;
            Ok(Value::String(args[0].to_string()))
        }
        "States.Array" => Ok(Value::Array(args)),
        "States.ArrayPartition" => {
            arity(call, &args, 2)?;
            let size = int(&args[1], "the chunk size")?;
            if size <= 0 {
                return Err("States.ArrayPartition: the chunk size must be positive".into());
            }
            let items = array(&args[0], "the array")?;
            Ok(Value::Array(items.chunks(size as usize).map(|c| Value::Array(c.to_vec())).collect()))
        }
        "States.ArrayContains" => {
            arity(call, &args, 2)?;
            Ok(Value::Bool(array(&args[0], "the array")?.contains(&args[1])))
        }
        "States.ArrayRange" => {
            arity(call, &args, 3)?;
            let (start, end, step) = (int(&args[0], "start")?, int(&args[1], "end")?, int(&args[2], "step")?);
            if step == 0 {
                return Err("States.ArrayRange: step must not be 0".into());
            }
            let mut out = Vec::new();
            let mut i = start;
            while (step > 0 && i <= end) || (step < 0 && i >= end) {
                out.push(Value::from(i));
                i += step;
                if out.len() > 1000 {
                    return Err("States.ArrayRange: at most 1000 items".into());
                }
            }
            Ok(Value::Array(out))
        }
        "States.ArrayGetItem" => {
            arity(call, &args, 2)?;
            let items = array(&args[0], "the array")?;
            let i = int(&args[1], "the index")?;
            usize::try_from(i)
                .ok()
                .and_then(|i| items.get(i).cloned())
                .ok_or_else(|| format!("States.ArrayGetItem: index {i} out of range"))
        }
        "States.ArrayLength" => {
            arity(call, &args, 1)?;
            Ok(Value::from(array(&args[0], "the array")?.len()))
        }
        "States.ArrayUnique" => {
            arity(call, &args, 1)?;
            let mut out: Vec<Value> = Vec::new();
            for v in array(&args[0], "the array")? {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Ok(Value::Array(out))
        }
        "States.Base64Encode" => {
            arity(call, &args, 1)?;
            Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(text(&args[0], "the argument")?)))
        }
        "States.Base64Decode" => {
            arity(call, &args, 1)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text(&args[0], "the argument")?)
                .map_err(|e| format!("States.Base64Decode: {e}"))?;
            String::from_utf8(bytes).map(Value::String).map_err(|e| format!("States.Base64Decode: {e}"))
        }
        "States.JsonMerge" => {
            arity(call, &args, 3)?;
            if args[2] != Value::Bool(false) {
                return Err("States.JsonMerge: only shallow merges (false) are supported, as in Step Functions".into());
            }
            let (Some(a), Some(b)) = (args[0].as_object(), args[1].as_object()) else {
                return Err("States.JsonMerge: both arguments must be objects".into());
            };
            let mut merged: Map<String, Value> = a.clone();
            merged.extend(b.clone());
            Ok(Value::Object(merged))
        }
        "States.MathRandom" => {
            if !(2..=3).contains(&args.len()) {
                return Err("States.MathRandom takes 2 or 3 arguments".into());
            }
            let (lo, hi) = (int(&args[0], "start")?, int(&args[1], "end")?);
            if lo >= hi {
                return Err("States.MathRandom: start must be below end".into());
            }
            Ok(Value::from(rng.random_range(lo..hi)))
        }
        "States.MathAdd" => {
            arity(call, &args, 2)?;
            let sum = int(&args[0], "the first number")?
                .checked_add(int(&args[1], "the second number")?)
                .ok_or("States.MathAdd: overflow")?;
            Ok(Value::from(sum))
        }
        "States.StringSplit" => {
            arity(call, &args, 2)?;
            let (s, delimiters) = (text(&args[0], "the string")?, text(&args[1], "the delimiters")?);
            Ok(Value::Array(
                s.split(|c| delimiters.contains(c))
                    .filter(|p| !p.is_empty())
                    .map(|p| Value::String(p.to_owned()))
                    .collect(),
            ))
        }
        "States.UUID" => {
            arity(call, &args, 0)?;
            let mut b: [u8; 16] = rng.random();
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            Ok(Value::String(format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            )))
        }
        other => Err(format!("{other} is not supported")),
    }
}

fn format(template: &str, args: &[Value]) -> Result<Value, String> {
    let mut out = String::new();
    let mut next = args.iter();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(e) = chars.next() {
                    out.push(e);
                }
            }
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                let v = next.next().ok_or("States.Format: more {} than arguments")?;
                match v {
                    Value::String(s) => out.push_str(s),
                    Value::Number(_) | Value::Bool(_) | Value::Null => out.push_str(&v.to_string()),
                    _ => {
                        return Err("States.Format: arguments must be strings, numbers, booleans or null".into());
                    }
                }
            }
            c => out.push(c),
        }
    }
    if next.next().is_some() {
        return Err("States.Format: more arguments than {}".into());
    }
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;

    use super::*;

    fn run(text: &str, input: Value) -> Result<Value, String> {
        let call = parse(text)?;
        eval(&call, &input, &json!({"Execution": {"Name": "exec-1"}}), &mut ChaCha8Rng::seed_from_u64(7))
    }

    #[test]
    fn format_with_paths_literals_and_escapes() {
        let input = json!({"step": 2, "name": "orders"});
        assert_eq!(
            run("States.Format('step {} of {}', $.step, 'orders')", input.clone()).unwrap(),
            json!("step 2 of orders")
        );
        assert_eq!(
            run("States.Format('\\{literal\\} {}', $$.Execution.Name)", input.clone()).unwrap(),
            json!("{literal} exec-1")
        );
        assert_eq!(run("States.Format('it\\'s {}', true)", input.clone()).unwrap(), json!("it's true"));
        assert!(run("States.Format('{} {}', 1)", input.clone()).is_err());
        assert!(run("States.Format('{}', $.missing)", input).is_err());
    }

    #[test]
    fn json_and_arrays() {
        assert_eq!(run("States.StringToJson($.s)", json!({"s": "{\"a\":1}"})).unwrap(), json!({"a": 1}));
        assert_eq!(run("States.JsonToString($.o)", json!({"o": {"a": [1]}})).unwrap(), json!("{\"a\":[1]}"));
        assert_eq!(run("States.Array(1, 'two', $.x, null)", json!({"x": [3]})).unwrap(), json!([1, "two", [3], null]));
        assert_eq!(run("States.ArrayPartition($.a, 2)", json!({"a": [1, 2, 3]})).unwrap(), json!([[1, 2], [3]]));
        assert_eq!(run("States.ArrayContains($.a, 3)", json!({"a": [1, 2, 3]})).unwrap(), json!(true));
        assert_eq!(run("States.ArrayRange(1, 9, 3)", json!({})).unwrap(), json!([1, 4, 7]));
        assert_eq!(run("States.ArrayGetItem($.a, 1)", json!({"a": ["x", "y"]})).unwrap(), json!("y"));
        assert_eq!(run("States.ArrayLength($.a)", json!({"a": [1, 2]})).unwrap(), json!(2));
        assert_eq!(run("States.ArrayUnique($.a)", json!({"a": [1, 2, 1]})).unwrap(), json!([1, 2]));
        assert!(run("States.ArrayGetItem($.a, 5)", json!({"a": []})).is_err());
    }

    #[test]
    fn strings_math_and_nesting() {
        assert_eq!(run("States.Base64Decode(States.Base64Encode('hi there'))", json!({})).unwrap(), json!("hi there"));
        assert_eq!(run("States.MathAdd($.n, -3)", json!({"n": 10})).unwrap(), json!(7));
        assert_eq!(run("States.StringSplit('a,b;c', ',;')", json!({})).unwrap(), json!(["a", "b", "c"]));
        assert_eq!(
            run("States.JsonMerge($.a, $.b, false)", json!({"a": {"x": 1, "y": 1}, "b": {"y": 2}})).unwrap(),
            json!({"x": 1, "y": 2})
        );
        let r = run("States.MathRandom(1, 5)", json!({})).unwrap().as_i64().unwrap();
        assert!((1..5).contains(&r));
        let uuid = run("States.UUID()", json!({})).unwrap();
        assert_eq!(uuid.as_str().unwrap().len(), 36);
        assert_eq!(run("States.UUID()", json!({})).unwrap(), uuid, "seeded, so repeatable");
    }

    #[test]
    fn unsupported_and_malformed_calls_fail_at_parse() {
        assert!(parse("States.Hash($.x, 'SHA-256')").unwrap_err().contains("not supported"));
        assert!(parse("States.Format('x'").is_err());
        assert!(parse("States.Format('x') trailing").is_err());
        assert!(parse("States.Format(bogus)").is_err());
    }
}
