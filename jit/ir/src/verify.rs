//! The verifier: checks a template (generically, against its constraints)
//! or a concrete instantiation before anything runs or compiles it.
//!
//! Rules, each reported as a typed error naming the function and the
//! instruction:
//! - types are well formed: parameters in scope, structs declared with the
//!   right number of arguments satisfying their constraints, nesting within
//!   [`limits::MAX_TYPE_DEPTH`], only register types in registers;
//! - every operation gets operands of the types it is defined on, with
//!   constraints standing in for unknown parameters (`add T` needs `T: num`,
//!   `shl T` needs `T: int`); constants fit their type once it is concrete;
//! - registers are numbered in definition order, each used register is
//!   defined, and its definition dominates the use;
//! - block 0 has no parameters and is no branch target, every branch names a
//!   block and passes arguments matching its parameters, every block is
//!   reachable, returns match the signature;
//! - calls match the callee's declared signature after substitution, type
//!   arguments satisfy the callee's constraints, and every signature fits the
//!   argument limits of the library's [`Target`](crate::target::Target) (on
//!   x86-64, the System V argument registers: no stack-passed arguments).

use std::borrow::Cow;

use crate::error::{Error, ErrorKind, Location};
use crate::ir::{
    BinOp, BlockCall, Callee, CmpOp, Constraint, Function, Item, Library, Linkage, Literal, Op,
    Reg, Signature, SignatureDisplay, StructDef, StructType, TemplateName, Terminator, Type,
    TypeDisplay, TypeParam, UnOp,
};
use crate::limits;
use crate::mangle;

/// Verifies every item of a library: struct definitions, declarations and
/// every function template (generically).
///
/// # Errors
///
/// The first rule violated, located at the item or instruction.
pub fn verify_library(lib: &Library) -> Result<(), Error> {
    crate::error::check_limit("item count", lib.len(), limits::MAX_ITEMS)?;
    crate::error::check_limit(
        "memory and table count",
        lib.shared_count(),
        limits::MAX_SHARED_ITEMS,
    )?;
    if lib.is_lazy() {
        for k in 0..lib.len() {
            check_lazy_item(lib, k)?;
        }
    } else {
        for item in lib.items() {
            verify_item(item, lib)?;
        }
    }
    lib.mark_verified();
    Ok(())
}

/// Verifies one item against the rules [`verify_library`] applies to it.
fn verify_item(item: &Item, lib: &Library) -> Result<(), Error> {
    match item {
        Item::Function(f) => verify_function(f, lib).map(drop),
        Item::Struct(s) => verify_struct(s, lib),
        Item::Import(d) | Item::Extern(d) => {
            let at = || Location::Item(d.name.clone());
            check_name(&d.name).map_err(|e| e.or_at(at()))?;
            check_signature(&d.sig, &[], lib).map_err(|e| e.or_at(at()))
        }
        Item::Memory(m) => check_shared(&m.name, m.linkage, limits::MAX_MEMORY_PAGES),
        Item::Table(t) => {
            check_shared(&t.name, t.linkage, limits::MAX_TABLE_ENTRIES)?;
            check_signature(&t.sig, &[], lib).map_err(|e| e.or_at(Location::Item(t.name.clone())))
        }
    }
}

/// A memory's or table's name and sizes: a maximum not below the initial
/// size, both within `limit` (pages or entries).
fn check_shared(name: &str, linkage: Linkage, limit: u64) -> Result<(), Error> {
    let at = || Location::Item(name.to_owned());
    check_name(name).map_err(|e| e.or_at(at()))?;
    let Linkage::Define { initial, maximum } = linkage else {
        return Ok(());
    };
    let what = if limit == limits::MAX_MEMORY_PAGES {
        "memory pages"
    } else {
        "table entries"
    };
    for size in std::iter::once(initial).chain(maximum) {
        if size > limit {
            let kind = ErrorKind::Limit {
                what,
                found: size,
                limit,
            };
            return Err(Error::new(kind).or_at(at()));
        }
    }
    match maximum {
        Some(maximum) if maximum < initial => Err(Error::new(ErrorKind::MaximumBelowInitial {
            name: name.to_owned(),
            initial,
            maximum,
        })
        .or_at(at())),
        _ => Ok(()),
    }
}

/// Whether the template `name` may be instantiated with the reduced
/// instance check (`verify_instance`): its library passed
/// [`verify_library`], or, for a library decoded on demand, the template
/// and every struct and declaration it refers to passed the verifier (run
/// now, the first time, and remembered).
///
/// # Errors
///
/// The verifier's error for the template or what it refers to, or the
/// decoder's for an entry that does not decode; [`ErrorKind::Unknown`] for
/// a template the library does not declare.
pub fn verify_template(lib: &Library, name: &TemplateName) -> Result<bool, Error> {
    if lib.is_verified() {
        return Ok(true);
    }
    if !lib.is_lazy() {
        return Ok(false);
    }
    let k = lib.function_index(name).ok_or_else(|| {
        Error::new(ErrorKind::Unknown {
            what: "template",
            name: name.to_string(),
        })
    })?;
    check_lazy_item(lib, k)?;
    Ok(true)
}

/// Verifies item `k` of a library decoded on demand, once: a function
/// template with the structs (through their fields too) and declarations
/// it names, each checked once as well; its callee templates are decoded,
/// so that a malformed one is reported as such, and verified when they
/// are instantiated themselves.
pub(crate) fn check_lazy_item(lib: &Library, k: usize) -> Result<(), Error> {
    lib.checked(k, |item| {
        let Item::Function(f) = item else {
            return verify_item(item, lib);
        };
        let mut refs = References::default();
        refs.function(f);
        let mut structs = Vec::new();
        while let Some(name) = refs.structs.pop() {
            let Some(s) = lib.struct_index(name) else {
                continue;
            };
            if structs.contains(&s) {
                continue;
            }
            structs.push(s);
            if let Item::Struct(def) = lib.item(s)? {
                def.fields.iter().for_each(|(_, t)| refs.ty(t));
            }
        }
        for name in &refs.templates {
            if let Some(t) = lib.function_index(name) {
                lib.item(t)?;
            }
        }
        verify_function(f, lib)?;
        for s in structs {
            check_lazy_item(lib, s)?;
        }
        for d in refs.imports.iter().filter_map(|n| lib.import_index(n)) {
            check_lazy_item(lib, d)?;
        }
        for d in refs.symbols.iter().filter_map(|n| lib.extern_index(n)) {
            check_lazy_item(lib, d)?;
        }
        for d in refs.shared.iter().filter_map(|n| lib.shared_index(n)) {
            check_lazy_item(lib, d)?;
        }
        Ok(())
    })
}

