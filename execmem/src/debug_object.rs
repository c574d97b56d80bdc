//! The in-memory ELF64 object that describes one published batch to a
//! debugger: a `.text` section of type `SHT_NOBITS` at the address of each
//! stretch of the batch's code (the bytes are in the process already, so
//! none are copied), and a symbol table naming every function with its
//! address and size.
//!
//! The object is of type `ET_EXEC`: its section addresses and symbol values
//! are absolute, which is how GDB's JIT reader takes them (it adds no
//! offset, and lays out nothing the way it does for a relocatable file).
//! Layout: ELF header, `.symtab`, `.strtab`, `.shstrtab`, section headers.

use std::borrow::Cow;

/// A stretch of code: one `.text` section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Text {
    pub(crate) address: usize,
    pub(crate) len: usize,
}

/// A function: a symbol in the `.text` section with index `text`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Symbol<'a> {
    pub(crate) name: &'a str,
    pub(crate) text: usize,
    pub(crate) address: usize,
    pub(crate) len: usize,
}

const EHDR_SIZE: usize = 64;
const SHDR_SIZE: usize = 64;
const SYM_SIZE: usize = 24;

const ET_EXEC: u16 = 2;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const SHT_SYMTAB: u32 = 2;
const SHT_STRTAB: u32 = 3;
const SHT_NOBITS: u32 = 8;
const SHF_ALLOC: u64 = 0x2;
const SHF_EXECINSTR: u64 = 0x4;
const STB_GLOBAL: u8 = 1;
const STT_FUNC: u8 = 2;

/// The ELF machine of the code this crate publishes.
pub(crate) const MACHINE: u16 = if cfg!(target_arch = "aarch64") {
    EM_AARCH64
} else {
    EM_X86_64
};

/// One section header's fields, in file order.
struct SectionHeader {
    name: u32,
    kind: u32,
    flags: u64,
    address: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    align: u64,
    entry_size: u64,
}

