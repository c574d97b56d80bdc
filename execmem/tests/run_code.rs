//! Published code runs: bytes assembled with iced-x86 for the address a
//! reservation announced, called through the published entry pointers.
#![cfg(target_arch = "x86_64")]

mod common;

use common::{STRATEGIES, as_fn2, assemble, memory_with};
use execmem::{Config, Strategy};

use iced_x86::code_asm::*;
use iced_x86::{Code, Instruction, MemoryOperand, Register};

#[test]
fn published_function_adds_its_two_arguments() {
    for strategy in STRATEGIES {
        let code = assemble(0, |a| {
            a.endbr64()?;
            a.lea(rax, qword_ptr(rdi + rsi))?;
            a.ret()
        });
        let function = memory_with(strategy)
            .publish_function("add", &code)
            .expect("published");
        assert_eq!(function.bytes(), &code[..]);
        // SAFETY: the code implements fn(i64, i64) -> i64 and `function` lives.
        let add = unsafe { as_fn2(function.entry()) };
        assert_eq!(add(2, 40), 42);
        assert_eq!(add(-5, 3), -2);
        assert_eq!(add(i64::MAX, 1), i64::MIN);
    }
}

#[test]
fn published_loop_sums_one_to_n() {
    for strategy in STRATEGIES {
        let code = assemble(0, |a| {
            let mut top = a.create_label();
            let mut done = a.create_label();
            a.endbr64()?;
            a.xor(eax, eax)?;
            a.test(rdi, rdi)?;
            a.jle(done)?;
            a.set_label(&mut top)?;
            a.add(rax, rdi)?;
            a.dec(rdi)?;
            a.jnz(top)?;
            a.set_label(&mut done)?;
            a.ret()
        });
        let function = memory_with(strategy)
            .publish_function("sum_to", &code)
            .expect("published");
        // SAFETY: the code implements fn(i64, i64) -> i64 (second argument unused).
        let sum_to = unsafe { as_fn2(function.entry()) };
        assert_eq!(sum_to(0, 0), 0);
        assert_eq!(sum_to(-3, 0), 0);
        assert_eq!(sum_to(1, 0), 1);
        assert_eq!(sum_to(10, 0), 55);
        assert_eq!(sum_to(100_000, 0), 5_000_050_000);
    }
}

/// `caller(a, b) = square(a) + b`, with `call rel32` encoded for addresses
/// that were known before either function's bytes were written. The caller
/// is reserved first, so the call is a forward reference.
#[test]
fn call_rel32_between_functions_of_one_batch() {
    for strategy in STRATEGIES {
        let memory = memory_with(strategy);
        let mut batch = memory.batch();
        let caller = batch.reserve("caller", 64, 16).expect("caller");
        let square = batch.reserve("square", 64, 16).expect("square");
        assert!(square.address() >= caller.address() + 64);

        let square_code = assemble(square.address(), |a| {
            a.endbr64()?;
            a.mov(rax, rdi)?;
            a.imul_2(rax, rdi)?;
            a.ret()
        });
        let caller_code = assemble(caller.address(), |a| {
            a.endbr64()?;
            a.push(rsi)?; // also keeps the stack 16-byte aligned at the call
            a.call(square.address() as u64)?;
            a.pop(rsi)?;
            a.add(rax, rsi)?;
            a.ret()
        });
        // endbr64 (4 bytes) and push rsi (1 byte) precede the E8 rel32.
        assert_eq!(caller_code[5], 0xE8);
        let rel = i32::from_le_bytes(caller_code[6..10].try_into().expect("4 bytes"));
        let next = caller.address() + 10;
        assert_eq!(next.wrapping_add_signed(rel as isize), square.address());

        batch.write(&square, 0, &square_code).expect("square fits");
        batch.write(&caller, 0, &caller_code).expect("caller fits");
        let before = memory.stats().protection_changes;
        let expected_changes = match memory.strategy() {
            Strategy::Mprotect => 1,
            Strategy::DualMapping | Strategy::FileWrite => 0,
        };
        let code = batch.publish().expect("published");
        assert_eq!(memory.stats().protection_changes, before + expected_changes);

        assert_eq!(code.entry(&caller).expect("own") as usize, caller.address());
        // SAFETY: the code implements fn(i64, i64) -> i64 and `code` lives.
        let f = unsafe { as_fn2(code.entry(&caller).expect("own")) };
        assert_eq!(f(7, 1), 50);
        assert_eq!(f(-3, -9), 0);
        // The unwritten rest of each reservation traps.
        let tail = &code.bytes(&square).expect("own")[square_code.len()..];
        assert!(!tail.is_empty() && tail.iter().all(|&b| b == 0xCC));
    }
}

