//! How many fields a registered function's output has, found from its
//! `Deserialize`: a tuple `(A, B)` asks serde for a tuple of 2. So a field
//! reference (`{"ref": "split", "index": 1}`) is checked before anything
//! runs, without a value to look at.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

/// The fields of a type, as its `Deserialize` describes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fields {
    /// A tuple (or tuple struct) of this many fields.
    Tuple(usize),
    /// Something else: no fields to pick.
    None,
}

/// The fields of `T`.
pub(crate) fn fields<T: DeserializeOwned>() -> Fields {
    match T::deserialize(Probe) {
        Err(Found(fields)) => fields,
        Ok(_) => Fields::None,
    }
}

/// A deserializer that answers no request, but notes what was asked.
struct Probe;

/// What the probe found, as the error that stops the deserialization.
#[derive(Debug)]
struct Found(Fields);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "probed: {:?}", self.0)
    }
}

impl std::error::Error for Found {}

impl de::Error for Found {
    fn custom<M: fmt::Display>(_: M) -> Found {
        Found(Fields::None)
    }
}

impl<'de> Deserializer<'de> for Probe {
    type Error = Found;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
        Err(Found(Fields::None))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, _: V) -> Result<V::Value, Found> {
        Err(Found(Fields::Tuple(len)))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        _: V,
    ) -> Result<V::Value, Found> {
        Err(Found(Fields::Tuple(len)))
    }

    /// A newtype is serialized as what it wraps: look inside.
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Found> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct seq map struct enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Pair(#[allow(dead_code)] u8, #[allow(dead_code)] String);

    #[derive(serde::Deserialize)]
    #[serde(transparent)]
    struct Wrapped(#[allow(dead_code)] (u8, u8, u8));

    #[test]
    fn tuples_have_fields_and_nothing_else_does() {
        assert_eq!(fields::<(u64, String)>(), Fields::Tuple(2));
        assert_eq!(fields::<(u8,)>(), Fields::Tuple(1));
        assert_eq!(fields::<Pair>(), Fields::Tuple(2));
        assert_eq!(fields::<Wrapped>(), Fields::Tuple(3));
        assert_eq!(fields::<[u8; 4]>(), Fields::Tuple(4));
        assert_eq!(fields::<u64>(), Fields::None);
        assert_eq!(fields::<Vec<u64>>(), Fields::None);
        assert_eq!(fields::<Option<(u8, u8)>>(), Fields::None);
        assert_eq!(fields::<serde_json::Value>(), Fields::None);
        assert_eq!(fields::<()>(), Fields::None);
    }
}
