//! `smf-inspect notes`: the six tables of the `note.sdn` section.

use anyhow::{Context, anyhow};
use sdn::note::{
    CIRCULAR_ERROR_FIELDS, CIRCULAR_WARNING_FIELDS, DEPENDENCY_FIELDS, INSTANTIATION_FIELDS, Note,
    POSSIBLE_FIELDS, TYPE_INFERENCE_FIELDS,
};
use serde_json::Value;
use smf::Module;

use crate::output::{Out, Paint};

/// The tables in the order the note schema lists them, with their columns.
const TABLES: [(&str, &[&str]); 6] = [
    ("instantiations", &INSTANTIATION_FIELDS),
    ("possible", &POSSIBLE_FIELDS),
    ("type_inferences", &TYPE_INFERENCE_FIELDS),
    ("dependencies", &DEPENDENCY_FIELDS),
    ("circular_warnings", &CIRCULAR_WARNING_FIELDS),
    ("circular_errors", &CIRCULAR_ERROR_FIELDS),
];

/// Parses the module's `note.sdn`, reporting a syntax or schema error with
/// the file offset of the line it is on.
pub fn read_note(module: &Module<'_>) -> anyhow::Result<Note> {
    let section = module
        .note_section()
        .ok_or_else(|| anyhow!("the module has no note.sdn section"))?;
    let text = module.note_sdn().unwrap_or_default();
    Note::parse(text).map_err(|e| {
        let start = module.base() + section.offset();
        match e.location() {
            Some(at) => {
                let line_offset: usize = text
                    .split_inclusive('\n')
                    .take(at.line.saturating_sub(1))
                    .map(str::len)
                    .sum();
                anyhow!(
                    "note.sdn:{}:{}: {} (at offset {:#x})",
                    at.line,
                    at.column,
                    e.message(),
                    start + line_offset as u64
                )
            }
            None => anyhow!("note.sdn: {} (at offset {start:#x})", e.message()),
        }
    })
}

pub fn print(module: &Module<'_>, out: &mut Out) -> anyhow::Result<()> {
    let note = read_note(module)?;
    let value = serde_json::to_value(&note).context("note tables as JSON")?;
    if out.json() {
        return out.write_json(&value);
    }
    for (k, (table, columns)) in TABLES.iter().enumerate() {
        let rows: &[Value] = value
            .get(table)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        if k > 0 {
            out.line("")?;
        }
        let count = if rows.len() == 1 {
            "1 row".to_owned()
        } else {
            format!("{} rows", rows.len())
        };
        out.line(format!("{} ({count})", out.paint(Paint::Label, table)))?;
        if rows.is_empty() {
            continue;
        }
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|row| columns.iter().map(|c| cell_text(row.get(c))).collect())
            .collect();
        let widths: Vec<usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                cells
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([c.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let heading: Vec<String> = columns
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.line(out.paint(Paint::Label, format!("  {}", heading.join("  ").trim_end())))?;
        for row in cells {
            let text: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.line(format!("  {}", text.join("  ").trim_end()))?;
        }
    }
    Ok(())
}

fn cell_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| cell_text(Some(v)))
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}