/// Code of a later batch reaches code of an earlier one through an absolute
/// address, and reads a constant of its own batch rip-relatively.
#[test]
fn later_batch_calls_earlier_code_and_reads_a_rip_relative_constant() {
    for strategy in STRATEGIES {
        let memory = memory_with(strategy);
        let double = assemble(0, |a| {
            a.endbr64()?;
            a.lea(rax, qword_ptr(rdi + rdi))?;
            a.ret()
        });
        let double = memory.publish_function("double", &double).expect("double");

        let mut batch = memory.batch();
        let constant = batch.reserve("constant", 8, 8).expect("constant");
        let f = batch.reserve("f", 64, 16).expect("f");
        batch
            .write(&constant, 0, &1000i64.to_le_bytes())
            .expect("fits");
        let target = double.entry() as u64;
        let load = Instruction::with2(
            Code::Mov_r64_rm64,
            Register::RSI,
            MemoryOperand::with_base_displ(Register::RIP, constant.address() as i64),
        )
        .expect("mov rsi, [rip+constant]");
        let f_code = assemble(f.address(), |a| {
            a.endbr64()?;
            a.push(rbx)?;
            a.mov(rax, target)?;
            a.call(rax)?;
            a.add_instruction(load)?;
            a.add(rax, rsi)?;
            a.pop(rbx)?;
            a.ret()
        });
        batch.write(&f, 0, &f_code).expect("fits");
        let code = batch.publish().expect("published");
        // SAFETY: the code implements fn(i64, i64) -> i64; `code` and `double`
        // live.
        let f = unsafe { as_fn2(code.entry(&f).expect("own")) };
        assert_eq!(f(21, 0), 1042);
        assert_eq!(f(-500, 0), 0);
    }
}

/// Relocation-style patching: a placeholder immediate is written first and
/// patched at its offset before publication.
#[test]
fn bytes_patched_at_an_offset_before_publication_are_what_runs() {
    for strategy in STRATEGIES {
        let memory = memory_with(strategy);
        let mut batch = memory.batch();
        // mov rax, imm64 ; ret  =  48 B8 <8 bytes> C3
        let f = batch.reserve("constant", 11, 16).expect("reserved");
        batch
            .write(&f, 0, &[0x48, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0xC3])
            .expect("fits");
        batch
            .write(&f, 2, &0x1234_5678_9abc_def0u64.to_le_bytes())
            .expect("patch fits");
        batch.bytes_mut(&f).expect("own")[2] = 0xf1;
        let code = batch.publish().expect("published");
        // SAFETY: the code implements fn(i64, i64) -> i64 (arguments unused).
        let f = unsafe { as_fn2(code.entry(&f).expect("own")) };
        assert_eq!(f(0, 0), 0x1234_5678_9abc_def1);
    }
}

