//! The module contract in one place: the names a host provides and reads,
//! and how each IR type is represented in WebAssembly (value type, memory
//! width, canonical form). Every other module of the crate takes these
//! facts from here; `doc/formats/wasm-abi.md` describes them for hosts.

use jit_ir::ir::{IntType, Type};
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

/// Global indices: the two imported globals, then the module's own.
pub(crate) const GLOBAL_TABLE_BASE: u32 = 1;
pub(crate) const GLOBAL_TRAP_CODE: u32 = 2;

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
