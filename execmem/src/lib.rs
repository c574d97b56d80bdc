//! Write-xor-execute executable memory for generated code.
//!
//! The JIT backend and the module loader place machine code here. The
//! life of code is a one-way state machine: an [`ExecMemory`] opens a
//! [`CodeBatch`]; the batch [`reserve`](CodeBatch::reserve)s room for each
//! function and tells its final address before any byte is written, so
//! rip-relative operands, `call rel32` between functions and absolute
//! addresses are encoded for where the code will run; the bytes are then
//! written (and relocated) in read-write staging memory; finally
//! [`publish`](CodeBatch::publish) makes the instruction cache coherent and
//! turns the batch's pages read-execute with one protection change per
//! region, returning a [`PublishedCode`] handle that owns the pages and
//! hands out entry pointers. Published pages are never writable again;
//! memory is unmapped when the last clone of its handle is dropped. No
//! mapping is ever writable and executable at once.
//!
//! That is [`Strategy::Mprotect`], the default. [`Strategy::DualMapping`]
//! keeps the same API and invariants per mapping but writes code through a
//! read-write view of a memory file and runs it from a read-execute view of
//! the same file, so small publications share pages and need no protection
//! change; it is probed at creation and falls back to `mprotect` where the
//! kernel refuses. [`Strategy::FileWrite`] shares its regions and its
//! probe but maps only the read-execute view: a batch stages its bytes in
//! private memory and publication writes them into the file with `pwrite`.
//! `doc/ARCHITECTURE.md` weighs the three.
//!
//! Inside, `mapping` owns the system calls and raw pointers of private
//! staging (the `Staging` → `Executable` type states) and `dual` those of
//! memory-file regions and their shared bump `Frontier`; `batch` places
//! reservations, `published` owns published code; `ledger` keeps the books
//! behind [`Stats`] and [`ExecMemory::protection_of`]; `arch` holds the
//! per-architecture cache maintenance and trap byte; `perf_map` writes
//! `/tmp/perf-PID.map` when enabled ([`PerfMap`], `SMFJIT_PERF_MAP=1`);
//! `gdb_jit` registers each published batch with GDB's JIT interface as an
//! in-memory ELF object built by `debug_object` (`SMFJIT_DEBUG=1`), and
//! `jitdump` records published code for `perf inject --jit`
//! (`SMFJIT_JITDUMP=1`); [`Switch`] is the on/off/environment rule all
//! three follow.
//!
//! ```
//! use execmem::{Config, ExecMemory};
//!
//! let memory = ExecMemory::new(Config::default())?;
//! let mut batch = memory.batch();
//! let answer = batch.reserve("answer", 6, 16)?;
//! // mov eax, 42 ; ret
//! batch.write(&answer, 0, &[0xB8, 42, 0, 0, 0, 0xC3])?;
//! let code = batch.publish()?;
//! # #[cfg(target_arch = "x86_64")] {
//! // SAFETY: the bytes above implement `extern "C" fn() -> i32`.
//! let f: extern "C" fn() -> i32 = unsafe { std::mem::transmute(code.entry(&answer)?) };
//! assert_eq!(f(), 42);
//! # }
//! # Ok::<(), execmem::Error>(())
//! ```
//!
//! Published code offers no way to write it. Publishing consumes the batch,
//! so writing afterwards does not compile:
//!
//! ```compile_fail,E0382
//! # let memory = execmem::ExecMemory::new(execmem::Config::default()).unwrap();
//! let mut batch = memory.batch();
//! let r = batch.reserve("f", 1, 1).unwrap();
//! let code = batch.publish().unwrap();
//! batch.write(&r, 0, &[0xC3]).unwrap(); // error: use of moved value `batch`
//! ```
//!
//! and the published bytes are a shared slice:
//!
//! ```compile_fail,E0594
//! # let memory = execmem::ExecMemory::new(execmem::Config::default()).unwrap();
//! let mut batch = memory.batch();
//! let r = batch.reserve("f", 1, 1).unwrap();
//! let code = batch.publish().unwrap();
//! code.bytes(&r).unwrap()[0] = 0x90; // error: cannot assign through `&[u8]`
//! ```

#![warn(missing_docs)]

mod arch;
mod batch;
mod debug_object;
mod dual;
mod error;
mod gdb_jit;
mod jitdump;
mod ledger;
pub mod limits;
mod mapping;
mod memory;
mod perf_map;
mod pool;
mod published;
mod stats;
mod switch;

pub use batch::{CodeBatch, Reservation};
pub use error::Error;
pub use gdb_jit::{__jit_debug_descriptor, __jit_debug_register_code, DEBUG_ENV};
pub use jitdump::{JITDUMP_ENV, path as jitdump_path};
pub use ledger::is_code;
pub use memory::{Config, ExecMemory, FUNCTION_ALIGNMENT, Strategy};
pub use perf_map::{PERF_MAP_ENV, PerfMap, path as perf_map_path};
pub use pool::release_spare_pages;
pub use published::{PublishedCode, PublishedFunction};
pub use stats::{Protection, Stats};
pub use switch::Switch;
