//! Instantiation: from a template and concrete type arguments to a
//! concrete, verified function.
//!
//! Type parameters are substituted everywhere, constraints checked, struct
//! layouts computed, and the layout-dependent operations lowered so the
//! backend never needs a layout: `size_of`/`align_of` become constants,
//! `elem_addr` and `field_addr` become [`Op::Addr`] with a byte scale and
//! displacement, and calls to templates become calls to the mangled
//! [`Callee::Symbol`] of the callee's instantiation, which the loader (or an
//! interpreter `Resolver` of the `jit-interp` crate) resolves, instantiating on a
//! miss.

use std::collections::HashSet;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Location};
use crate::ir::{
    Block, BlockCall, Callee, Function, Inst, Item, Library, Literal, Op, Signature, StructType,
    TemplateName, Terminator, Type, room_for,
};
use crate::layout::{layout_of, struct_layout};
use crate::limits;
use crate::mangle::{demangle, mangle, mangle_into};
use crate::verify::{RegTypes, verify_function, verify_instance};

/// A concrete function made from a template.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// The mangled symbol name (`sum$f64`).
    pub symbol: String,
    /// The template it came from.
    pub template: TemplateName,
    /// The type arguments.
    pub type_args: Vec<Type>,
    /// The concrete function; its name is the symbol, it has no type
    /// parameters and no layout-dependent operations.
    pub function: Arc<Function>,
    /// Type of every register of `function`.
    pub reg_types: RegTypes,
    /// Mangled names of the template instantiations it calls or takes the
    /// address of, in first-use order, without repetition.
    pub dependencies: Vec<String>,
}

/// Instantiates the template `name` of `lib` with `args`.
///
/// # Errors
///
/// [`ErrorKind::Unknown`] for a missing template, the type-argument errors
/// ([`ErrorKind::TypeArgCount`], [`ErrorKind::Constraint`],
/// [`ErrorKind::NotTypeArgument`]), layout errors, and any verifier error of
/// the concrete function (located at the instruction, under the symbol).
pub fn instantiate(lib: &Library, name: &TemplateName, args: &[Type]) -> Result<Instance, Error> {
    instantiate_reusing(lib, name, args, None)
}

/// The checks [`instantiate`] makes before it builds anything, and the
/// instance's symbol: the template exists and verifies (in a library
/// decoded on demand, its first use verifies it), and `args` are type
/// arguments satisfying its constraints. A loader that builds an instance
/// only when it first runs (tiered execution) reports these errors when the
/// name is resolved; what only the built instance can show (a constant out
/// of its substituted type's range, a type nested too deeply after
/// substitution) comes when it is built.
///
/// The symbol is written into `symbol` (emptied first), storage the
/// caller may reuse from one check to the next.
///
/// # Errors
///
/// As [`instantiate`], for those rules.
pub fn check_instantiation(
    lib: &Library,
    name: &TemplateName,
    args: &[Type],
    symbol: &mut String,
) -> Result<(), Error> {
    symbol.clear();
    mangle_into(symbol, name, args)?;
    checked_template(lib, name, args, symbol)?;
    Ok(())
}

/// The template `name` of `lib`, with `args` checked against its
/// constraints, and whether the library vouches for it: a library decoded
/// on demand verifies each template on its first instantiation (and
/// remembers the outcome); a whole library is trusted once
/// `verify_library` accepted it. Errors are located at `symbol`.
fn checked_template<'l>(
    lib: &'l Library,
    name: &TemplateName,
    args: &[Type],
    symbol: &str,
) -> Result<(&'l Function, bool), Error> {
    let at = || Location::Item(symbol.to_owned());
    let unknown = || {
        Error::new(ErrorKind::Unknown {
            what: "template",
            name: name.to_string(),
        })
    };
    // One lookup serves the verification and the template itself.
    let Some(k) = lib.function_index(name) else {
        return Err(if lib.is_lazy() {
            unknown()
        } else {
            unknown().or_at(at())
        });
    };
    let trusted = if lib.is_verified() {
        true
    } else if lib.is_lazy() {
        crate::verify::check_lazy_item(lib, k)?;
        true
    } else {
        false
    };
    let Ok(Item::Function(template)) = lib.item(k) else {
        return Err(unknown().or_at(at()));
    };
    check_args(lib, &template.type_params, args, name).map_err(|e| e.or_at(at()))?;
    Ok((template, trusted))
}

