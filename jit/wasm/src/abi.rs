//! The module contract in one place: the names a host provides and reads,
//! how each IR type is represented in WebAssembly (value type, memory
//! width, canonical form), the layout of the descriptors of shared
//! memories and tables, and what `__trap_kind` says. Every other module of
//! the crate takes these facts from here; `doc/formats/wasm-abi.md`
//! describes them for hosts.

use jit_ir::TrapKind;
use jit_ir::ir::{IntType, Op, Type};
use wasm_encoder::ValType;

/// The import module every import comes from.
pub const IMPORT_MODULE: &str = "env";
/// The imported linear memory.
pub const MEMORY: &str = "memory";
/// The imported `funcref` table that function pointers index.
pub const TABLE: &str = "__indirect_function_table";
/// The imported `i32` global: where the module's static data would start
/// (the module has none today; it is imported so hosts that follow the
/// side-module convention link it unchanged).
pub const MEMORY_BASE: &str = "__memory_base";
/// The imported `i32` global: the first table slot of the module's
/// address-taken functions.
pub const TABLE_BASE: &str = "__table_base";
/// The exported mutable `i32` global that `trap N` sets to `N` before it
/// executes `unreachable`, so a host can tell explicit traps apart.
pub const TRAP_CODE: &str = "__trap_code";
/// The exported mutable `i32` global that says which IR trap an
/// `unreachable` stands for: one of the `TRAP_KIND_*` values, written on
/// every path that executes it (read it with [`unreachable_trap`]).
pub const TRAP_KIND: &str = "__trap_kind";
/// `__trap_kind` of `trap N` (`__trap_code` holds `N`).
pub const TRAP_KIND_EXPLICIT: i32 = 0;
/// `__trap_kind` of a shared memory or table accessed past its length.
pub const TRAP_KIND_OUT_OF_BOUNDS: i32 = 1;
/// `__trap_kind` of `call_table` on a null entry.
pub const TRAP_KIND_NULL_POINTER: i32 = 2;

/// The IR trap an `unreachable` trap stands for, from the values of the
/// module's `__trap_kind` and `__trap_code`; `None` for a kind no module
/// writes.
pub fn unreachable_trap(kind: i32, code: i32) -> Option<TrapKind> {
    match kind {
        TRAP_KIND_EXPLICIT => Some(TrapKind::Explicit(code as u32)),
        TRAP_KIND_OUT_OF_BOUNDS => Some(TrapKind::OutOfBounds),
        TRAP_KIND_NULL_POINTER => Some(TrapKind::NullPointer),
        _ => None,
    }
}

/// Global index of the imported `__table_base` (`__memory_base` is 0; the
/// descriptor globals follow, then the module's own).
pub(crate) const GLOBAL_TABLE_BASE: u32 = 1;
/// Global index of the first descriptor global.
pub(crate) const GLOBAL_FIRST_DESCRIPTOR: u32 = 2;

/// A shared memory or a shared table: what a module imports a descriptor
/// for (`doc/formats/wasm-abi.md` §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Space {
    /// A memory: its length counts bytes, its size 64 KiB pages.
    Memory,
    /// A table: its length and size count 4-byte entries.
    Table,
}

impl Space {
    /// The memory or table `op` works on, by name; `None` for the
    /// operations that work on neither.
    pub fn of(op: &Op) -> Option<(Space, &str)> {
        match op {
            Op::MemLoad { memory, .. }
            | Op::MemStore { memory, .. }
            | Op::MemSize { memory }
            | Op::MemGrow { memory, .. } => Some((Space::Memory, memory)),
            Op::TableGet { table, .. }
            | Op::TableSet { table, .. }
            | Op::TableSize { table }
            | Op::TableGrow { table, .. }
            | Op::CallTable { table, .. } => Some((Space::Table, table)),
            _ => None,
        }
    }

    /// The prefix of the import that holds the descriptor's address.
    pub fn prefix(self) -> &'static str {
        match self {
            Space::Memory => "__memory.",
            Space::Table => "__table.",
        }
    }

    /// The name of the imported immutable `i32` global holding the address
    /// of the descriptor of the memory or table `name`: `__memory.NAME` or
    /// `__table.NAME`. IR names cannot contain `.`, so no native can have
    /// it.
    pub fn import_name(self, name: &str) -> String {
        format!("{}{name}", self.prefix())
    }

    /// log2 of the length units in one unit of size: a memory's length is
    /// in bytes and its size in pages; a table counts entries in both.
    pub fn size_shift(self) -> u32 {
        match self {
            Space::Memory => PAGE_SIZE.trailing_zeros(),
            Space::Table => 0,
        }
    }
}

impl std::fmt::Display for Space {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Space::Memory => "memory",
            Space::Table => "table",
        })
    }
}

/// Bytes of a page of a shared memory (`mem_size` and `mem_grow` count
/// them).
pub const PAGE_SIZE: u32 = 65_536;
/// Bytes of a table entry: a function-pointer value, the slot of
/// `__indirect_function_table` (0 is null).
pub const TABLE_ENTRY_SIZE: u32 = POINTER_SIZE;

/// The descriptor of a shared memory or table: four little-endian `u32`s
/// in `env.memory`, at the address the `__memory.NAME` or `__table.NAME`
/// global holds. Only `mem_grow`/`table_grow` write it.
pub mod descriptor {
    /// Bytes of a descriptor.
    pub const SIZE: u32 = 16;
    /// Offset of the base: the address of byte 0 (memory) or entry 0
    /// (table) in `env.memory`; it never changes.
    pub const BASE: u32 = 0;
    /// Offset of the length: bytes of a memory, entries of a table.
    pub const LENGTH: u32 = 4;
    /// Offset of the maximum, in the unit of the length; the host has
    /// reserved that much at the base.
    pub const MAXIMUM: u32 = 8;
    /// Offset of the version, incremented by every grow that adds to the
    /// length.
    pub const VERSION: u32 = 12;
}

/// Bytes of a pointer in the linear memory (wasm32).
pub const POINTER_SIZE: u32 = 4;

/// The WebAssembly value type holding a register of type `ty`: `i64` for
/// 64-bit integers, `f32`/`f64` for floats, `i32` for everything else
/// (narrower integers, `bool`, pointers of every kind).
pub fn val_type(ty: &Type) -> ValType {
    match ty {
        Type::Int(t) if t.bits() == 64 => ValType::I64,
        Type::F32 => ValType::F32,
        Type::F64 => ValType::F64,
        _ => ValType::I32,
    }
}

/// Bytes a value of register type `ty` occupies in the linear memory.
pub fn mem_size(ty: &Type) -> u32 {
    match ty {
        Type::Int(t) => t.bits() / 8,
        Type::Bool => 1,
        Type::F32 => 4,
        Type::F64 => 8,
        _ => POINTER_SIZE,
    }
}

/// The integer type whose canonical form a value of `ty` keeps in its
/// `i32` (narrow integers only: 32- and 64-bit integers fill their
/// WebAssembly type, and `bool` is 0 or 1).
pub(crate) fn narrow(ty: &Type) -> Option<IntType> {
    match ty {
        Type::Int(t) if t.bits() < 32 => Some(*t),
        _ => None,
    }
}

/// Whether comparisons and conversions of `ty` are signed.
pub(crate) fn signed(ty: &Type) -> bool {
    matches!(ty, Type::Int(t) if t.signed())
}
