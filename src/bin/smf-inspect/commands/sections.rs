//! `smf-inspect sections`: the section table.

use serde_json::json;
use smf::Module;

use super::{SECTION_FLAGS, flag_names, flags_text};
use crate::output::{Out, Paint};

fn type_name(section: &smf::Section<'_>) -> &'static str {
    section.section_type().map_or("unknown", |t| t.name())
}

pub fn print(module: &Module<'_>, out: &mut Out) -> anyhow::Result<()> {
    if out.json() {
        let rows: Vec<_> = module
            .sections()
            .map(|s| {
                json!({
                    "index": s.index(),
                    "name": s.name(),
                    "type": s.type_code(),
                    "type_name": type_name(&s),
                    "flags": s.flags(),
                    "flags_names": flag_names(s.flags().into(), SECTION_FLAGS),
                    "offset": s.offset(),
                    "size": s.size(),
                    "virtual_size": s.virtual_size(),
                    "alignment": s.alignment(),
                })
            })
            .collect();
        return out.write_json(&serde_json::Value::Array(rows));
    }
    let heading = format!(
        "{:>3}  {:<16} {:<13} {:>10} {:>10} {:>10} {:>6}  flags",
        "idx", "name", "type", "offset", "size", "vsize", "align"
    );
    out.line(out.paint(Paint::Label, heading))?;
    for s in module.sections() {
        let line = format!(
            "{:>3}  {} {} {} {:>10} {:>10} {:>6}  {}",
            s.index(),
            out.paint(Paint::Name, format!("{:<16}", s.name())),
            out.paint(Paint::Kind, format!("{:<13}", type_name(&s))),
            out.paint(Paint::Offset, format!("{:>#10x}", s.offset())),
            s.size(),
            s.virtual_size(),
            s.alignment(),
            flags_text(s.flags().into(), SECTION_FLAGS, 1),
        );
        out.line(line)?;
    }
    Ok(())
}
