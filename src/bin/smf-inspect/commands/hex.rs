//! `smf-inspect hex SECTION`: a section's bytes with their file offsets; a
//! compressed section's decompressed bytes, with their offsets inside it
//! (no byte of them is in the file).

use anyhow::bail;
use serde_json::json;
use smf::Module;

use crate::output::{Out, Paint};

pub fn print(module: &Module<'_>, which: &str, out: &mut Out) -> anyhow::Result<()> {
    let section = match module.section_by_name(which) {
        Some(s) => s,
        None => match which.parse::<u32>().ok().and_then(|i| module.section(i)) {
            Some(s) => s,
            None => bail!(
                "no section named or numbered '{which}' (the module has {} sections)",
                module.section_count()
            ),
        },
    };
    // A terminator-scanned note.sdn records size 0; show the text it holds.
    let bytes = match module.note_section() {
        Some(note) if note.index() == section.index() => {
            module.note_sdn().unwrap_or_default().as_bytes()
        }
        _ => section.data(),
    };
    let file_offset = module.base() + section.offset();
    let first_row = if section.is_compressed() {
        0
    } else {
        file_offset
    };
    if out.json() {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        return out.write_json(&json!({
            "index": section.index(),
            "name": section.name(),
            "offset": section.offset(),
            "file_offset": file_offset,
            "compressed": section.is_compressed(),
            "size": bytes.len(),
            "bytes": hex,
        }));
    }
    for (row, chunk) in bytes.chunks(16).enumerate() {
        let mut hex = String::with_capacity(50);
        for (i, b) in chunk.iter().enumerate() {
            if i == 8 {
                hex.push(' ');
            }
            hex.push_str(&format!("{b:02x} "));
        }
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        let at = out.paint(
            Paint::Offset,
            format!("{:08x}", first_row + row as u64 * 16),
        );
        out.line(format!("{at}  {hex:<49} |{ascii}|"))?;
    }
    Ok(())
}
