//! Whether a value serializes to TOML (`toml::Value::try_from` accepts it), answered for a
//! generated op without building the `toml::Value`: generation asks it of every op it draws, and
//! building and dropping a table of owned strings per op was a cost every fuzz input paid
//! (`valgrind --tool=callgrind target/release/examples/fuzz_exec interpreter 200
//! corpus/interpreter`: several percent more instructions built that way; this walk, under 1%).
//!
//! `fits` walks the value with a serializer that allocates nothing and says yes only for what
//! TOML's value serializer takes without question: booleans, integers in `i64`, floats, chars and
//! strings, enum variants, and sequences and structs of those. Anything else (an integer past
//! `i64::MAX`, a `None`, a unit, a map, an error of the value's own `Serialize`) is left to
//! `toml::Value::try_from`, so the answer is always TOML's own.

use serde::Serialize;
use serde::ser::{self, Impossible};

use super::op_keys::{WalkStopped, primitives_answer};

/// Whether `value` serializes to a `toml::Value`, as `toml::Value::try_from(value).is_ok()`.
pub(crate) fn fits<T: Serialize + ?Sized>(value: &T) -> bool {
    value.serialize(Plain).is_ok() || toml::Value::try_from(value).is_ok()
}

/// The serializer that says yes (`Ok`) only for what TOML surely takes; where it stops
/// (`WalkStopped`), TOML's serializer decides.
struct Plain;

type Answer = Result<(), WalkStopped>;

impl ser::Serializer for Plain {
    type Ok = ();
    type Error = WalkStopped;
    type SerializeSeq = Plain;
    type SerializeTuple = Plain;
    type SerializeTupleStruct = Plain;
    type SerializeTupleVariant = Plain;
    type SerializeMap = Impossible<(), WalkStopped>;
    type SerializeStruct = Plain;
    type SerializeStructVariant = Plain;

    primitives_answer!(Ok(()));
    fn serialize_u64(self, value: u64) -> Answer {
        i64::try_from(value).map(|_| ()).map_err(|_| WalkStopped)
    }
    fn serialize_none(self) -> Answer {
        Err(WalkStopped)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Answer {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Answer {
        Err(WalkStopped)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Answer {
        Err(WalkStopped)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Answer {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Answer {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Answer {
        value.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Plain, WalkStopped> {
        Ok(Plain)
    }
    fn serialize_tuple(self, _: usize) -> Result<Plain, WalkStopped> {
        Ok(Plain)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Plain, WalkStopped> {
        Ok(Plain)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Plain, WalkStopped> {
        Ok(Plain)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, WalkStopped> {
        Err(WalkStopped)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Plain, WalkStopped> {
        Ok(Plain)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Plain, WalkStopped> {
        Ok(Plain)
    }
}

/// The compound parts (elements of a sequence or tuple, fields of a struct or variant): each is
/// walked in turn, and the whole fits when every part does. One impl per serde trait, alike but
/// for the method's name and whether it takes the field's key.
macro_rules! parts_each_walked {
    ($($trait:ident :: $method:ident ($($key:ty)?)),* $(,)?) => {$(
        impl ser::$trait for Plain {
            type Ok = ();
            type Error = WalkStopped;
            fn $method<T: Serialize + ?Sized>(&mut self, $(_: $key,)? value: &T) -> Answer {
                value.serialize(Plain)
            }
            fn end(self) -> Answer {
                Ok(())
            }
        }
    )*};
}

parts_each_walked!(
    SerializeSeq::serialize_element(),
    SerializeTuple::serialize_element(),
    SerializeTupleStruct::serialize_field(),
    SerializeTupleVariant::serialize_field(),
    SerializeStruct::serialize_field(&'static str),
    SerializeStructVariant::serialize_field(&'static str),
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    #[serde(tag = "op", rename_all = "kebab-case")]
    enum Op {
        Poke {
            slot: u8,
            value: u64,
        },
        Name {
            name: String,
            hint: Option<u32>,
            sizes: Vec<u64>,
        },
        Map {
            entries: BTreeMap<u32, u32>,
        },
        Unit {
            nothing: (),
        },
        Plain,
    }

    /// The walk's answer and TOML's agree, including where the walk leaves it to TOML.
    #[test]
    fn fits_answers_as_toml_does() {
        let cases = [
            Op::Poke {
                slot: 1,
                value: i64::MAX as u64,
            },
            Op::Poke {
                slot: 1,
                value: i64::MAX as u64 + 1,
            },
            Op::Name {
                name: "a".into(),
                hint: None,
                sizes: vec![1, 2],
            },
            Op::Name {
                name: "a".into(),
                hint: Some(3),
                sizes: vec![1, u64::MAX],
            },
            Op::Map {
                entries: BTreeMap::from([(1, 2)]),
            },
            Op::Unit { nothing: () },
            Op::Plain,
        ];
        let fitting: Vec<bool> = cases.iter().map(fits).collect();
        let toml: Vec<bool> = cases
            .iter()
            .map(|case| toml::Value::try_from(case).is_ok())
            .collect();
        assert_eq!(fitting, toml);
        assert_eq!(fitting, [true, false, true, false, false, false, true]);
        // Without the fallback: the walk itself says yes to the plain ones only.
        let plain: Vec<bool> = cases
            .iter()
            .map(|case| case.serialize(Plain).is_ok())
            .collect();
        assert_eq!(plain, [true, false, false, false, false, false, true]);
    }
}
