//! Native shared libraries that module imports may bind to (`cos` from
//! libm, `malloc` from libc), opened with `libloading` on first need and
//! searched in the configured order.

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
    opened: OnceLock<Vec<Result<Library, String>>>,
    /// Runtime entry points the embedder defines (`__smfjit_trap`), found
    /// before the libraries; their code lives for the whole process.
    runtime: RwLock<Vec<(String, usize)>>,
}

impl NativeLibraries {
    pub(crate) fn new(names: Vec<String>) -> Self {
        Self {
            names,
            opened: OnceLock::new(),
            runtime: RwLock::new(Vec::new()),
        }
    }

    fn opened(&self) -> &[Result<Library, String>] {
        self.opened.get_or_init(|| {
            self.names
                .iter()
                .map(|name| {
                    // SAFETY: opening a library runs its initialisers. The
                    // search list names system libraries chosen by whoever
                    // configured the loader (by default the C and math
                    // libraries, already loaded into every process).
                    unsafe { Library::new(name) }.map_err(|e| format!("{name}: {e}"))
                })
                .collect()
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
        self.opened().iter().flatten().find_map(|library| {
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
