//! An example of each op a subject declares, as a scenario writes it, for `sim list`.
//!
//! Nothing per subject: an op type already decodes from bytes (`arbitrary`) and prints as a TOML
//! inline table, so examples are decoded from a fixed stream of bytes, and the bytes of each op
//! are then made as small as they can be while the op keeps its name and its fields. Small bytes
//! decode to small values (the first of a range, the first of a list of choices), which read as
//! an example should: `{ op = "free", slot = 0 }`. Of the inputs that decode to an op, the one
//! that writes the most fields is kept, so that an optional field shows too. Every example is
//! one the subject accepts (`Subject::validate_op`) once the names it uses are defined, and they are
//! listed in an order that defines them first, so that all of them pasted as one op list parse.
//!
//! An op that no input decodes to (one the subject keeps for hand-written scenarios) has an
//! example only when it is written with its name alone; otherwise it has none.

use std::collections::BTreeSet;

use arbitrary::{Arbitrary, Unstructured};

use super::print;
use crate::rng::{Rng, Stream};
use crate::subject::{Names, Subject, info_of};

/// Inputs tried for a first example of each op: as many as `check_description` decodes, which
/// is enough that every variant of a small op enum turns up.
const INPUTS_TRIED: usize = 4096;
/// Bytes per input: more than any built-in op reads.
const INPUT_BYTES: usize = 64;
/// Passes over an input's bytes while making them smaller; each pass that changes nothing ends it.
const SHRINK_PASSES_MAX: usize = 8;

/// One op of a subject with its example, when it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpExample {
    pub name: &'static str,
    /// The op as one line of a scenario's op list (without the trailing comma).
    pub example: Option<String>,
}

/// An op decoded from `bytes`, with what it is written as.
struct Decoded {
    name: &'static str,
    fields: BTreeSet<String>,
    text: String,
}

