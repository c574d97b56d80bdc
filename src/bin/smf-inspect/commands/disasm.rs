//! `smf-inspect disasm SYMBOL [--syntax intel|gas|nasm]`: a precompiled
//! function's bytes as x86-64 instructions (iced-x86, through
//! `jit::backend::disassemble`), addressed by section offset, with calls
//! and relocated fields named from the module's relocations and symbols.
//!
//! Code that `smf-build` compiled ends with its constant pool, whose first
//! entry is the trap handler's address (an `abs64` relocation against
//! `__smfjit_trap`): from there on the bytes are listed as 8-byte data
//! rather than decoded as instructions.

use anyhow::{anyhow, bail};
use jit::backend::Syntax;
use serde_json::{Value, json};
use smf::{Module, Relocation, SectionType, Symbol};

use crate::output::{Out, Paint};

// The runtime symbol whose relocation marks the start of the pool.
use smfjit::build::aot::TRAP_SYMBOL;

/// A relocation inside the function, with its symbol's name.
struct Site {
    /// Offset in the section.
    offset: u64,
    kind: &'static str,
    symbol: String,
    addend: i64,
    width: u64,
}

/// One line of the listing: an instruction or an 8-byte data word.
struct Line {
    offset: u64,
    bytes: String,
    text: String,
    /// The function a direct call reaches (`name` or `name+0x10`).
    target: Option<String>,
    relocation: Option<usize>,
    /// A word of the constant pool rather than an instruction.
    data: bool,
}

pub fn print(module: &Module<'_>, name: &str, syntax: Syntax, out: &mut Out) -> anyhow::Result<()> {
    let symbol = module
        .symbol_by_name(name)
        .ok_or_else(|| anyhow!("no symbol named '{name}'"))?;
    if symbol.is_template() {
        bail!(
            "'{name}' is a generic template: it has no code until it is instantiated \
             (try `smf-inspect instantiate FILE {name}$TYPE --disasm`)"
        );
    }
    let section = match symbol.section_index() {
        Some(index) if symbol.is_defined() => module
            .section(u32::from(index))
            .ok_or_else(|| anyhow!("'{name}' names a missing section {index}"))?,
        _ => bail!(
            "'{name}' is undefined in this module: its code comes from elsewhere \
             (another module, an instantiation or a native library)"
        ),
    };
    if section.section_type() != Some(SectionType::Code) {
        bail!(
            "'{name}' is in section '{}', which is not a Code section",
            section.name()
        );
    }
    let start = symbol.value();
    let code = start
        .checked_add(symbol.size())
        .and_then(|end| {
            section
                .data()
                .get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
        })
        .ok_or_else(|| anyhow!("'{name}' lies outside its section"))?;
    let sites = sites_in(module, section.index(), start, code.len() as u64);
    let lines = listing(module, section.index(), start, code, &sites, syntax);
    if out.json() {
        return print_json(out, &symbol, section.name(), syntax, &lines, &sites);
    }
    out.line(format!(
        "{} {} {} {}",
        out.paint(Paint::Label, "disassembly of"),
        out.paint(Paint::Name, name),
        out.paint(Paint::Label, "in"),
        format_args!(
            "{} at {} ({} bytes)",
            out.paint(Paint::Name, section.name()),
            out.paint(Paint::Offset, format!("{start:#x}")),
            code.len()
        ),
    ))?;
    for line in &lines {
        let mut text = format!(
            "{}  {:<24} {}",
            out.paint(Paint::Offset, format!("{:08x}", line.offset)),
            line.bytes,
            line.text
        );
        let mut notes = Vec::new();
        if let Some(t) = &line.target {
            notes.push(out.paint(Paint::Name, t));
        }
        if let Some(site) = line.relocation.and_then(|r| sites.get(r)) {
            notes.push(relocation_note(site, out));
        }
        if !notes.is_empty() {
            text.push_str(&format!("  ; {}", notes.join(", ")));
        }
        out.line(text)?;
    }
    Ok(())
}

fn relocation_note(site: &Site, out: &Out) -> String {
    let addend = match site.addend {
        0 => String::new(),
        a => format!(" {a:+}"),
    };
    format!(
        "{} {}{addend}",
        out.paint(Paint::Kind, site.kind),
        out.paint(Paint::Name, &site.symbol)
    )
}

/// The relocations patching `[start, start + len)` of section `index`, by offset.
fn sites_in(module: &Module<'_>, index: u32, start: u64, len: u64) -> Vec<Site> {
    let mut sites: Vec<Site> = module
        .relocations()
        .map(|(_, _, r)| r)
        .filter(|r| u32::from(r.target_section) == index)
        .filter(|r| r.offset >= start && r.offset - start < len)
        .map(|r| site(module, &r))
        .collect();
    sites.sort_by_key(|s| s.offset);
    sites
}

fn site(module: &Module<'_>, r: &Relocation) -> Site {
    let (kind, width) = match r.reloc_type {
        smf::RelocType::None => ("none", 0),
        smf::RelocType::Abs64 => ("abs64", 8),
        smf::RelocType::Pc32 => ("pc32", 4),
        smf::RelocType::Plt32 => ("plt32", 4),
        smf::RelocType::GotPcRel => ("gotpcrel", 4),
    };
    Site {
        offset: r.offset,
        kind,
        symbol: module
            .symbol(r.symbol_index)
            .map_or_else(|| format!("#{}", r.symbol_index), |s| s.name().to_owned()),
        addend: r.addend,
        width,
    }
}