/// A thousand functions in one batch: each returns its own index, and the
/// whole batch took one protection change (none with dual mapping, whose
/// two views of one region are two mappings, nor with file writes, whose
/// region is one).
#[test]
fn thousand_functions_publish_with_at_most_one_protection_change() {
    for strategy in STRATEGIES {
        let memory = memory_with(strategy);
        let mut batch = memory.batch_with_capacity(1000 * 16);
        let mut reservations = Vec::new();
        for index in 0..1000u32 {
            let code = assemble(0, |a| {
                a.mov(eax, index)?;
                a.ret()
            });
            let r = batch.reserve("index", code.len(), 16).expect("reserved");
            batch.write(&r, 0, &code).expect("fits");
            reservations.push(r);
        }
        let code = batch.publish().expect("published");
        let stats = memory.stats();
        let (changes, mappings) = match memory.strategy() {
            Strategy::Mprotect => (1, 1),
            Strategy::DualMapping => (0, 2),
            Strategy::FileWrite => (0, 1),
        };
        assert_eq!(stats.protection_changes, changes);
        assert_eq!(stats.regions, mappings);
        assert_eq!(stats.functions, 1000);
        for (index, r) in reservations.iter().enumerate() {
            // SAFETY: the code implements fn(i64, i64) -> i64 (arguments unused).
            let f = unsafe { as_fn2(code.entry(r).expect("own")) };
            assert_eq!(f(0, 0), index as i64);
        }
    }
}

/// Under dual mapping and file writes, functions published one by one and
/// in separate batches share pages: each lands right after the previous one.
#[test]
fn memory_file_strategies_pack_separate_publications_into_shared_pages() {
    for strategy in [Strategy::DualMapping, Strategy::FileWrite] {
        let memory = memory_with(strategy);
        if memory.strategy() != strategy {
            eprintln!("{strategy:?} refused by this kernel; packing not applicable");
            continue;
        }
        let functions: Vec<_> = (0..100u32)
            .map(|index| {
                let mut code = assemble(0, |a| {
                    a.mov(eax, index)?;
                    a.ret()
                });
                code.resize(100, 0xCC);
                memory.publish_function("packed", &code).expect("published")
            })
            .collect();
        for pair in functions.windows(2) {
            let (first, second) = (pair[0].reservation(), pair[1].reservation());
            assert_eq!(second.address(), first.address() + 112);
        }
        for (index, function) in (0..).zip(&functions) {
            // SAFETY: the code implements fn(i64, i64) -> i64 (arguments unused).
            let f = unsafe { as_fn2(function.entry()) };
            assert_eq!(f(0, 0), index);
        }
        let stats = memory.stats();
        assert_eq!(stats.protection_changes, 0);
        assert_eq!(stats.publications, 100);
        assert_eq!(stats.bytes_code, 10_000);
        // One region of the default size, seen through two views under
        // dual mapping and one under file writes.
        let region = Config::default().region_size;
        assert_eq!(stats.bytes_executable, region);
        let (writable, views) = match strategy {
            Strategy::DualMapping => (region, 2),
            _ => (0, 1),
        };
        assert_eq!(stats.bytes_writable, writable);
        assert_eq!(stats.regions, views);
    }
}

/// An allocator publishing by file writes, or `None` (saying so, and that
/// `what` is then not applicable) where this kernel refuses them.
fn file_write_memory(what: &str) -> Option<execmem::ExecMemory> {
    let memory = memory_with(Strategy::FileWrite);
    if memory.strategy() == Strategy::FileWrite {
        Some(memory)
    } else {
        eprintln!("file writes refused by this kernel; {what} not applicable");
        None
    }
}

