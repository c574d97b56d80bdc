//! Writes a library in the binary form.

use super::{BINOPS, CMPOPS, CONSTRAINTS, MAGIC, VERSION, kind, misc_tag, op_tag, type_tag};
use crate::ir::{
    BlockCall, Callee, Function, IntType, Item, Library, Linkage, Literal, Op, Reg, Signature,
    StructDef, StructType, Terminator, Type, TypeParam, UnOp,
};

/// A library in binary form with the offset of each entry, which an SMF
/// writer stores as the template symbols' `template_offset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedLibrary {
    /// The whole section payload, from `GTPL` on.
    pub bytes: Vec<u8>,
    /// Offset of each entry (its kind byte) from the start of `bytes`, in
    /// item order.
    pub offsets: Vec<usize>,
}

/// Encodes every item of `lib`.
pub fn encode_library(lib: &Library) -> EncodedLibrary {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    let count = u32::try_from(lib.items().len()).unwrap_or(u32::MAX);
    bytes.extend_from_slice(&count.to_le_bytes());
    let mut offsets = Vec::with_capacity(lib.items().len());
    for item in lib.items() {
        offsets.push(bytes.len());
        let mut w = Writer(Vec::new());
        let k = match item {
            Item::Function(f) => {
                w.function(f);
                kind::FUNCTION
            }
            Item::Struct(s) => {
                w.struct_def(s);
                kind::STRUCT
            }
            Item::Import(d) => {
                w.str(&d.name);
                w.sig(&d.sig);
                kind::IMPORT
            }
            Item::Extern(d) => {
                w.str(&d.name);
                w.sig(&d.sig);
                kind::EXTERN
            }
            Item::Memory(m) => {
                w.str(&m.name);
                w.linkage(m.linkage);
                kind::MEMORY
            }
            Item::Table(t) => {
                w.str(&t.name);
                w.sig(&t.sig);
                w.linkage(t.linkage);
                kind::TABLE
            }
        };
        bytes.push(k);
        let mut len = Writer(Vec::new());
        len.uleb(w.0.len() as u128);
        bytes.extend_from_slice(&len.0);
        bytes.extend_from_slice(&w.0);
    }
    EncodedLibrary { bytes, offsets }
}

struct Writer(Vec<u8>);

impl Writer {
    fn byte(&mut self, b: u8) {
        self.0.push(b);
    }

