//! Instructions, blocks and functions of the template IR.
//!
//! A function is a list of basic blocks. Block 0 is the entry; its
//! registers are the function parameters. Every other block may declare
//! parameters, which branches fill (block arguments instead of phi nodes).
//! Virtual registers are assigned exactly once and numbered in definition
//! order: parameters first, then each block's parameters followed by the
//! results of its instructions, block by block. That canonical numbering is
//! checked by the verifier and implied by the binary encoding, so a
//! register's number is also its position in a dense table.

use super::types::{Signature, StructType, Type, TypeParam};

/// A virtual register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reg(pub u32);

/// Index of a block inside its function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockId(pub u32);

/// Unary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    /// Two's-complement negation (wrapping) or IEEE sign flip.
    Neg,
    /// Bitwise complement of an integer, logical not of a `bool`.
    Not,
}

/// Binary operations; both operands and the result share one type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    /// Wrapping or IEEE addition.
    Add,
    /// Wrapping or IEEE subtraction.
    Sub,
    /// Wrapping or IEEE multiplication.
    Mul,
    /// Division: integers truncate toward zero, trap on a zero divisor and
    /// wrap `MIN / -1` to `MIN`; floats follow IEEE.
    Div,
    /// Integer remainder with the sign of the dividend; traps on zero,
    /// `MIN % -1` is 0.
    Rem,
    /// Bitwise (or logical, on `bool`) and.
    And,
    /// Bitwise (or logical, on `bool`) or.
    Or,
    /// Bitwise (or logical, on `bool`) exclusive or.
    Xor,
    /// Left shift; the count is masked by the width minus one.
    Shl,
    /// Right shift, arithmetic for signed types, logical for unsigned ones;
    /// the count is masked by the width minus one.
    Shr,
}

/// Comparisons; the result is a `bool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// Equal (false if either float operand is NaN).
    Eq,
    /// Not equal (true if either float operand is NaN).
    Ne,
    /// Less than, signedness from the type; false on NaN.
    Lt,
    /// Less or equal; false on NaN.
    Le,
    /// Greater than; false on NaN.
    Gt,
    /// Greater or equal; false on NaN.
    Ge,
}

/// The value of a `const` instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Literal {
    /// An integer; converted exactly to the constant's type (an integer
    /// type must hold it, a float type takes the nearest value).
    Int(i128),
    /// A float given by the bits of an `f64`; an `f32` constant takes the
    /// nearest `f32`.
    Float(u64),
    /// `true` or `false`.
    Bool(bool),
    /// The null pointer.
    Null,
}

/// The name of a function template: a free function (`sum`) or a method of
/// a generic struct (`Vec::push`). The default is the empty name of a
/// free function: storage for a name to be filled in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TemplateName {
    /// The struct owning a method, `None` for a free function.
    pub owner: Option<String>,
    /// The function's own name.
    pub name: String,
}

impl TemplateName {
    /// A free function's name.
    pub fn free(name: &str) -> TemplateName {
        TemplateName {
            owner: None,
            name: name.to_owned(),
        }
    }

    /// A method's name.
    pub fn method(owner: &str, name: &str) -> TemplateName {
        TemplateName {
            owner: Some(owner.to_owned()),
            name: name.to_owned(),
        }
    }
}

impl std::str::FromStr for TemplateName {
    type Err = crate::Error;

    /// Reads `name` or `Owner::name`, the form `Display` writes and the
    /// `template` column of `note.sdn` tables holds.
    fn from_str(s: &str) -> Result<TemplateName, crate::Error> {
        let ident = crate::mangle::is_ident;
        let name = match s.split_once("::") {
            Some((owner, name)) if ident(owner) && ident(name) => TemplateName::method(owner, name),
            None if ident(s) => TemplateName::free(s),
            _ => {
                return Err(crate::Error::new(crate::ErrorKind::BadName(format!(
                    "`{s}` is not a template name"
                ))));
            }
        };
        Ok(name)
    }
}

