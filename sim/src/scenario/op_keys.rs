//! The keys of an op table that its op does not read: an unknown field that serde let through.
//!
//! serde refuses an unknown field of a struct variant marked `deny_unknown_fields`, but an
//! internally tagged enum (`#[serde(tag = "op")]`) decodes a unit variant (`Bump`, `Exit`) from a
//! table with any other keys, and a struct variant without `deny_unknown_fields` ignores the keys
//! it does not know. A misspelt field would then give a different scenario in silence, so the
//! parser asks, of every op it decodes, which keys the op reads: the ones it writes back when
//! serialized, and of the others (an optional field skipped when serialized, an alias), the ones
//! whose value changes what the op decodes to. This needs nothing of a subject's op type but what
//! the parser already asks of it (`Serialize`, `PartialEq`), so it holds for a user's subject too.
//!
//! Cost: an op written with its `op` key alone is not looked at; any other op is serialized once
//! into `KeyNames`, which reads the keys and never the values (no allocation for an op without
//! flattened fields), and only an op with a key it does not write back is decoded again.

use std::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible};

/// The first key of `table` (in its order, as serde meets them) that `op`, decoded from it, does
/// not read, and the error to report: ``unknown field `x`, there are no fields`` or ``unknown
/// field `x`, expected one of `a`, `b` `` in serde's own words, so that it reads as an unknown
/// field of any other op. `decode` decodes a table as `op` was.
pub fn unknown_field<O: Serialize + PartialEq>(
    table: &toml::Table,
    op: &O,
    decode: impl Fn(toml::Value) -> Option<O>,
) -> Option<(String, String)> {
    // `op` alone: nothing else to read (and the usual op without fields, `{ op = "bump" }`).
    if table.len() <= 1 {
        return None;
    }
    let mut written_in_table = 0;
    let all_written = op
        .serialize(KeyNames(|key: &str| {
            if key != "op" && table.contains_key(key) {
                written_in_table += 1;
            }
        }))
        .is_ok();
    let extra_keys = table.len() - usize::from(table.contains_key("op"));
    if all_written && written_in_table == extra_keys {
        return None;
    }
    // Some key is not written back: an unknown one, or a field serialization skips.
    let mut fields: Vec<String> = Vec::new();
    // An op that is no table when serialized names no fields: each key is then tried alone.
    let _ = op.serialize(KeyNames(|key: &str| {
        if key != "op" {
            fields.push(key.to_string());
        }
    }));
    let mut unread = None;
    for key in table.keys().filter(|key| *key != "op") {
        if fields.iter().any(|field| field == key) {
            continue;
        }
        if reads_key(table, key, op, &decode) {
            fields.push(key.clone());
        } else if unread.is_none() {
            unread = Some(key.as_str());
        }
    }
    let unread = unread?;
    let message = match fields.as_slice() {
        [] => format!("unknown field `{unread}`, there are no fields"),
        [one] => format!("unknown field `{unread}`, expected `{one}`"),
        [first, second] => format!("unknown field `{unread}`, expected `{first}` or `{second}`"),
        more => {
            let quoted: Vec<String> = more.iter().map(|field| format!("`{field}`")).collect();
            format!(
                "unknown field `{unread}`, expected one of {}",
                quoted.join(", ")
            )
        }
    };
    Some((unread.to_string(), message))
}

/// Whether the value of `key` matters to what `table` decodes to: with it set to a boolean or to
/// a string, in turn, the op fails to decode or decodes to another op. A key the op ignores
/// decodes to the same op whatever its value; a field's value of one type at least is refused or
/// kept (a skipped `align = 16` is refused as `true`; a skipped `flag = false` kept as `true`).
fn reads_key<O: PartialEq>(
    table: &toml::Table,
    key: &str,
    op: &O,
    decode: &impl Fn(toml::Value) -> Option<O>,
) -> bool {
    [
        toml::Value::Boolean(true),
        toml::Value::String("\u{1}not a value of any field".into()),
    ]
    .into_iter()
    .any(|probe| {
        let mut probed = table.clone();
        probed.insert(key.to_string(), probe);
        decode(toml::Value::Table(probed)).as_ref() != Some(op)
    })
}

/// A serializer that hands the top-level keys of what it serializes (a struct's fields, a map's
/// keys) to its function, and looks at no value. Anything but a struct or a map is an error.
pub(super) struct KeyNames<F>(pub(super) F);

/// The error of a serializer that walks an op to learn something of it, allocating nothing
/// (`KeyNames` here, `fits_toml`'s `Plain`): the walk stopped at what it does not handle (for
/// `KeyNames`, an op that is no table), and its caller reads that as its answer. serde asks an
/// error type of every serializer; the message is never shown.
#[derive(Debug)]
pub(super) struct WalkStopped;

impl fmt::Display for WalkStopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the walk of an op stopped")
    }
}

impl std::error::Error for WalkStopped {}

impl ser::Error for WalkStopped {
    fn custom<T: fmt::Display>(_: T) -> WalkStopped {
        WalkStopped
    }
}

