//! A template library: the function templates, generic structs and
//! declarations of one module, indexed by name.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::function::{Function, TemplateName};
use super::types::{Signature, Type, TypeParam};
use crate::binary::decode::{Frame, decode_entry};
use crate::error::{Error, ErrorKind};
use crate::hash::BuildNameHasher;
use crate::target::Target;

/// A generic struct template with C layout computed at instantiation.
#[derive(Clone, Debug, PartialEq)]
pub struct StructDef {
    /// Name of the struct.
    pub name: String,
    /// Its type parameters.
    pub type_params: Vec<TypeParam>,
    /// Fields in declaration (and memory) order.
    pub fields: Vec<(String, Type)>,
}

/// A function known by signature only: a native import or a concrete
/// symbol of another module.
#[derive(Clone, Debug, PartialEq)]
pub struct Declaration {
    /// Symbol name.
    pub name: String,
    /// Its concrete signature.
    pub sig: Signature,
}

/// Whether a module defines a shared memory or table, with its sizes, or
/// imports one another module defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linkage {
    /// Defined by someone else, found by name when the module loads.
    Import,
    /// Defined here.
    Define {
        /// Size when created: 64 KiB pages of a memory, entries of a table.
        initial: u64,
        /// The most it may grow to, in the same unit; `None` for the
        /// limit ([`crate::limits::MAX_MEMORY_PAGES`],
        /// [`crate::limits::MAX_TABLE_ENTRIES`]).
        maximum: Option<u64>,
    },
}

/// A shared memory the library's functions use (`memory heap 1, 16`,
/// `import memory heap`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryDecl {
    /// The memory's name, global among loaded modules.
    pub name: String,
    /// Defined here or imported.
    pub linkage: Linkage,
}

/// A shared table of functions of one signature
/// (`table dispatch fn(i64) -> i64, 4, 64`, `import table dispatch fn(i64) -> i64`).
#[derive(Clone, Debug, PartialEq)]
pub struct TableDecl {
    /// The table's name, global among loaded modules (shared with memories).
    pub name: String,
    /// The signature of every entry.
    pub sig: Signature,
    /// Defined here or imported.
    pub linkage: Linkage,
}

/// One entry of a library (and of a TemplateCode section).
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// A function template (or a non-generic function).
    Function(Function),
    /// A generic struct.
    Struct(StructDef),
    /// A native function the module imports (`import fn malloc(u64) -> rawptr`).
    Import(Declaration),
    /// A concrete symbol another module exports (`extern fn @name(i64) -> i64`).
    Extern(Declaration),
    /// A shared memory, defined or imported.
    Memory(MemoryDecl),
    /// A shared table, defined or imported.
    Table(TableDecl),
}

impl Item {
    /// The name the item is declared under.
    pub fn name(&self) -> String {
        match self {
            Item::Function(f) => f.name.to_string(),
            Item::Struct(s) => s.name.clone(),
            Item::Import(d) | Item::Extern(d) => d.name.clone(),
            Item::Memory(m) => m.name.clone(),
            Item::Table(t) => t.name.clone(),
        }
    }
}

/// The name an entry declares, by kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ItemName {
    Function(TemplateName),
    Struct(String),
    Import(String),
    Extern(String),
    /// A memory or a table: one namespace.
    Shared(String),
}

/// The items of one module, indexed by name.
///
/// A library is built from items ([`Library::new`], what the text parser
/// and [`decode_library`](crate::binary::decode_library) produce), or over
/// the bytes of a TemplateCode section whose items are decoded on demand
/// ([`decode_library_lazily`](crate::binary::decode_library_lazily)): each
/// the first time it is looked up, and each template verified the first
/// time it is instantiated. The lookups answer the same either way;
/// [`Library::items`] lists only the items a library was built from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Library {
    items: Vec<Item>,
    /// The on-demand items, for a library over a section's bytes.
    lazy: Option<Arc<Lazy>>,
    functions: HashMap<TemplateName, usize, BuildNameHasher>,
    structs: HashMap<String, usize, BuildNameHasher>,
    imports: HashMap<String, usize, BuildNameHasher>,
    externs: HashMap<String, usize, BuildNameHasher>,
    /// Memories and tables, one namespace.
    shared: HashMap<String, usize, BuildNameHasher>,
    /// The target the library is verified and laid out for.
    target: Target,
    verified: Verified,
}