impl std::fmt::Display for TemplateName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.owner {
            Some(owner) => write!(f, "{owner}::{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// What a call or `func_addr` refers to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Callee {
    /// A function template of the same library, with type arguments (which
    /// may mention the caller's parameters). Instantiation turns it into a
    /// [`Callee::Symbol`] naming the mangled instantiation.
    Template {
        /// The template.
        name: TemplateName,
        /// Its type arguments.
        type_args: Vec<Type>,
    },
    /// A concrete symbol resolved by the loader: an instantiation (by its
    /// mangled name) or a function another module exports.
    Symbol(String),
    /// A native function the module imports (`malloc`, `memcpy`, …).
    Import(String),
}

/// An operation; `R` is the register type (names while parsing).
#[derive(Clone, Debug, PartialEq)]
pub enum Op<R = Reg> {
    /// A constant of a register type.
    Const {
        /// Type of the constant.
        ty: Type,
        /// Its value.
        value: Literal,
    },
    /// `neg` or `not`.
    Unary {
        /// The operation.
        op: UnOp,
        /// Operand and result type.
        ty: Type,
        /// Operand.
        arg: R,
    },
    /// Arithmetic, bitwise and shift operations.
    Binary {
        /// The operation.
        op: BinOp,
        /// Operand and result type.
        ty: Type,
        /// Left operand.
        lhs: R,
        /// Right operand (the shift count for shifts).
        rhs: R,
    },
    /// A comparison producing `bool`.
    Cmp {
        /// The comparison.
        op: CmpOp,
        /// Operand type; integer signedness comes from it.
        ty: Type,
        /// Left operand.
        lhs: R,
        /// Right operand.
        rhs: R,
    },
    /// A value conversion (`cast`): int↔int, int↔float, float↔float,
    /// bool→int, pointer↔pointer and pointer↔64-bit integer.
    Cast {
        /// Operand type.
        from: Type,
        /// Result type.
        to: Type,
        /// Operand.
        arg: R,
    },
    /// Reinterprets the bits of a value as another type of the same size.
    Bitcast {
        /// Operand type.
        from: Type,
        /// Result type.
        to: Type,
        /// Operand.
        arg: R,
    },
    /// `cond ? if_true : if_false`.
    Select {
        /// Type of both values and the result.
        ty: Type,
        /// The `bool` condition.
        cond: R,
        /// Value when true.
        if_true: R,
        /// Value when false.
        if_false: R,
    },
    /// Loads `ty` from `addr + index * size_of(ty)`.
    Load {
        /// Loaded type (a register type).
        ty: Type,
        /// Base address.
        addr: R,
        /// Optional `i64` element index.
        index: Option<R>,
    },
    /// Stores `value` of type `ty` at `addr + index * size_of(ty)`.
    Store {
        /// Stored type (a register type).
        ty: Type,
        /// Base address.
        addr: R,
        /// Optional `i64` element index.
        index: Option<R>,
        /// The value stored.
        value: R,
    },
    /// `base + index * size_of(elem)` as a `ptr<elem>`; lowered to
    /// [`Op::Addr`] by instantiation.
    ElemAddr {
        /// Element type (may be a struct).
        elem: Type,
        /// Base pointer.
        base: R,
        /// `i64` index.
        index: R,
    },
    /// Address of a struct field as a pointer to the field's type; lowered
    /// to [`Op::Addr`] by instantiation.
    FieldAddr {
        /// The struct type.
        strukt: StructType,
        /// Field index in declaration order.
        field: u32,
        /// Pointer to the struct.
        base: R,
    },
    /// `base + index * scale + disp` as a pointer of type `ty`: the concrete
    /// addressing form every element and field address becomes.
    Addr {
        /// Result pointer type.
        ty: Type,
        /// Base pointer.
        base: R,
        /// Optional `i64` index.
        index: Option<R>,
        /// Bytes per index step.
        scale: u64,
        /// Constant byte displacement.
        disp: i64,
    },
    /// `size_of<ty>` as an `i64`; lowered to a constant by instantiation.
    SizeOf {
        /// The measured type.
        ty: Type,
    },
    /// `align_of<ty>` as an `i64`; lowered to a constant by instantiation.
    AlignOf {
        /// The measured type.
        ty: Type,
    },
    /// A direct call.
    Call {
        /// The function called.
        callee: Callee,
        /// Its signature at this call site (after the caller's own types).
        sig: Signature,
        /// Arguments.
        args: Vec<R>,
    },
    /// A call through a function pointer.
    CallIndirect {
        /// Signature of the pointed-to function; the pointer has type `fn` of it.
        sig: Signature,
        /// The function pointer.
        target: R,
        /// Arguments.
        args: Vec<R>,
    },
    /// The address of a function as a value of type `fn` of `sig`.
    FuncAddr {
        /// The function.
        callee: Callee,
        /// Its signature.
        sig: Signature,
    },
    /// Loads `ty` from byte `offset` of a shared memory; traps
    /// `OutOfBounds` unless `offset + size_of(ty)` lies within its length.
    MemLoad {
        /// Loaded type (a register type).
        ty: Type,
        /// The memory, by name.
        memory: String,
        /// `i64` byte offset.
        offset: R,
    },
    /// Stores `value` of type `ty` at byte `offset` of a shared memory,
    /// bounds-checked like [`Op::MemLoad`].
    MemStore {
        /// Stored type (a register type).
        ty: Type,
        /// The memory, by name.
        memory: String,
        /// `i64` byte offset.
        offset: R,
        /// The value stored.
        value: R,
    },
    /// The current size of a shared memory in 64 KiB pages, as an `i64`.
    MemSize {
        /// The memory, by name.
        memory: String,
    },
    /// Grows a shared memory by `delta` pages: the old size in pages, or
    /// −1 when `delta` is negative or the maximum would be exceeded.
    MemGrow {
        /// The memory, by name.
        memory: String,
        /// `i64` page count.
        delta: R,
    },
    /// Entry `index` of a table, a value of the table's `fn` type (null
    /// when empty); traps `OutOfBounds` past the table's length.
    TableGet {
        /// The table, by name.
        table: String,
        /// `i64` entry index.
        index: R,
    },
    /// Sets entry `index` of a table, bounds-checked like [`Op::TableGet`].
    TableSet {
        /// The table, by name.
        table: String,
        /// `i64` entry index.
        index: R,
        /// A function pointer of the table's type (null clears the entry).
        value: R,
    },
    /// The current length of a table in entries, as an `i64`.
    TableSize {
        /// The table, by name.
        table: String,
    },
    /// Grows a table by `delta` null entries: the old length, or −1 when
    /// `delta` is negative or the maximum would be exceeded.
    TableGrow {
        /// The table, by name.
        table: String,
        /// `i64` entry count.
        delta: R,
    },
    /// Calls entry `index` of a table: `OutOfBounds` past its length,
    /// `NullPointer` for an empty entry.
    CallTable {
        /// The table, by name.
        table: String,
        /// The table's signature, recorded at the call like [`Op::Call`]'s.
        sig: Signature,
        /// `i64` entry index.
        index: R,
        /// Arguments.
        args: Vec<R>,
    },
}

/// An instruction: an operation and the register it defines, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct Inst<R = Reg> {
    /// Register defined, `None` for `store` and calls returning nothing.
    pub result: Option<R>,
    /// The operation.
    pub op: Op<R>,
}

