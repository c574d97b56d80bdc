//! Native shared libraries that module imports may bind to (`cos` from
//! libm, `malloc` from libc), searched in the configured order, each
//! opened with `libloading` the first time a lookup reaches it.

use std::ffi::CString;
use std::sync::{OnceLock, PoisonError, RwLock};

use libloading::Library;

/// The search list and, once opened, the libraries.
///
/// Held in an `Arc` by the loader and by every module that bound an import
/// to one of them, so the libraries stay loaded while code calls into them.
#[derive(Debug)]
pub(crate) struct NativeLibraries {
    names: Vec<String>,
    /// Each library of the list, opened the first time a lookup reaches it:
    /// a name found in the C library never opens the math library.
    opened: Vec<OnceLock<Result<Library, String>>>,
    /// Runtime entry points the embedder defines (`__smfjit_trap`), found
    /// before the libraries; their code lives for the whole process.
    runtime: RwLock<Vec<(String, usize)>>,
}

impl NativeLibraries {
    pub(crate) fn new(names: Vec<String>) -> Self {
        Self {
            opened: names.iter().map(|_| OnceLock::new()).collect(),
            names,
            runtime: RwLock::new(Vec::new()),
        }
    }

    /// The libraries of the search list in order, each opened when the
    /// iteration reaches it (a library that fails to open is skipped).
    fn opened(&self) -> impl Iterator<Item = &Library> {
        self.names
            .iter()
            .zip(&self.opened)
            .filter_map(|(name, slot)| {
                slot.get_or_init(|| {
                    // SAFETY: opening a library runs its initialisers. The
                    // search list names system libraries chosen by whoever
                    // configured the loader (by default the C and math
                    // libraries, already present in most processes).
                    unsafe { Library::new(name) }.map_err(|e| format!("{name}: {e}"))
                })
                .as_ref()
                .ok()
            })
    }

    /// Address of `name` in the first library that defines it.
    pub(crate) fn lookup(&self, name: &str) -> Option<usize> {
        let runtime = self.runtime.read().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, address)) = runtime.iter().find(|(n, _)| n == name) {
            return Some(*address);
        }
        drop(runtime);
        let symbol = CString::new(name).ok()?;
        self.opened().find_map(|library| {
            // SAFETY: the symbol is read as a plain address and never called
            // or dereferenced here; the type parameter only sizes the read.
            let found = unsafe { library.get::<*const u8>(symbol.as_bytes_with_nul()) };
            found.ok().map(|ptr| *ptr as usize).filter(|&a| a != 0)
        })
    }

    /// Defines (or redefines) a runtime symbol at `address`, which must
    /// stay valid for the rest of the process.
    pub(crate) fn define_runtime(&self, name: &str, address: usize) {
        let mut runtime = self.runtime.write().unwrap_or_else(PoisonError::into_inner);
        runtime.retain(|(n, _)| n != name);
        runtime.push((name.to_owned(), address));
    }

    /// The search list.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }
}