/// Under file writes a region's view is mapped a page at a time, as the
/// frontier reaches it: the pages handed out are the memory file's
/// read-execute pages, trapping outside functions, and the rest of the
/// region is an inaccessible reservation until code reaches it.
#[test]
fn file_write_regions_map_pages_as_the_frontier_reaches_them() {
    let Some(memory) = file_write_memory("page-at-a-time mapping") else {
        return;
    };
    let page = memory.page_size();
    let perms_at = |address: usize| {
        let maps = common::read_maps();
        let line = maps
            .iter()
            .find(|line| line.start <= address && address < line.end)
            .unwrap_or_else(|| panic!("{address:#x} is mapped"));
        line.perms.clone()
    };
    let publish = |index: u32| {
        let mut code = assemble(0, |a| {
            a.mov(eax, index)?;
            a.ret()
        });
        code.resize(100, 0xCC);
        memory.publish_function("paged", &code).expect("published")
    };
    let mut functions = vec![publish(0)];
    let base = functions[0].reservation().address();
    assert_eq!(base % page, 0, "the first function opens the region");
    assert_eq!(perms_at(base), "r-xs");
    assert_eq!(perms_at(base + page), "---p", "past the frontier's page");
    assert!(
        read_code(base + 100, page - 100).iter().all(|&b| b == 0xCC),
        "the rest of the first page traps"
    );
    while functions.last().expect("one").reservation().address() < base + page {
        functions.push(publish(u32::try_from(functions.len()).expect("few")));
    }
    let last = functions.last().expect("one");
    assert_eq!(
        perms_at(base + page),
        "r-xs",
        "the frontier reached the second page"
    );
    assert_eq!(perms_at(base + 2 * page), "---p");
    // SAFETY: the code implements fn(i64, i64) -> i64 (arguments unused).
    let f = unsafe { as_fn2(last.entry()) };
    assert_eq!(f(0, 0), i64::try_from(functions.len() - 1).expect("few"));
}

/// Reads `len` bytes at `address` of executable memory the test holds.
fn read_code(address: usize, len: usize) -> Vec<u8> {
    // SAFETY: every caller passes a range inside a reservation of a live
    // allocator's current region, which is mapped readable.
    unsafe { std::slice::from_raw_parts(address as *const u8, len) }.to_vec()
}

/// Under file writes, two batches open at once take turns reserving: each
/// stages its own bytes, nothing reaches the executable view before its
/// batch is published, and publishing one batch leaves the other's ranges
/// trapping.
#[test]
fn file_writes_of_interleaved_batches_touch_only_their_own_ranges() {
    let Some(memory) = file_write_memory("interleaving") else {
        return;
    };
    let returns = |value: u32| {
        assemble(0, |a| {
            a.mov(eax, value)?;
            a.ret()
        })
    };
    let (mut first, mut second) = (memory.batch(), memory.batch());
    let mut reserved = Vec::new();
    for index in 0..4u32 {
        let batch = if index % 2 == 0 {
            &mut first
        } else {
            &mut second
        };
        // 10 bytes at alignment 16: padding after each reservation.
        let r = batch.reserve("turn", 10, 16).expect("reserved");
        batch.write(&r, 0, &returns(index)).expect("fits");
        reserved.push(r);
    }
    for r in &reserved {
        assert_eq!(read_code(r.address(), r.size()), vec![0xCC; 10]);
    }
    let second = second.publish().expect("published");
    for (index, r) in (0..).zip(&reserved) {
        let expected = if index % 2 == 1 {
            let mut code = returns(index);
            code.resize(10, 0xCC);
            code
        } else {
            vec![0xCC; 10]
        };
        assert_eq!(
            read_code(r.address(), r.size()),
            expected,
            "reservation {index}"
        );
    }
    let first = first.publish().expect("published");
    for (index, r) in (0..).zip(&reserved) {
        let code = if index % 2 == 0 { &first } else { &second };
        // SAFETY: the code implements fn(i64, i64) -> i64 (arguments unused).
        let f = unsafe { as_fn2(code.entry(r).expect("own")) };
        assert_eq!(f(0, 0), i64::from(index));
    }
    // The padding between reservations still traps.
    let gap = reserved[0].address() + 10;
    assert_eq!(read_code(gap, reserved[1].address() - gap), vec![0xCC; 6]);
}

/// Announced code (here for GDB's JIT interface) stays in private pages
/// whatever strategy was asked for: debuggers cannot set breakpoints in a
/// shared read-execute mapping, nor does `perf` name code there.
#[test]
fn announced_code_uses_mprotect() {
    for strategy in STRATEGIES {
        let memory = execmem::ExecMemory::new(Config {
            perf_map: execmem::PerfMap::Disabled,
            gdb_jit: execmem::Switch::Enabled,
            strategy,
            ..Config::default()
        })
        .expect("allocator");
        assert_eq!(
            memory.strategy(),
            Strategy::Mprotect,
            "asked for {strategy:?}"
        );
    }
}
