//! Fuzzes the SMF reader: any bytes must give a module or an error, never a
//! panic, and a module's every accessor must stay within the input.
//!
//! The same bytes also reach the decompressor inside a well-formed module:
//! they replace the compressed stream of the template code or the note of
//! `tests/fixtures/sample-zstd.smf`, with a `virtual_size` they choose, so
//! that mutations explore zstd frames rather than the tables around them.
//! (The malformed corpus in `tests/fixtures/malformed/` and the fixture
//! modules are its seeds: `fuzz/seed.sh` copies them to `fuzz/corpus/smf_reader`.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use smf::Module;

/// A valid module whose template code and note are compressed.
static COMPRESSED: &[u8] = include_bytes!("../../tests/fixtures/sample-zstd.smf");

fn check(module: &Module<'_>) {
    let _ = module.check_host();
    let mut decompressed = 0u64;
    for section in module.sections() {
        let is_bss = section.section_type() == Some(smf::SectionType::Bss);
        let stored = if is_bss { 0 } else { section.size() };
        assert_eq!(section.stored_data().len() as u64, stored);
        if section.is_compressed() {
            assert_eq!(section.data().len() as u64, section.virtual_size());
            decompressed += section.virtual_size();
        } else {
            assert_eq!(section.data(), section.stored_data());
        }
        if let Some(relocations) = section.relocations() {
            for r in relocations {
                assert!(module.symbol(r.symbol_index).is_some());
                assert!(module.section(u32::from(r.target_section)).is_some());
            }
        }
    }
    assert!(decompressed <= smf::limits::MAX_DECOMPRESSED_SIZE);
    assert_eq!(module.has_compressed_sections(), decompressed > 0);
    for symbol in module.symbols() {
        let found = module
            .symbol_by_name(symbol.name())
            .expect("every name is indexed");
        assert_eq!(found.name(), symbol.name());
        assert!(found.index() <= symbol.index());
    }
    let _ = module.note_sdn().map(str::len);
    let _ = module.template_code().map(<[u8]>::len);
    let items = module.shared_items();
    for (i, item) in items.iter().enumerate() {
        assert!(!item.name.is_empty());
        assert!(items[..i].iter().all(|other| other.name != item.name));
        assert!(item.maximum.is_none_or(|maximum| maximum >= item.initial));
        assert_eq!(
            item.signature.is_some(),
            item.kind == smf::SharedKind::Table
        );
    }
}

/// `COMPRESSED` with one compressed section's stream replaced: the first
/// input byte picks the section (even: template code, odd: the note), the
/// next two its `virtual_size` (1 to 65,536), the rest its stream, cut to
/// the room the original one had. The module hash is dropped (0, not
/// recorded), so a verdict is the decompressor's, not the hash check's.
fn with_stream(data: &[u8]) -> Option<Vec<u8>> {
    let (&[pick, lo, hi], stream) = data.split_first_chunk::<3>()?;
    let module = Module::parse(COMPRESSED).ok()?;
    let section = if pick % 2 == 0 {
        module.template_code_section()?
    } else {
        module.note_section()?
    };
    let room = usize::try_from(section.size()).ok()?;
    let start = usize::try_from(module.base() + section.offset()).ok()?;
    let table = usize::try_from(module.base() + module.header().section_table_offset).ok()?;
    let entry = table + 64 * usize::try_from(section.index()).ok()?;
    let header = usize::try_from(module.header_offset()).ok()?;
    let len = stream.len().min(room);

    let mut bytes = COMPRESSED.to_vec();
    bytes
        .get_mut(start..start + len)?
        .copy_from_slice(&stream[..len]);
    let virtual_size = u64::from(u16::from_le_bytes([lo, hi])) + 1;
    bytes
        .get_mut(entry + 16..entry + 24)?
        .copy_from_slice(&(len as u64).to_le_bytes());
    bytes
        .get_mut(entry + 24..entry + 32)?
        .copy_from_slice(&virtual_size.to_le_bytes());
    bytes.get_mut(header + 64..header + 72)?.fill(0);
    Some(bytes)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(module) = Module::parse(data) {
        check(&module);
    }
    if let Some(bytes) = with_stream(data)
        && let Ok(module) = Module::parse(&bytes)
    {
        check(&module);
    }
});
