//! Reading back what the host wrote as JSON: JSON has no NaN, so `serde_json` writes a NaN score
//! as `null`; this reader turns a `null` where a float is expected back into NaN (and reads
//! everything else as `serde_json` does).

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{DeserializeOwned, Deserializer, IntoDeserializer, Visitor};
use serde_json::Value;

/// Deserializes `T` from `value`, a `null` in a float's place read as NaN.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
    T::deserialize(Lenient(value))
}

/// A JSON value whose nulls read as NaN where a float is expected.
struct Lenient(Value);

impl<'de> IntoDeserializer<'de, serde_json::Error> for Lenient {
    type Deserializer = Lenient;
    fn into_deserializer(self) -> Lenient {
        self
    }
}

impl<'de> Deserializer<'de> for Lenient {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter().map(Lenient));
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Value::Object(map) => {
                let mut access = MapDeserializer::new(map.into_iter().map(|(k, v)| (k, Lenient(v))));
                let value = visitor.visit_map(&mut access)?;
                access.end()?;
                Ok(value)
            }
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_f64(f64::NAN),
            other => other.deserialize_f64(visitor),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_f32(f32::NAN),
            other => other.deserialize_f32(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Lenient(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) if map.len() == 1 => {
                let access = MapDeserializer::new(map.into_iter().map(|(k, v)| (k, Lenient(v))));
                visitor.visit_enum(serde::de::value::MapAccessDeserializer::new(access))
            }
            other => other.deserialize_enum(name, variants, visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "kebab-case")]
    enum Kind {
        Plain,
        Weighted { weight: f64 },
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    struct Point {
        score: f64,
        null: Option<f64>,
        scores: std::collections::BTreeMap<String, f64>,
        kinds: Vec<Kind>,
        items: usize,
    }

    #[test]
    fn a_null_float_reads_as_nan_and_everything_else_as_written() {
        let value = serde_json::json!({
            "score": null, "null": null, "scores": { "p@1": 0.5, "commutation": null },
            "kinds": ["plain", { "weighted": { "weight": 2.0 } }], "items": 7,
        });
        let p: Point = from_value(value).unwrap();
        assert!(p.score.is_nan() && p.null.is_none() && p.scores["commutation"].is_nan());
        assert_eq!(p.scores["p@1"], 0.5);
        assert_eq!(p.kinds, vec![Kind::Plain, Kind::Weighted { weight: 2.0 }]);
        assert_eq!(p.items, 7);
        assert!(from_value::<Point>(serde_json::json!({ "score": "high" })).is_err());
    }
}
