//! What the IR layer needs to know about the machine code will run on.
//!
//! Two things about a target change what a template means once it is
//! concrete: how big a pointer is (struct layouts, `size_of`, element
//! scaling) and how many arguments a call can pass (the verifier refuses
//! signatures that a backend could not call). A [`Target`] carries both;
//! a [`Library`](crate::ir::Library) is verified and laid out for the one
//! it was given ([`Library::with_target`](crate::ir::Library::with_target)),
//! x86-64 System V by default.

/// A target description: pointer layout and argument limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// Short name, shown in errors and tools (`x86_64-sysv`, `wasm32`).
    pub name: &'static str,
    /// Bytes of a pointer (`rawptr`, `ptr<T>`, `fn(…)`) in memory.
    pub pointer_size: u64,
    /// Alignment of a pointer in memory.
    pub pointer_align: u64,
    /// Integer and pointer parameters a signature may have, or `None` when
    /// the target passes any number.
    pub max_int_args: Option<usize>,
    /// Float parameters a signature may have, or `None` for any number.
    pub max_float_args: Option<usize>,
}

impl Target {
    /// x86-64 with the System V C ABI: 8-byte pointers; arguments only in
    /// registers, rdi, rsi, rdx, rcx, r8, r9 for integers and pointers and
    /// xmm0–xmm7 for floats (the backend passes nothing on the stack).
    pub const X86_64_SYSV: Target = Target {
        name: "x86_64-sysv",
        pointer_size: 8,
        pointer_align: 8,
        max_int_args: Some(6),
        max_float_args: Some(8),
    };

    /// 32-bit WebAssembly: 4-byte pointers into a linear memory; function
    /// parameters are locals, so no register limit applies.
    pub const WASM32: Target = Target {
        name: "wasm32",
        pointer_size: 4,
        pointer_align: 4,
        max_int_args: None,
        max_float_args: None,
    };
}

impl Default for Target {
    /// x86-64 System V, the target of the loader's JIT.
    fn default() -> Self {
        Target::X86_64_SYSV
    }
}