/// [`instantiate`], refilling the storage of `spare`, an instance no
/// longer needed, instead of allocating afresh: its strings, vectors of
/// blocks, instructions, block parameters, branch arguments and register
/// types keep their buffers (a spare whose function is still shared
/// elsewhere lends only what is outside the function). The result is the
/// same instance `instantiate` makes; only where its memory comes from
/// differs. A loader compiling one miss after another hands back each
/// instance once its code is written, so a miss does not allocate, and
/// then free, a few dozen small blocks.
///
/// # Errors
///
/// As [`instantiate`]; the spare's storage is then dropped.
pub fn instantiate_reusing(
    lib: &Library,
    name: &TemplateName,
    args: &[Type],
    spare: Option<Instance>,
) -> Result<Instance, Error> {
    let Storage {
        mut symbol,
        mut template_name,
        mut type_args,
        function,
        reg_types,
        dependencies,
    } = spare.map(Storage::from).unwrap_or_default();
    mangle_into(&mut symbol, name, args)?;
    let (template, trusted) = checked_template(lib, name, args, &symbol)?;
    let Function {
        name: TemplateName {
            name: mut function_name,
            ..
        },
        mut sig,
        blocks,
        ..
    } = function.unwrap_or_else(empty_function);
    let mut callees = Callees {
        caller: name,
        symbol: &symbol,
        seen: Seen::default(),
        symbols: dependencies,
    };
    callees.symbols.clear();
    let blocks = lower_blocks(lib, template, args, &mut callees, blocks)?;
    let dependencies = callees.symbols;
    copy_str(&mut function_name, &symbol);
    template.sig.substitute_into(args, &mut sig);
    let function = Function {
        name: TemplateName {
            owner: None,
            name: function_name,
        },
        type_params: Vec::new(),
        sig,
        blocks,
    };
    // The template passed the whole verifier; its instance needs its
    // types checked again, not its control flow.
    let reg_types = if trusted {
        verify_instance(&function, template, lib, reg_types)?
    } else {
        verify_function(&function, lib)?
    };
    type_args.clear();
    room_for(&mut type_args, args.len());
    type_args.extend_from_slice(args);
    copy_str(&mut template_name.name, &name.name);
    template_name.owner.clone_from(&name.owner);
    Ok(Instance {
        symbol,
        template: template_name,
        type_args,
        function: Arc::new(function),
        reg_types,
        dependencies,
    })
}

/// What an instance no longer needed lends the next instantiation.
struct Storage {
    symbol: String,
    template_name: TemplateName,
    type_args: Vec<Type>,
    /// `None` when the function is still shared.
    function: Option<Function>,
    reg_types: Vec<Type>,
    dependencies: Vec<String>,
}

impl Default for Storage {
    fn default() -> Storage {
        Storage {
            symbol: String::new(),
            template_name: TemplateName::free(""),
            type_args: Vec::new(),
            function: None,
            reg_types: Vec::new(),
            dependencies: Vec::new(),
        }
    }
}

impl From<Instance> for Storage {
    fn from(spare: Instance) -> Storage {
        Storage {
            symbol: spare.symbol,
            template_name: spare.template,
            type_args: spare.type_args,
            function: Arc::try_unwrap(spare.function).ok(),
            reg_types: spare.reg_types.0,
            dependencies: spare.dependencies,
        }
    }
}

fn empty_function() -> Function {
    Function {
        name: TemplateName::free(""),
        type_params: Vec::new(),
        sig: Signature::default(),
        blocks: Vec::new(),
    }
}

/// Makes `out` a copy of `s`, in its buffer when it has one.
fn copy_str(out: &mut String, s: &str) {
    if out.capacity() == 0 {
        *out = s.to_owned();
    } else {
        out.clear();
        out.push_str(s);
    }
}