/// A branch target with the arguments for the block's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockCall<R = Reg, B = BlockId> {
    /// The target block.
    pub block: B,
    /// One argument per block parameter.
    pub args: Vec<R>,
}

/// How a block ends.
#[derive(Clone, Debug, PartialEq)]
pub enum Terminator<R = Reg, B = BlockId> {
    /// Unconditional jump.
    Br(BlockCall<R, B>),
    /// Two-way branch on a `bool`.
    CondBr {
        /// The condition.
        cond: R,
        /// Taken when true.
        then: BlockCall<R, B>,
        /// Taken when false.
        otherwise: BlockCall<R, B>,
    },
    /// Return, with a value unless the function returns nothing.
    Ret(Option<R>),
    /// Stops execution with the given code (an explicit trap).
    Trap(u32),
}

/// A basic block.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// Parameters with their types (empty for the entry block).
    pub params: Vec<(Reg, Type)>,
    /// Instructions in order.
    pub insts: Vec<Inst>,
    /// The terminator.
    pub term: Terminator,
}

/// A function template or, after instantiation, a concrete function.
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    /// Template name; for an instantiation, the mangled symbol as a free name.
    pub name: TemplateName,
    /// Type parameters (empty once concrete).
    pub type_params: Vec<TypeParam>,
    /// Parameter and result types; parameter `i` is register `i`.
    pub sig: Signature,
    /// Blocks; block 0 is the entry.
    pub blocks: Vec<Block>,
}