/// Builds the object; names as [`symbol_name`] makes them.
pub(crate) fn build(texts: &[Text], symbols: &[Symbol<'_>]) -> Vec<u8> {
    // Section indices: 0 null, 1..=texts .text, then the three tables.
    let symtab_index = texts.len() + 1;
    let strtab_index = symtab_index + 1;
    let shstrtab_index = strtab_index + 1;
    let section_count = shstrtab_index + 1;

    let mut shstrtab = vec![0u8];
    let text_name = push_str(&mut shstrtab, ".text");
    let symtab_name = push_str(&mut shstrtab, ".symtab");
    let strtab_name = push_str(&mut shstrtab, ".strtab");
    let shstrtab_name = push_str(&mut shstrtab, ".shstrtab");

    let mut strtab = vec![0u8];
    let mut symtab = vec![0u8; SYM_SIZE];
    for symbol in symbols {
        let name = push_str(&mut strtab, &symbol_name(symbol.name, symbol.address));
        symtab.extend_from_slice(&name.to_le_bytes());
        symtab.push((STB_GLOBAL << 4) | STT_FUNC);
        symtab.push(0); // st_other: default visibility
        symtab.extend_from_slice(&section_index(symbol.text + 1).to_le_bytes());
        symtab.extend_from_slice(&(symbol.address as u64).to_le_bytes());
        symtab.extend_from_slice(&(symbol.len as u64).to_le_bytes());
    }

    let symtab_offset = EHDR_SIZE;
    let strtab_offset = symtab_offset + symtab.len();
    let shstrtab_offset = strtab_offset + strtab.len();
    let headers_offset = (shstrtab_offset + shstrtab.len()).next_multiple_of(8);

    let mut headers = Vec::with_capacity(section_count);
    headers.push(SectionHeader {
        name: 0,
        kind: 0,
        flags: 0,
        address: 0,
        offset: 0,
        size: 0,
        link: 0,
        info: 0,
        align: 0,
        entry_size: 0,
    });
    for text in texts {
        headers.push(SectionHeader {
            name: text_name,
            kind: SHT_NOBITS,
            flags: SHF_ALLOC | SHF_EXECINSTR,
            address: text.address as u64,
            offset: EHDR_SIZE as u64,
            size: text.len as u64,
            link: 0,
            info: 0,
            align: 16,
            entry_size: 0,
        });
    }
    headers.push(SectionHeader {
        name: symtab_name,
        kind: SHT_SYMTAB,
        flags: 0,
        address: 0,
        offset: symtab_offset as u64,
        size: symtab.len() as u64,
        link: strtab_index as u32,
        // Index of the first global symbol: all but the null one are.
        info: 1,
        align: 8,
        entry_size: SYM_SIZE as u64,
    });
    for (name, offset, size) in [
        (strtab_name, strtab_offset, strtab.len()),
        (shstrtab_name, shstrtab_offset, shstrtab.len()),
    ] {
        headers.push(SectionHeader {
            name,
            kind: SHT_STRTAB,
            flags: 0,
            address: 0,
            offset: offset as u64,
            size: size as u64,
            link: 0,
            info: 0,
            align: 1,
            entry_size: 0,
        });
    }

    let mut out = Vec::with_capacity(headers_offset + section_count * SHDR_SIZE);
    out.extend_from_slice(b"\x7fELF");
    out.extend_from_slice(&[2, 1, 1, 0]); // 64-bit, little-endian, version 1, System V
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&ET_EXEC.to_le_bytes());
    out.extend_from_slice(&MACHINE.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    out.extend_from_slice(&0u64.to_le_bytes()); // e_phoff: no program headers
    out.extend_from_slice(&(headers_offset as u64).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // e_phentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
    out.extend_from_slice(&(SHDR_SIZE as u16).to_le_bytes());
    out.extend_from_slice(&section_index(section_count).to_le_bytes());
    out.extend_from_slice(&section_index(shstrtab_index).to_le_bytes());
    debug_assert_eq!(out.len(), EHDR_SIZE);
    out.extend_from_slice(&symtab);
    out.extend_from_slice(&strtab);
    out.extend_from_slice(&shstrtab);
    out.resize(headers_offset, 0);
    for header in headers {
        out.extend_from_slice(&header.name.to_le_bytes());
        out.extend_from_slice(&header.kind.to_le_bytes());
        out.extend_from_slice(&header.flags.to_le_bytes());
        out.extend_from_slice(&header.address.to_le_bytes());
        out.extend_from_slice(&header.offset.to_le_bytes());
        out.extend_from_slice(&header.size.to_le_bytes());
        out.extend_from_slice(&header.link.to_le_bytes());
        out.extend_from_slice(&header.info.to_le_bytes());
        out.extend_from_slice(&header.align.to_le_bytes());
        out.extend_from_slice(&header.entry_size.to_le_bytes());
    }
    out
}

/// A function's name as a NUL-terminated symbol can carry it: cut at a
/// NUL byte; an empty name becomes `jit_ADDRESS`, as in the perf map.
pub(crate) fn symbol_name(name: &str, address: usize) -> Cow<'_, str> {
    match name.split('\0').next() {
        Some(name) if !name.is_empty() => Cow::Borrowed(name),
        _ => Cow::Owned(format!("jit_{address:x}")),
    }
}

/// A section index as ELF stores it. A batch has far fewer regions than
/// the 0xff00 indices below `SHN_LORESERVE`; past that a wrapped index
/// would name a wrong section, so it becomes `SHN_UNDEF` instead.
fn section_index(index: usize) -> u16 {
    u16::try_from(index)
        .ok()
        .filter(|&i| i < 0xff00)
        .unwrap_or(0)
}

/// Appends a NUL-terminated string and returns its offset in the table.
/// Tables stay far below 4 GiB (names are bounded by
/// `limits::MAX_NAME_LEN`); saturating keeps the offset in range anyway.
fn push_str(table: &mut Vec<u8>, s: &str) -> u32 {
    let offset = u32::try_from(table.len()).unwrap_or(u32::MAX);
    table.extend_from_slice(s.as_bytes());
    table.push(0);
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }
    fn cstr(b: &[u8], at: usize) -> &str {
        let end = b[at..].iter().position(|&c| c == 0).unwrap();
        std::str::from_utf8(&b[at..at + end]).unwrap()
    }

    #[test]
    fn object_has_a_nobits_text_per_stretch_and_a_function_symbol_per_function() {
        let texts = [
            Text {
                address: 0x7000_0000,
                len: 0x40,
            },
            Text {
                address: 0x7100_0000,
                len: 0x10,
            },
        ];
        let symbols = [
            Symbol {
                name: "quicksort$i32",
                text: 0,
                address: 0x7000_0000,
                len: 0x30,
            },
            Symbol {
                name: "",
                text: 1,
                address: 0x7100_0000,
                len: 0x10,
            },
        ];
        let elf = build(&texts, &symbols);
        assert_eq!(&elf[..4], b"\x7fELF");
        assert_eq!(u16_at(&elf, 16), ET_EXEC);
        assert_eq!(u16_at(&elf, 18), MACHINE);
        let shoff = u64_at(&elf, 40) as usize;
        let shnum = usize::from(u16_at(&elf, 60));
        let shstrndx = usize::from(u16_at(&elf, 62));
        assert_eq!((shnum, shstrndx), (6, 5));
        assert_eq!(elf.len(), shoff + shnum * SHDR_SIZE);
        let header = |i: usize| shoff + i * SHDR_SIZE;
        let shstr = u64_at(&elf, header(shstrndx) + 24) as usize;
        let name = |i: usize| cstr(&elf, shstr + u32_at(&elf, header(i)) as usize);
        assert_eq!(
            (1..6).map(name).collect::<Vec<_>>(),
            [".text", ".text", ".symtab", ".strtab", ".shstrtab"]
        );
        for (i, text) in texts.iter().enumerate() {
            let h = header(i + 1);
            assert_eq!(u32_at(&elf, h + 4), SHT_NOBITS);
            assert_eq!(u64_at(&elf, h + 8), SHF_ALLOC | SHF_EXECINSTR);
            assert_eq!(u64_at(&elf, h + 16), text.address as u64);
            assert_eq!(u64_at(&elf, h + 32), text.len as u64);
        }
        let symtab = u64_at(&elf, header(3) + 24) as usize;
        let symtab_len = u64_at(&elf, header(3) + 32) as usize;
        assert_eq!(u32_at(&elf, header(3) + 40), 4, "linked to .strtab");
        assert_eq!(symtab_len, 3 * SYM_SIZE);
        let strtab = u64_at(&elf, header(4) + 24) as usize;
        let symbol = |k: usize| {
            let s = symtab + k * SYM_SIZE;
            (
                cstr(&elf, strtab + u32_at(&elf, s) as usize).to_owned(),
                elf[s + 4],
                u16_at(&elf, s + 6),
                u64_at(&elf, s + 8),
                u64_at(&elf, s + 16),
            )
        };
        assert_eq!(
            symbol(1),
            ("quicksort$i32".to_owned(), 0x12, 1, 0x7000_0000, 0x30)
        );
        assert_eq!(
            symbol(2),
            ("jit_71000000".to_owned(), 0x12, 2, 0x7100_0000, 0x10)
        );
    }
}