/// The names a function refers to, by kind.
#[derive(Default)]
struct References<'f> {
    structs: Vec<&'f str>,
    templates: Vec<&'f TemplateName>,
    imports: Vec<&'f str>,
    symbols: Vec<&'f str>,
    shared: Vec<&'f str>,
}

impl<'f> References<'f> {
    fn function(&mut self, f: &'f Function) {
        self.sig(&f.sig);
        for block in &f.blocks {
            block.params.iter().for_each(|(_, t)| self.ty(t));
            block.insts.iter().for_each(|i| self.op(&i.op));
        }
    }

    fn op(&mut self, op: &'f Op) {
        match op {
            Op::Const { ty, .. }
            | Op::Unary { ty, .. }
            | Op::Binary { ty, .. }
            | Op::Cmp { ty, .. }
            | Op::Select { ty, .. }
            | Op::Load { ty, .. }
            | Op::Store { ty, .. }
            | Op::Addr { ty, .. }
            | Op::ElemAddr { elem: ty, .. }
            | Op::SizeOf { ty }
            | Op::AlignOf { ty } => self.ty(ty),
            Op::Cast { from, to, .. } | Op::Bitcast { from, to, .. } => {
                self.ty(from);
                self.ty(to);
            }
            Op::FieldAddr { strukt, .. } => self.strukt(strukt),
            Op::CallIndirect { sig, .. } => self.sig(sig),
            Op::MemLoad { ty, memory, .. } | Op::MemStore { ty, memory, .. } => {
                self.ty(ty);
                self.shared.push(memory);
            }
            Op::MemSize { memory: name }
            | Op::MemGrow { memory: name, .. }
            | Op::TableGet { table: name, .. }
            | Op::TableSet { table: name, .. }
            | Op::TableSize { table: name }
            | Op::TableGrow { table: name, .. } => self.shared.push(name),
            Op::CallTable { table, sig, .. } => {
                self.sig(sig);
                self.shared.push(table);
            }
            Op::Call { callee, sig, .. } | Op::FuncAddr { callee, sig } => {
                self.sig(sig);
                match callee {
                    Callee::Template { name, type_args } => {
                        self.templates.push(name);
                        type_args.iter().for_each(|t| self.ty(t));
                    }
                    Callee::Import(n) => self.imports.push(n),
                    Callee::Symbol(n) => self.symbols.push(n),
                }
            }
        }
    }

    fn sig(&mut self, sig: &'f Signature) {
        sig.params
            .iter()
            .chain(sig.ret.iter())
            .for_each(|t| self.ty(t));
    }

    fn strukt(&mut self, s: &'f StructType) {
        self.structs.push(&s.name);
        s.args.iter().for_each(|t| self.ty(t));
    }

    fn ty(&mut self, t: &'f Type) {
        match t {
            Type::Ptr(inner) => self.ty(inner),
            Type::Fn(sig) => self.sig(sig),
            Type::Struct(s) => self.strukt(s),
            _ => {}
        }
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > limits::MAX_NAME_LEN {
        return Err(Error::new(ErrorKind::BadName(format!(
            "name length {} is outside 1..={}",
            name.len(),
            limits::MAX_NAME_LEN
        ))));
    }
    Ok(())
}

fn verify_struct(s: &StructDef, lib: &Library) -> Result<(), Error> {
    let at = || Location::Item(s.name.clone());
    let run = || {
        check_name(&s.name)?;
        if mangle::is_reserved(&s.name) {
            return Err(Error::new(ErrorKind::BadItemName {
                name: s.name.clone(),
                reason: "is a reserved word",
            }));
        }
        crate::error::check_limit(
            "type parameter count",
            s.type_params.len(),
            limits::MAX_TYPE_PARAMS,
        )?;
        crate::error::check_limit("field count", s.fields.len(), limits::MAX_FIELDS)?;
        for (k, (name, ty)) in s.fields.iter().enumerate() {
            check_name(name)?;
            if s.fields.iter().take(k).any(|(n, _)| n == name) {
                return Err(Error::new(ErrorKind::Redefined {
                    what: "field",
                    name: name.clone(),
                }));
            }
            check_type(ty, &s.type_params, lib)?;
        }
        Ok(())
    };
    run().map_err(|e: Error| e.or_at(at()))
}

/// Whether `ty` satisfies `c` in a scope where parameters carry constraints.
fn satisfies(ty: &Type, c: Constraint, scope: &[TypeParam]) -> bool {
    match ty {
        Type::Param(i) => param(scope, *i).is_some_and(|p| p.constraint.implies(c)),
        Type::Ptr(inner) if c == Constraint::Any => satisfies(inner, c, scope),
        Type::Struct(s) if c == Constraint::Any => s.args.iter().all(|a| satisfies(a, c, scope)),
        other => c.admits(other),
    }
}

fn param(scope: &[TypeParam], i: u32) -> Option<&TypeParam> {
    usize::try_from(i).ok().and_then(|i| scope.get(i))
}

fn shown(ty: &Type, scope: &[TypeParam]) -> String {
    TypeDisplay { ty, params: scope }.to_string()
}

/// Whether `ty` is a scalar with a keyword: well formed anywhere, and a
/// register type.
#[inline]
fn is_scalar(ty: &Type) -> bool {
    matches!(
        ty,
        Type::Int(_) | Type::F32 | Type::F64 | Type::Bool | Type::RawPtr
    )
}

/// Checks that a type is well formed in `scope`.
#[inline]
fn check_type(ty: &Type, scope: &[TypeParam], lib: &Library) -> Result<(), Error> {
    if is_scalar(ty) {
        return Ok(());
    }
    check_nested_type(ty, scope, lib)
}

/// [`check_type`] of a type that is not a scalar.
fn check_nested_type(ty: &Type, scope: &[TypeParam], lib: &Library) -> Result<(), Error> {
    crate::error::check_limit("type nesting depth", ty.depth(), limits::MAX_TYPE_DEPTH)?;
    match ty {
        Type::Param(i) if param(scope, *i).is_none() => {
            return Err(Error::new(ErrorKind::Unknown {
                what: "type parameter",
                name: format!("${i}"),
            }));
        }
        Type::Ptr(inner) => check_type(inner, scope, lib)?,
        Type::Fn(sig) => check_signature(sig, scope, lib)?,
        Type::Struct(s) => check_struct_type(s, scope, lib)?,
        _ => {}
    }
    Ok(())
}

fn check_struct_type(s: &StructType, scope: &[TypeParam], lib: &Library) -> Result<(), Error> {
    let def = lib.struct_def(&s.name).ok_or_else(|| {
        Error::new(ErrorKind::Unknown {
            what: "struct",
            name: s.name.clone(),
        })
    })?;
    check_type_args(&s.name, &def.type_params, &s.args, scope, lib)
}

/// Checks type arguments against the parameters they fill.
pub(crate) fn check_type_args(
    name: &dyn std::fmt::Display,
    params: &[TypeParam],
    args: &[Type],
    scope: &[TypeParam],
    lib: &Library,
) -> Result<(), Error> {
    if params.len() != args.len() {
        return Err(Error::new(ErrorKind::TypeArgCount {
            name: name.to_string(),
            expected: params.len(),
            found: args.len(),
        }));
    }
    for (p, a) in params.iter().zip(args) {
        check_type(a, scope, lib)?;
        if matches!(a, Type::Fn(_)) || !satisfies(a, p.constraint, scope) {
            return Err(Error::new(ErrorKind::Constraint {
                ty: shown(a, scope),
                param: p.name.clone(),
                constraint: p.constraint.name(),
            }));
        }
    }
    Ok(())
}

/// Whether a type travels in an integer register under System V.
fn is_int_class(ty: &Type, scope: &[TypeParam]) -> bool {
    match ty {
        Type::F32 | Type::F64 => false,
        Type::Param(i) => param(scope, *i).is_none_or(|p| p.constraint != Constraint::Float),
        _ => true,
    }
}

/// Checks a signature: well-formed register types that all fit in argument
/// registers. A parameter of unknown class counts against both limits.
fn check_signature(sig: &Signature, scope: &[TypeParam], lib: &Library) -> Result<(), Error> {
    crate::error::check_limit("parameter count", sig.params.len(), limits::MAX_OPERANDS)?;
    let mut ints = 0;
    let mut floats = 0;
    for t in sig.params.iter().chain(sig.ret.iter()) {
        check_type(t, scope, lib)?;
        if !t.is_register() {
            return Err(Error::new(ErrorKind::NotRegisterType(shown(t, scope))));
        }
    }
    for t in &sig.params {
        let unknown = matches!(t, Type::Param(i) if param(scope, *i).is_some_and(|p| matches!(p.constraint, Constraint::Any | Constraint::Num)));
        if unknown {
            ints += 1;
            floats += 1;
        } else if is_int_class(t, scope) {
            ints += 1;
        } else {
            floats += 1;
        }
    }
    let target = lib.target();
    let max_ints = target.max_int_args.unwrap_or(usize::MAX);
    let max_floats = target.max_float_args.unwrap_or(usize::MAX);
    if ints > max_ints || floats > max_floats {
        return Err(Error::new(ErrorKind::TooManyArgs {
            ints,
            floats,
            max_ints,
            max_floats,
        }));
    }
    Ok(())
}

/// Result of verifying a function: the type of every register.
#[derive(Clone, Debug, PartialEq)]
pub struct RegTypes(pub Vec<Type>);

impl RegTypes {
    /// Type of a register defined by the verified function.
    #[inline]
    pub fn get(&self, r: Reg) -> Option<&Type> {
        usize::try_from(r.0).ok().and_then(|i| self.0.get(i))
    }
}

struct Checker<'a> {
    lib: &'a Library,
    f: &'a Function,
    scope: &'a [TypeParam],
    /// The type of each register defined so far, in its first `defined`
    /// entries; what follows is left from the storage's previous use and
    /// overwritten in place (keeping the boxes of pointer types).
    types: Vec<Type>,
    defined: usize,
    /// Block and position (0 for parameters, k+1 for instruction k) of each definition.
    defs: Vec<(usize, usize)>,
    idom: Vec<usize>,
    /// What is taken as proven (an instance of a verified template).
    trust: Trust<'a>,
    block: usize,
    inst: Option<usize>,
}

