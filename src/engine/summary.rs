//! An action's input as records and syncs see it: secrets redacted (records are readable through
//! `GET /api/flows/{flow}`) and large collections summarised (their items are in the events), so
//! the record of a 20 MB ingest stays small. A system action's collections are kept whole: they
//! exist nowhere else, and the syncs it sets off (again, after a crash) need them.
//!
//! JSON text (a request body) is summarised in one pass over its bytes — a large array is
//! counted, not built — so the input is decoded into values only once, by its concept.

use super::trace_log;
use concept_core::Input;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Arrays longer than this are summarised.
const KEEP: usize = 100;
/// How many items a summary shows.
const SHOWN: usize = 3;

/// The input as kept in the action record and seen by syncs.
pub fn summary(input: &Input, keep_whole: bool) -> Value {
    let summary = match input {
        Input::Value(v) => summarise_value(v, keep_whole),
        Input::Json(bytes) if keep_whole => serde_json::from_slice(bytes).unwrap_or(Value::Null),
        Input::Json(bytes) => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            Summarised.deserialize(&mut de).unwrap_or(Value::Null)
        }
    };
    trace_log::redact(summary)
}

fn summarise_value(input: &Value, keep_whole: bool) -> Value {
    match input {
        Value::Object(map) if !keep_whole => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::Array(items) if items.len() > KEEP => shown(items.len(), items[..SHOWN].to_vec()),
                        other => other.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn shown(count: usize, first: Vec<Value>) -> Value {
    serde_json::json!({ "$items": count, "$first": first })
}

/// The whole input: an object whose fields are summarised (anything else as it is).
struct Summarised;

impl<'de> DeserializeSeed<'de> for Summarised {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Field)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        Field.visit_seq(seq)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// One field's value: an array longer than [`KEEP`] becomes `{"$items", "$first"}`, counted
/// without building its other items; anything else as it is.
struct Field;

impl<'de> DeserializeSeed<'de> for Field {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Field {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        let mut count = 0usize;
        loop {
            if count < KEEP {
                match seq.next_element::<Value>()? {
                    Some(v) => items.push(v),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            count += 1;
        }
        if count > KEEP {
            items.truncate(SHOWN);
            return Ok(shown(count, items));
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            out.insert(key, map.next_value::<Value>()?);
        }
        Ok(Value::Object(out))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_and_values_summarise_alike() {
        let likes: Vec<Value> = (0..250).map(|i| json!({"trackId": format!("t{i}")})).collect();
        let input = json!({"userId": "u", "likes": likes, "plays": [{"trackId": "a"}], "n": 1.5, "ok": true,
                           "nested": {"deep": [1, 2]}, "accessToken": "secret"});
        let text = concept_core::Bytes::from(serde_json::to_vec(&input).expect("json"));
        let from_text = summary(&Input::Json(text), false);
        let from_value = summary(&Input::Value(input.clone()), false);
        assert_eq!(from_text, from_value);
        assert_eq!(from_text["likes"]["$items"], json!(250));
        assert_eq!(
            from_text["likes"]["$first"],
            json!([{"trackId": "t0"}, {"trackId": "t1"}, {"trackId": "t2"}])
        );
        assert_eq!(from_text["plays"], json!([{"trackId": "a"}]));
        assert_eq!(from_text["accessToken"], json!("[redacted]"));
        // Kept whole for a system action.
        assert_eq!(
            summary(&Input::Value(input), true)["likes"].as_array().map(Vec::len),
            Some(250)
        );
    }
}