/// The template's blocks with `args` substituted and layout-dependent
/// operations lowered, written over `blocks` (a spare function's blocks,
/// or none) so that their vectors are refilled rather than allocated.
fn lower_blocks<'t>(
    lib: &Library,
    template: &'t Function,
    args: &[Type],
    callees: &mut Callees<'t>,
    mut blocks: Vec<Block>,
) -> Result<Vec<Block>, Error> {
    room_for(&mut blocks, template.blocks.len());
    for (b, block) in template.blocks.iter().enumerate() {
        if blocks.len() == b {
            blocks.push(Block {
                params: Vec::new(),
                insts: Vec::new(),
                term: Terminator::Ret(None),
            });
        }
        let Some(out) = blocks.get_mut(b) else {
            unreachable!("block {b} was pushed above");
        };
        room_for(&mut out.insts, block.insts.len());
        for (k, inst) in block.insts.iter().enumerate() {
            let lowered = match out.insts.get_mut(k) {
                Some(old) => {
                    old.result = inst.result;
                    lower_over(lib, &inst.op, args, callees, &mut old.op)
                }
                None => lower(lib, &inst.op, args, callees).map(|op| {
                    out.insts.push(Inst {
                        result: inst.result,
                        op,
                    });
                }),
            };
            lowered.map_err(|e| {
                e.or_at(Location::Instruction {
                    function: callees.symbol.to_owned(),
                    block: u32::try_from(b).unwrap_or(u32::MAX),
                    inst: Some(u32::try_from(k).unwrap_or(u32::MAX)),
                })
            })?;
        }
        room_for(&mut out.params, block.params.len());
        for (k, (r, t)) in block.params.iter().enumerate() {
            match out.params.get_mut(k) {
                Some(param) => {
                    param.0 = *r;
                    t.substitute_into(args, &mut param.1);
                }
                None => out.params.push((*r, t.substitute(args))),
            }
        }
        copy_terminator(&mut out.term, &block.term);
    }
    Ok(blocks)
}

/// Makes `out` a copy of `term`, reusing its argument vectors.
fn copy_terminator(out: &mut Terminator, term: &Terminator) {
    fn copy_call(out: &mut BlockCall, call: &BlockCall) {
        out.block = call.block;
        out.args.clone_from(&call.args);
    }
    match (out, term) {
        (Terminator::Br(out), Terminator::Br(call)) => copy_call(out, call),
        (
            Terminator::CondBr {
                cond,
                then,
                otherwise,
            },
            Terminator::CondBr {
                cond: c,
                then: t,
                otherwise: o,
            },
        ) => {
            *cond = *c;
            copy_call(then, t);
            copy_call(otherwise, o);
        }
        (out, term) => *out = term.clone(),
    }
}

/// Instantiates the template a mangled name denotes.
///
/// # Errors
///
/// [`ErrorKind::Demangle`] for a name outside the scheme, then as [`instantiate`].
pub fn instantiate_symbol(lib: &Library, symbol: &str) -> Result<Instance, Error> {
    let (name, args) = demangle(symbol)?;
    instantiate(lib, &name, &args)
}

/// Instantiates `name<args>` and, transitively, every template
/// instantiation it depends on, each once. Chains longer than
/// [`limits::MAX_INSTANTIATION_DEPTH`] (polymorphic recursion such as
/// `f<T>` calling `f<ptr<T>>`) stop with the chain in the error.
///
/// # Errors
///
/// [`ErrorKind::InstantiationDepth`] with the chain of symbols, or the first
/// error of any instantiation.
pub fn instantiate_all(
    lib: &Library,
    name: &TemplateName,
    args: &[Type],
) -> Result<Vec<Instance>, Error> {
    let mut done = HashSet::new();
    let mut out = Vec::new();
    let mut chain = Vec::new();
    visit(lib, name, args, &mut chain, &mut done, &mut out)?;
    Ok(out)
}

