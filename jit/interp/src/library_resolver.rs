//! A [`Resolver`] over one template library and a table of native
//! functions: instantiates templates on first use and caches them.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::{Resolver, Target};
use jit_ir::hash::BuildNameHasher;
use jit_ir::instantiate::instantiate_symbol;
use jit_ir::ir::{Function, Library};
use jit_ir::{Error, ErrorKind};
use jit_shared::{SharedMemory, SharedTable};

/// Resolves symbols to instantiations of a library's templates (made on
/// first use, then cached) or to registered native functions.
pub struct LibraryResolver<'l> {
    lib: &'l Library,
    /// Registered native functions: a handful, so a list compares names
    /// faster than a map hashes them, on every call the program makes.
    natives: Vec<(String, u64)>,
    instances: Mutex<HashMap<String, Arc<Function>, BuildNameHasher>>,
    /// Function-pointer tokens of interpreted functions.
    tokens: Mutex<HashMap<u64, Arc<Function>>>,
    /// This resolver's [`Resolver::stable_identity`].
    identity: NonZeroU64,
    /// Shared memories and tables by name, kept alive with the resolver.
    memories: Vec<Arc<SharedMemory>>,
    tables: Vec<Arc<SharedTable>>,
}

/// The identity of the next resolver made.
static NEXT_IDENTITY: AtomicU64 = AtomicU64::new(1);

impl<'l> LibraryResolver<'l> {
    /// A resolver over `lib` with no native functions.
    pub fn new(lib: &'l Library) -> Self {
        LibraryResolver {
            lib,
            natives: Vec::new(),
            instances: Mutex::default(),
            tokens: Mutex::default(),
            identity: NonZeroU64::MIN.saturating_add(NEXT_IDENTITY.fetch_add(1, Ordering::Relaxed)),
            memories: Vec::new(),
            tables: Vec::new(),
        }
    }

    /// Makes `memory` the shared memory of its name (replacing one of the
    /// same name), for the program's `mem_*` operations.
    #[must_use]
    pub fn with_memory(mut self, memory: Arc<SharedMemory>) -> Self {
        self.memories.retain(|m| m.name() != memory.name());
        self.memories.push(memory);
        self
    }

    /// Makes `table` the shared table of its name (replacing one of the
    /// same name), for the program's `table_*` operations and `call_table`.
    #[must_use]
    pub fn with_table(mut self, table: Arc<SharedTable>) -> Self {
        self.tables.retain(|t| t.name() != table.name());
        self.tables.push(table);
        self
    }

    /// Registers native code at `address` under `name`, both as a native
    /// import and as a concrete symbol (it takes precedence over templates).
    #[must_use]
    pub fn with_native(mut self, name: &str, address: u64) -> Self {
        match self.natives.iter_mut().find(|(n, _)| n == name) {
            Some((_, a)) => *a = address,
            None => self.natives.push((name.to_owned(), address)),
        }
        self
    }

    /// The cached or freshly made instantiation for `symbol`.
    ///
    /// # Errors
    ///
    /// The instantiation's error (demangling, constraints, verification).
    pub fn function(&self, symbol: &str) -> Result<Arc<Function>, Error> {
        let mut cache = self
            .instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = cache.get(symbol) {
            return Ok(Arc::clone(f));
        }
        let f = instantiate_symbol(self.lib, symbol)?.function;
        cache.insert(symbol.to_owned(), Arc::clone(&f));
        Ok(f)
    }
}

impl LibraryResolver<'_> {
    /// The address registered under `name`.
    fn native(&self, name: &str) -> Option<u64> {
        self.natives
            .iter()
            .find_map(|(n, a)| (n == name).then_some(*a))
    }
}

impl Resolver for LibraryResolver<'_> {
    fn resolve(&self, symbol: &str) -> Result<Target, Error> {
        if let Some(a) = self.native(symbol) {
            return Ok(Target::Native(a));
        }
        Ok(Target::Interpreted(self.function(symbol)?))
    }

    fn import(&self, name: &str) -> Result<u64, Error> {
        self.native(name)
            .ok_or_else(|| Error::new(ErrorKind::Unresolved(name.to_owned())))
    }

    fn address_of(&self, symbol: &str) -> Result<u64, Error> {
        if let Some(a) = self.native(symbol) {
            return Ok(a);
        }
        let f = self.function(symbol)?;
        // The allocation's address is unique among live functions and the
        // cache keeps it alive, so it serves as a stable token.
        let token = Arc::as_ptr(&f) as usize as u64;
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token, f);
        Ok(token)
    }

    // Stable: the natives are fixed before the resolver is used, and an
    // instantiation, once made, is the symbol's for the resolver's life.
    fn stable_identity(&self) -> Option<NonZeroU64> {
        Some(self.identity)
    }

    fn memory(&self, name: &str) -> Result<u64, Error> {
        self.memories
            .iter()
            .find(|m| m.name() == name)
            .map(|m| m.descriptor_address())
            .ok_or_else(|| Error::new(ErrorKind::Unresolved(format!("memory `{name}`"))))
    }

    fn table(&self, name: &str) -> Result<u64, Error> {
        self.tables
            .iter()
            .find(|t| t.name() == name)
            .map(|t| t.descriptor_address())
            .ok_or_else(|| Error::new(ErrorKind::Unresolved(format!("table `{name}`"))))
    }

    fn target_at(&self, address: u64) -> Option<Target> {
        if let Some(f) = self
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&address)
        {
            return Some(Target::Interpreted(Arc::clone(f)));
        }
        self.natives
            .iter()
            .any(|&(_, a)| a == address)
            .then_some(Target::Native(address))
    }
}
