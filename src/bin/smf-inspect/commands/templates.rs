//! `smf-inspect templates`: the TemplateCode section printed as text IR.

use anyhow::anyhow;
use jit::binary::{DecodedLibrary, decode_library_at};
use serde_json::json;
use smf::Module;

use crate::output::Out;

/// Decodes the module's TemplateCode section, reporting a malformed entry
/// at its file offset.
pub fn read_templates(module: &Module<'_>) -> anyhow::Result<DecodedLibrary> {
    let section = module
        .template_code_section()
        .ok_or_else(|| anyhow!("the module has no TemplateCode section"))?;
    let start = module.base() + section.offset();
    decode_library_at(section.data(), start).map_err(|e| anyhow!("TemplateCode: {e}"))
}

pub fn print(module: &Module<'_>, out: &mut Out) -> anyhow::Result<()> {
    let decoded = read_templates(module)?;
    let items = decoded.library.items();
    if out.json() {
        let rows: Vec<_> = items
            .iter()
            .zip(&decoded.offsets)
            .map(|(item, offset)| {
                json!({
                    "name": item.name(),
                    "kind": item_kind(item),
                    "template_offset": offset,
                    "text": item_text(item, &decoded.library),
                })
            })
            .collect();
        return out.write_json(&serde_json::Value::Array(rows));
    }
    for (k, (item, offset)) in items.iter().zip(&decoded.offsets).enumerate() {
        if k > 0 {
            out.line("")?;
        }
        out.line(format!(
            "# {} {} at template_offset {offset:#x}",
            item_kind(item),
            item.name()
        ))?;
        out.line(item_text(item, &decoded.library).trim_end())?;
    }
    Ok(())
}

fn item_kind(item: &jit::ir::Item) -> &'static str {
    match item {
        jit::ir::Item::Function(_) => "function",
        jit::ir::Item::Struct(_) => "struct",
        jit::ir::Item::Import(_) => "import",
        jit::ir::Item::Extern(_) => "extern",
        jit::ir::Item::Memory(_) => "memory",
        jit::ir::Item::Table(_) => "table",
    }
}

/// One item in the text form; functions name struct fields through `lib`.
fn item_text(item: &jit::ir::Item, lib: &jit::ir::Library) -> String {
    match item {
        jit::ir::Item::Function(f) => jit::text::print_function(f, Some(lib)),
        other => jit::ir::Library::new(vec![other.clone()])
            .map(|one| jit::text::print_library(&one))
            .unwrap_or_default(),
    }
}
