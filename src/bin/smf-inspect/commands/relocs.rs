//! `smf-inspect relocs`: every relocation, with symbol and section names.

use serde_json::json;
use smf::Module;

use super::section_label;
use crate::output::{Out, Paint};

pub fn print(module: &Module<'_>, out: &mut Out) -> anyhow::Result<()> {
    let symbol_name = |i: u32| module.symbol(i).map_or("", |s| s.name());
    if out.json() {
        let rows: Vec<_> = module
            .relocations()
            .map(|(section, index, r)| {
                json!({
                    "section": section,
                    "index": index,
                    "offset": r.offset,
                    "symbol_index": r.symbol_index,
                    "symbol_name": symbol_name(r.symbol_index),
                    "type": r.reloc_type.code(),
                    "type_name": r.reloc_type.name(),
                    "target_section": r.target_section,
                    "target_section_name": section_label(module, u32::from(r.target_section)),
                    "addend": r.addend,
                })
            })
            .collect();
        return out.write_json(&serde_json::Value::Array(rows));
    }
    let heading = format!(
        "{:<16} {:>10}  {:<9} {:>12}  symbol",
        "target", "offset", "type", "addend"
    );
    out.line(out.paint(Paint::Label, heading))?;
    for (_, _, r) in module.relocations() {
        let line = format!(
            "{:<16} {} {} {:>12}  {} (#{})",
            section_label(module, u32::from(r.target_section)),
            out.paint(Paint::Offset, format!("{:>#10x}", r.offset)),
            out.paint(Paint::Kind, format!(" {:<9}", r.reloc_type.name())),
            r.addend,
            out.paint(Paint::Name, symbol_name(r.symbol_index)),
            r.symbol_index,
        );
        out.line(line)?;
    }
    Ok(())
}