impl Function {
    /// Number of registers the function defines (one past the highest).
    #[inline]
    pub fn reg_count(&self) -> usize {
        let defined: usize = self
            .blocks
            .iter()
            .map(|b| b.params.len() + b.insts.iter().filter(|i| i.result.is_some()).count())
            .sum();
        self.sig.params.len() + defined
    }

    /// Total number of instructions, terminators excluded.
    pub fn inst_count(&self) -> usize {
        self.blocks.iter().map(|b| b.insts.len()).sum()
    }
}

impl<R> Op<R> {
    /// Calls `f` on every register the operation reads, in operand order.
    #[inline]
    pub fn for_each_use(&self, mut f: impl FnMut(&R)) {
        match self {
            Op::Const { .. }
            | Op::SizeOf { .. }
            | Op::AlignOf { .. }
            | Op::FuncAddr { .. }
            | Op::MemSize { .. }
            | Op::TableSize { .. } => {}
            Op::MemLoad { offset: r, .. }
            | Op::MemGrow { delta: r, .. }
            | Op::TableGet { index: r, .. }
            | Op::TableGrow { delta: r, .. } => f(r),
            Op::MemStore { offset, value, .. } => {
                f(offset);
                f(value);
            }
            Op::TableSet { index, value, .. } => {
                f(index);
                f(value);
            }
            Op::CallTable { index, args, .. } => {
                f(index);
                args.iter().for_each(f);
            }
            Op::Unary { arg, .. } | Op::Cast { arg, .. } | Op::Bitcast { arg, .. } => f(arg),
            Op::Binary { lhs, rhs, .. } | Op::Cmp { lhs, rhs, .. } => {
                f(lhs);
                f(rhs);
            }
            Op::Select {
                cond,
                if_true,
                if_false,
                ..
            } => {
                f(cond);
                f(if_true);
                f(if_false);
            }
            Op::Load { addr, index, .. } => {
                f(addr);
                index.iter().for_each(f);
            }
            Op::Store {
                addr, index, value, ..
            } => {
                f(addr);
                index.iter().for_each(&mut f);
                f(value);
            }
            Op::ElemAddr { base, index, .. } => {
                f(base);
                f(index);
            }
            Op::FieldAddr { base, .. } => f(base),
            Op::Addr { base, index, .. } => {
                f(base);
                index.iter().for_each(f);
            }
            Op::Call { args, .. } => args.iter().for_each(f),
            Op::CallIndirect { target, args, .. } => {
                f(target);
                args.iter().for_each(f);
            }
        }
    }

