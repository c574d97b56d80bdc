//! Shared by the integration tests: reading `/proc/self/maps` and building
//! machine code with iced-x86. Each test binary uses a subset.
#![allow(dead_code)]

use std::fs::File;
use std::io::Read;

use execmem::{Config, ExecMemory, PerfMap, Strategy};
use iced_x86::code_asm::CodeAssembler;

/// One line of `/proc/self/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapLine {
    pub start: usize,
    pub end: usize,
    pub perms: String,
    pub text: String,
}

impl MapLine {
    pub fn readable(&self) -> bool {
        self.perms.as_bytes().first() == Some(&b'r')
    }
    pub fn writable(&self) -> bool {
        self.perms.as_bytes().get(1) == Some(&b'w')
    }
    pub fn executable(&self) -> bool {
        self.perms.as_bytes().get(2) == Some(&b'x')
    }
    pub fn overlaps(&self, range: &std::ops::Range<usize>) -> bool {
        self.start < range.end && range.start < self.end
    }
}

/// Reads `/proc/self/maps` into `buffer` (whose capacity the caller may
/// reserve beforehand, so reading allocates nothing) and parses it.
pub fn read_maps_into(buffer: &mut Vec<u8>) -> Vec<MapLine> {
    buffer.clear();
    File::open("/proc/self/maps")
        .and_then(|mut file| file.read_to_end(buffer))
        .expect("/proc/self/maps is readable");
    parse_maps(std::str::from_utf8(buffer).expect("maps are text"))
}

pub fn read_maps() -> Vec<MapLine> {
    read_maps_into(&mut Vec::new())
}

pub fn parse_maps(text: &str) -> Vec<MapLine> {
    text.lines()
        .map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next().expect("address range");
            let perms = fields.next().expect("permissions").to_owned();
            let (start, end) = range.split_once('-').expect("start-end");
            MapLine {
                start: usize::from_str_radix(start, 16).expect("hex start"),
                end: usize::from_str_radix(end, 16).expect("hex end"),
                perms,
                text: line.to_owned(),
            }
        })
        .collect()
}

/// The lines overlapping `range`.
pub fn lines_over<'a>(maps: &'a [MapLine], range: &std::ops::Range<usize>) -> Vec<&'a MapLine> {
    maps.iter().filter(|line| line.overlaps(range)).collect()
}

/// Every mapping of the process that is writable and executable at once.
pub fn writable_and_executable(maps: &[MapLine]) -> Vec<&MapLine> {
    maps.iter()
        .filter(|line| line.writable() && line.executable())
        .collect()
}

/// Assembles 64-bit code placed at `ip`.
pub fn assemble(
    ip: usize,
    build: impl FnOnce(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>,
) -> Vec<u8> {
    let mut asm = CodeAssembler::new(64).expect("64-bit assembler");
    build(&mut asm).expect("valid instructions");
    asm.assemble(ip as u64).expect("assembles")
}

/// Entry pointer as a two-argument System V function.
///
/// # Safety
///
/// `entry` must point at published code implementing that signature, alive
/// for as long as the returned pointer is called.
pub unsafe fn as_fn2(entry: *const u8) -> extern "C" fn(i64, i64) -> i64 {
    // SAFETY: guaranteed by the caller.
    unsafe { std::mem::transmute::<*const u8, extern "C" fn(i64, i64) -> i64>(entry) }
}

/// An allocator with the default configuration and no perf map.
pub fn memory() -> ExecMemory {
    memory_with(Strategy::Mprotect)
}

/// Every strategy, for tests that must hold under each.
pub const STRATEGIES: [Strategy; 3] = [
    Strategy::Mprotect,
    Strategy::DualMapping,
    Strategy::FileWrite,
];

/// An allocator using `strategy` (the memory-file strategies fall back to
/// mprotect where the kernel refuses them; [`ExecMemory::strategy`] tells which is in use),
/// whose pool maps its own pages (tests running at once drop allocators
/// whose spares would otherwise feed it).
pub fn memory_with(strategy: Strategy) -> ExecMemory {
    ExecMemory::new(Config {
        perf_map: PerfMap::Disabled,
        strategy,
        shared_spares: false,
        ..Config::default()
    })
    .expect("allocator")
}

/// Environment variable marking a re-run of a test binary as the child of
/// [`rerun_in_child`].
pub const CHILD: &str = "EXECMEM_TEST_CHILD";

/// Whether this process is a child started by [`rerun_in_child`].
pub fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Runs this test binary again on `test` alone, marked as a child (for
/// checks that kill or irreversibly restrict the process), and returns how
/// it ended.
pub fn rerun_in_child(test: &str) -> std::process::Output {
    std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", test, "--test-threads=1", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .expect("child ran")
}