fn visit(
    lib: &Library,
    name: &TemplateName,
    args: &[Type],
    chain: &mut Vec<String>,
    done: &mut HashSet<String>,
    out: &mut Vec<Instance>,
) -> Result<(), Error> {
    let symbol = mangle(name, args)?;
    if done.contains(&symbol) {
        return Ok(());
    }
    chain.push(symbol.clone());
    if chain.len() > limits::MAX_INSTANTIATION_DEPTH {
        return Err(Error::new(ErrorKind::InstantiationDepth {
            limit: limits::MAX_INSTANTIATION_DEPTH,
            chain: chain.clone(),
        }));
    }
    done.insert(symbol);
    let instance = instantiate(lib, name, args)?;
    let deps = instance.dependencies.clone();
    out.push(instance);
    for dep in deps {
        let (n, a) = demangle(&dep)?;
        visit(lib, &n, &a, chain, done, out)?;
    }
    chain.pop();
    Ok(())
}

fn check_args(
    lib: &Library,
    params: &[crate::ir::TypeParam],
    args: &[Type],
    name: &dyn std::fmt::Display,
) -> Result<(), Error> {
    for a in args {
        if !a.is_type_argument() {
            return Err(Error::new(ErrorKind::NotTypeArgument(a.to_string())));
        }
    }
    crate::verify::check_type_args(name, params, args, &[], lib)
}

/// The template callees of one instantiation and the symbols they become.
struct Callees<'t> {
    /// The template being instantiated and its instance's symbol.
    caller: &'t TemplateName,
    symbol: &'t str,
    /// Each template callee lowered so far, as written in the template
    /// (name and generic type arguments), with its symbol's index in
    /// `symbols`: a repeated call is neither mangled nor looked up again.
    seen: Seen<'t>,
    /// Mangled names of the instantiations called or taken the address
    /// of, in first-use order, without repetition.
    symbols: Vec<String>,
}

impl<'t> Callees<'t> {
    /// The callee a template callee becomes, recorded as a dependency.
    fn lower(&mut self, lib: &Library, callee: &'t Callee, args: &[Type]) -> Result<Callee, Error> {
        Ok(match self.symbol(lib, callee, args)? {
            Some(symbol) => Callee::Symbol(symbol.to_owned()),
            None => callee.clone(),
        })
    }

    /// [`Callees::lower`] into `out`, keeping the buffer of the symbol
    /// `out` names.
    fn lower_into(
        &mut self,
        lib: &Library,
        callee: &'t Callee,
        args: &[Type],
        out: &mut Callee,
    ) -> Result<(), Error> {
        match (self.symbol(lib, callee, args)?, out) {
            (Some(symbol), Callee::Symbol(out)) => copy_str(out, symbol),
            (Some(symbol), out) => *out = Callee::Symbol(symbol.to_owned()),
            (None, out) => *out = callee.clone(),
        }
        Ok(())
    }

    /// The symbol of the instantiation a template callee names, recorded
    /// as a dependency; `None` for a callee that is not a template.
    fn symbol(
        &mut self,
        lib: &Library,
        callee: &'t Callee,
        args: &[Type],
    ) -> Result<Option<&str>, Error> {
        let Callee::Template { name, type_args } = callee else {
            return Ok(None);
        };
        if let Some(k) = self.seen.find(name, type_args) {
            return Ok(self.symbols.get(k).map(String::as_str));
        }
        // A call to the template itself with its own parameters (plain
        // recursion) is a call to this instance, whose arguments were
        // checked on entry.
        let recursive = name == self.caller
            && type_args.len() == args.len()
            && type_args
                .iter()
                .enumerate()
                .all(|(k, t)| matches!(t, Type::Param(i) if usize::try_from(*i) == Ok(k)));
        let symbol = if recursive {
            self.symbol.to_owned()
        } else {
            let callee = lib.function(name).ok_or_else(|| {
                Error::new(ErrorKind::Unknown {
                    what: "template",
                    name: name.to_string(),
                })
            })?;
            // Templates take few type arguments: substitute them into
            // inline room, not a vector allocated and freed per callee.
            let mut inline = [const { Type::Bool }; INLINE_TYPE_ARGS];
            let spilled: Vec<Type>;
            let concrete = match inline.get_mut(..type_args.len()) {
                Some(room) => {
                    for (slot, t) in room.iter_mut().zip(type_args) {
                        *slot = t.substitute(args);
                    }
                    &*room
                }
                None => {
                    spilled = type_args.iter().map(|t| t.substitute(args)).collect();
                    &spilled[..]
                }
            };
            check_args(lib, &callee.type_params, concrete, name)?;
            mangle(name, concrete)?
        };
        let k = match self.symbols.iter().position(|s| *s == symbol) {
            Some(k) => k,
            None => {
                self.symbols.push(symbol);
                self.symbols.len() - 1
            }
        };
        self.seen.push(name, type_args, k);
        Ok(self.symbols.get(k).map(String::as_str))
    }
}

