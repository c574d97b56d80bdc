//! `smf-inspect shared`: the memories and tables of the `.shared` section,
//! defined here or imported by name.

use serde_json::{Value, json};
use smf::{Linkage, Module, SharedItem, SharedKind};

use crate::output::{Out, Paint};

/// The two lists, each with its JSON key and the unit of its sizes.
const KINDS: [(SharedKind, &str, &str); 2] = [
    (SharedKind::Memory, "memories", "64 KiB pages"),
    (SharedKind::Table, "tables", "entries"),
];

pub fn print(module: &Module<'_>, out: &mut Out) -> anyhow::Result<()> {
    let of_kind = |kind: SharedKind| {
        module
            .shared_items()
            .iter()
            .filter(move |item| item.kind == kind)
    };
    if out.json() {
        let lists = KINDS
            .iter()
            .map(|&(kind, key, _)| (key.to_owned(), of_kind(kind).map(item_json).collect()));
        return out.write_json(&Value::Object(lists.collect()));
    }
    for (k, &(kind, key, unit)) in KINDS.iter().enumerate() {
        if k > 0 {
            out.line("")?;
        }
        out.line(out.paint(Paint::Label, format!("{key} (sizes in {unit})")))?;
        let signature = if kind == SharedKind::Table {
            "  signature"
        } else {
            ""
        };
        let heading = format!(
            "{:<16} {:<8} {:>9} {:>9}{signature}",
            "name", "linkage", "initial", "maximum"
        );
        out.line(out.paint(Paint::Label, heading))?;
        for item in of_kind(kind) {
            out.line(item_line(item, out))?;
        }
    }
    Ok(())
}

/// One item as JSON: a table has its signature, a missing maximum is null.
fn item_json(item: &SharedItem) -> Value {
    let mut row = json!({
        "name": item.name,
        "linkage": item.linkage.name(),
        "initial": item.initial,
        "maximum": item.maximum,
    });
    if item.kind == SharedKind::Table {
        row["signature"] = json!(item.signature);
    }
    row
}

/// One item as a text row. An import's sizes are the definition's, so it
/// shows none; a definition without a maximum shows `-` for it.
fn item_line(item: &SharedItem, out: &Out) -> String {
    let (initial, maximum) = match item.linkage {
        Linkage::Import => ("-".to_owned(), "-".to_owned()),
        Linkage::Define => (
            item.initial.to_string(),
            item.maximum
                .map_or_else(|| "-".to_owned(), |m| m.to_string()),
        ),
    };
    let signature = item
        .signature
        .as_deref()
        .map_or_else(String::new, |s| format!("  {s}"));
    format!(
        "{} {} {initial:>9} {maximum:>9}{signature}",
        out.paint(Paint::Name, format!("{:<16}", item.name)),
        out.paint(Paint::Kind, format!("{:<8}", item.linkage.name())),
    )
}