/// The `ser::Serializer` methods of every primitive but `u64` (`bool`, the other integers,
/// floats, `char`, `str`, bytes), each answering `$answer`: a walk that stops at none or at
/// every one of them. `u64` is left to the walk, which may judge it by its value.
macro_rules! primitives_answer {
    ($answer:expr) => {
        primitives_answer!(@each $answer;
            serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
            serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
            serialize_f32: f32, serialize_f64: f64, serialize_char: char,
            serialize_str: &str, serialize_bytes: &[u8]);
    };
    (@each $answer:expr; $($method:ident: $type:ty),*) => {$(
        fn $method(self, _: $type) -> Result<(), $crate::scenario::op_keys::WalkStopped> {
            $answer
        }
    )*};
}
pub(super) use primitives_answer;

impl<F: FnMut(&str)> ser::SerializeStruct for KeyNames<F> {
    type Ok = ();
    type Error = WalkStopped;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        _: &T,
    ) -> Result<(), WalkStopped> {
        (self.0)(key);
        Ok(())
    }

    fn skip_field(&mut self, _: &'static str) -> Result<(), WalkStopped> {
        Ok(())
    }

    fn end(self) -> Result<(), WalkStopped> {
        Ok(())
    }
}

/// A map: what an op with a flattened field serializes to. Its keys are strings in TOML.
impl<F: FnMut(&str)> ser::SerializeMap for KeyNames<F> {
    type Ok = ();
    type Error = WalkStopped;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), WalkStopped> {
        match toml::Value::try_from(key) {
            Ok(toml::Value::String(key)) => {
                (self.0)(&key);
                Ok(())
            }
            _ => Err(WalkStopped),
        }
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, _: &T) -> Result<(), WalkStopped> {
        Ok(())
    }

    fn end(self) -> Result<(), WalkStopped> {
        Ok(())
    }
}

impl<F: FnMut(&str)> ser::Serializer for KeyNames<F> {
    type Ok = ();
    type Error = WalkStopped;
    type SerializeSeq = Impossible<(), WalkStopped>;
    type SerializeTuple = Impossible<(), WalkStopped>;
    type SerializeTupleStruct = Impossible<(), WalkStopped>;
    type SerializeTupleVariant = Impossible<(), WalkStopped>;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), WalkStopped>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, WalkStopped> {
        Ok(self)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self, WalkStopped> {
        Ok(self)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), WalkStopped> {
        value.serialize(self)
    }

    primitives_answer!(Err(WalkStopped));
    fn serialize_u64(self, _: u64) -> Result<(), WalkStopped> {
        Err(WalkStopped)
    }
    fn serialize_none(self) -> Result<(), WalkStopped> {
        Err(WalkStopped)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), WalkStopped> {
        Err(WalkStopped)
    }
    fn serialize_unit(self) -> Result<(), WalkStopped> {
        Err(WalkStopped)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), WalkStopped> {
        Err(WalkStopped)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), WalkStopped> {
        Err(WalkStopped)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), WalkStopped> {
        Err(WalkStopped)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, WalkStopped> {
        Err(WalkStopped)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, WalkStopped> {
        Err(WalkStopped)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, WalkStopped> {
        Err(WalkStopped)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, WalkStopped> {
        Err(WalkStopped)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, WalkStopped> {
        Err(WalkStopped)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::unknown_field;

    /// An op enum as a user might write one: no `deny_unknown_fields`, an optional field skipped
    /// when serialized, an alias, a flattened field.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "op", rename_all = "kebab-case")]
    enum Op {
        Tick,
        Put {
            slot: u8,
            #[serde(default, skip_serializing_if = "is_false")]
            sync: bool,
            #[serde(alias = "len", default)]
            bytes: u32,
        },
        Tag {
            #[serde(flatten)]
            labels: std::collections::BTreeMap<String, String>,
        },
    }

    fn is_false(flag: &bool) -> bool {
        !flag
    }

    fn check(text: &str) -> Option<String> {
        let table: toml::Table = toml::from_str(text).unwrap();
        let op: Op = toml::Value::Table(table.clone()).try_into().unwrap();
        let (key, message) = unknown_field(&table, &op, |value| value.try_into().ok())?;
        // The key it names is the one it returns.
        assert!(
            message.starts_with(&format!("unknown field `{key}`")),
            "{message}"
        );
        Some(message)
    }

    #[test]
    fn a_key_of_an_op_without_fields_is_unknown() {
        assert_eq!(check("op = \"tick\""), None);
        assert_eq!(
            check("op = \"tick\"\nx = 1").as_deref(),
            Some("unknown field `x`, there are no fields")
        );
    }

    #[test]
    fn fields_skipped_aliased_or_flattened_are_read_and_others_unknown() {
        assert_eq!(check("op = \"put\"\nslot = 1\nsync = false"), None);
        assert_eq!(check("op = \"put\"\nslot = 1\nlen = 0"), None);
        assert_eq!(check("op = \"tag\"\nanything = \"x\""), None);
        assert_eq!(
            check("op = \"put\"\nslot = 1\nsynk = true").as_deref(),
            Some("unknown field `synk`, expected `slot` or `bytes`")
        );
        assert_eq!(
            check("op = \"put\"\nslot = 1\nsync = false\nsynk = true").as_deref(),
            Some("unknown field `synk`, expected one of `slot`, `bytes`, `sync`")
        );
    }
}
