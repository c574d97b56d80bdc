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
//! name's descriptor through [`SharedRegistry::memory_descriptor`] and
//! [`SharedRegistry::table_descriptor`], never a copy of it.
//!
//! A name, once defined, keeps its object for the loader's life:
//! instantiations made against it stay in the instance cache after its
//! module goes, compiled or interpreted, and must keep reaching the same
//! memory. So a reloaded module, or a module defining a name an unloaded
//! one defined, takes the object over — with its contents — when it
//! declares the same kind, sizes and signature, and is refused otherwise;
//! a reload that stops defining a name another loaded module imports is
//! refused, and unloading a module whose memory or table another loaded
//! module imports is refused. The loader runs loads, reloads and unloads
//! one at a time (its lifecycle lock), so these checks and the changes
//! they guard are not interleaved.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

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

    fn descriptor_address(&self) -> u64 {
        match self {
            SharedObject::Memory(m) => m.descriptor_address(),
            SharedObject::Table(t, _) => t.descriptor_address(),
        }
    }
}

/// One name, defined by a loaded module or, once that module is gone,
/// kept with its object for the code made while it was loaded.
#[derive(Debug)]
struct Entry {
    /// The loaded module defining it; `None` once it is unloaded.
    owner: Option<ModuleId>,
    /// The file of the module that defined it last.
    path: PathBuf,
    /// What the definition declared: a new definition of the name must
    /// declare the same to take the object over.
    item: SharedItem,
    object: SharedObject,
    /// Who owned it before a load that took it over, while that load may
    /// still fail.
    adopted_from: Option<Option<ModuleId>>,
}

#[derive(Debug, Default)]
struct State {
    defined: HashMap<String, Entry>,
    /// Each loaded module's imports, by module.
    imports: HashMap<ModuleId, (PathBuf, Vec<String>)>,
}