/// Instructions up to the constant pool, then the pool as 8-byte words.
fn listing(
    module: &Module<'_>,
    section: u32,
    start: u64,
    code: &[u8],
    sites: &[Site],
    syntax: Syntax,
) -> Vec<Line> {
    let pool = sites
        .iter()
        .find(|s| s.symbol == TRAP_SYMBOL && s.kind == "abs64")
        .map_or(code.len(), |s| (s.offset - start) as usize);
    let (text, data) = code.split_at(pool.min(code.len()));
    let mut lines = Vec::new();
    for raw in jit::backend::disassemble(text, start, syntax).lines() {
        let Some((address, rest)) = raw.split_once("  ") else {
            continue;
        };
        let (bytes, text) = rest.split_once(' ').unwrap_or((rest, ""));
        let offset = u64::from_str_radix(address, 16).unwrap_or(start);
        let len = (bytes.len() / 2) as u64;
        let relocation = sites
            .iter()
            .position(|s| s.offset >= offset && s.offset + s.width <= offset + len);
        let mut text = text.trim_start().to_owned();
        let mut target = None;
        match relocation.and_then(|r| sites.get(r)) {
            // A relocated `call rel32`: the field holds no target yet; the
            // relocation's symbol is the callee.
            Some(site) if bytes.starts_with("e8") && len == 5 => {
                text = format!("call {}", site.symbol);
            }
            Some(_) => {}
            None => {
                target = call_target(module, section, offset, bytes)
                    .or_else(|| slot_target(sites, offset, bytes));
            }
        }
        lines.push(Line {
            offset,
            bytes: bytes.to_owned(),
            text,
            target,
            relocation,
            data: false,
        });
    }
    for (k, word) in data.chunks(8).enumerate() {
        let offset = start + pool as u64 + 8 * k as u64;
        let relocation = sites.iter().position(|s| s.offset == offset);
        let value = word
            .iter()
            .rev()
            .fold(0u64, |v, b| (v << 8) | u64::from(*b));
        lines.push(Line {
            offset,
            bytes: word.iter().map(|b| format!("{b:02x}")).collect(),
            text: format!(".quad {value:#018x}"),
            target: None,
            relocation,
            data: true,
        });
    }
    lines
}

/// The function a `call rel32` reaches, as `name` or `name+0xN`.
fn call_target(module: &Module<'_>, section: u32, offset: u64, bytes: &str) -> Option<String> {
    if bytes.len() != 10 || !bytes.starts_with("e8") {
        return None;
    }
    let rel = u32::from_str_radix(bytes.get(2..)?, 16).ok()?.swap_bytes() as i32;
    let target = offset.checked_add(5)?.checked_add_signed(i64::from(rel))?;
    let within = |s: &Symbol<'_>| {
        s.is_defined()
            && s.section_index().map(u32::from) == Some(section)
            && target >= s.value()
            && target - s.value() < s.size().max(1)
    };
    let s = module.symbols().find(within)?;
    Some(match target - s.value() {
        0 => s.name().to_owned(),
        d => format!("{}+{d:#x}", s.name()),
    })
}

/// For `call [rip + disp32]` reading a relocated word of the function
/// (the trap handler's pool entry), `[symbol]`.
fn slot_target(sites: &[Site], offset: u64, bytes: &str) -> Option<String> {
    if bytes.len() != 12 || !bytes.starts_with("ff15") {
        return None;
    }
    let disp = u32::from_str_radix(bytes.get(4..)?, 16).ok()?.swap_bytes() as i32;
    let slot = offset.checked_add(6)?.checked_add_signed(i64::from(disp))?;
    let site = sites
        .iter()
        .find(|s| s.offset == slot && s.kind == "abs64")?;
    Some(format!("[{}]", site.symbol))
}

fn print_json(
    out: &mut Out,
    symbol: &Symbol<'_>,
    section: &str,
    syntax: Syntax,
    lines: &[Line],
    sites: &[Site],
) -> anyhow::Result<()> {
    let relocation = |r: Option<usize>| -> Value {
        r.and_then(|r| sites.get(r)).map_or(Value::Null, |s| {
            json!({
                "offset": s.offset,
                "type": s.kind,
                "symbol": s.symbol,
                "addend": s.addend,
            })
        })
    };
    let row = |l: &Line| {
        json!({
            "offset": l.offset,
            "bytes": l.bytes,
            "text": l.text,
            "target": l.target,
            "relocation": relocation(l.relocation),
        })
    };
    let (data, code): (Vec<&Line>, Vec<&Line>) = lines.iter().partition(|l| l.data);
    out.write_json(&json!({
        "name": symbol.name(),
        "section": section,
        "value": symbol.value(),
        "size": symbol.size(),
        "syntax": match syntax {
            Syntax::Intel => "intel",
            Syntax::Gas => "gas",
            Syntax::Nasm => "nasm",
        },
        "instructions": code.into_iter().map(row).collect::<Vec<_>>(),
        "data": data.into_iter().map(row).collect::<Vec<_>>(),
    }))
}