/// Whether [`crate::verify::verify_library`] accepted a library. A library
/// cannot change after it is built, so the mark stays true; it is not part
/// of the library's value (equality ignores it, a clone keeps it).
#[derive(Debug, Default)]
struct Verified(AtomicBool);

impl Clone for Verified {
    fn clone(&self) -> Self {
        Verified(AtomicBool::new(self.0.load(Ordering::Acquire)))
    }
}

impl PartialEq for Verified {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The items of a library decoded on demand: the section's bytes, each
/// entry's frame, and what decoding and checking each entry gave.
struct Lazy {
    bytes: Arc<[u8]>,
    original_offset: u64,
    frames: Vec<Frame>,
    /// Boxed, so that the slots of a large library's unused entries take
    /// a few words each.
    items: Vec<OnceLock<Result<Box<Item>, Box<Error>>>>,
    /// Whether each item passed the verifier (with what it refers to, for
    /// a function template), once asked.
    checked: Vec<OnceLock<Result<(), Box<Error>>>>,
    /// Entries decoded so far.
    decoded: AtomicU64,
    /// Items the verifier ran on so far.
    verified: AtomicU64,
}

impl std::fmt::Debug for Lazy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lazy")
            .field("bytes", &self.bytes.len())
            .field("entries", &self.frames.len())
            .field("decoded", &self.decoded.load(Ordering::Relaxed))
            .finish()
    }
}

impl PartialEq for Lazy {
    /// The same section's bytes make the same library.
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

/// The error for an item index past the library's end.
#[cold]
fn no_such_item() -> Error {
    Error::new(ErrorKind::Malformed(
        "names an item the library does not have",
    ))
}

impl Lazy {
    fn new(bytes: Arc<[u8]>, original_offset: u64, frames: Vec<Frame>) -> Lazy {
        let n = frames.len();
        Lazy {
            bytes,
            original_offset,
            frames,
            items: (0..n).map(|_| OnceLock::new()).collect(),
            checked: (0..n).map(|_| OnceLock::new()).collect(),
            decoded: AtomicU64::new(0),
            verified: AtomicU64::new(0),
        }
    }

    /// Entry `k`, decoded on first use.
    fn item(&self, k: usize) -> Result<&Item, Error> {
        let (Some(slot), Some(frame)) = (self.items.get(k), self.frames.get(k)) else {
            return Err(no_such_item());
        };
        slot.get_or_init(|| {
            self.decoded.fetch_add(1, Ordering::Relaxed);
            decode_entry(&self.bytes, frame)
                .map(Box::new)
                .map_err(|e| Box::new(e.in_file_at(self.original_offset)))
        })
        .as_ref()
        .map(|item| &**item)
        .map_err(|e| (**e).clone())
    }
}

impl Library {
    /// A library over a section's `bytes` whose entries, framed by
    /// `frames` and declaring `names`, are decoded when first looked up.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::DuplicateItem`] when two entries of the same kind share
    /// a name, located at the second entry.
    pub(crate) fn lazy(
        bytes: Arc<[u8]>,
        original_offset: u64,
        frames: Vec<Frame>,
        names: Vec<ItemName>,
    ) -> Result<Library, Error> {
        let mut lib = Library::default();
        let functions = names
            .iter()
            .filter(|n| matches!(n, ItemName::Function(_)))
            .count();
        lib.functions.reserve(functions);
        lib.structs.reserve(names.len() - functions);
        for (k, (name, frame)) in names.into_iter().zip(&frames).enumerate() {
            let duplicate = match name {
                ItemName::Function(n) => first_entry(&mut lib.functions, n, k),
                ItemName::Struct(n) => first_entry(&mut lib.structs, n, k),
                ItemName::Import(n) => first_entry(&mut lib.imports, n, k),
                ItemName::Extern(n) => first_entry(&mut lib.externs, n, k),
                ItemName::Shared(n) => first_entry(&mut lib.shared, n, k),
            };
            if let Some(shown) = duplicate {
                return Err(Error::at_offset(
                    ErrorKind::DuplicateItem(shown),
                    frame.start,
                ));
            }
        }
        lib.lazy = Some(Arc::new(Lazy::new(bytes, original_offset, frames)));
        Ok(lib)
    }