    /// Rebuilds the operation with every register mapped through `f`.
    ///
    /// # Errors
    ///
    /// The first error `f` returns.
    pub fn map_regs<S, E>(self, mut f: impl FnMut(R) -> Result<S, E>) -> Result<Op<S>, E> {
        let opt = |r: Option<R>, f: &mut dyn FnMut(R) -> Result<S, E>| r.map(f).transpose();
        Ok(match self {
            Op::Const { ty, value } => Op::Const { ty, value },
            Op::Unary { op, ty, arg } => Op::Unary {
                op,
                ty,
                arg: f(arg)?,
            },
            Op::Binary { op, ty, lhs, rhs } => Op::Binary {
                op,
                ty,
                lhs: f(lhs)?,
                rhs: f(rhs)?,
            },
            Op::Cmp { op, ty, lhs, rhs } => Op::Cmp {
                op,
                ty,
                lhs: f(lhs)?,
                rhs: f(rhs)?,
            },
            Op::Cast { from, to, arg } => Op::Cast {
                from,
                to,
                arg: f(arg)?,
            },
            Op::Bitcast { from, to, arg } => Op::Bitcast {
                from,
                to,
                arg: f(arg)?,
            },
            Op::Select {
                ty,
                cond,
                if_true,
                if_false,
            } => Op::Select {
                ty,
                cond: f(cond)?,
                if_true: f(if_true)?,
                if_false: f(if_false)?,
            },
            Op::Load { ty, addr, index } => {
                let addr = f(addr)?;
                Op::Load {
                    ty,
                    addr,
                    index: opt(index, &mut f)?,
                }
            }
            Op::Store {
                ty,
                addr,
                index,
                value,
            } => {
                let addr = f(addr)?;
                let index = opt(index, &mut f)?;
                Op::Store {
                    ty,
                    addr,
                    index,
                    value: f(value)?,
                }
            }
            Op::ElemAddr { elem, base, index } => Op::ElemAddr {
                elem,
                base: f(base)?,
                index: f(index)?,
            },
            Op::FieldAddr {
                strukt,
                field,
                base,
            } => Op::FieldAddr {
                strukt,
                field,
                base: f(base)?,
            },
            Op::Addr {
                ty,
                base,
                index,
                scale,
                disp,
            } => {
                let base = f(base)?;
                Op::Addr {
                    ty,
                    base,
                    index: opt(index, &mut f)?,
                    scale,
                    disp,
                }
            }
            Op::SizeOf { ty } => Op::SizeOf { ty },
            Op::AlignOf { ty } => Op::AlignOf { ty },
            Op::Call { callee, sig, args } => Op::Call {
                callee,
                sig,
                args: args.into_iter().map(f).collect::<Result<_, _>>()?,
            },
            Op::CallIndirect { sig, target, args } => {
                let target = f(target)?;
                let args = args.into_iter().map(f).collect::<Result<_, _>>()?;
                Op::CallIndirect { sig, target, args }
            }
            Op::FuncAddr { callee, sig } => Op::FuncAddr { callee, sig },
            Op::MemLoad { ty, memory, offset } => Op::MemLoad {
                ty,
                memory,
                offset: f(offset)?,
            },
            Op::MemStore {
                ty,
                memory,
                offset,
                value,
            } => {
                let offset = f(offset)?;
                Op::MemStore {
                    ty,
                    memory,
                    offset,
                    value: f(value)?,
                }
            }
            Op::MemSize { memory } => Op::MemSize { memory },
            Op::MemGrow { memory, delta } => Op::MemGrow {
                memory,
                delta: f(delta)?,
            },
            Op::TableGet { table, index } => Op::TableGet {
                table,
                index: f(index)?,
            },
            Op::TableSet {
                table,
                index,
                value,
            } => {
                let index = f(index)?;
                Op::TableSet {
                    table,
                    index,
                    value: f(value)?,
                }
            }
            Op::TableSize { table } => Op::TableSize { table },
            Op::TableGrow { table, delta } => Op::TableGrow {
                table,
                delta: f(delta)?,
            },
            Op::CallTable {
                table,
                sig,
                index,
                args,
            } => {
                let index = f(index)?;
                let args = args.into_iter().map(f).collect::<Result<_, _>>()?;
                Op::CallTable {
                    table,
                    sig,
                    index,
                    args,
                }
            }
        })
    }

    /// Whether the operation works on a shared memory or table (§15 of
    /// the IR's documentation).
    pub fn is_shared(&self) -> bool {
        matches!(
            self,
            Op::MemLoad { .. }
                | Op::MemStore { .. }
                | Op::MemSize { .. }
                | Op::MemGrow { .. }
                | Op::TableGet { .. }
                | Op::TableSet { .. }
                | Op::TableSize { .. }
                | Op::TableGrow { .. }
                | Op::CallTable { .. }
        )
    }

    /// Whether the operation defines a register (every operation except
    /// `store` and calls returning nothing).
    pub fn has_result(&self) -> bool {
        match self {
            Op::Store { .. } | Op::MemStore { .. } | Op::TableSet { .. } => false,
            Op::Call { sig, .. } | Op::CallIndirect { sig, .. } | Op::CallTable { sig, .. } => {
                sig.ret.is_some()
            }
            _ => true,
        }
    }
}

impl<R, B> Terminator<R, B> {
    /// The branch targets of the terminator, in order.
    pub fn targets(&self) -> Vec<&BlockCall<R, B>> {
        match self {
            Terminator::Br(t) => vec![t],
            Terminator::CondBr {
                then, otherwise, ..
            } => vec![then, otherwise],
            Terminator::Ret(_) | Terminator::Trap(_) => Vec::new(),
        }
    }

    /// Calls `f` on every register the terminator reads.
    #[inline]
    pub fn for_each_use(&self, mut f: impl FnMut(&R)) {
        match self {
            Terminator::Br(t) => t.args.iter().for_each(f),
            Terminator::CondBr {
                cond,
                then,
                otherwise,
            } => {
                f(cond);
                then.args.iter().chain(otherwise.args.iter()).for_each(f);
            }
            Terminator::Ret(v) => v.iter().for_each(f),
            Terminator::Trap(_) => {}
        }
    }
}
