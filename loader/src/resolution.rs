//! The small vocabulary every step of loading and resolving shares: the
//! address a name resolves to, the module that defines it, how an import
//! was bound, and what the note records for code made at run time.
//!
//! It depends on no other module of the crate, so the modules that place
//! code (`module`, `lazy`), resolve names (`loader`, `instances`) and hand
//! out slots (`slots`) all import it without importing each other.

/// Identity of a loaded module, unique for the life of its loader.
pub type ModuleId = u64;

/// The `to_obj` recorded in a note for instantiations made at run time.
pub const JIT_OBJECT: &str = "jit";

/// A code address handed out by the loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(usize);

impl Address {
    /// Wraps a raw address.
    #[must_use]
    pub fn new(address: usize) -> Self {
        Self(address)
    }

    /// The address as a number.
    #[must_use]
    pub fn get(self) -> usize {
        self.0
    }

    /// The address as a pointer, to be transmuted to the function type the
    /// code implements (the caller's `unsafe` contract).
    #[must_use]
    pub fn as_ptr(self) -> *const u8 {
        self.0 as *const u8
    }
}

/// Which step of the resolution bound an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportSource {
    /// An export of the loaded module with this id.
    Module(ModuleId),
    /// An instantiation (cached, or made while loading).
    Instance,
    /// A native library of the search list.
    Native,
    /// Unresolved, and weak: bound to address 0.
    WeakUndefined,
    /// Bound lazily, at its first call (see
    /// [`LoadedModule::lazy_imports`](crate::LoadedModule::lazy_imports)).
    Lazy,
}
