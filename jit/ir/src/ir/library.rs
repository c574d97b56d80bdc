//! A template library: the function templates, generic structs and
//! declarations of one module, indexed by name.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use super::function::{Function, TemplateName};
use super::types::{Signature, Type, TypeParam};
use crate::error::{Error, ErrorKind};
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
}

impl Item {
    /// The name the item is declared under.
    pub fn name(&self) -> String {
        match self {
            Item::Function(f) => f.name.to_string(),
            Item::Struct(s) => s.name.clone(),
            Item::Import(d) | Item::Extern(d) => d.name.clone(),
        }
    }
}

/// The items of one module, indexed by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Library {
    items: Vec<Item>,
    functions: HashMap<TemplateName, usize>,
    structs: HashMap<String, usize>,
    imports: HashMap<String, usize>,
    externs: HashMap<String, usize>,
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

impl Library {
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
        }
        self
    }

    /// The target the library is verified and laid out for
    /// ([`Target::X86_64_SYSV`] unless [`Library::with_target`] chose another).
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Every item in declaration order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The function templates in declaration order.
    pub fn functions(&self) -> impl Iterator<Item = &Function> {
        self.items.iter().filter_map(|i| match i {
            Item::Function(f) => Some(f),
            _ => None,
        })
    }

    /// The function template with this name.
    pub fn function(&self, name: &TemplateName) -> Option<&Function> {
        match self.items.get(*self.functions.get(name)?) {
            Some(Item::Function(f)) => Some(f),
            _ => None,
        }
    }

    /// The struct template with this name.
    pub fn struct_def(&self, name: &str) -> Option<&StructDef> {
        match self.items.get(*self.structs.get(name)?) {
            Some(Item::Struct(s)) => Some(s),
            _ => None,
        }
    }

    /// The native import with this name.
    pub fn import(&self, name: &str) -> Option<&Declaration> {
        match self.items.get(*self.imports.get(name)?) {
            Some(Item::Import(d)) => Some(d),
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

    /// The extern symbol declaration with this name.
    pub fn extern_symbol(&self, name: &str) -> Option<&Declaration> {
        match self.items.get(*self.externs.get(name)?) {
            Some(Item::Extern(d)) => Some(d),
            _ => None,
        }
    }
}
