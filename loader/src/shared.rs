//! The shared memories and tables of loaded modules (BRIEF §12): one
//! descriptor per name, owned by the defining module and used by every
//! importer, tier and backend.
//!
//! A module's `Shared` section (`smf::SharedItem`) lists what it defines,
//! with sizes, and what it imports by name. Loading creates each definition
//! as a [`SharedMemory`] or [`SharedTable`] (the maximum reserved up front,
//! so the descriptor's base never moves) and checks that each import names
//! a definition of the same kind — and, for a table, the same signature —
//! that a loaded module made. Compiled code and the interpreter reach a
//! name's descriptor through [`SharedRegistry::memory`] and
//! [`SharedRegistry::table`], never a copy of it.
//!
//! A reloaded module adopts the memories and tables its previous version
//! defined under the same names and sizes: the data stays. Unloading a
//! module whose memory or table another loaded module imports is refused.
//! The objects of an unloaded module are retired, not freed: instantiations
//! compiled against their descriptors may stay in the instance cache, and
//! the descriptors must outlive them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use jit::ir::{Signature, Type};
use jit::shared::{SharedMemory, SharedTable};
use smf::{Linkage, SharedItem, SharedKind};

use crate::error::{Error, Result};
use crate::resolution::ModuleId;

/// A memory or a table, as the registry holds it.
#[derive(Clone, Debug)]
pub enum SharedObject {
    /// A memory.
    Memory(Arc<SharedMemory>),
    /// A table with the signature of its entries.
    Table(Arc<SharedTable>, Arc<Signature>),
}

impl SharedObject {
    fn kind(&self) -> &'static str {
        match self {
            SharedObject::Memory(_) => "memory",
            SharedObject::Table(..) => "table",
        }
    }
}

/// One defined name.
#[derive(Debug)]
struct Entry {
    owner: ModuleId,
    path: PathBuf,
    /// What the definition declared, to match a reloaded version against.
    item: SharedItem,
    object: SharedObject,
    /// The module this one adopted the definition from, while a reload
    /// that may still fail is under way.
    adopted_from: Option<ModuleId>,
}

#[derive(Debug, Default)]
struct State {
    defined: HashMap<String, Entry>,
    /// Each loaded module's imports, by module.
    imports: HashMap<ModuleId, (PathBuf, Vec<String>)>,
    /// Objects of unloaded modules, kept for the loader's life.
    retired: Vec<SharedObject>,
}

/// Every memory and table loaded modules define, by name.
#[derive(Debug, Default)]
pub(crate) struct SharedRegistry {
    state: Mutex<State>,
}

fn kind_name(kind: SharedKind) -> &'static str {
    match kind {
        SharedKind::Memory => "memory",
        _ => "table",
    }
}

/// The signature of a table's entries, from its IR text (`fn(i64) -> i64`).
fn table_signature(path: &Path, item: &SharedItem) -> Result<Signature> {
    let text = item.signature.as_deref().unwrap_or_default();
    match jit::text::parse_type(text) {
        Ok(Type::Fn(sig)) => Ok(*sig),
        _ => Err(Error::shared(
            path,
            "table",
            &item.name,
            format!("has the signature `{text}`, which is not a function type"),
        )),
    }
}

