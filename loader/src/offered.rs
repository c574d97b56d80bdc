//! What a loaded module offers for instantiation, copied out of its file
//! while it loads: the `TemplateCode` section's bytes and the function
//! templates of its symbol table.
//!
//! A miss reads these and never the file. A mapped file truncated in place
//! would fault on the next read of a page past its new end (`SIGBUS`), and
//! a file replaced by rename or deleted is no longer there to read; owned
//! copies make both harmless, so a module keeps instantiating the version
//! it loaded until it is reloaded. The cost is the section's size in
//! memory per loaded module and one copy at load (`doc/ARCHITECTURE.md`,
//! "The SMF cache", has the figures).

use std::collections::HashMap;
use std::sync::Arc;

use jit::hash::BuildNameHasher;
use smf::{Binding, Module, SymbolType};

/// The templates of one loaded module, owned.
#[derive(Debug)]
pub(crate) struct OfferedTemplates {
    /// The `TemplateCode` section, shared with the process's template
    /// cache once a miss decodes it (`template_cache`).
    code: Arc<[u8]>,
    /// Where the section starts in the file, for errors found in it; 0
    /// for a compressed section.
    offset: u64,
    /// Function template names (`sort`, `Vec::push`) and their binding.
    functions: HashMap<Box<str>, Binding, BuildNameHasher>,
}

impl OfferedTemplates {
    /// Copies `module`'s templates; `None` when it has no `TemplateCode`
    /// section.
    pub(crate) fn copy(module: &Module<'_>) -> Option<Self> {
        let section = module.template_code_section()?;
        let code = Arc::from(module.template_code()?);
        let functions = module
            .symbols()
            // Struct templates (`Vec`) have layouts, not code.
            .filter(|s| s.is_template() && s.sym_type() == SymbolType::Function)
            .map(|s| (Box::from(s.name()), s.binding()))
            .collect();
        // Errors in a compressed section name offsets in its contents, as
        // `smf-inspect hex` shows them.
        let offset = if section.is_compressed() {
            0
        } else {
            module.base() + section.offset()
        };
        Some(Self {
            code,
            offset,
            functions,
        })
    }

    /// The `TemplateCode` section's bytes.
    pub(crate) fn code(&self) -> &Arc<[u8]> {
        &self.code
    }

    /// Where the section starts in the module's file.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// The binding of the function template `name`, if the module offers
    /// one.
    pub(crate) fn binding(&self, name: &str) -> Option<Binding> {
        self.functions.get(name).copied()
    }
}