/// Verifies one function (a template, or a concrete function when it has
/// no type parameters) and returns the type of each register.
///
/// # Errors
///
/// The first rule violated, located at the instruction (or at the function
/// for its signature).
pub fn verify_function(f: &Function, lib: &Library) -> Result<RegTypes, Error> {
    check_function(f, lib, Trust::Nothing, Vec::new())
}

/// How much of a function the checker takes as already proven.
#[derive(Clone, Copy, Debug)]
enum Trust<'a> {
    /// Nothing: every rule runs.
    Nothing,
    /// The function is an instance of this template, which passed
    /// [`verify_library`]: only the rules substitution can newly break run.
    Template(&'a Function),
}

/// Verifies the instance `f` of a template of `lib`, which
/// [`verify_library`] accepted, and returns the type of each register.
///
/// `instantiate` copies the template's blocks, block parameters,
/// terminators and every instruction's result and operand registers,
/// rewriting only types (by a substitution of type arguments that satisfy
/// the constraints), layout-dependent operations and callees
/// (`tests/instance_shape.rs`). What the template passed therefore holds
/// for the instance without being checked again:
/// - reachability, branch targets, register numbering and the dominance
///   of every use: the shape is the same;
/// - every equality of types (operands against the operation's type,
///   addresses against their pointee, arguments against parameters,
///   branch arguments, returns): substitution maps equal types to equal
///   types, and the lowered forms keep the result types
///   (`elem_addr T` gives `ptr<T>` as before, `field_addr` the
///   substituted field type, `size_of` an `i64` constant);
/// - every class rule (`add T` needs a number, `shl T` an integer, casts):
///   a parameter passed only where its constraint implies the class, and
///   an argument satisfying that constraint is of that class;
/// - the signature of a call to a native import (concrete in the
///   template, so unchanged) or to a template (now to its instantiation's
///   symbol: substituting the callee's arguments and then the caller's is
///   substituting once by the composition), unless an `extern`
///   declaration takes that symbol's name.
///
/// What a concrete type can newly break is checked on every type the full
/// verifier checks: type well-formedness (nesting depth; a struct where a
/// register type is needed, including inside a function-pointer type),
/// register types of signatures, block parameters and results, constant
/// ranges (`const T 200` with `T = i8`), bitcast sizes and the symbol's
/// name. A call to a symbol the template names itself is compared with
/// its callee as in full (it may have matched only generically).
/// On any failure the full verifier runs, so errors are exactly its errors;
/// `tests/instance_check.rs` compares both on every template of the
/// collections library and on random generic templates, and debug builds
/// compare them on every instance.
///
/// `types` is storage for the register types (overwritten in place, so
/// the boxes of its pointer types are reused): an instance no longer
/// needed lends its own.
pub(crate) fn verify_instance(
    f: &Function,
    template: &Function,
    lib: &Library,
    types: Vec<Type>,
) -> Result<RegTypes, Error> {
    let fast = check_function(f, lib, Trust::Template(template), types);
    let checked = match fast {
        Ok(types) => Ok(types),
        // Errors are rare: the full verifier finds and locates the first one.
        Err(_) => verify_function(f, lib),
    };
    debug_assert_eq!(
        checked.as_ref().ok(),
        verify_function(f, lib).as_ref().ok(),
        "the reduced instance check and the full verifier disagree on {}",
        f.name
    );
    checked
}