/// Every memory and table loaded modules define, by name. A name, once
/// defined, keeps its object for the loader's life: code compiled or
/// interpreted against it may outlive the module (instantiations stay
/// cached), so it must keep reaching that object, and a later definition
/// of the name takes the same object over or is refused.
#[derive(Debug, Default)]
pub(crate) struct SharedRegistry {
    state: RwLock<State>,
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

/// Two declarations of one name mean the same object: kind, sizes and, for
/// a table, the signature as a type (not as text).
fn same_definition(a: &SharedItem, b: &SharedItem) -> bool {
    let sig = |i: &SharedItem| {
        i.signature
            .as_deref()
            .map(|t| jit::text::parse_type(t).ok())
    };
    a.kind == b.kind && a.initial == b.initial && a.maximum == b.maximum && sig(a) == sig(b)
}

impl SharedRegistry {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers what module `id` (from `path`) defines and checks what it
    /// imports. A definition takes over the object of its name when the
    /// name is free of a loaded owner — its previous version's (`replacing`,
    /// for a reload) or an unloaded module's — and declares the same kind,
    /// sizes and signature; the contents stay. Nothing changes when an
    /// item fails. The loader calls it with its lifecycle lock held.
    ///
    /// # Errors
    /// [`Error::SharedUnresolved`] for an import no loaded module defines;
    /// [`Error::SharedConflict`] for a name another loaded module defines,
    /// a definition that differs from the object its name has, an import
    /// of another kind or signature, and a reload that stops defining a
    /// name another loaded module imports; [`Error::SharedMemory`] when the
    /// reservation fails.
    pub(crate) fn register(
        &self,
        id: ModuleId,
        path: &Path,
        items: &[SharedItem],
        replacing: Option<ModuleId>,
    ) -> Result<()> {
        if items.is_empty() && replacing.is_none() {
            return Ok(());
        }
        let mut state = self.write();
        let mut made = Vec::new();
        for item in items.iter().filter(|i| i.linkage == Linkage::Define) {
            let kind = kind_name(item.kind);
            if let Some(entry) = state.defined.get(&item.name) {
                let free = entry.owner.is_none() || entry.owner == replacing;
                if free && same_definition(&entry.item, item) {
                    made.push((item, entry.object.clone(), Some(entry.owner)));
                    continue;
                }
                let reason = match entry.owner {
                    Some(owner) if Some(owner) != replacing => {
                        format!("is already defined by '{}'", entry.path.display())
                    }
                    Some(_) => "changes the sizes or signature its previous version gave it \
                                (unload the modules that use it, then load it anew)"
                        .to_owned(),
                    None => format!(
                        "was defined with other sizes or another signature by '{}', \
                         unloaded since; code made while it was loaded still uses it",
                        entry.path.display()
                    ),
                };
                return Err(Error::shared(path, kind, &item.name, reason));
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
        // What the previous version defined and this one does not may not
        // go while another loaded module imports it.
        if let Some(old) = replacing {
            for (name, entry) in state.defined.iter().filter(|(_, e)| e.owner == Some(old)) {
                if made.iter().any(|(i, ..)| i.name == *name) {
                    continue;
                }
                if let Some(importer) = importer_of(&state, name, &[old, id]) {
                    return Err(Error::shared(
                        path,
                        entry.object.kind(),
                        name,
                        format!(
                            "is imported by '{}', and the new version no longer defines it",
                            importer.display()
                        ),
                    ));
                }
            }
        }
        let mut imported = Vec::new();
        for item in items.iter().filter(|i| i.linkage == Linkage::Import) {
            let kind = kind_name(item.kind);
            let defined = made
                .iter()
                .find(|(i, ..)| i.name == item.name)
                .map(|(_, o, _)| o)
                .or_else(|| {
                    state
                        .defined
                        .get(&item.name)
                        .filter(|e| e.owner.is_some() && e.owner != replacing)
                        .map(|e| &e.object)
                });
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
                owner: Some(id),
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
        let state = self.read();
        for (name, entry) in state.defined.iter().filter(|(_, e)| e.owner == Some(id)) {
            if let Some(importer) = importer_of(&state, name, &[id]) {
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

    /// Forgets module `id`, unloaded or replaced by a reload: its imports
    /// are dropped and what it defines loses its owner (the objects stay
    /// under their names). What a successor took over is the successor's.
    pub(crate) fn remove(&self, id: ModuleId) {
        let mut state = self.write();
        state.imports.remove(&id);
        for entry in state.defined.values_mut().filter(|e| e.owner == Some(id)) {
            entry.owner = None;
            entry.adopted_from = None;
        }
    }

    /// Undoes [`SharedRegistry::register`] for a module whose load failed:
    /// what it took over goes back to its previous owner, what it made is
    /// left without an owner (an instantiation made during the load may
    /// have reached it).
    pub(crate) fn rollback(&self, id: ModuleId) {
        let mut state = self.write();
        state.imports.remove(&id);
        for entry in state.defined.values_mut().filter(|e| e.owner == Some(id)) {
            entry.owner = entry.adopted_from.take().flatten();
        }
    }

    /// The descriptor address of the memory `name`, defined by a loaded
    /// module or kept after its module went: what code made from templates
    /// naming it reaches, for the loader's life.
    pub(crate) fn memory_descriptor(&self, name: &str) -> Option<u64> {
        match &self.read().defined.get(name)?.object {
            object @ SharedObject::Memory(_) => Some(object.descriptor_address()),
            SharedObject::Table(..) => None,
        }
    }

    /// The descriptor address of the table `name`, as
    /// [`SharedRegistry::memory_descriptor`].
    pub(crate) fn table_descriptor(&self, name: &str) -> Option<u64> {
        match &self.read().defined.get(name)?.object {
            object @ SharedObject::Table(..) => Some(object.descriptor_address()),
            SharedObject::Memory(_) => None,
        }
    }

    /// The memory `name`, if a loaded module defines one.
    pub(crate) fn memory(&self, name: &str) -> Option<Arc<SharedMemory>> {
        match self.read().defined.get(name) {
            Some(Entry {
                owner: Some(_),
                object: SharedObject::Memory(m),
                ..
            }) => Some(Arc::clone(m)),
            _ => None,
        }
    }

    /// The table `name` with its entries' signature, if a loaded module
    /// defines one.
    pub(crate) fn table(&self, name: &str) -> Option<(Arc<SharedTable>, Arc<Signature>)> {
        match self.read().defined.get(name) {
            Some(Entry {
                owner: Some(_),
                object: SharedObject::Table(t, sig),
                ..
            }) => Some((Arc::clone(t), Arc::clone(sig))),
            _ => None,
        }
    }

    /// How many memories and tables loaded modules define now.
    pub(crate) fn len(&self) -> usize {
        self.read()
            .defined
            .values()
            .filter(|e| e.owner.is_some())
            .count()
    }
}

/// A loaded module other than those of `except` importing `name`.
fn importer_of<'s>(state: &'s State, name: &str, except: &[ModuleId]) -> Option<&'s PathBuf> {
    state
        .imports
        .iter()
        .find(|(m, (_, names))| !except.contains(m) && names.iter().any(|n| n == name))
        .map(|(_, (path, _))| path)
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