    fn uleb(&mut self, mut v: u128) {
        loop {
            let low = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(low);
                return;
            }
            self.0.push(low | 0x80);
        }
    }

    fn count(&mut self, n: usize) {
        self.uleb(n as u128);
    }

    /// Zigzag: 0, -1, 1, -2, … map to 0, 1, 2, 3, …
    fn sleb(&mut self, v: i128) {
        self.uleb(((v << 1) ^ (v >> 127)) as u128);
    }

    fn str(&mut self, s: &str) {
        self.count(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn reg(&mut self, r: Reg) {
        self.uleb(u128::from(r.0));
    }

    fn opt_reg(&mut self, r: Option<Reg>) {
        self.uleb(r.map_or(0, |r| u128::from(r.0) + 1));
    }

    fn regs(&mut self, regs: &[Reg]) {
        self.count(regs.len());
        regs.iter().for_each(|r| self.reg(*r));
    }

    fn ty(&mut self, t: &Type) {
        match t {
            Type::Int(i) => self.byte(match i {
                IntType::I8 => type_tag::I8,
                IntType::I16 => type_tag::I16,
                IntType::I32 => type_tag::I32,
                IntType::I64 => type_tag::I64,
                IntType::U8 => type_tag::U8,
                IntType::U16 => type_tag::U16,
                IntType::U32 => type_tag::U32,
                IntType::U64 => type_tag::U64,
            }),
            Type::F32 => self.byte(type_tag::F32),
            Type::F64 => self.byte(type_tag::F64),
            Type::Bool => self.byte(type_tag::BOOL),
            Type::RawPtr => self.byte(type_tag::RAWPTR),
            Type::Ptr(inner) => {
                self.byte(type_tag::PTR);
                self.ty(inner);
            }
            Type::Fn(sig) => {
                self.byte(type_tag::FN);
                self.sig(sig);
            }
            Type::Param(i) => {
                self.byte(type_tag::PARAM);
                self.uleb(u128::from(*i));
            }
            Type::Struct(s) => {
                self.byte(type_tag::STRUCT);
                self.struct_type(s);
            }
        }
    }

    fn struct_type(&mut self, s: &StructType) {
        self.str(&s.name);
        self.types(&s.args);
    }

    fn types(&mut self, types: &[Type]) {
        self.count(types.len());
        types.iter().for_each(|t| self.ty(t));
    }

    fn sig(&mut self, sig: &Signature) {
        self.types(&sig.params);
        match &sig.ret {
            None => self.byte(0),
            Some(t) => {
                self.byte(1);
                self.ty(t);
            }
        }
    }

    fn type_params(&mut self, params: &[TypeParam]) {
        self.count(params.len());
        for p in params {
            self.str(&p.name);
            let c = CONSTRAINTS
                .iter()
                .position(|c| *c == p.constraint)
                .unwrap_or(0);
            self.byte(c as u8);
        }
    }

    fn literal(&mut self, lit: Literal) {
        match lit {
            Literal::Int(v) => {
                self.byte(misc_tag::LIT_INT);
                self.sleb(v);
            }
            Literal::Float(bits) => {
                self.byte(misc_tag::LIT_FLOAT);
                self.0.extend_from_slice(&bits.to_le_bytes());
            }
            Literal::Bool(false) => self.byte(misc_tag::LIT_FALSE),
            Literal::Bool(true) => self.byte(misc_tag::LIT_TRUE),
            Literal::Null => self.byte(misc_tag::LIT_NULL),
        }
    }

    fn callee(&mut self, c: &Callee) {
        match c {
            Callee::Template { name, type_args } => {
                self.byte(misc_tag::CALLEE_TEMPLATE);
                self.str(name.owner.as_deref().unwrap_or(""));
                self.str(&name.name);
                self.types(type_args);
            }
            Callee::Symbol(s) => {
                self.byte(misc_tag::CALLEE_SYMBOL);
                self.str(s);
            }
            Callee::Import(s) => {
                self.byte(misc_tag::CALLEE_IMPORT);
                self.str(s);
            }
        }
    }

    fn op(&mut self, op: &Op) {
        match op {
            Op::Const { ty, value } => {
                self.byte(op_tag::CONST);
                self.ty(ty);
                self.literal(*value);
            }
            Op::Unary { op, ty, arg } => {
                self.byte(if *op == UnOp::Neg {
                    op_tag::NEG
                } else {
                    op_tag::NOT
                });
                self.ty(ty);
                self.reg(*arg);
            }
            Op::Binary { op, ty, lhs, rhs } => {
                let k = BINOPS.iter().position(|b| b == op).unwrap_or(0);
                self.byte(op_tag::BINARY + k as u8);
                self.ty(ty);
                self.reg(*lhs);
                self.reg(*rhs);
            }
            Op::Cmp { op, ty, lhs, rhs } => {
                let k = CMPOPS.iter().position(|c| c == op).unwrap_or(0);
                self.byte(op_tag::CMP + k as u8);
                self.ty(ty);
                self.reg(*lhs);
                self.reg(*rhs);
            }
            Op::Cast { from, to, arg } | Op::Bitcast { from, to, arg } => {
                self.byte(if matches!(op, Op::Cast { .. }) {
                    op_tag::CAST
                } else {
                    op_tag::BITCAST
                });
                self.ty(from);
                self.ty(to);
                self.reg(*arg);
            }
            Op::Select {
                ty,
                cond,
                if_true,
                if_false,
            } => {
                self.byte(op_tag::SELECT);
                self.ty(ty);
                self.reg(*cond);
                self.reg(*if_true);
                self.reg(*if_false);
            }
            Op::Load { ty, addr, index } => {
                self.byte(op_tag::LOAD);
                self.ty(ty);
                self.reg(*addr);
                self.opt_reg(*index);
            }
            Op::Store {
                ty,
                addr,
                index,
                value,
            } => {
                self.byte(op_tag::STORE);
                self.ty(ty);
                self.reg(*addr);
                self.opt_reg(*index);
                self.reg(*value);
            }
            Op::ElemAddr { elem, base, index } => {
                self.byte(op_tag::ELEM_ADDR);
                self.ty(elem);
                self.reg(*base);
                self.reg(*index);
            }
            Op::FieldAddr {
                strukt,
                field,
                base,
            } => {
                self.byte(op_tag::FIELD_ADDR);
                self.struct_type(strukt);
                self.uleb(u128::from(*field));
                self.reg(*base);
            }
            Op::Addr {
                ty,
                base,
                index,
                scale,
                disp,
            } => {
                self.byte(op_tag::ADDR);
                self.ty(ty);
                self.reg(*base);
                self.opt_reg(*index);
                self.uleb(u128::from(*scale));
                self.sleb(i128::from(*disp));
            }
            Op::SizeOf { ty } => {
                self.byte(op_tag::SIZE_OF);
                self.ty(ty);
            }
            Op::AlignOf { ty } => {
                self.byte(op_tag::ALIGN_OF);
                self.ty(ty);
            }
            Op::Call { callee, sig, args } => {
                self.byte(op_tag::CALL);
                self.callee(callee);
                self.sig(sig);
                self.regs(args);
            }
            Op::CallIndirect { sig, target, args } => {
                self.byte(op_tag::CALL_INDIRECT);
                self.sig(sig);
                self.reg(*target);
                self.regs(args);
            }
            Op::FuncAddr { callee, sig } => {
                self.byte(op_tag::FUNC_ADDR);
                self.callee(callee);
                self.sig(sig);
            }
            Op::MemLoad { ty, memory, offset } => {
                self.byte(op_tag::MEM_LOAD);
                self.ty(ty);
                self.str(memory);
                self.reg(*offset);
            }
            Op::MemStore {
                ty,
                memory,
                offset,
                value,
            } => {
                self.byte(op_tag::MEM_STORE);
                self.ty(ty);
                self.str(memory);
                self.reg(*offset);
                self.reg(*value);
            }
            Op::MemSize { memory } => {
                self.byte(op_tag::MEM_SIZE);
                self.str(memory);
            }
            Op::MemGrow { memory, delta } => {
                self.byte(op_tag::MEM_GROW);
                self.str(memory);
                self.reg(*delta);
            }
            Op::TableGet { table, index } => {
                self.byte(op_tag::TABLE_GET);
                self.str(table);
                self.reg(*index);
            }
            Op::TableSet {
                table,
                index,
                value,
            } => {
                self.byte(op_tag::TABLE_SET);
                self.str(table);
                self.reg(*index);
                self.reg(*value);
            }
            Op::TableSize { table } => {
                self.byte(op_tag::TABLE_SIZE);
                self.str(table);
            }
            Op::TableGrow { table, delta } => {
                self.byte(op_tag::TABLE_GROW);
                self.str(table);
                self.reg(*delta);
            }
            Op::CallTable {
                table,
                sig,
                index,
                args,
            } => {
                self.byte(op_tag::CALL_TABLE);
                self.str(table);
                self.sig(sig);
                self.reg(*index);
                self.regs(args);
            }
        }
    }

    fn linkage(&mut self, linkage: Linkage) {
        match linkage {
            Linkage::Import => self.byte(misc_tag::LINK_IMPORT),
            Linkage::Define {
                initial,
                maximum: None,
            } => {
                self.byte(misc_tag::LINK_DEFINE);
                self.uleb(u128::from(initial));
            }
            Linkage::Define {
                initial,
                maximum: Some(m),
            } => {
                self.byte(misc_tag::LINK_DEFINE_MAX);
                self.uleb(u128::from(initial));
                self.uleb(u128::from(m));
            }
        }
    }

    fn block_call(&mut self, t: &BlockCall) {
        self.uleb(u128::from(t.block.0));
        self.regs(&t.args);
    }

    fn term(&mut self, t: &Terminator) {
        match t {
            Terminator::Br(t) => {
                self.byte(misc_tag::BR);
                self.block_call(t);
            }
            Terminator::CondBr {
                cond,
                then,
                otherwise,
            } => {
                self.byte(misc_tag::COND_BR);
                self.reg(*cond);
                self.block_call(then);
                self.block_call(otherwise);
            }
            Terminator::Ret(None) => self.byte(misc_tag::RET),
            Terminator::Ret(Some(r)) => {
                self.byte(misc_tag::RET_VALUE);
                self.reg(*r);
            }
            Terminator::Trap(code) => {
                self.byte(misc_tag::TRAP);
                self.uleb(u128::from(*code));
            }
        }
    }

    fn function(&mut self, f: &Function) {
        self.str(&f.name.name);
        self.str(f.name.owner.as_deref().unwrap_or(""));
        self.type_params(&f.type_params);
        self.sig(&f.sig);
        self.count(f.blocks.len());
        for b in &f.blocks {
            self.count(b.params.len());
            b.params.iter().for_each(|(_, t)| self.ty(t));
            self.count(b.insts.len());
            b.insts.iter().for_each(|i| self.op(&i.op));
            self.term(&b.term);
        }
    }

    fn struct_def(&mut self, s: &StructDef) {
        self.str(&s.name);
        self.type_params(&s.type_params);
        self.count(s.fields.len());
        for (name, t) in &s.fields {
            self.str(name);
            self.ty(t);
        }
    }
}