impl SharedRegistry {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers what module `id` (from `path`) defines and checks what it
    /// imports. `replacing` is the module a reload replaces: definitions it
    /// owned under the same name, kind and sizes pass to `id` with their
    /// contents. Nothing changes when an item fails.
    ///
    /// # Errors
    /// [`Error::SharedUnresolved`] for an import no loaded module defines,
    /// [`Error::SharedConflict`] for a name defined twice, a kind or a
    /// table signature that differs from the definition's, and
    /// [`Error::SharedMemory`] when the reservation fails.
    pub(crate) fn register(
        &self,
        id: ModuleId,
        path: &Path,
        items: &[SharedItem],
        replacing: Option<ModuleId>,
    ) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut state = self.lock();
        let mut made = Vec::new();
        for item in items.iter().filter(|i| i.linkage == Linkage::Define) {
            let kind = kind_name(item.kind);
            if let Some(entry) = state.defined.get(&item.name) {
                let adopt = Some(entry.owner) == replacing && entry.item == *item;
                if adopt {
                    made.push((item, entry.object.clone(), Some(entry.owner)));
                    continue;
                }
                return Err(Error::shared(
                    path,
                    kind,
                    &item.name,
                    format!("is already defined by '{}'", entry.path.display()),
                ));
            }
            let fail = |source| Error::SharedMemory {
                path: path.display().to_string(),
                name: item.name.clone(),
                source: Arc::new(source),
            };
            let object = match item.kind {
                SharedKind::Memory => SharedObject::Memory(Arc::new(
                    SharedMemory::new(&item.name, item.initial, item.maximum).map_err(fail)?,
                )),
                _ => {
                    let sig = table_signature(path, item)?;
                    let table =
                        SharedTable::new(&item.name, item.initial, item.maximum).map_err(fail)?;
                    SharedObject::Table(Arc::new(table), Arc::new(sig))
                }
            };
            made.push((item, object, None));
        }
        let mut imported = Vec::new();
        for item in items.iter().filter(|i| i.linkage == Linkage::Import) {
            let kind = kind_name(item.kind);
            let defined = made
                .iter()
                .find(|(i, ..)| i.name == item.name)
                .map(|(_, o, _)| o)
                .or_else(|| state.defined.get(&item.name).map(|e| &e.object));
            let Some(object) = defined else {
                return Err(Error::SharedUnresolved {
                    path: path.display().to_string(),
                    kind,
                    name: item.name.clone(),
                });
            };
            match (item.kind, object) {
                (SharedKind::Memory, SharedObject::Memory(_)) => {}
                (SharedKind::Table, SharedObject::Table(_, sig)) => {
                    let wanted = table_signature(path, item)?;
                    if wanted != **sig {
                        return Err(Error::shared(
                            path,
                            kind,
                            &item.name,
                            format!(
                                "is imported as `{}`, but its entries are `{}`",
                                item.signature.as_deref().unwrap_or_default(),
                                Type::Fn(Box::new((**sig).clone())),
                            ),
                        ));
                    }
                }
                (_, other) => {
                    return Err(Error::shared(
                        path,
                        kind,
                        &item.name,
                        format!("is defined as a {}", other.kind()),
                    ));
                }
            }
            imported.push(item.name.clone());
        }
        for (item, object, adopted_from) in made {
            let entry = Entry {
                owner: id,
                path: path.to_path_buf(),
                item: item.clone(),
                object,
                adopted_from,
            };
            state.defined.insert(item.name.clone(), entry);
        }
        if !imported.is_empty() {
            state.imports.insert(id, (path.to_path_buf(), imported));
        }
        Ok(())
    }

    /// Whether module `id` may go: no other loaded module imports what it
    /// defines.
    ///
    /// # Errors
    /// [`Error::InUse`] naming the memory or table and its importer.
    pub(crate) fn check_unload(&self, id: ModuleId, path: &Path) -> Result<()> {
        let state = self.lock();
        for (name, entry) in state.defined.iter().filter(|(_, e)| e.owner == id) {
            let importer = state
                .imports
                .iter()
                .find(|(m, (_, names))| **m != id && names.contains(name));
            if let Some((_, (importer, _))) = importer {
                return Err(Error::InUse {
                    path: path.display().to_string(),
                    kind: entry.object.kind(),
                    name: name.clone(),
                    importer: importer.display().to_string(),
                });
            }
        }
        Ok(())
    }

    /// Forgets module `id`, unloaded or replaced by a reload: its
    /// definitions are retired (kept alive for code compiled against them),
    /// its imports dropped. What a successor adopted is the successor's.
    pub(crate) fn remove(&self, id: ModuleId) {
        self.forget(id, false);
    }

    /// Undoes [`SharedRegistry::register`] for a module whose load failed:
    /// what it adopted from the version it was to replace goes back.
    pub(crate) fn rollback(&self, id: ModuleId) {
        self.forget(id, true);
    }

    fn forget(&self, id: ModuleId, give_back: bool) {
        let mut state = self.lock();
        state.imports.remove(&id);
        let owned: Vec<String> = state
            .defined
            .iter()
            .filter(|(_, e)| e.owner == id)
            .map(|(n, _)| n.clone())
            .collect();
        for name in owned {
            let Some(entry) = state.defined.get_mut(&name) else {
                continue;
            };
            match entry.adopted_from.take() {
                Some(previous) if give_back => entry.owner = previous,
                _ => {
                    if let Some(entry) = state.defined.remove(&name) {
                        state.retired.push(entry.object);
                    }
                }
            }
        }
    }

    /// The memory `name`, if a loaded module defines one.
    pub(crate) fn memory(&self, name: &str) -> Option<Arc<SharedMemory>> {
        match &self.lock().defined.get(name)?.object {
            SharedObject::Memory(m) => Some(Arc::clone(m)),
            SharedObject::Table(..) => None,
        }
    }

    /// The table `name` with its entries' signature, if a loaded module
    /// defines one.
    pub(crate) fn table(&self, name: &str) -> Option<(Arc<SharedTable>, Arc<Signature>)> {
        match &self.lock().defined.get(name)?.object {
            SharedObject::Table(t, sig) => Some((Arc::clone(t), Arc::clone(sig))),
            SharedObject::Memory(_) => None,
        }
    }

    /// How many memories and tables are defined now.
    pub(crate) fn len(&self) -> usize {
        self.lock().defined.len()
    }
}

/// Checks that every memory and table a module's template library declares
/// is one its `Shared` section declares too, of the same kind and, for a
/// table, signature: the loader made or found those at load, so what the
/// templates were verified against is what they will use.
///
/// # Errors
/// [`jit::ErrorKind::Unresolved`] naming the first declaration that does
/// not match.
pub(crate) fn check_library(
    library: &jit::ir::Library,
    items: &[SharedItem],
) -> std::result::Result<(), jit::Error> {
    for declared in library.shared_items() {
        let (kind, name, sig) = match declared {
            jit::ir::Item::Memory(m) => (SharedKind::Memory, &m.name, None),
            jit::ir::Item::Table(t) => (SharedKind::Table, &t.name, Some(&t.sig)),
            _ => continue,
        };
        let item = items.iter().find(|i| i.name == *name);
        let matches = item.is_some_and(|item| {
            item.kind == kind
                && match sig {
                    None => true,
                    Some(sig) => item
                        .signature
                        .as_deref()
                        .and_then(|text| jit::text::parse_type(text).ok())
                        .is_some_and(|t| t == Type::Fn(Box::new(sig.clone()))),
                }
        });
        if !matches {
            return Err(jit::Error::new(jit::ErrorKind::Unresolved(format!(
                "the templates use the {} `{name}`, which the module's `.shared` section does \
                 not declare so",
                kind_name(kind)
            ))));
        }
    }
    Ok(())
}
