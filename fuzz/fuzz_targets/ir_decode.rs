//! Decodes arbitrary bytes as a TemplateCode section. Whatever decodes must
//! re-encode to bytes that decode to the same library; whatever verifies
//! must print and instantiate without panicking. The same bytes, when they
//! are UTF-8, go through the text parser: whatever parses must print to
//! text that parses back to the same library.

#![no_main]

use jit_ir::ir::{Constraint, Item, Library, Type};
use libfuzzer_sys::fuzz_target;

fn instantiate_everything(lib: &Library) {
    if jit_ir::verify::verify_library(lib).is_err() {
        return;
    }
    for item in lib.items() {
        if let Item::Function(f) = item {
            let args: Vec<Type> = f
                .type_params
                .iter()
                .map(|p| {
                    if p.constraint == Constraint::Float {
                        Type::F64
                    } else {
                        Type::I64
                    }
                })
                .collect();
            let _ = jit_ir::instantiate::instantiate_all(lib, &f.name, &args);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = jit_ir::binary::decode_library(data) {
        let lib = decoded.library;
        let again = jit_ir::binary::encode_library(&lib);
        let round = jit_ir::binary::decode_library(&again.bytes).expect("re-encoded bytes decode");
        assert_eq!(round.library, lib);
        let _ = jit_ir::text::print_library(&lib);
        instantiate_everything(&lib);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(lib) = jit_ir::text::parse_library(text)
    {
        let printed = jit_ir::text::print_library(&lib);
        let reparsed = jit_ir::text::parse_library(&printed).expect("printed text parses");
        assert_eq!(reparsed, lib, "print/parse changed the library:\n{printed}");
        instantiate_everything(&lib);
    }
});
