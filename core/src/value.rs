//! [`Value`]: what a task produces and its dependents consume.

use crate::chunk::Chunk;
use serde::{Deserialize, Serialize};

/// The result of one task.
///
/// Array blocks are [`Value::Chunk`]; reductions pass partial results such as
/// `(count, mean, m2)` as [`Value::Tuple`]; writes return [`Value::Unit`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// Nothing (a task run for its side effect, such as writing a chunk).
    Unit,
    /// One block of an array.
    Chunk(Chunk),
    /// Several values, e.g. the parts of a partial reduction.
    Tuple(Vec<Value>),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A JSON document (serialised as its text, so binary formats carry it too).
    #[serde(with = "json_text")]
    Json(serde_json::Value),
}

impl Value {
    /// Approximate bytes held in memory by the value.
    pub fn nbytes(&self) -> usize {
        match self {
            Value::Unit => 0,
            Value::Chunk(c) => c.nbytes(),
            Value::Tuple(parts) => parts.iter().map(Value::nbytes).sum(),
            Value::Bytes(b) => b.len(),
            Value::Json(j) => j.to_string().len(),
        }
    }

    /// The chunk inside, or an error naming what the value was instead.
    pub fn as_chunk(&self) -> crate::Result<&Chunk> {
        match self {
            Value::Chunk(c) => Ok(c),
            other => Err(crate::Error::invalid("value", format!("expected an array chunk, found {}", other.kind()))),
        }
    }

    /// The parts of a tuple, or an error naming what the value was instead.
    pub fn as_tuple(&self) -> crate::Result<&[Value]> {
        match self {
            Value::Tuple(parts) => Ok(parts),
            other => Err(crate::Error::invalid("value", format!("expected a tuple, found {}", other.kind()))),
        }
    }

    /// A short name of the variant, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Unit => "unit",
            Value::Chunk(_) => "chunk",
            Value::Tuple(_) => "tuple",
            Value::Bytes(_) => "bytes",
            Value::Json(_) => "json",
        }
    }
}

impl From<Chunk> for Value {
    fn from(c: Chunk) -> Self {
        Value::Chunk(c)
    }
}

/// Serde for a JSON document as its text.
mod json_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &serde_json::Value, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<serde_json::Value, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}
