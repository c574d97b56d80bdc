//! Fuzzes the SMF reader: any bytes must give a module or an error, never a
//! panic, and a module's every accessor must stay within the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(module) = smf::Module::parse(data) else {
        return;
    };
    let _ = module.check_host();
    for section in module.sections() {
        let bytes = section.data();
        assert!(bytes.len() as u64 == section.size() || section.section_type() == Some(smf::SectionType::Bss));
        if let Some(relocations) = section.relocations() {
            for r in relocations {
                assert!(module.symbol(r.symbol_index).is_some());
                assert!(module.section(u32::from(r.target_section)).is_some());
            }
        }
    }
    for symbol in module.symbols() {
        let found = module.symbol_by_name(symbol.name()).expect("every name is indexed");
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
        assert_eq!(item.signature.is_some(), item.kind == smf::SharedKind::Table);
    }
});