/// Runs the rules `trust` leaves to check; the register types are
/// written over `types`, which ends up holding exactly them.
fn check_function(
    f: &Function,
    lib: &Library,
    trust: Trust<'_>,
    types: Vec<Type>,
) -> Result<RegTypes, Error> {
    let name = || f.name.to_string();
    let regs = f.reg_count();
    let header = || -> Result<(), Error> {
        check_name(&f.name.name)?;
        crate::error::check_limit(
            "type parameter count",
            f.type_params.len(),
            limits::MAX_TYPE_PARAMS,
        )?;
        crate::error::check_limit("block count", f.blocks.len(), limits::MAX_BLOCKS)?;
        crate::error::check_limit("instruction count", f.inst_count(), limits::MAX_INSTS)?;
        crate::error::check_limit("register count", regs, limits::MAX_REGS)?;
        check_signature(&f.sig, &f.type_params, lib)?;
        if let Some(owner) = &f.name.owner {
            let def = lib.struct_def(owner).ok_or_else(|| {
                Error::new(ErrorKind::Unknown {
                    what: "struct",
                    name: owner.clone(),
                })
            })?;
            let same = def.type_params.len() == f.type_params.len()
                && def
                    .type_params
                    .iter()
                    .zip(&f.type_params)
                    .all(|(a, b)| a.constraint == b.constraint);
            if !same {
                return Err(Error::new(ErrorKind::BadItemName {
                    name: f.name.to_string(),
                    reason: "must declare exactly its struct's type parameters and constraints",
                }));
            }
            if mangle::is_type_token(&f.name.name) {
                return Err(Error::new(ErrorKind::BadItemName {
                    name: f.name.name.clone(),
                    reason: "would read as a type in a mangled name (a keyword or ending in `_` and digits)",
                }));
            }
        } else if mangle::is_reserved(&f.name.name) {
            return Err(Error::new(ErrorKind::BadItemName {
                name: f.name.name.clone(),
                reason: "is a reserved word",
            }));
        }
        if f.blocks.is_empty() {
            return Err(Error::new(ErrorKind::NoBlocks));
        }
        Ok(())
    };
    header().map_err(|e| e.or_at(Location::Item(name())))?;
    let mut c = Checker {
        lib,
        f,
        scope: &f.type_params,
        types,
        defined: 0,
        defs: Vec::new(),
        idom: Vec::new(),
        trust,
        block: 0,
        inst: None,
    };
    c.run(regs).map_err(|e| e.or_at(Location::Item(name())))?;
    Ok(RegTypes(c.types))
}

