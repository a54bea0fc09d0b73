//! Repeated keys in a request's JSON text. serde_json keeps the last of a repeated key
//! without a word (`"strategy"` twice: the second wins), and no well-kept crate reports
//! them, so this walks the text once with serde_json's own deserializer and names the
//! first repeated key by its path. A request that reached Step Functions has been
//! parsed already (and its repeats collapsed), so this guards the text a person wrote:
//! `stepshift deploy --config`, and [`super::DeploymentRequest::from_json`].

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// What a repeated key is told.
pub const REPEATED_KEY: &str = "appears twice in one object; JSON would keep only the last, so remove one";

/// The path of the first key that an object of `text` repeats (`strategy`,
/// `health.error_rate.max_percent`, `targets[1].alias`), if any. Text that is not JSON
/// has none: the parser's own error says what is wrong with it.
pub fn first_repeated_key(text: &str) -> Option<String> {
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let _ = Walk { path: String::new(), found: &found }.deserialize(&mut de);
    found.into_inner()
}

struct Walk<'a> {
    path: String,
    found: &'a RefCell<Option<String>>,
}

impl Walk<'_> {
    fn at(&self, path: String) -> Walk<'_> {
        Walk { path, found: self.found }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() { key.clone() } else { format!("{}.{key}", self.path) };
            if !seen.insert(key) {
                self.found.borrow_mut().get_or_insert_with(|| path.clone());
            }
            map.next_value_seed(self.at(path))?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq.next_element_seed(self.at(format!("{}[{i}]", self.path)))?.is_some() {
            i += 1;
        }
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_repeat_is_named_by_its_path() {
        assert_eq!(first_repeated_key(r#"{"a": 1, "b": 2}"#), None);
        assert_eq!(
            first_repeated_key(r#"{"strategy": "x", "schema": 1, "strategy": "y"}"#).as_deref(),
            Some("strategy")
        );
        let nested = r#"{"health": {"error_rate": {"max_percent": 1, "max_percent": 2}}}"#;
        assert_eq!(first_repeated_key(nested).as_deref(), Some("health.error_rate.max_percent"));
        let listed = r#"{"targets": [{"function": "a", "alias": "b"}, {"alias": "c", "alias": "d"}]}"#;
        assert_eq!(first_repeated_key(listed).as_deref(), Some("targets[1].alias"));
        // The same key in two different objects is no repeat.
        assert_eq!(first_repeated_key(r#"[{"a": 1}, {"a": 2}]"#), None);
        assert_eq!(first_repeated_key("not json"), None);
    }
}
