//! Loop entries (`jit::osr`): for every loop header of every instance of
//! the collections library, the derived entry verifies as a concrete
//! function with the register types it reports, takes the transfer
//! buffer and returns what the original returns.

mod common;

use common::{collections, type_args};
use jit::instantiate::instantiate;
use jit::ir::{BlockId, Terminator, Type};
use jit::osr::loop_entry;
use jit::verify::verify_function;

/// Blocks some branch reaches from a block at or after them.
fn loop_headers(f: &jit::ir::Function) -> Vec<BlockId> {
    let mut headers = Vec::new();
    for (b, block) in f.blocks.iter().enumerate() {
        let targets: Vec<u32> = match &block.term {
            Terminator::Br(t) => vec![t.block.0],
            Terminator::CondBr {
                then, otherwise, ..
            } => vec![then.block.0, otherwise.block.0],
            _ => vec![],
        };
        for t in targets {
            if t as usize <= b && !headers.contains(&BlockId(t)) {
                headers.push(BlockId(t));
            }
        }
    }
    headers
}

#[test]
fn every_loop_entry_of_the_library_verifies() {
    let lib = collections();
    let mut entries = 0;
    for template in lib.functions() {
        for args in type_args(template) {
            let Ok(instance) = instantiate(&lib, &template.name, &args) else {
                continue;
            };
            let f = &instance.function;
            let headers = loop_headers(f);
            let mut outermost = 0;
            for &header in &headers {
                let entry = match loop_entry(f, &instance.reg_types, header) {
                    Ok(entry) => entry,
                    Err(e) => {
                        assert!(
                            matches!(e.kind, jit::ErrorKind::NoLoopEntry { .. }),
                            "{} at {header:?}: {e}",
                            instance.symbol
                        );
                        continue;
                    }
                };
                outermost += 1;
                let types = verify_function(&entry.function, &lib).unwrap_or_else(|e| {
                    panic!(
                        "{} at {header:?}: {e}\n{}",
                        instance.symbol,
                        jit::text::print_function(&entry.function, None)
                    )
                });
                assert_eq!(types, entry.reg_types, "{}", instance.symbol);
                assert_eq!(entry.function.sig.ret, f.sig.ret);
                assert_eq!(entry.function.sig.params, [Type::I64.ptr_to()]);
                let header_params = f.blocks[header.0 as usize].params.len();
                assert!(entry.transfer.len() >= header_params);
                entries += 1;
            }
            // Every function with loops has an outermost one to enter.
            assert!(headers.is_empty() || outermost > 0, "{}", instance.symbol);
        }
    }
    assert!(entries > 50, "only {entries} loop entries in the library");
}

#[test]
fn the_entry_block_and_the_function_entry_are_refused() {
    let lib = collections();
    let instance =
        instantiate(&lib, &jit::ir::TemplateName::free("sum"), &[Type::I64]).expect("sum<i64>");
    for header in [BlockId(0), BlockId(999)] {
        assert!(loop_entry(&instance.function, &instance.reg_types, header).is_err());
    }
}