/// An example of every op `S` declares (`info().ops`), in an order in which they parse as one op
/// list: an op that uses a name (a `free` of a slot) comes after one that defines it. Ops without
/// an example come last, in the order the subject declares them. The same on every call.
pub fn op_examples<S: Subject>() -> Vec<OpExample> {
    let info = info_of::<S>();
    let mut chosen: Vec<(&'static str, Vec<u8>, usize)> = Vec::new();
    let mut rng = Rng::new(0, Stream::Generator);
    let mut bytes = [0u8; INPUT_BYTES];
    for _ in 0..INPUTS_TRIED {
        rng.fill_bytes(&mut bytes);
        let Some(decoded) = decode::<S>(&bytes) else {
            continue;
        };
        match chosen.iter_mut().find(|(name, ..)| *name == decoded.name) {
            Some(known) if known.2 >= decoded.fields.len() => {}
            Some(known) => *known = (decoded.name, bytes.to_vec(), decoded.fields.len()),
            None => chosen.push((decoded.name, bytes.to_vec(), decoded.fields.len())),
        }
    }
    let mut examples: Vec<(&'static str, S::Op, String)> = Vec::new();
    for (name, bytes, _) in chosen {
        let bytes = shrink::<S>(bytes);
        if let Some(op) = decode_op::<S>(&bytes)
            && let Some(decoded) = describe::<S>(&op)
        {
            examples.push((name, op, decoded.text));
        }
    }
    // An op no input decodes to, written with its name alone (`{ op = "release" }`).
    for doc in &info.ops {
        if examples.iter().any(|(name, ..)| *name == doc.name) {
            continue;
        }
        let mut table = toml::Table::new();
        table.insert("op".into(), toml::Value::String(doc.name.into()));
        if let Ok(op) = subject_code::<S, _>("Deserialize", || {
            toml::Value::Table(table).try_into::<S::Op>()
        }) && name_of::<S>(&op) == doc.name
            && validates::<S>(&op, &mut Names::all_defined())
            && let Some(decoded) = describe::<S>(&op)
        {
            examples.push((doc.name, op, decoded.text));
        }
    }
    // Declared order first, then an order that validates: each round takes the first op whose
    // names are all defined by the ops taken before it.
    examples.sort_by_key(|(name, ..)| info.ops.iter().position(|doc| doc.name == *name));
    let mut ordered = Vec::new();
    let mut names = Names::default();
    while !examples.is_empty() {
        let checkpoint = names.checkpoint();
        let next = examples.iter().position(|(_, op, _)| {
            let valid = validates::<S>(op, &mut names);
            names.rollback(checkpoint);
            valid
        });
        // An op that never validates (its names are defined by no example) still shows.
        let (name, op, text) = examples.remove(next.unwrap_or(0));
        validates::<S>(&op, &mut names);
        ordered.push(OpExample {
            name,
            example: Some(text),
        });
    }
    for doc in &info.ops {
        if !ordered.iter().any(|example| example.name == doc.name) {
            ordered.push(OpExample {
                name: doc.name,
                example: None,
            });
        }
    }
    ordered
}

/// Calls `body`, the subject's `method`: a panic in it is the subject's, and `sim list` says so,
/// which subject's method panicked and where (`subject::calling_subject_code`).
fn subject_code<S: Subject, T>(method: &str, body: impl FnOnce() -> T) -> T {
    crate::subject::calling_subject_code::<S, T>(method, "making an example op for `list`", body)
}

fn decode_op<S: Subject>(bytes: &[u8]) -> Option<S::Op> {
    subject_code::<S, _>("Arbitrary", || {
        S::Op::arbitrary(&mut Unstructured::new(bytes))
    })
    .ok()
}

fn validates<S: Subject>(op: &S::Op, names: &mut Names) -> bool {
    subject_code::<S, _>("validate_op", || S::validate_op(op, names)).is_ok()
}

fn name_of<S: Subject>(op: &S::Op) -> &'static str {
    subject_code::<S, _>("op_name", || S::op_name(op))
}

/// The op `bytes` decode to, when it is one a scenario can write: TOML holds its values, and it
/// is valid once the names it uses are defined (a `pipe` with both ends in one slot is not).
fn decode<S: Subject>(bytes: &[u8]) -> Option<Decoded> {
    let op = decode_op::<S>(bytes)?;
    if !validates::<S>(&op, &mut Names::all_defined()) {
        return None;
    }
    describe::<S>(&op)
}

fn describe<S: Subject>(op: &S::Op) -> Option<Decoded> {
    let (value, text) = subject_code::<S, _>("Serialize", || {
        let value = toml::Value::try_from(op).ok()?;
        let text = print::inline_in_order(op).unwrap_or_else(|| print::inline(&value));
        Some((value, text))
    })?;
    let fields = value.as_table()?.keys().cloned().collect();
    Some(Decoded {
        name: name_of::<S>(op),
        fields,
        text,
    })
}

/// `bytes` made smaller, byte by byte (to 0, else to 1, else to half), while they decode to an
/// op of the same name that writes the same fields.
fn shrink<S: Subject>(mut bytes: Vec<u8>) -> Vec<u8> {
    let Some(target) = decode::<S>(&bytes) else {
        return bytes;
    };
    let same = |bytes: &[u8]| {
        decode::<S>(bytes).is_some_and(|d| d.name == target.name && d.fields == target.fields)
    };
    for _ in 0..SHRINK_PASSES_MAX {
        let mut changed = false;
        for index in 0..bytes.len() {
            let was = bytes[index];
            for smaller in [0, 1, was / 2] {
                if smaller >= bytes[index] {
                    continue;
                }
                bytes[index] = smaller;
                if same(&bytes) {
                    changed = true;
                    break;
                }
                bytes[index] = was;
            }
        }
        if !changed {
            break;
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::os::{Os, Tid};
    use crate::subject::{Config, OpDoc, Step, SubjectInfo};
    use crate::subjects::counter::Counter;

    /// Ops declared in an order that does not parse (`use` before `define`), and one that no
    /// input decodes to and that needs a field.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
    enum ToyOp {
        Use { slot: u8 },
        Define { slot: u8 },
        HandWritten { weight: u8 },
    }

    impl<'a> Arbitrary<'a> for ToyOp {
        fn arbitrary(input: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
            let slot = input.int_in_range(3..=9)?;
            Ok(if bool::arbitrary(input)? {
                ToyOp::Use { slot }
            } else {
                ToyOp::Define { slot }
            })
        }
    }

    struct Toy;

    impl Subject for Toy {
        type Op = ToyOp;

        fn info() -> SubjectInfo {
            let op = |name| OpDoc { name, summary: "" };
            SubjectInfo {
                name: "toy",
                ops: vec![op("use"), op("define"), op("hand-written")],
                ..SubjectInfo::default()
            }
        }

        fn new(_os: &mut Os, _config: &Config) -> Self {
            Toy
        }

        fn op_name(op: &ToyOp) -> &'static str {
            match op {
                ToyOp::Use { .. } => "use",
                ToyOp::Define { .. } => "define",
                ToyOp::HandWritten { .. } => "hand-written",
            }
        }

        fn apply(&mut self, _os: &mut Os, _tid: Tid, _op: &ToyOp) -> Step<Self> {
            Step::Done
        }

        fn validate(op: &ToyOp, names: &mut Names) -> Result<(), String> {
            match op {
                ToyOp::Use { slot } => names.require("slot", slot, "slot"),
                ToyOp::Define { slot } => {
                    names.define("slot", slot);
                    Ok(())
                }
                ToyOp::HandWritten { .. } => Ok(()),
            }
        }
    }

    #[test]
    fn examples_take_the_least_value_and_define_before_use_and_an_op_no_input_decodes_to_has_none()
    {
        let shown: Vec<(&str, Option<String>)> = op_examples::<Toy>()
            .into_iter()
            .map(|e| (e.name, e.example))
            .collect();
        assert_eq!(
            shown,
            [
                ("define", Some(r#"{ op = "define", slot = 3 }"#.to_string())),
                ("use", Some(r#"{ op = "use", slot = 3 }"#.to_string())),
                ("hand-written", None),
            ]
        );
    }

    #[test]
    fn counter_ops_have_small_examples_and_those_no_input_decodes_to_are_written_by_name() {
        let examples = op_examples::<Counter>();
        let shown: Vec<(&str, Option<&str>)> = examples
            .iter()
            .map(|e| (e.name, e.example.as_deref()))
            .collect();
        assert_eq!(
            shown,
            [
                ("create", Some(r#"{ op = "create", slot = 0 }"#)),
                ("evict", Some(r#"{ op = "evict", slot = 0 }"#)),
                ("bump", Some(r#"{ op = "bump" }"#)),
                ("hold", Some(r#"{ op = "hold" }"#)),
                ("release", Some(r#"{ op = "release" }"#)),
            ]
        );
    }
}