/// Type arguments of a template callee substituted without allocating.
const INLINE_TYPE_ARGS: usize = 4;

/// Distinct template callees kept inline before [`Seen`] spills to the heap.
const INLINE_CALLEES: usize = 4;

/// The template callees an instantiation has lowered, as written in the
/// template, with the index of each one's symbol. Most templates call a
/// handful of templates, so the first few live inline: a function with
/// calls does not allocate for this table.
#[derive(Default)]
struct Seen<'t> {
    inline: [Option<(&'t TemplateName, &'t [Type], usize)>; INLINE_CALLEES],
    spilled: Vec<(&'t TemplateName, &'t [Type], usize)>,
}

impl<'t> Seen<'t> {
    /// The symbol index of a callee lowered before.
    fn find(&self, name: &TemplateName, type_args: &[Type]) -> Option<usize> {
        self.inline
            .iter()
            .map_while(Option::as_ref)
            .chain(&self.spilled)
            .find(|(n, a, _)| *n == name && *a == type_args)
            .map(|&(_, _, k)| k)
    }

    fn push(&mut self, name: &'t TemplateName, type_args: &'t [Type], k: usize) {
        match self.inline.iter_mut().find(|e| e.is_none()) {
            Some(free) => *free = Some((name, type_args, k)),
            None => self.spilled.push((name, type_args, k)),
        }
    }
}

fn size_const(v: u64) -> Op {
    Op::Const {
        ty: Type::I64,
        value: Literal::Int(i128::from(v)),
    }
}

/// [`lower`] over `out`, an operation of a spare instance: a call over a
/// call keeps the callee's name, argument and signature buffers (and its
/// types' boxes); any other operation is replaced.
fn lower_over<'t>(
    lib: &Library,
    op: &'t Op,
    args: &[Type],
    callees: &mut Callees<'t>,
    out: &mut Op,
) -> Result<(), Error> {
    match (op, out) {
        (
            Op::Call {
                callee,
                sig,
                args: call_args,
            },
            Op::Call {
                callee: out_callee,
                sig: out_sig,
                args: out_args,
            },
        ) => {
            callees.lower_into(lib, callee, args, out_callee)?;
            sig.substitute_into(args, out_sig);
            out_args.clone_from(call_args);
        }
        (op, out) => *out = lower(lib, op, args, callees)?,
    }
    Ok(())
}

