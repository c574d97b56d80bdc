//! Instantiation: from a template and concrete type arguments to a
//! concrete, verified function.
//!
//! Type parameters are substituted everywhere, constraints checked, struct
//! layouts computed, and the layout-dependent operations lowered so the
//! backend never needs a layout: `size_of`/`align_of` become constants,
//! `elem_addr` and `field_addr` become [`Op::Addr`] with a byte scale and
//! displacement, and calls to templates become calls to the mangled
//! [`Callee::Symbol`] of the callee's instantiation, which the loader (or an
//! interpreter [`crate::interp::Resolver`]) resolves, instantiating on a
//! miss.

use std::collections::HashSet;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Location};
use crate::ir::{
    Block, Callee, Function, Inst, Library, Literal, Op, StructType, TemplateName, Type,
};
use crate::layout::{layout_of, struct_layout};
use crate::limits;
use crate::mangle::{demangle, mangle};
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
    let symbol = mangle(name, args)?;
    let at = || Location::Item(symbol.clone());
    let template = lib.function(name).ok_or_else(|| {
        Error::new(ErrorKind::Unknown {
            what: "template",
            name: name.to_string(),
        })
        .or_at(at())
    })?;
    check_args(lib, &template.type_params, args, name).map_err(|e| e.or_at(at()))?;
    let mut callees = Callees {
        caller: name,
        symbol: &symbol,
        seen: Vec::new(),
        symbols: Vec::new(),
    };
    let mut blocks = Vec::with_capacity(template.blocks.len());
    for (b, block) in template.blocks.iter().enumerate() {
        let mut insts = Vec::with_capacity(block.insts.len());
        for (k, inst) in block.insts.iter().enumerate() {
            let op = lower(lib, &inst.op, args, &mut callees).map_err(|e| {
                e.or_at(Location::Instruction {
                    function: symbol.clone(),
                    block: u32::try_from(b).unwrap_or(u32::MAX),
                    inst: Some(u32::try_from(k).unwrap_or(u32::MAX)),
                })
            })?;
            insts.push(Inst {
                result: inst.result,
                op,
            });
        }
        let params = block
            .params
            .iter()
            .map(|(r, t)| (*r, t.substitute(args)))
            .collect();
        blocks.push(Block {
            params,
            insts,
            term: block.term.clone(),
        });
    }
    let dependencies = callees.symbols;
    let function = Function {
        name: TemplateName::free(&symbol),
        type_params: Vec::new(),
        sig: template.sig.substitute(args),
        blocks,
    };
    // The template passed the whole verifier when the library did; its
    // instance needs its types checked again, not its control flow.
    let reg_types = if lib.is_verified() {
        verify_instance(&function, template, lib)?
    } else {
        verify_function(&function, lib)?
    };
    Ok(Instance {
        symbol,
        template: name.clone(),
        type_args: args.to_vec(),
        function: Arc::new(function),
        reg_types,
        dependencies,
    })
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
    seen: Vec<(&'t TemplateName, &'t [Type], usize)>,
    /// Mangled names of the instantiations called or taken the address
    /// of, in first-use order, without repetition.
    symbols: Vec<String>,
}

impl<'t> Callees<'t> {
    /// The symbol a template callee becomes, recorded as a dependency.
    fn lower(&mut self, lib: &Library, callee: &'t Callee, args: &[Type]) -> Result<Callee, Error> {
        let Callee::Template { name, type_args } = callee else {
            return Ok(callee.clone());
        };
        let known = self
            .seen
            .iter()
            .find(|(n, a, _)| *n == name && *a == type_args.as_slice());
        if let Some(symbol) = known.and_then(|&(_, _, k)| self.symbols.get(k)) {
            return Ok(Callee::Symbol(symbol.clone()));
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
            let concrete: Vec<Type> = type_args.iter().map(|t| t.substitute(args)).collect();
            let callee = lib.function(name).ok_or_else(|| {
                Error::new(ErrorKind::Unknown {
                    what: "template",
                    name: name.to_string(),
                })
            })?;
            check_args(lib, &callee.type_params, &concrete, name)?;
            mangle(name, &concrete)?
        };
        let k = match self.symbols.iter().position(|s| *s == symbol) {
            Some(k) => k,
            None => {
                self.symbols.push(symbol.clone());
                self.symbols.len() - 1
            }
        };
        self.seen.push((name, type_args, k));
        Ok(Callee::Symbol(symbol))
    }
}

fn size_const(v: u64) -> Op {
    Op::Const {
        ty: Type::I64,
        value: Literal::Int(i128::from(v)),
    }
}

/// Substitutes `args` into one operation and lowers layout-dependent forms.
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
            let strukt = StructType {
                name: strukt.name.clone(),
                args: strukt.args.iter().map(s).collect(),
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
    })
}