    /// Whether the items are decoded on demand (see [`Library`]).
    pub fn is_lazy(&self) -> bool {
        self.lazy.is_some()
    }

    /// How many entries of a library decoded on demand have been decoded
    /// (each at most once); the item count for any other library.
    pub fn decoded_count(&self) -> u64 {
        match &self.lazy {
            Some(lazy) => lazy.decoded.load(Ordering::Relaxed),
            None => self.items.len() as u64,
        }
    }

    /// How many items of a library decoded on demand the verifier has run
    /// on (each at most once); for any other library, the item count once
    /// [`verify_library`](crate::verify::verify_library) accepted it, else 0.
    pub fn verified_count(&self) -> u64 {
        match &self.lazy {
            Some(lazy) => lazy.verified.load(Ordering::Relaxed),
            None if self.is_verified() => self.items.len() as u64,
            None => 0,
        }
    }

    /// Number of items, decoded or not.
    pub fn len(&self) -> usize {
        match &self.lazy {
            Some(lazy) => lazy.frames.len(),
            None => self.items.len(),
        }
    }

    /// Whether the library has no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Item `k` in declaration order, decoding it first if need be.
    ///
    /// # Errors
    ///
    /// The decoder's error for a malformed entry (every time it is asked
    /// for), at its file offset; [`ErrorKind::Malformed`] past the end.
    pub fn item(&self, k: usize) -> Result<&Item, Error> {
        match &self.lazy {
            Some(lazy) => lazy.item(k),
            None => self.items.get(k).ok_or_else(no_such_item),
        }
    }

    /// Whether item `k` passed the verifier, running it the first time.
    /// `check` is the verifier's rule for the item.
    pub(crate) fn checked(
        &self,
        k: usize,
        check: impl FnOnce(&Item) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let Some(lazy) = &self.lazy else {
            return check(self.item(k)?);
        };
        let Some(slot) = lazy.checked.get(k) else {
            return Err(no_such_item());
        };
        slot.get_or_init(|| {
            lazy.verified.fetch_add(1, Ordering::Relaxed);
            lazy.item(k).and_then(check).map_err(Box::new)
        })
        .clone()
        .map_err(|e| *e)
    }

    /// The index of the function template `name`.
    pub(crate) fn function_index(&self, name: &TemplateName) -> Option<usize> {
        self.functions.get(name).copied()
    }

    /// The index of the struct template `name`.
    pub(crate) fn struct_index(&self, name: &str) -> Option<usize> {
        self.structs.get(name).copied()
    }

    /// The index of the native import `name`.
    pub(crate) fn import_index(&self, name: &str) -> Option<usize> {
        self.imports.get(name).copied()
    }

    /// The index of the memory or table `name`.
    pub(crate) fn shared_index(&self, name: &str) -> Option<usize> {
        self.shared.get(name).copied()
    }

    /// The index of the extern symbol declaration `name`.
    pub(crate) fn extern_index(&self, name: &str) -> Option<usize> {
        self.externs.get(name).copied()
    }

    /// Indexes `items`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::DuplicateItem`] when two items of the same kind share a name.
    pub fn new(items: Vec<Item>) -> Result<Library, Error> {
        let mut lib = Library {
            items: Vec::new(),
            ..Library::default()
        };
        for (k, item) in items.iter().enumerate() {
            let fresh = match item {
                Item::Function(f) => lib.functions.insert(f.name.clone(), k).is_none(),
                Item::Struct(s) => lib.structs.insert(s.name.clone(), k).is_none(),
                Item::Import(d) => lib.imports.insert(d.name.clone(), k).is_none(),
                Item::Extern(d) => lib.externs.insert(d.name.clone(), k).is_none(),
                Item::Memory(MemoryDecl { name, .. }) | Item::Table(TableDecl { name, .. }) => {
                    lib.shared.insert(name.clone(), k).is_none()
                }
            };
            if !fresh {
                return Err(Error::new(ErrorKind::DuplicateItem(item.name())));
            }
        }
        lib.items = items;
        Ok(lib)
    }

