//! Prints a scenario back as TOML that parses to the same scenario: ops as one inline table per
//! line, so that a generated or shrunk scenario reads like a hand-written one.

use std::fmt::{self, Write};

use serde::Serialize;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

use super::op_keys::KeyNames;
use super::{Lifecycle, RunnerOp, Scenario, ScenarioOp, default_warmup};
use crate::os::{Limits, PlatformModel};
use crate::sched::StrategyChoice;
use crate::seed::format_seed;

fn key(name: &str) -> String {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        name.to_string()
    } else {
        toml::Value::String(name.to_string()).to_string()
    }
}

/// A JSON object's fields in the order they were written, which for a serialized struct is its
/// declaration order. A `serde_json::Map` would sort them by name: serde_json's `preserve_order`
/// feature is off, and turning it on would also reorder the keys of the JSON `sim` builds as
/// values (`sim run --json`, say).
struct FieldsInOrder(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for FieldsInOrder {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = FieldsInOrder;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldsInOrder, A::Error> {
                let mut fields = Vec::new();
                while let Some(field) = map.next_entry()? {
                    fields.push(field);
                }
                Ok(FieldsInOrder(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// `[section]` with the fields of `value` that differ from `default`, in declaration order;
/// nothing when none does, so that a scenario on the defaults prints without the section. For
/// flat structs of numbers (`Limits`, `PlatformModel`): JSON numbers print as TOML integers, and
/// unlike TOML values they hold any `u64`, so no value makes printing fail.
fn write_changed_fields<T: Serialize>(out: &mut String, section: &str, value: &T, default: &T) {
    let fields = |value: &T| {
        serde_json::to_string(value)
            .and_then(|json| serde_json::from_str::<FieldsInOrder>(&json))
            .map_or_else(|_| Vec::new(), |fields| fields.0)
    };
    let (value, default) = (fields(value), fields(default));
    let changed: Vec<_> = value
        .iter()
        .filter(|field| !default.contains(field))
        .collect();
    if changed.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n[{section}]");
    for (name, field) in changed {
        let _ = writeln!(out, "{} = {field}", key(name));
    }
}

/// One TOML value on one line.
pub fn inline(value: &toml::Value) -> String {
    match value {
        toml::Value::Table(table) => {
            let mut parts = Vec::new();
            if let Some(op) = table.get("op") {
                parts.push(format!("op = {}", inline(op)));
            }
            for (name, item) in table.iter().filter(|(name, _)| name.as_str() != "op") {
                parts.push(format!("{} = {}", key(name), inline(item)));
            }
            if parts.is_empty() {
                "{}".into()
            } else {
                format!("{{ {} }}", parts.join(", "))
            }
        }
        toml::Value::Array(items) => format!(
            "[{}]",
            items.iter().map(inline).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

/// `value`, a struct or a variant of an internally tagged enum, as one TOML inline table with its
/// fields in declaration order (the `op` tag first), where `inline` of its `toml::Value` sorts
/// them by name: for what a person reads (`sim list`'s examples, a written scenario), `slot`
/// before `bytes` as the op declares them. The values are TOML's own (a `None` left out, a NaN
/// `nan`), put in the order `op_keys::KeyNames` meets the keys. `None` when TOML cannot hold it
/// (an integer past `i64::MAX`) or it is no table.
pub fn inline_in_order<T: Serialize>(value: &T) -> Option<String> {
    let toml::Value::Table(mut table) = toml::Value::try_from(value).ok()? else {
        return None;
    };
    let mut parts = Vec::new();
    let _ = value.serialize(KeyNames(|name: &str| {
        if let Some(field) = table.remove(name) {
            parts.push(format!("{} = {}", key(name), inline(&field)));
        }
    }));
    // A key the walk did not name (none, for a struct or a map), after the rest.
    for (name, field) in &table {
        parts.push(format!("{} = {}", key(name), inline(field)));
    }
    Some(if parts.is_empty() {
        "{}".into()
    } else {
        format!("{{ {} }}", parts.join(", "))
    })
}

/// Why a scenario cannot be printed: one of its ops holds a value TOML has no spelling for (an
/// integer past `i64::MAX`, TOML's integers being `i64`). Generated scenarios never hold one
/// (`generate` drops such ops); a subject's own code that makes ops (`closing_ops`, a
/// deserializer of its own) can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unprintable {
    /// Where the op is: `lifecycle `name`, ops #2`.
    pub place: String,
    /// The op as JSON, which holds any integer.
    pub op: String,
    /// What TOML's serializer said.
    pub why: String,
}

impl fmt::Display for Unprintable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the scenario cannot be printed as TOML: {} is `{}`: {}",
            self.place, self.op, self.why
        )
    }
}

impl std::error::Error for Unprintable {}

fn op_value<O: Serialize>(op: &ScenarioOp<O>) -> Result<toml::Value, toml::ser::Error> {
    match op {
        ScenarioOp::Spawn { thread } => toml::Value::try_from(RunnerOp::Spawn {
            thread: thread.clone(),
        }),
        ScenarioOp::Join { thread } => toml::Value::try_from(RunnerOp::Join {
            thread: thread.clone(),
        }),
        ScenarioOp::Exit => toml::Value::try_from(RunnerOp::Exit),
        ScenarioOp::Sleep { ticks } => toml::Value::try_from(RunnerOp::Sleep { ticks: *ticks }),
        ScenarioOp::Subject(op) => toml::Value::try_from(op),
    }
}

/// What printing does with an op TOML cannot hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unholdable {
    /// Stops with the op (`Unprintable`): a file must parse back.
    Refuse,
    /// Writes the op's JSON in its place (`to_toml_for_hash`).
    AsJson,
}

/// `lifecycle` is where the list is, for an `Unprintable`'s place: `lifecycle `name``.
fn op_list<O: Serialize>(
    out: &mut String,
    lifecycle: &str,
    name: &str,
    ops: &[ScenarioOp<O>],
    unholdable: Unholdable,
) -> Result<(), Unprintable> {
    if ops.is_empty() {
        return Ok(());
    }
    let _ = writeln!(out, "{name} = [");
    for (index, op) in ops.iter().enumerate() {
        // A subject's op with its fields in declaration order, as `sim list` shows it and as a
        // person writes it (`slot` before `bytes`); the runner's ops have one field each.
        let line = match op {
            ScenarioOp::Subject(op) => inline_in_order(op),
            _ => None,
        };
        let line = match line {
            Some(line) => line,
            None => match op_value(op) {
                Ok(value) => inline(&value),
                Err(why) => {
                    let unprintable = Unprintable {
                        place: format!("{lifecycle}, {name} #{index}"),
                        op: match op {
                            ScenarioOp::Subject(op) => serde_json::to_string(op),
                            _ => Ok(String::new()),
                        }
                        .unwrap_or_default(),
                        why: why.to_string(),
                    };
                    match unholdable {
                        Unholdable::Refuse => return Err(unprintable),
                        Unholdable::AsJson => format!("json {}", unprintable.op),
                    }
                }
            },
        };
        let _ = writeln!(out, "  {line},");
    }
    let _ = writeln!(out, "]");
    Ok(())
}

fn lifecycle<O: Serialize>(
    out: &mut String,
    lifecycle: &Lifecycle<O>,
    unholdable: Unholdable,
) -> Result<(), Unprintable> {
    let _ = writeln!(out, "\n[[lifecycle]]");
    let _ = writeln!(
        out,
        "name = {}",
        toml::Value::String(lifecycle.name.to_string())
    );
    if lifecycle.repeat != 1 {
        let _ = writeln!(out, "repeat = {}", lifecycle.repeat);
    }
    if lifecycle.warmup != default_warmup(lifecycle.repeat) {
        let _ = writeln!(out, "warmup = {}", lifecycle.warmup);
    }
    let place = format!("lifecycle `{}`", lifecycle.name);
    op_list(out, &place, "setup", &lifecycle.setup, unholdable)?;
    op_list(out, &place, "ops", &lifecycle.ops, unholdable)?;
    op_list(out, &place, "teardown", &lifecycle.teardown, unholdable)?;
    for thread in &lifecycle.threads {
        let _ = writeln!(out, "\n[[lifecycle.thread]]");
        let _ = writeln!(out, "name = {}", toml::Value::String(thread.name.clone()));
        let place = format!("{place}, thread `{}`", thread.name);
        op_list(out, &place, "ops", &thread.ops, unholdable)?;
    }
    Ok(())
}

/// The scenario as a TOML file, or the first op TOML cannot hold.
pub fn to_toml<O: Serialize>(scenario: &Scenario<O>) -> Result<String, Unprintable> {
    print(scenario, Unholdable::Refuse)
}

/// The scenario as `to_toml` prints it, each op TOML cannot hold written as its JSON in its
/// place: not a file that parses, but text that tells any two scenarios apart, which the text
/// of the refusal did not (it names the first such op alone). For a hash of what a scenario runs
/// (`sweep::scenario_hash`); the same text as `to_toml`'s for a scenario that prints.
pub fn to_toml_for_hash<O: Serialize>(scenario: &Scenario<O>) -> String {
    print(scenario, Unholdable::AsJson).expect("printing with ops as JSON refuses none")
}

fn print<O: Serialize>(
    scenario: &Scenario<O>,
    unholdable: Unholdable,
) -> Result<String, Unprintable> {
    let mut out = String::new();
    let string = |text: &str| toml::Value::String(text.to_string()).to_string();
    let _ = writeln!(out, "name = {}", string(&scenario.name));
    if let Some(description) = &scenario.description {
        let _ = writeln!(out, "description = {}", string(description));
    }
    let _ = writeln!(out, "subject = {}", string(&scenario.subject));
    let defects: Vec<String> = scenario.defects.iter().map(|d| string(d)).collect();
    let _ = writeln!(out, "defects = [{}]", defects.join(", "));
    let _ = writeln!(out, "seed = {}", string(&format_seed(scenario.seed)));
    if scenario.schedule != StrategyChoice::Random {
        let value = toml::Value::try_from(&scenario.schedule).expect("strategy serializes");
        let _ = writeln!(out, "schedule = {}", inline(&value));
    }
    write_changed_fields(&mut out, "limits", &scenario.limits, &Limits::default());
    write_changed_fields(
        &mut out,
        "platform",
        &scenario.platform,
        &PlatformModel::default(),
    );
    if scenario.faults.swarm || !scenario.faults.probabilities.is_empty() {
        let _ = writeln!(out, "\n[faults]");
        if scenario.faults.swarm {
            let _ = writeln!(out, "swarm = true");
        }
        for (kind, probability) in &scenario.faults.probabilities {
            let _ = writeln!(
                out,
                "{} = {}",
                kind.name(),
                toml::Value::Float(*probability)
            );
        }
    }
    if !scenario.config.is_empty() {
        let _ = writeln!(out, "\n[config]");
        for (name, value) in &scenario.config {
            let _ = writeln!(out, "{} = {}", key(name), inline(value));
        }
    }
    if !scenario.caches.is_empty() {
        let _ = writeln!(out, "\n[caches]");
        for (name, bound) in &scenario.caches {
            let _ = writeln!(out, "{} = {bound}", key(name));
        }
    }
    if let Some(expect) = &scenario.expect {
        let _ = writeln!(out, "\n[expect]");
        let signatures: Vec<String> = expect.signatures.iter().map(|s| string(s)).collect();
        let _ = writeln!(out, "signatures = [{}]", signatures.join(", "));
        if let Some(hash) = &expect.trace_hash {
            let _ = writeln!(out, "trace_hash = {}", string(hash));
        }
    }
    for item in &scenario.lifecycles {
        lifecycle(&mut out, item, unholdable)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse::parse;
    use crate::subjects::allocator::Allocator;
    use crate::subjects::counter::Counter;

    #[test]
    fn changed_limits_and_platform_fields_print_in_declaration_order() {
        let text = "name = \"sizes\"\nsubject = \"counter\"\n\
            [limits]\nhost_run_seconds_max = 5\nfds_max = 8\nsteps_max = 100\n\
            [platform]\ncondvar_bytes = 1\nmutex_bytes = 2\n\
            [[lifecycle]]\nname = \"l\"\nops = [{ op = \"create\", slot = 1 }]\n";
        let printed = to_toml(&parse::<Counter>("sizes.toml", text).unwrap()).unwrap();
        assert!(
            printed.contains(
                "\n[limits]\nsteps_max = 100\nfds_max = 8\nhost_run_seconds_max = 5\n\n\
                 [platform]\nmutex_bytes = 2\ncondvar_bytes = 1\n"
            ),
            "{printed}"
        );
    }

    /// A written scenario (a repro, a shrink's output) lists an op's fields as the op declares
    /// them, as `sim list` shows them, not by name: `slot` before `bytes` before `heap`.
    /// A float TOML holds and JSON does not (NaN, an infinity) is printed in its place, and a
    /// `None` left out: printed by way of JSON, the NaN field was left out as null, and the
    /// printed scenario did not parse back.
    #[test]
    fn a_non_finite_float_is_printed_in_order_and_a_none_left_out() {
        #[derive(serde::Serialize)]
        struct Scale {
            op: &'static str,
            slot: u8,
            factor: f64,
            limit: Option<u8>,
        }
        let scale = |factor| Scale {
            op: "scale",
            slot: 1,
            factor,
            limit: None,
        };
        for (factor, printed) in [(0.5, "0.5"), (f64::NAN, "nan"), (f64::INFINITY, "inf")] {
            assert_eq!(
                inline_in_order(&scale(factor)).as_deref(),
                Some(format!("{{ op = \"scale\", slot = 1, factor = {printed} }}").as_str())
            );
        }
    }

    #[test]
    fn ops_print_their_fields_in_declaration_order() {
        let text = "name = \"order\"\nsubject = \"allocator\"\n\
            [[lifecycle]]\nname = \"l\"\n\
            ops = [{ op = \"heap-new\", heap = 0 }, { heap = 0, bytes = 64, op = \"malloc\", slot = 1 }]\n";
        let scenario = parse::<Allocator>("order.toml", text).unwrap();
        let printed = to_toml(&scenario).unwrap();
        assert!(
            printed.contains(
                "ops = [\n  { op = \"heap-new\", heap = 0 },\n  \
                 { op = \"malloc\", slot = 1, bytes = 64, heap = 0 },\n]\n"
            ),
            "{printed}"
        );
        assert_eq!(
            parse::<Allocator>("printed.toml", &printed).unwrap(),
            scenario,
            "reads back as the same scenario"
        );
    }
}
