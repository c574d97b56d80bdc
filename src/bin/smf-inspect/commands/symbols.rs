//! `smf-inspect symbols`: the symbol table.

use serde_json::json;
use smf::Module;

use super::{flag_names, section_label};
use crate::output::{Out, Paint};

const SYMBOL_FLAGS: &[(u64, &str)] = &[
    (0x4, "event_loop_anchor"),
    (0x8, "pinned"),
    (0x10, "generic_template"),
    (0x20, "specialized"),
];

pub fn print(module: &Module<'_>, out: &mut Out) -> anyhow::Result<()> {
    if out.json() {
        let rows: Vec<_> = module
            .symbols()
            .map(|s| {
                json!({
                    "index": s.index(),
                    "name": s.name(),
                    "name_offset": s.name_offset(),
                    "name_hash": s.name_hash(),
                    "sym_type": s.sym_type().code(),
                    "sym_type_name": s.sym_type().name(),
                    "binding": s.binding().code(),
                    "binding_name": s.binding().name(),
                    "visibility": s.visibility(),
                    "flags": s.flags(),
                    "flags_names": flag_names(s.flags().into(), SYMBOL_FLAGS),
                    "layout_phase": s.flags() & 0x3,
                    "value": s.value(),
                    "size": s.size(),
                    "type_id": s.type_id(),
                    "version": s.version(),
                    "template_param_count": s.template_param_count(),
                    "template_offset": s.template_offset(),
                    "section_index": s.raw().section_index.get(),
                })
            })
            .collect();
        return out.write_json(&serde_json::Value::Array(rows));
    }
    let heading = format!(
        "{:>5}  {:>10} {:>8}  {:<9} {:<6} {:<14} {:<16} name",
        "idx", "value", "size", "type", "bind", "section", "flags"
    );
    out.line(out.paint(Paint::Label, heading))?;
    for s in module.symbols() {
        let section = match s.section_index() {
            Some(i) => section_label(module, u32::from(i)),
            None => "undefined".to_owned(),
        };
        let mut flags = flag_names(s.flags().into(), SYMBOL_FLAGS).join("|");
        if s.is_template() {
            flags = format!(
                "{flags}<{}>@{:#x}",
                s.template_param_count(),
                s.template_offset()
            );
        }
        let line = format!(
            "{:>5}  {} {:>8}  {} {:<6} {:<14} {:<16} {}",
            s.index(),
            out.paint(Paint::Offset, format!("{:>#10x}", s.value())),
            s.size(),
            out.paint(Paint::Kind, format!("{:<9}", s.sym_type().name())),
            s.binding().name(),
            section,
            flags,
            out.paint(Paint::Name, s.name()),
        );
        out.line(line)?;
    }
    Ok(())
}