    /// The same library for `target`: its struct layouts and pointer sizes
    /// become the target's, and the verifier checks signatures against the
    /// target's argument limits. A library verified for another target is
    /// no longer taken as verified.
    #[must_use]
    pub fn with_target(mut self, target: Target) -> Library {
        if target != self.target {
            self.target = target;
            self.verified = Verified::default();
            // What was checked was checked for the other target.
            if let Some(lazy) = &self.lazy {
                let fresh = Lazy::new(
                    Arc::clone(&lazy.bytes),
                    lazy.original_offset,
                    lazy.frames.clone(),
                );
                self.lazy = Some(Arc::new(fresh));
            }
        }
        self
    }

    /// The target the library is verified and laid out for
    /// ([`Target::X86_64_SYSV`] unless [`Library::with_target`] chose another).
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Every item in declaration order, for a library built from items
    /// (empty for one decoded on demand, whose items are reached through
    /// [`Library::item`] and the lookups by name).
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The function templates in declaration order (for a library decoded
    /// on demand, those that decode).
    pub fn functions(&self) -> impl Iterator<Item = &Function> {
        (0..self.len()).filter_map(|k| match self.item(k) {
            Ok(Item::Function(f)) => Some(f),
            _ => None,
        })
    }

    /// The function template with this name.
    pub fn function(&self, name: &TemplateName) -> Option<&Function> {
        match self.item(*self.functions.get(name)?) {
            Ok(Item::Function(f)) => Some(f),
            _ => None,
        }
    }

    /// The struct template with this name.
    pub fn struct_def(&self, name: &str) -> Option<&StructDef> {
        match self.item(*self.structs.get(name)?) {
            Ok(Item::Struct(s)) => Some(s),
            _ => None,
        }
    }

    /// The native import with this name.
    pub fn import(&self, name: &str) -> Option<&Declaration> {
        match self.item(*self.imports.get(name)?) {
            Ok(Item::Import(d)) => Some(d),
            _ => None,
        }
    }

    /// Whether [`crate::verify::verify_library`] has accepted this library
    /// (every template verified generically): instantiation then checks the
    /// types of a concrete function but not again the control flow and
    /// dominance it shares with its template.
    pub fn is_verified(&self) -> bool {
        self.verified.0.load(Ordering::Acquire)
    }

    /// Records that the verifier accepted the library.
    pub(crate) fn mark_verified(&self) {
        self.verified.0.store(true, Ordering::Release);
    }

    /// How many memories and tables the library declares.
    pub fn shared_count(&self) -> usize {
        self.shared.len()
    }

    /// The shared memory this library declares under `name`.
    pub fn memory(&self, name: &str) -> Option<&MemoryDecl> {
        match self.item(*self.shared.get(name)?) {
            Ok(Item::Memory(m)) => Some(m),
            _ => None,
        }
    }

    /// The shared table this library declares under `name`.
    pub fn table(&self, name: &str) -> Option<&TableDecl> {
        match self.item(*self.shared.get(name)?) {
            Ok(Item::Table(t)) => Some(t),
            _ => None,
        }
    }

    /// Every memory and table the library declares, in declaration order
    /// (for a library decoded on demand, those that decode).
    pub fn shared_items(&self) -> Vec<&Item> {
        let mut ks: Vec<usize> = self.shared.values().copied().collect();
        ks.sort_unstable();
        ks.into_iter().filter_map(|k| self.item(k).ok()).collect()
    }

    /// The extern symbol declaration with this name.
    pub fn extern_symbol(&self, name: &str) -> Option<&Declaration> {
        match self.item(*self.externs.get(name)?) {
            Ok(Item::Extern(d)) => Some(d),
            _ => None,
        }
    }
}

/// Enters `name` as entry `k` of `map`; when the name is there already,
/// leaves the map as it is and returns the name as errors show it (made
/// only then: a library of a thousand entries loads without formatting a
/// name).
fn first_entry<K>(map: &mut HashMap<K, usize, BuildNameHasher>, name: K, k: usize) -> Option<String>
where
    K: std::hash::Hash + Eq + std::fmt::Display,
{
    match map.entry(name) {
        std::collections::hash_map::Entry::Occupied(held) => Some(held.key().to_string()),
        std::collections::hash_map::Entry::Vacant(slot) => {
            slot.insert(k);
            None
        }
    }
}
