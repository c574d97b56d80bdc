//! `smf-inspect sections`: the section table. A compressed section shows
//! both its sizes: `size`, the bytes stored, and the bytes they decompress
//! to (its `virtual_size`, and what every other command reads).

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
                    "compressed": s.is_compressed(),
                    "decompressed_size": s.is_compressed().then(|| s.data().len()),
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
    let method = module.header().compression;
    for s in module.sections() {
        let mut line = format!(
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
        if s.is_compressed() {
            line.push_str(&format!(
                "  {method}: {} bytes stored, {} decompressed",
                s.size(),
                s.data().len()
            ));
        }
        out.line(line)?;
    }
    Ok(())
}
