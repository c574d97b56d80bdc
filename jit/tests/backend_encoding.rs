//! The backend's own encoder against iced-x86 over the whole template
//! library: every instantiation the collections library offers is lowered
//! once and encoded both ways, and the code must be the same bytes, with
//! no instruction left to iced-x86 by the backend's encoder.
//!
//! This binary holds no other test, so the process-wide fallback counter
//! counts this test's compilations alone.

mod common;

use common::type_args;
use jit::backend::{Backend, CallTarget, Options, encoder_fallbacks};
use jit::instantiate::instantiate_symbol;
use jit::ir::Callee;
use jit::mangle::mangle;

#[test]
fn every_library_instantiation_encodes_to_the_bytes_iced_x86_encodes() {
    let lib = common::collections();
    let backend = Backend::new(Options {
        trap_handler: 0x7F00_1234_5000,
        implicit_null_checks: false,
    });
    // Callees of the library through slots, imports direct: both kinds of
    // call site.
    let mut resolver = |callee: &Callee| -> Result<CallTarget, jit::Error> {
        Ok(match callee {
            Callee::Import(_) => CallTarget::Direct(0x7F00_0000_1000),
            _ => CallTarget::Slot(0x7F00_0000_2000),
        })
    };
    let (mut functions, mut bytes) = (0, 0);
    for template in lib.functions() {
        for args in type_args(template) {
            let symbol = mangle(&template.name, &args).expect("mangles");
            let inst = instantiate_symbol(&lib, &symbol).expect("instantiates");
            let lowered = backend
                .lower(&inst.function, &inst.reg_types, &[&symbol], &mut resolver)
                .unwrap_or_else(|e| panic!("lowering {symbol}: {e}"));
            let ours = lowered.clone().encode().expect("encodes");
            let reference = lowered.encode_reference().expect("iced-x86 encodes");
            assert_eq!(ours.size(), reference.size(), "{symbol}: size");
            assert_eq!(ours.relocatable(), reference.relocatable(), "{symbol}");
            functions += 1;
            bytes += ours.size();
        }
    }
    assert!(functions > 300, "only {functions} functions compared");
    assert!(bytes > 40_000, "only {bytes} bytes compared");
    assert_eq!(encoder_fallbacks(), 0, "instructions left to iced-x86");
}
