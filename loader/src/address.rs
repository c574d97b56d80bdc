//! Which symbol and module an address belongs to: the loader's `dladdr`,
//! for debuggers, profilers and crash reports of programs whose code is
//! partly generated.

use std::sync::Arc;

use crate::loader::Loader;
use crate::module::LoadedModule;

/// What holds an address [`Loader::address_info`] was asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressOwner {
    /// A loaded module's code, read-only data or data.
    Module,
    /// An instantiation the loader's instance cache holds: code compiled on
    /// its miss, or the entry stub of a tiered instantiation.
    Instance,
    /// A tiered instantiation's code compiled once it became hot: its body
    /// or one of its loop entries.
    TierCode,
}

impl AddressOwner {
    /// A short name: `module`, `instance`, `tier-code`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Module => "module",
            Self::Instance => "instance",
            Self::TierCode => "tier-code",
        }
    }
}

/// The answer of [`Loader::address_info`].
#[derive(Debug, Clone)]
pub struct AddressInfo {
    /// What holds the address.
    pub owner: AddressOwner,
    /// The symbol: for a module, its nearest export at or below the address
    /// (as `dladdr` answers; `None` below the first); for generated code,
    /// the instantiation's mangled name.
    pub symbol: Option<Arc<str>>,
    /// Where [`symbol`](Self::symbol) starts.
    pub symbol_address: Option<usize>,
    /// The module holding the address, or for generated code the module
    /// whose template it was made from, when known and still loaded.
    pub module: Option<Arc<LoadedModule>>,
}

impl Loader {
    /// Which symbol and module `address` belongs to — the `dladdr` of
    /// this loader, generated code included: an instance compiled on a
    /// miss (or a tiered instance's stub), a tiered instance's compiled
    /// code, or a loaded module's code and data. `None` for an address the
    /// loader holds nothing at (padding between functions included).
    ///
    /// A linear scan of the instances and modules: meant for debugging
    /// and error reports, not hot paths.
    #[must_use]
    pub fn address_info(&self, address: usize) -> Option<AddressInfo> {
        let origin = |module: Option<crate::ModuleId>| module.and_then(|id| self.module(id));
        if let Some((name, code)) = self.instances().containing(address) {
            return Some(AddressInfo {
                owner: AddressOwner::Instance,
                symbol: Some(name),
                symbol_address: Some(code.address().get()),
                module: origin(code.origin()),
            });
        }
        if let Some((name, range)) = self.instances().code_at(address) {
            let module = self
                .instances()
                .cached_instance(&name)
                .and_then(|code| origin(code.origin()));
            return Some(AddressInfo {
                owner: AddressOwner::TierCode,
                symbol: Some(name),
                symbol_address: Some(range.start),
                module,
            });
        }
        let module = self
            .modules()
            .into_iter()
            .find(|module| module.contains(address))?;
        let nearest = module
            .exports()
            .iter()
            .filter(|export| export.address <= address && module.contains(export.address))
            .max_by_key(|export| export.address);
        Some(AddressInfo {
            owner: AddressOwner::Module,
            symbol: nearest.map(|export| Arc::clone(&export.name)),
            symbol_address: nearest.map(|export| export.address),
            module: Some(module),
        })
    }
}
