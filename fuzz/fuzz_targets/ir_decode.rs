//! Decodes arbitrary bytes as a TemplateCode section. Whatever decodes must
//! re-encode to bytes that decode to the same library; whatever verifies
//! must print and instantiate without panicking.

#![no_main]

use jit::ir::{Constraint, Item, Type};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(decoded) = jit::binary::decode_library(data) else {
        return;
    };
    let lib = decoded.library;
    let again = jit::binary::encode_library(&lib);
    let round = jit::binary::decode_library(&again.bytes).expect("re-encoded bytes decode");
    assert_eq!(round.library, lib);
    let _ = jit::text::print_library(&lib);
    if jit::verify::verify_library(&lib).is_err() {
        return;
    }
    for item in lib.items() {
        if let Item::Function(f) = item {
            let args: Vec<Type> = f
                .type_params
                .iter()
                .map(|p| if p.constraint == Constraint::Float { Type::F64 } else { Type::I64 })
                .collect();
            let _ = jit::instantiate::instantiate_all(&lib, &f.name, &args);
        }
    }
});
