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
use std::hash::BuildHasher;
use std::sync::Arc;

use jit::hash::{BuildIntHasher, BuildNameHasher};
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
    functions: Names,
}

/// A set of names with a binding each, held in one block of text: a
/// module of a thousand templates indexes them with three allocations
/// instead of one per name.
#[derive(Debug, Default)]
struct Names {
    /// Every name, one after another.
    text: String,
    entries: Vec<Entry>,
    /// The first entry of each name hash; entries of equal hashes chain.
    first: HashMap<u64, u32, BuildIntHasher>,
}

#[derive(Debug)]
struct Entry {
    start: u32,
    len: u32,
    binding: Binding,
    /// The next entry of the same hash, or `u32::MAX`.
    next: u32,
}

impl Names {
    fn with_capacity(names: usize, text: usize) -> Self {
        Names {
            text: String::with_capacity(text),
            entries: Vec::with_capacity(names),
            first: HashMap::with_capacity_and_hasher(names, BuildIntHasher::default()),
        }
    }

    fn hash(name: &str) -> u64 {
        BuildNameHasher::default().hash_one(name)
    }

    /// Adds `name`, or gives it `binding` if it is there already.
    fn insert(&mut self, name: &str, binding: Binding) {
        if let Some(e) = self.find(name) {
            self.entries[e].binding = binding;
            return;
        }
        let (Ok(start), Ok(len), Ok(index)) = (
            u32::try_from(self.text.len()),
            u32::try_from(name.len()),
            u32::try_from(self.entries.len()),
        ) else {
            return;
        };
        self.text.push_str(name);
        let slot = self.first.entry(Self::hash(name)).or_insert(u32::MAX);
        self.entries.push(Entry {
            start,
            len,
            binding,
            next: *slot,
        });
        *slot = index;
    }

    fn get(&self, name: &str) -> Option<Binding> {
        self.find(name).map(|e| self.entries[e].binding)
    }

    /// The entry of `name`.
    fn find(&self, name: &str) -> Option<usize> {
        let mut at = *self.first.get(&Self::hash(name))? as usize;
        while let Some(e) = self.entries.get(at) {
            let held = self
                .text
                .get(e.start as usize..e.start as usize + e.len as usize);
            if held == Some(name) {
                return Some(at);
            }
            at = e.next as usize;
        }
        None
    }
}

impl OfferedTemplates {
    /// Copies `module`'s templates; `None` when it has no `TemplateCode`
    /// section.
    pub(crate) fn copy(module: &Module<'_>) -> Option<Self> {
        let section = module.template_code_section()?;
        let code = Arc::from(module.template_code()?);
        // Struct templates (`Vec`) have layouts, not code.
        let function =
            |s: &smf::Symbol<'_>| s.is_template() && s.sym_type() == SymbolType::Function;
        // Counted first, so that the index is made at its size instead of
        // growing (and hashing every name again) a dozen times.
        let (count, text) = module
            .symbols()
            .filter(function)
            .fold((0, 0), |(n, t), s| (n + 1, t + s.name().len()));
        let mut functions = Names::with_capacity(count, text);
        for s in module.symbols().filter(function) {
            functions.insert(s.name(), s.binding());
        }
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
        self.functions.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_find_every_name_and_nothing_else() {
        let names: Vec<String> = (0..2000)
            .map(|k| format!("sum_{k}"))
            .chain(["", "s", "su", "sum", "Vec::push", "sum_1\u{e9}"].map(String::from))
            .collect();
        let mut index = Names::with_capacity(4, 4);
        for (k, name) in names.iter().enumerate() {
            let binding = if k % 2 == 0 {
                Binding::Global
            } else {
                Binding::Weak
            };
            index.insert(name, binding);
        }
        for (k, name) in names.iter().enumerate() {
            let binding = if k % 2 == 0 {
                Binding::Global
            } else {
                Binding::Weak
            };
            assert_eq!(index.get(name), Some(binding), "{name:?}");
        }
        for missing in ["sum_2000", "sum_", "Vec::pus", "Vec::push ", "\u{e9}"] {
            assert_eq!(index.get(missing), None, "{missing:?}");
        }
        // A name given again takes the new binding, once.
        index.insert("sum_0", Binding::Weak);
        assert_eq!(index.get("sum_0"), Some(Binding::Weak));
        assert_eq!(index.entries.len(), names.len());
    }
}
