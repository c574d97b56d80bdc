//! `smf-inspect header`: every header field.

use serde_json::json;
use smf::Module;

use super::{flag_names, flags_text};
use crate::output::{Out, Paint};

const HEADER_FLAGS: &[(u64, &str)] = &[
    (0x1, "executable"),
    (0x2, "reloadable"),
    (0x4, "debug_info"),
    (0x8, "pic"),
    (0x10, "has_stub"),
];

pub fn print(module: &Module<'_>, out: &mut Out) -> anyhow::Result<()> {
    let h = module.header();
    if out.json() {
        return out.write_json(&json!({
            "magic": String::from_utf8_lossy(&h.magic),
            "version_major": h.version_major,
            "version_minor": h.version_minor,
            "platform": h.platform.code(),
            "platform_name": h.platform.name(),
            "arch": h.arch.code(),
            "arch_name": h.arch.name(),
            "flags": h.flags,
            "flags_names": flag_names(h.flags.into(), HEADER_FLAGS),
            "compression": h.compression.code(),
            "compression_name": h.compression.name(),
            "compression_level": h.compression_level,
            "section_count": h.section_count,
            "section_table_offset": h.section_table_offset,
            "symbol_table_offset": h.symbol_table_offset,
            "symbol_count": h.symbol_count,
            "exported_count": h.exported_count,
            "entry_point": h.entry_point,
            "stub_size": h.stub_size,
            "smf_data_offset": h.smf_data_offset,
            "module_hash": h.module_hash,
            "source_hash": h.source_hash,
            "app_type": h.app_type.code(),
            "app_type_name": h.app_type.name(),
            "prefetch_hint": h.prefetch_hint,
            "window_width": h.window_width,
            "window_height": h.window_height,
            "prefetch_file_count": h.prefetch_file_count,
            "smf_size": h.smf_size,
            "base": module.base(),
            "header_offset": module.header_offset(),
        }));
    }
    let enumerated = |name: &str, code: u8| format!("{} ({code})", out.paint(Paint::Kind, name));
    let rows: Vec<(&str, String)> = vec![
        (
            "magic",
            format!(
                "{:02x} {:02x} {:02x} {:02x} \"SMF\\0\"",
                h.magic[0], h.magic[1], h.magic[2], h.magic[3]
            ),
        ),
        (
            "version",
            format!("{}.{}", h.version_major, h.version_minor),
        ),
        ("platform", enumerated(h.platform.name(), h.platform.code())),
        ("arch", enumerated(h.arch.name(), h.arch.code())),
        ("flags", flags_text(h.flags.into(), HEADER_FLAGS, 8)),
        (
            "compression",
            enumerated(h.compression.name(), h.compression.code()),
        ),
        ("compression_level", h.compression_level.to_string()),
        ("section_count", h.section_count.to_string()),
        (
            "section_table_offset",
            out.paint(Paint::Offset, format!("{:#x}", h.section_table_offset)),
        ),
        (
            "symbol_table_offset",
            out.paint(Paint::Offset, format!("{:#x}", h.symbol_table_offset)),
        ),
        ("symbol_count", h.symbol_count.to_string()),
        ("exported_count", h.exported_count.to_string()),
        (
            "entry_point",
            out.paint(Paint::Offset, format!("{:#x}", h.entry_point)),
        ),
        ("stub_size", h.stub_size.to_string()),
        (
            "smf_data_offset",
            out.paint(Paint::Offset, format!("{:#x}", h.smf_data_offset)),
        ),
        ("module_hash", format!("{:#018x}", h.module_hash)),
        ("source_hash", format!("{:#018x}", h.source_hash)),
        ("app_type", enumerated(h.app_type.name(), h.app_type.code())),
        ("prefetch_hint", h.prefetch_hint.to_string()),
        (
            "window",
            format!("{} x {}", h.window_width, h.window_height),
        ),
        ("prefetch_file_count", h.prefetch_file_count.to_string()),
        ("smf_size", h.smf_size.to_string()),
        (
            "base",
            out.paint(
                Paint::Offset,
                format!("{:#x} (file offset of the SMF data)", module.base()),
            ),
        ),
        (
            "header_offset",
            out.paint(Paint::Offset, format!("{:#x}", module.header_offset())),
        ),
    ];
    for (label, value) in rows {
        let label = out.paint(Paint::Label, format!("{label:<21}"));
        out.line(format!("{label} {value}"))?;
    }
    Ok(())
}