/// Substitutes `args` into one operation and lowers layout-dependent forms.
// Inlined into both callers so the operation is built in place rather
// than returned through memory and copied.
#[inline(always)]
fn lower<'t>(
    lib: &Library,
    op: &'t Op,
    args: &[Type],
    callees: &mut Callees<'t>,
) -> Result<Op, Error> {
    let s = |t: &Type| t.substitute(args);
    Ok(match *op {
        Op::Const { ref ty, value } => Op::Const { ty: s(ty), value },
        Op::Unary { op, ref ty, arg } => Op::Unary { op, ty: s(ty), arg },
        Op::Binary {
            op,
            ref ty,
            lhs,
            rhs,
        } => Op::Binary {
            op,
            ty: s(ty),
            lhs,
            rhs,
        },
        Op::Cmp {
            op,
            ref ty,
            lhs,
            rhs,
        } => Op::Cmp {
            op,
            ty: s(ty),
            lhs,
            rhs,
        },
        Op::Cast {
            ref from,
            ref to,
            arg,
        } => Op::Cast {
            from: s(from),
            to: s(to),
            arg,
        },
        Op::Bitcast {
            ref from,
            ref to,
            arg,
        } => Op::Bitcast {
            from: s(from),
            to: s(to),
            arg,
        },
        Op::Select {
            ref ty,
            cond,
            if_true,
            if_false,
        } => Op::Select {
            ty: s(ty),
            cond,
            if_true,
            if_false,
        },
        Op::Load {
            ref ty,
            addr,
            index,
        } => Op::Load {
            ty: s(ty),
            addr,
            index,
        },
        Op::Store {
            ref ty,
            addr,
            index,
            value,
        } => Op::Store {
            ty: s(ty),
            addr,
            index,
            value,
        },
        Op::ElemAddr {
            ref elem,
            base,
            index,
        } => {
            let elem = s(elem);
            let scale = layout_of(lib, &elem)?.size;
            Op::Addr {
                ty: elem.ptr_to(),
                base,
                index: Some(index),
                scale,
                disp: 0,
            }
        }
        Op::FieldAddr {
            ref strukt,
            field,
            base,
        } => {
            let (disp, ty) = field_offset(lib, strukt, field, args)?;
            Op::Addr {
                ty: ty.ptr_to(),
                base,
                index: None,
                scale: 0,
                disp,
            }
        }
        Op::Addr {
            ref ty,
            base,
            index,
            scale,
            disp,
        } => Op::Addr {
            ty: s(ty),
            base,
            index,
            scale,
            disp,
        },
        Op::SizeOf { ref ty } => size_const(layout_of(lib, &s(ty))?.size),
        Op::AlignOf { ref ty } => size_const(layout_of(lib, &s(ty))?.align),
        Op::Call {
            ref callee,
            ref sig,
            args: ref call_args,
        } => Op::Call {
            callee: callees.lower(lib, callee, args)?,
            sig: sig.substitute(args),
            args: call_args.clone(),
        },
        Op::CallIndirect {
            ref sig,
            target,
            args: ref call_args,
        } => Op::CallIndirect {
            sig: sig.substitute(args),
            target,
            args: call_args.clone(),
        },
        Op::FuncAddr {
            ref callee,
            ref sig,
        } => Op::FuncAddr {
            callee: callees.lower(lib, callee, args)?,
            sig: sig.substitute(args),
        },
        Op::MemLoad {
            ref ty,
            ref memory,
            offset,
        } => Op::MemLoad {
            ty: s(ty),
            memory: memory.clone(),
            offset,
        },
        Op::MemStore {
            ref ty,
            ref memory,
            offset,
            value,
        } => Op::MemStore {
            ty: s(ty),
            memory: memory.clone(),
            offset,
            value,
        },
        // Names and table signatures are concrete already.
        Op::MemSize { .. }
        | Op::MemGrow { .. }
        | Op::TableGet { .. }
        | Op::TableSet { .. }
        | Op::TableSize { .. }
        | Op::TableGrow { .. }
        | Op::CallTable { .. } => op.clone(),
    })
}

/// The byte offset and type of field `field` of `strukt` with `args`
/// substituted into it.
fn field_offset(
    lib: &Library,
    strukt: &StructType,
    field: u32,
    args: &[Type],
) -> Result<(i64, Type), Error> {
    let strukt = StructType {
        name: strukt.name.clone(),
        args: strukt.args.iter().map(|t| t.substitute(args)).collect(),
    };
    let layout = struct_layout(lib, &strukt)?;
    let (offset, ty) = usize::try_from(field)
        .ok()
        .and_then(|k| layout.fields.into_iter().nth(k))
        .ok_or_else(|| {
            Error::new(ErrorKind::Unknown {
                what: "field",
                name: format!("{}.{field}", strukt.name),
            })
        })?;
    let disp = i64::try_from(offset)
        .map_err(|_| Error::new(ErrorKind::NotConcrete(strukt.name.clone())))?;
    Ok((disp, ty))
}