impl Checker<'_> {
    /// An error at the instruction being checked.
    #[cold]
    fn err(&self, kind: ErrorKind) -> Error {
        self.err_at(self.block, self.inst, kind)
    }

    /// An error at instruction `inst` (`None`: the terminator) of `block`.
    #[cold]
    fn err_at(&self, block: usize, inst: Option<usize>, kind: ErrorKind) -> Error {
        Error {
            kind,
            location: Location::Instruction {
                function: self.f.name.to_string(),
                block: u32::try_from(block).unwrap_or(u32::MAX),
                inst: inst.map(|i| u32::try_from(i).unwrap_or(u32::MAX)),
            },
        }
    }

    fn at<T>(&self, r: Result<T, Error>) -> Result<T, Error> {
        r.map_err(|e| {
            let here = self.err(e.kind.clone());
            e.or_at(here.location)
        })
    }

    fn show(&self, ty: &Type) -> String {
        shown(ty, self.scope)
    }

    /// Checks the function, which defines `regs` registers.
    fn run(&mut self, regs: usize) -> Result<(), Error> {
        self.number_registers(regs)?;
        if let Trust::Template(_) = self.trust {
            return Ok(());
        }
        self.dominators()?;
        for (b, block) in self.f.blocks.iter().enumerate() {
            self.block = b;
            for (k, inst) in block.insts.iter().enumerate() {
                self.inst = Some(k);
                self.check_op(&inst.op, k + 1)?;
            }
            self.inst = None;
            self.check_term(&block.term, block.insts.len() + 1)?;
        }
        Ok(())
    }

    /// Pass 1: checks definition order and records each register's type
    /// (and, unless the instance check runs, where it is defined: the
    /// instance check reads no operands). Leaves `types` exactly the
    /// registers' types.
    fn number_registers(&mut self, regs: usize) -> Result<(), Error> {
        self.types.reserve(regs.saturating_sub(self.types.len()));
        if let Trust::Nothing = self.trust {
            self.defs.reserve(regs);
            self.defs.resize(self.f.sig.params.len(), (0, 0));
        }
        let f = self.f;
        for t in &f.sig.params {
            self.record(Cow::Borrowed(t));
        }
        self.define_all()?;
        self.types.truncate(self.defined);
        Ok(())
    }

    /// Writes the type of the next register over the kept storage.
    fn record(&mut self, t: Cow<'_, Type>) {
        match (self.types.get_mut(self.defined), t) {
            (Some(slot), Cow::Borrowed(t)) => t.clone_into_place(slot),
            (Some(slot), Cow::Owned(t)) => slot.replace_with(t),
            (None, t) => self.types.push(t.into_owned()),
        }
        self.defined += 1;
    }

    /// The definitions of every block, in order.
    fn define_all(&mut self) -> Result<(), Error> {
        for (b, block) in self.f.blocks.iter().enumerate() {
            self.block = b;
            self.inst = None;
            if b == 0 && !block.params.is_empty() {
                return Err(self.err(ErrorKind::BadEntry("cannot have parameters")));
            }
            for (r, t) in &block.params {
                self.at(check_type(t, self.scope, self.lib))?;
                self.define(*r, Cow::Borrowed(t), 0)?;
            }
            // An instance is checked in this same pass: the rules it still
            // needs do not read operands.
            let generic = match self.trust {
                Trust::Template(t) => Some(t.blocks.get(b).map_or(&[][..], |g| &g.insts[..])),
                Trust::Nothing => None,
            };
            for (k, inst) in block.insts.iter().enumerate() {
                self.inst = Some(k);
                if inst.op.has_result() != inst.result.is_some() {
                    return Err(
                        self.err(ErrorKind::ResultMismatch(if inst.result.is_some() {
                            "defines a register but produces no value"
                        } else {
                            "produces a value but defines no register"
                        })),
                    );
                }
                if let Some(r) = inst.result {
                    let t = self.result_type(&inst.op)?;
                    self.define(r, t, k + 1)?;
                }
                if let Some(generic) = generic {
                    let was = generic.get(k).map(|g| &g.op);
                    self.check_substituted_op(&inst.op, was, k + 1)?;
                }
            }
        }
        Ok(())
    }

    fn define(&mut self, r: Reg, t: Cow<'_, Type>, pos: usize) -> Result<(), Error> {
        let expected = u32::try_from(self.defined).unwrap_or(u32::MAX);
        if r.0 != expected {
            return Err(self.err(ErrorKind::RegisterNumbering {
                expected,
                found: r.0,
            }));
        }
        if !t.is_register() {
            return Err(self.err(ErrorKind::NotRegisterType(self.show(&t))));
        }
        self.record(t);
        if let Trust::Nothing = self.trust {
            self.defs.push((self.block, pos));
        }
        Ok(())
    }

    /// Type produced by an operation, from its own fields (operands are
    /// checked in pass 2).
    fn result_type<'o>(&self, op: &'o Op) -> Result<Cow<'o, Type>, Error> {
        let owned = |t: Type| Ok(Cow::Owned(t));
        match op {
            Op::Const { ty, .. } | Op::Unary { ty, .. } | Op::Binary { ty, .. } => {
                Ok(Cow::Borrowed(ty))
            }
            Op::Select { ty, .. } | Op::Load { ty, .. } | Op::Addr { ty, .. } => {
                Ok(Cow::Borrowed(ty))
            }
            Op::MemLoad { ty, .. } => Ok(Cow::Borrowed(ty)),
            Op::MemSize { .. } | Op::MemGrow { .. } => owned(Type::I64),
            Op::TableSize { .. } | Op::TableGrow { .. } => owned(Type::I64),
            Op::TableGet { table, .. } => owned(Type::Fn(Box::new(self.table(table)?.sig.clone()))),
            Op::Cmp { .. } => owned(Type::Bool),
            Op::Cast { to, .. } | Op::Bitcast { to, .. } => Ok(Cow::Borrowed(to)),
            Op::ElemAddr { elem, .. } => owned(elem.clone().ptr_to()),
            Op::FieldAddr { strukt, field, .. } => owned(self.field_type(strukt, *field)?.ptr_to()),
            Op::SizeOf { .. } | Op::AlignOf { .. } => owned(Type::I64),
            Op::Call { sig, .. } | Op::CallIndirect { sig, .. } | Op::CallTable { sig, .. } => sig
                .ret
                .as_ref()
                .map(Cow::Borrowed)
                .ok_or_else(|| self.err(ErrorKind::ResultMismatch("returns nothing"))),
            Op::Store { .. } | Op::MemStore { .. } | Op::TableSet { .. } => {
                Err(self.err(ErrorKind::ResultMismatch("stores and produces no value")))
            }
            Op::FuncAddr { sig, .. } => owned(Type::Fn(Box::new(sig.clone()))),
        }
    }

    /// The memory `name` the library declares.
    fn memory(&self, name: &str) -> Result<(), Error> {
        match self.lib.memory(name) {
            Some(_) => Ok(()),
            None => Err(self.err(ErrorKind::Unknown {
                what: "memory",
                name: name.to_owned(),
            })),
        }
    }

    /// The table `name` the library declares.
    fn table(&self, name: &str) -> Result<&crate::ir::TableDecl, Error> {
        self.lib.table(name).ok_or_else(|| {
            self.err(ErrorKind::Unknown {
                what: "table",
                name: name.to_owned(),
            })
        })
    }

    fn field_type(&self, strukt: &StructType, field: u32) -> Result<Type, Error> {
        let def = self.lib.struct_def(&strukt.name).ok_or_else(|| {
            self.err(ErrorKind::Unknown {
                what: "struct",
                name: strukt.name.clone(),
            })
        })?;
        let (_, t) = usize::try_from(field)
            .ok()
            .and_then(|k| def.fields.get(k))
            .ok_or_else(|| {
                self.err(ErrorKind::Unknown {
                    what: "field",
                    name: format!("{}.{field}", strukt.name),
                })
            })?;
        Ok(t.substitute(&strukt.args))
    }

    /// Immediate dominators (Cooper, Harvey and Kennedy's iterative
    /// algorithm over reverse postorder); also rejects unreachable blocks
    /// and bad branch targets. Edges are kept in compressed rows (one flat
    /// vector and offsets) because this runs on every instantiation.
    fn dominators(&mut self) -> Result<(), Error> {
        let n = self.f.blocks.len();
        let (succ, start) = self.edges()?;
        let successors = |b: usize| succ.get(start[b]..start[b + 1]).unwrap_or(&[]);
        let mut order = Vec::with_capacity(n);
        let mut seen = vec![false; n];
        let mut stack = vec![(0usize, 0usize)];
        seen[0] = true;
        while let Some((b, next)) = stack.pop() {
            if let Some(&t) = successors(b).get(next) {
                stack.push((b, next + 1));
                if !seen[t] {
                    seen[t] = true;
                    stack.push((t, 0));
                }
            } else {
                order.push(b);
            }
        }
        if let Some(b) = seen.iter().position(|s| !s) {
            let block = u32::try_from(b).unwrap_or(u32::MAX);
            return Err(self.err_at(b, None, ErrorKind::UnreachableBlock(block)));
        }
        order.reverse();
        let mut rpo = vec![0; n];
        for (k, &b) in order.iter().enumerate() {
            rpo[b] = k;
        }
        // Predecessors, compressed the same way.
        let mut pred_start = vec![0usize; n + 1];
        for &t in &succ {
            pred_start[t + 1] += 1;
        }
        for b in 0..n {
            pred_start[b + 1] += pred_start[b];
        }
        let mut fill = pred_start.clone();
        let mut preds = vec![0usize; succ.len()];
        for b in 0..n {
            for &t in successors(b) {
                preds[fill[t]] = b;
                fill[t] += 1;
            }
        }
        const NONE: usize = usize::MAX;
        let mut idom = vec![NONE; n];
        idom[0] = 0;
        let mut changed = true;
        while changed {
            changed = false;
            for &b in order.iter().skip(1) {
                let mut new = NONE;
                for &p in preds.get(pred_start[b]..pred_start[b + 1]).unwrap_or(&[]) {
                    if idom[p] == NONE {
                        continue;
                    }
                    new = if new == NONE {
                        p
                    } else {
                        let (mut x, mut y) = (p, new);
                        while x != y {
                            while rpo[x] > rpo[y] {
                                x = idom[x];
                            }
                            while rpo[y] > rpo[x] {
                                y = idom[y];
                            }
                        }
                        x
                    };
                }
                if idom[b] != new {
                    idom[b] = new;
                    changed = true;
                }
            }
        }
        self.idom = idom;
        Ok(())
    }

    /// Every block's branch targets as compressed rows: the successors of
    /// block `b` are `succ[start[b]..start[b + 1]]`. Checks that each target
    /// exists and is not the entry.
    fn edges(&self) -> Result<(Vec<usize>, Vec<usize>), Error> {
        let n = self.f.blocks.len();
        let mut succ = Vec::with_capacity(2 * n);
        let mut start = Vec::with_capacity(n + 1);
        for (b, block) in self.f.blocks.iter().enumerate() {
            start.push(succ.len());
            let (first, second) = match &block.term {
                Terminator::Br(t) => (Some(t), None),
                Terminator::CondBr {
                    then, otherwise, ..
                } => (Some(then), Some(otherwise)),
                Terminator::Ret(_) | Terminator::Trap(_) => (None, None),
            };
            for t in first.into_iter().chain(second) {
                let k = usize::try_from(t.block.0).unwrap_or(usize::MAX);
                if k >= n {
                    return Err(self.err_at(b, None, ErrorKind::NoSuchBlock(t.block.0)));
                }
                if k == 0 {
                    return Err(self.err_at(
                        b,
                        None,
                        ErrorKind::BadEntry("cannot be a branch target"),
                    ));
                }
                succ.push(k);
            }
        }
        start.push(succ.len());
        Ok((succ, start))
    }

    fn dominates(&self, a: usize, mut b: usize) -> bool {
        loop {
            if a == b {
                return true;
            }
            match self.idom.get(b) {
                Some(&d) if d != b => b = d,
                _ => return false,
            }
        }
    }

    /// Type of a register read at position `pos` of the current block.
    fn use_reg(&self, r: Reg, pos: usize) -> Result<&Type, Error> {
        let k = usize::try_from(r.0).unwrap_or(usize::MAX);
        let (Some(t), Some(&(b, p))) = (self.types.get(k), self.defs.get(k)) else {
            return Err(self.err(ErrorKind::UndefinedRegister(r.0)));
        };
        let ok = if b == self.block {
            p < pos
        } else {
            self.dominates(b, self.block)
        };
        if !ok {
            return Err(self.err(ErrorKind::NotDominated(r.0)));
        }
        Ok(t)
    }

    fn expect(&self, r: Reg, pos: usize, ty: &Type, context: &'static str) -> Result<(), Error> {
        let found = self.use_reg(r, pos)?;
        if found != ty {
            return Err(self.err(ErrorKind::TypeMismatch {
                context,
                expected: self.show(ty),
                found: self.show(found),
            }));
        }
        Ok(())
    }

    fn class(&self, ty: &Type, c: Constraint) -> bool {
        match ty {
            Type::Param(i) => param(self.scope, *i).is_some_and(|p| p.constraint.implies(c)),
            other => c != Constraint::Any && c.admits(other),
        }
    }

    fn require(&self, ok: bool, op: &'static str, ty: &Type) -> Result<(), Error> {
        if ok {
            Ok(())
        } else {
            Err(self.err(ErrorKind::BadOperandType {
                op,
                ty: self.show(ty),
            }))
        }
    }

    #[inline]
    fn register_type(&self, ty: &Type) -> Result<(), Error> {
        if is_scalar(ty) {
            return Ok(());
        }
        self.at(check_type(ty, self.scope, self.lib))?;
        if !ty.is_register() {
            return Err(self.err(ErrorKind::NotRegisterType(self.show(ty))));
        }
        Ok(())
    }

    fn check_literal(&self, ty: &Type, value: Literal) -> Result<(), Error> {
        let out_of_range = || {
            self.err(ErrorKind::LiteralRange {
                value: crate::text::literal_text(value),
                ty: self.show(ty),
            })
        };
        let ok = match (value, ty) {
            (Literal::Int(v), Type::Int(t)) => {
                if v < t.min_value() || v > t.max_value() {
                    return Err(out_of_range());
                }
                true
            }
            (Literal::Int(_), _) => self.class(ty, Constraint::Num),
            (Literal::Float(_), _) => self.class(ty, Constraint::Float),
            (Literal::Bool(_), Type::Bool) => true,
            (Literal::Null, t) => t.is_pointer(),
            _ => false,
        };
        if ok { Ok(()) } else { Err(out_of_range()) }
    }

    fn address_base(
        &self,
        r: Reg,
        pos: usize,
        pointee: Option<&Type>,
        op: &'static str,
    ) -> Result<(), Error> {
        let t = self.use_reg(r, pos)?;
        let ok = match (t, pointee) {
            (Type::RawPtr, _) => true,
            (Type::Ptr(inner), Some(p)) => **inner == *p,
            (Type::Ptr(_), None) => true,
            _ => false,
        };
        self.require(ok, op, t)
    }

    fn check_index(&self, index: Option<Reg>, pos: usize) -> Result<(), Error> {
        match index {
            Some(i) => self.expect(i, pos, &Type::I64, "an index"),
            None => Ok(()),
        }
    }

    fn check_cast(&self, from: &Type, to: &Type) -> Result<(), Error> {
        let num = |t: &Type| self.class(t, Constraint::Num);
        let word = |t: &Type| {
            matches!(
                t,
                Type::Int(crate::ir::IntType::I64 | crate::ir::IntType::U64)
            )
        };
        let ok = (num(from) && num(to))
            || (*from == Type::Bool && self.class(to, Constraint::Int))
            || (from.is_pointer() && to.is_pointer())
            || (from.is_pointer() && word(to))
            || (word(from) && to.is_pointer());
        self.require(ok, "cast", from)
    }

    fn check_bitcast(&self, from: &Type, to: &Type) -> Result<(), Error> {
        let num = |t: &Type| self.class(t, Constraint::Num);
        self.require(num(from) && num(to), "bitcast", from)?;
        if let (Some(a), Some(b)) = (from.scalar_size(), to.scalar_size()) {
            self.require(a == b, "bitcast to a different size", from)?;
        }
        Ok(())
    }

    /// Checks arguments against parameter types; `what` names the callee
    /// or block, formatted only when there is an error.
    fn check_args<'p>(
        &self,
        what: &dyn Fn() -> String,
        params: impl ExactSizeIterator<Item = &'p Type>,
        args: &[Reg],
        pos: usize,
    ) -> Result<(), Error> {
        if params.len() != args.len() {
            return Err(self.err(ErrorKind::ArgCount {
                what: what(),
                expected: params.len(),
                found: args.len(),
            }));
        }
        for (p, a) in params.zip(args) {
            self.expect(*a, pos, p, "an argument")?;
        }
        Ok(())
    }

    /// Checks a direct callee and that `sig` is its declared signature.
    fn check_callee(&self, callee: &Callee, sig: &Signature) -> Result<(), Error> {
        self.at(check_signature(sig, self.scope, self.lib))?;
        // A call to an instantiation (what instantiation leaves of a call
        // to a template): its signature is compared with the template's,
        // substituted, without building the substituted copy.
        if let Callee::Symbol(name) = callee
            && self.lib.extern_symbol(name).is_none()
            && let Ok((t, args)) = mangle::demangle(name)
            && let Some(f) = self.lib.function(&t)
            && sig.is_substitution_of(&f.sig, &args)
        {
            return Ok(());
        }
        let declared = match callee {
            Callee::Template { name, type_args } => {
                let f = self.lib.function(name).ok_or_else(|| {
                    self.err(ErrorKind::Unknown {
                        what: "template",
                        name: name.to_string(),
                    })
                })?;
                self.at(check_type_args(
                    name,
                    &f.type_params,
                    type_args,
                    self.scope,
                    self.lib,
                ))?;
                Some(f.sig.substitute(type_args))
            }
            Callee::Import(name) => Some(
                self.lib
                    .import(name)
                    .ok_or_else(|| {
                        self.err(ErrorKind::Unknown {
                            what: "native import",
                            name: name.clone(),
                        })
                    })?
                    .sig
                    .clone(),
            ),
            Callee::Symbol(name) => match self.lib.extern_symbol(name) {
                Some(d) => Some(d.sig.clone()),
                None => mangle::demangle(name)
                    .ok()
                    .and_then(|(t, args)| self.lib.function(&t).map(|f| f.sig.substitute(&args))),
            },
        };
        if let Some(expected) = declared
            && expected != *sig
        {
            let callee = match callee {
                Callee::Template { name, .. } => name.to_string(),
                Callee::Import(n) | Callee::Symbol(n) => n.clone(),
            };
            return Err(self.err(ErrorKind::SignatureMismatch {
                callee,
                expected: SignatureDisplay {
                    sig: &expected,
                    params: self.scope,
                }
                .to_string(),
                found: SignatureDisplay {
                    sig,
                    params: self.scope,
                }
                .to_string(),
            }));
        }
        Ok(())
    }

    fn check_op(&self, op: &Op, pos: usize) -> Result<(), Error> {
        match op {
            Op::Const { ty, value } => {
                self.register_type(ty)?;
                self.check_literal(ty, *value)?;
            }
            Op::Unary { op, ty, arg } => {
                self.register_type(ty)?;
                let ok = match op {
                    UnOp::Neg => self.class(ty, Constraint::Num),
                    UnOp::Not => self.class(ty, Constraint::Int) || *ty == Type::Bool,
                };
                self.require(ok, if *op == UnOp::Neg { "neg" } else { "not" }, ty)?;
                self.expect(*arg, pos, ty, "the operand")?;
            }
            Op::Binary { op, ty, lhs, rhs } => {
                self.register_type(ty)?;
                let (name, ok) = match op {
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
                        ("arithmetic", self.class(ty, Constraint::Num))
                    }
                    BinOp::Rem => ("rem", self.class(ty, Constraint::Int)),
                    BinOp::And | BinOp::Or | BinOp::Xor => (
                        "a bitwise operation",
                        self.class(ty, Constraint::Int) || *ty == Type::Bool,
                    ),
                    BinOp::Shl | BinOp::Shr => ("a shift", self.class(ty, Constraint::Int)),
                };
                self.require(ok, name, ty)?;
                self.expect(*lhs, pos, ty, "the left operand")?;
                self.expect(*rhs, pos, ty, "the right operand")?;
            }
            Op::Cmp { op, ty, lhs, rhs } => {
                self.register_type(ty)?;
                let ordered = !matches!(op, CmpOp::Eq | CmpOp::Ne);
                let ok = self.class(ty, Constraint::Num)
                    || ty.is_pointer()
                    || (!ordered && (*ty == Type::Bool || matches!(ty, Type::Param(_))));
                self.require(ok, "cmp", ty)?;
                self.expect(*lhs, pos, ty, "the left operand")?;
                self.expect(*rhs, pos, ty, "the right operand")?;
            }
            Op::Cast { from, to, arg } => {
                self.register_type(from)?;
                self.register_type(to)?;
                self.check_cast(from, to)?;
                self.expect(*arg, pos, from, "the operand")?;
            }
            Op::Bitcast { from, to, arg } => {
                self.register_type(from)?;
                self.register_type(to)?;
                self.check_bitcast(from, to)?;
                self.expect(*arg, pos, from, "the operand")?;
            }
            Op::Select {
                ty,
                cond,
                if_true,
                if_false,
            } => {
                self.register_type(ty)?;
                self.expect(*cond, pos, &Type::Bool, "the condition")?;
                self.expect(*if_true, pos, ty, "the value if true")?;
                self.expect(*if_false, pos, ty, "the value if false")?;
            }
            Op::Load { ty, addr, index } => {
                self.register_type(ty)?;
                self.address_base(*addr, pos, Some(ty), "load")?;
                self.check_index(*index, pos)?;
            }
            Op::Store {
                ty,
                addr,
                index,
                value,
            } => {
                self.register_type(ty)?;
                self.address_base(*addr, pos, Some(ty), "store")?;
                self.check_index(*index, pos)?;
                self.expect(*value, pos, ty, "the stored value")?;
            }
            Op::ElemAddr { elem, base, index } => {
                self.at(check_type(elem, self.scope, self.lib))?;
                self.address_base(*base, pos, Some(elem), "elem_addr")?;
                self.expect(*index, pos, &Type::I64, "an index")?;
            }
            Op::FieldAddr {
                strukt,
                field,
                base,
            } => {
                self.at(check_struct_type(strukt, self.scope, self.lib))?;
                self.field_type(strukt, *field)?;
                self.address_base(
                    *base,
                    pos,
                    Some(&Type::Struct(Box::new(strukt.clone()))),
                    "field_addr",
                )?;
            }
            Op::Addr {
                ty, base, index, ..
            } => {
                self.register_type(ty)?;
                self.require(ty.is_pointer(), "addr", ty)?;
                self.address_base(*base, pos, None, "addr")?;
                self.check_index(*index, pos)?;
            }
            Op::SizeOf { ty } | Op::AlignOf { ty } => {
                self.at(check_type(ty, self.scope, self.lib))?
            }
            Op::Call { callee, sig, args } => {
                self.check_callee(callee, sig)?;
                self.check_args(&|| "the callee".into(), sig.params.iter(), args, pos)?;
            }
            Op::CallIndirect { sig, target, args } => {
                self.at(check_signature(sig, self.scope, self.lib))?;
                self.expect(
                    *target,
                    pos,
                    &Type::Fn(Box::new(sig.clone())),
                    "the function pointer",
                )?;
                self.check_args(
                    &|| "the function pointer".into(),
                    sig.params.iter(),
                    args,
                    pos,
                )?;
            }
            Op::FuncAddr { callee, sig } => self.check_callee(callee, sig)?,
            Op::MemLoad { ty, memory, offset } => {
                self.register_type(ty)?;
                self.memory(memory)?;
                self.expect(*offset, pos, &Type::I64, "an offset")?;
            }
            Op::MemStore {
                ty,
                memory,
                offset,
                value,
            } => {
                self.register_type(ty)?;
                self.memory(memory)?;
                self.expect(*offset, pos, &Type::I64, "an offset")?;
                self.expect(*value, pos, ty, "the stored value")?;
            }
            Op::MemSize { memory } => self.memory(memory)?,
            Op::MemGrow { memory, delta } => {
                self.memory(memory)?;
                self.expect(*delta, pos, &Type::I64, "a page count")?;
            }
            Op::TableSize { table } => drop(self.table(table)?),
            Op::TableGrow { table, delta } => {
                self.table(table)?;
                self.expect(*delta, pos, &Type::I64, "an entry count")?;
            }
            Op::TableGet { table, index } => {
                self.table(table)?;
                self.expect(*index, pos, &Type::I64, "an index")?;
            }
            Op::TableSet {
                table,
                index,
                value,
            } => {
                let entry = Type::Fn(Box::new(self.table(table)?.sig.clone()));
                self.expect(*index, pos, &Type::I64, "an index")?;
                self.expect(*value, pos, &entry, "the stored function")?;
            }
            Op::CallTable {
                table,
                sig,
                index,
                args,
            } => {
                let declared = &self.table(table)?.sig;
                if declared != sig {
                    let shown = |sig| SignatureDisplay { sig, params: &[] }.to_string();
                    return Err(self.err(ErrorKind::SignatureMismatch {
                        callee: format!("table `{table}`"),
                        expected: shown(declared),
                        found: shown(sig),
                    }));
                }
                self.expect(*index, pos, &Type::I64, "an index")?;
                self.check_args(&|| format!("table `{table}`"), sig.params.iter(), args, pos)?;
            }
        }
        if let Op::Bitcast { from, to, .. } | Op::Cast { from, to, .. } = op {
            self.at(check_type(from, self.scope, self.lib))?;
            self.at(check_type(to, self.scope, self.lib))?;
        }
        Ok(())
    }

    /// The rules a concrete type can newly break (see [`verify_instance`])
    /// for `op` in an instance, `was` the template's operation it came from.
    fn check_substituted_op(&self, op: &Op, was: Option<&Op>, pos: usize) -> Result<(), Error> {
        match op {
            Op::Const { ty, value } => {
                self.register_type(ty)?;
                self.check_literal(ty, *value)
            }
            Op::Unary { ty, .. }
            | Op::Binary { ty, .. }
            | Op::Cmp { ty, .. }
            | Op::Select { ty, .. }
            | Op::Load { ty, .. }
            | Op::Store { ty, .. }
            | Op::MemLoad { ty, .. }
            | Op::MemStore { ty, .. }
            | Op::Addr { ty, .. } => self.register_type(ty),
            // Names and table signatures are concrete in the template.
            Op::MemSize { .. }
            | Op::MemGrow { .. }
            | Op::TableGet { .. }
            | Op::TableSet { .. }
            | Op::TableSize { .. }
            | Op::TableGrow { .. }
            | Op::CallTable { .. } => Ok(()),
            Op::Cast { from, to, .. } => {
                self.register_type(from)?;
                self.register_type(to)
            }
            Op::Bitcast { from, to, .. } => {
                self.register_type(from)?;
                self.register_type(to)?;
                self.check_bitcast(from, to)
            }
            Op::CallIndirect { sig, .. } => self.at(check_signature(sig, self.scope, self.lib)),
            // A native import's signature is concrete in the template, so
            // unchanged. A call to a template, now to the symbol of its
            // instantiation, matched the callee's signature substituted
            // with its arguments, and still does after the caller's
            // substitution (composition) unless an `extern` declaration
            // takes the symbol's name. Any other callee is checked in
            // full: a symbol the template names itself may have matched
            // only generically.
            Op::Call { callee, sig, .. } | Op::FuncAddr { callee, sig } => {
                let from_template = matches!(
                    was,
                    Some(
                        Op::Call {
                            callee: Callee::Template { .. },
                            ..
                        } | Op::FuncAddr {
                            callee: Callee::Template { .. },
                            ..
                        }
                    )
                );
                match callee {
                    Callee::Import(_) => self.at(check_signature(sig, self.scope, self.lib)),
                    Callee::Symbol(name)
                        if from_template && self.lib.extern_symbol(name).is_none() =>
                    {
                        self.at(check_signature(sig, self.scope, self.lib))
                    }
                    _ => self.check_callee(callee, sig),
                }
            }
            // Lowered away by instantiation, so never in an instance it
            // made. The instance check records no definitions: one that
            // reads a register fails here, and the full verifier judges.
            Op::ElemAddr { .. } | Op::FieldAddr { .. } | Op::SizeOf { .. } | Op::AlignOf { .. } => {
                self.check_op(op, pos)
            }
        }
    }

    fn check_block_call(&self, t: &BlockCall, pos: usize) -> Result<(), Error> {
        let k = usize::try_from(t.block.0).unwrap_or(usize::MAX);
        let target = self
            .f
            .blocks
            .get(k)
            .ok_or_else(|| self.err(ErrorKind::NoSuchBlock(t.block.0)))?;
        let params = target.params.iter().map(|(_, t)| t);
        self.check_args(&|| format!("block b{}", t.block.0), params, &t.args, pos)
    }

    fn check_term(&self, term: &Terminator, pos: usize) -> Result<(), Error> {
        match term {
            Terminator::Br(t) => self.check_block_call(t, pos),
            Terminator::CondBr {
                cond,
                then,
                otherwise,
            } => {
                self.expect(*cond, pos, &Type::Bool, "the branch condition")?;
                self.check_block_call(then, pos)?;
                self.check_block_call(otherwise, pos)
            }
            Terminator::Ret(v) => match (v, &self.f.sig.ret) {
                (None, None) => Ok(()),
                (Some(r), Some(t)) => self.expect(*r, pos, t, "the returned value"),
                (None, Some(t)) => Err(self.err(ErrorKind::TypeMismatch {
                    context: "ret",
                    expected: self.show(t),
                    found: "nothing".into(),
                })),
                (Some(_), None) => Err(self.err(ErrorKind::TypeMismatch {
                    context: "ret",
                    expected: "nothing".into(),
                    found: "a value".into(),
                })),
            },
            Terminator::Trap(_) => Ok(()),
        }
    }
}
