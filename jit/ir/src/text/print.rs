//! Prints the IR back in the text form the parser reads.
//!
//! Registers print as `%N` and blocks as `bN`, so the output is canonical:
//! printing what the parser (or the binary decoder) produced and parsing it
//! again gives the same IR.

use std::fmt::{self, Write};

use crate::ir::{
    BinOp, BlockCall, Callee, CmpOp, Function, Item, Library, Linkage, Literal, Op, Reg, Signature,
    SignatureDisplay, Terminator, Type, TypeDisplay, TypeParam, UnOp,
};

/// The text of a constant; floats print in the shortest decimal that reads
/// back to the same bits, or as `float(0x…)` when none does (NaN payloads).
pub fn literal_text(lit: Literal) -> String {
    match lit {
        Literal::Int(v) => v.to_string(),
        Literal::Bool(b) => b.to_string(),
        Literal::Null => "null".into(),
        Literal::Float(bits) => {
            let v = f64::from_bits(bits);
            if v.is_nan() {
                if bits == f64::NAN.to_bits() {
                    "nan".into()
                } else {
                    format!("float({bits:#x})")
                }
            } else if v.is_infinite() {
                if v > 0.0 { "inf".into() } else { "-inf".into() }
            } else {
                format!("{v:?}")
            }
        }
    }
}

fn binop_name(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "add",
        BinOp::Sub => "sub",
        BinOp::Mul => "mul",
        BinOp::Div => "div",
        BinOp::Rem => "rem",
        BinOp::And => "and",
        BinOp::Or => "or",
        BinOp::Xor => "xor",
        BinOp::Shl => "shl",
        BinOp::Shr => "shr",
    }
}

fn cmpop_name(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "eq",
        CmpOp::Ne => "ne",
        CmpOp::Lt => "lt",
        CmpOp::Le => "le",
        CmpOp::Gt => "gt",
        CmpOp::Ge => "ge",
    }
}

struct Printer<'a> {
    out: String,
    params: &'a [TypeParam],
    lib: Option<&'a Library>,
}

impl Printer<'_> {
    fn ty(&mut self, ty: &Type) {
        // Writing into a String cannot fail.
        let _ = write!(
            self.out,
            "{}",
            TypeDisplay {
                ty,
                params: self.params
            }
        );
    }

    fn sig(&mut self, sig: &Signature) {
        let _ = write!(
            self.out,
            "{}",
            SignatureDisplay {
                sig,
                params: self.params
            }
        );
    }

    fn reg(&mut self, r: Reg) {
        let _ = write!(self.out, "%{}", r.0);
    }

    fn regs(&mut self, regs: &[Reg]) {
        self.out.push('(');
        for (k, r) in regs.iter().enumerate() {
            if k > 0 {
                self.out.push_str(", ");
            }
            self.reg(*r);
        }
        self.out.push(')');
    }

    fn index(&mut self, index: Option<Reg>) {
        if let Some(i) = index {
            self.out.push('[');
            self.reg(i);
            self.out.push(']');
        }
    }

    fn callee(&mut self, callee: &Callee) {
        match callee {
            Callee::Symbol(s) => {
                let _ = write!(self.out, "@{s}");
            }
            Callee::Import(s) => {
                let _ = write!(self.out, "native {s}");
            }
            Callee::Template { name, type_args } => {
                let _ = write!(self.out, "{name}");
                if !type_args.is_empty() {
                    self.out.push('<');
                    for (k, t) in type_args.iter().enumerate() {
                        if k > 0 {
                            self.out.push_str(", ");
                        }
                        self.ty(t);
                    }
                    self.out.push('>');
                }
            }
        }
    }

    /// Type then operands, the common shape `ty %a, %b`.
    fn typed(&mut self, word: &str, ty: &Type, regs: &[Reg]) {
        self.out.push_str(word);
        self.out.push(' ');
        self.ty(ty);
        for (k, r) in regs.iter().enumerate() {
            self.out.push_str(if k == 0 { " " } else { ", " });
            self.reg(*r);
        }
    }

    fn op(&mut self, op: &Op) {
        match op {
            Op::Const { ty, value } => {
                self.typed("const", ty, &[]);
                let _ = write!(self.out, " {}", literal_text(*value));
            }
            Op::Unary { op, ty, arg } => {
                self.typed(if *op == UnOp::Neg { "neg" } else { "not" }, ty, &[*arg]);
            }
            Op::Binary { op, ty, lhs, rhs } => self.typed(binop_name(*op), ty, &[*lhs, *rhs]),
            Op::Cmp { op, ty, lhs, rhs } => {
                self.typed(&format!("cmp {}", cmpop_name(*op)), ty, &[*lhs, *rhs]);
            }
            Op::Cast { from, to, arg } | Op::Bitcast { from, to, arg } => {
                let word = if matches!(op, Op::Cast { .. }) {
                    "cast"
                } else {
                    "bitcast"
                };
                self.typed(word, from, &[*arg]);
                self.out.push_str(" to ");
                self.ty(to);
            }
            Op::Select {
                ty,
                cond,
                if_true,
                if_false,
            } => {
                self.typed("select", ty, &[*cond, *if_true, *if_false]);
            }
            Op::Load { ty, addr, index } => {
                self.typed("load", ty, &[*addr]);
                self.index(*index);
            }
            Op::Store {
                ty,
                addr,
                index,
                value,
            } => {
                self.typed("store", ty, &[*value, *addr]);
                self.index(*index);
            }
            Op::ElemAddr { elem, base, index } => self.typed("elem_addr", elem, &[*base, *index]),
            Op::FieldAddr {
                strukt,
                field,
                base,
            } => {
                self.typed(
                    "field_addr",
                    &Type::Struct(Box::new(strukt.clone())),
                    &[*base],
                );
                // The name only when it reads back as this index (the
                // first field of that name; duplicates are a verifier error).
                let name = self
                    .lib
                    .and_then(|l| l.struct_def(&strukt.name))
                    .and_then(|d| {
                        let k = usize::try_from(*field).ok()?;
                        let (n, _) = d.fields.get(k)?;
                        let first = d.fields.iter().position(|(m, _)| m == n)?;
                        (first == k).then(|| n.clone())
                    });
                match name {
                    Some(n) => {
                        let _ = write!(self.out, ", {n}");
                    }
                    None => {
                        let _ = write!(self.out, ", {field}");
                    }
                }
            }
            Op::Addr {
                ty,
                base,
                index,
                scale,
                disp,
            } => {
                self.typed("addr", ty, &[*base]);
                self.out.push_str(", ");
                match index {
                    Some(i) => self.reg(*i),
                    None => self.out.push('_'),
                }
                let _ = write!(self.out, ", {scale}, {disp}");
            }
            Op::SizeOf { ty } => self.typed("size_of", ty, &[]),
            Op::AlignOf { ty } => self.typed("align_of", ty, &[]),
            Op::Call { callee, sig, args } => {
                self.out.push_str("call ");
                self.callee(callee);
                self.regs(args);
                self.out.push_str(" : fn");
                self.sig(sig);
            }
            Op::CallIndirect { sig, target, args } => {
                self.out.push_str("call_indirect ");
                self.reg(*target);
                self.regs(args);
                self.out.push_str(" : fn");
                self.sig(sig);
            }
            Op::FuncAddr { callee, sig } => {
                self.out.push_str("func_addr ");
                self.callee(callee);
                self.out.push_str(" : fn");
                self.sig(sig);
            }
            Op::MemLoad { ty, memory, offset } => {
                self.typed("mem_load", ty, &[]);
                let _ = write!(self.out, " {memory}, ");
                self.reg(*offset);
            }
            Op::MemStore {
                ty,
                memory,
                offset,
                value,
            } => {
                self.typed("mem_store", ty, &[*value]);
                let _ = write!(self.out, ", {memory}, ");
                self.reg(*offset);
            }
            Op::MemSize { memory } => {
                let _ = write!(self.out, "mem_size {memory}");
            }
            Op::TableSize { table } => {
                let _ = write!(self.out, "table_size {table}");
            }
            Op::MemGrow {
                memory: name,
                delta: r,
            }
            | Op::TableGrow {
                table: name,
                delta: r,
            }
            | Op::TableGet {
                table: name,
                index: r,
            } => {
                let word = match op {
                    Op::MemGrow { .. } => "mem_grow",
                    Op::TableGrow { .. } => "table_grow",
                    _ => "table_get",
                };
                let _ = write!(self.out, "{word} {name}, ");
                self.reg(*r);
            }
            Op::TableSet {
                table,
                index,
                value,
            } => {
                let _ = write!(self.out, "table_set {table}, ");
                self.reg(*index);
                self.out.push_str(", ");
                self.reg(*value);
            }
            Op::CallTable {
                table,
                sig,
                index,
                args,
            } => {
                let _ = write!(self.out, "call_table {table}, ");
                self.reg(*index);
                self.regs(args);
                self.out.push_str(" : fn");
                self.sig(sig);
            }
        }
    }

    /// `, initial[, maximum]` of a definition; nothing for an import.
    fn sizes(&mut self, linkage: Linkage, comma: bool) {
        if let Linkage::Define { initial, maximum } = linkage {
            let _ = write!(self.out, "{}{initial}", if comma { ", " } else { " " });
            if let Some(m) = maximum {
                let _ = write!(self.out, ", {m}");
            }
        }
    }

    fn block_call(&mut self, t: &BlockCall) {
        let _ = write!(self.out, "b{}", t.block.0);
        if !t.args.is_empty() {
            self.regs(&t.args);
        }
    }

    fn term(&mut self, term: &Terminator) {
        match term {
            Terminator::Br(t) => {
                self.out.push_str("br ");
                self.block_call(t);
            }
            Terminator::CondBr {
                cond,
                then,
                otherwise,
            } => {
                self.out.push_str("cond_br ");
                self.reg(*cond);
                self.out.push_str(", ");
                self.block_call(then);
                self.out.push_str(", ");
                self.block_call(otherwise);
            }
            Terminator::Ret(None) => self.out.push_str("ret"),
            Terminator::Ret(Some(r)) => {
                self.out.push_str("ret ");
                self.reg(*r);
            }
            Terminator::Trap(code) => {
                let _ = write!(self.out, "trap {code}");
            }
        }
    }

    fn type_params(&mut self, params: &[TypeParam]) {
        if params.is_empty() {
            return;
        }
        self.out.push('<');
        for (k, p) in params.iter().enumerate() {
            if k > 0 {
                self.out.push_str(", ");
            }
            let _ = write!(self.out, "{}: {}", p.name, p.constraint.name());
        }
        self.out.push('>');
    }

    fn function(&mut self, f: &Function) {
        let _ = write!(self.out, "fn {}", f.name);
        self.type_params(&f.type_params);
        self.out.push('(');
        for (k, t) in f.sig.params.iter().enumerate() {
            if k > 0 {
                self.out.push_str(", ");
            }
            let _ = write!(self.out, "%{k}: ");
            self.ty(t);
        }
        self.out.push(')');
        if let Some(r) = &f.sig.ret {
            self.out.push_str(" -> ");
            self.ty(r);
        }
        self.out.push_str(" {\n");
        for (k, b) in f.blocks.iter().enumerate() {
            let _ = write!(self.out, "b{k}");
            if !b.params.is_empty() {
                self.out.push('(');
                for (j, (r, t)) in b.params.iter().enumerate() {
                    if j > 0 {
                        self.out.push_str(", ");
                    }
                    self.reg(*r);
                    self.out.push_str(": ");
                    self.ty(t);
                }
                self.out.push(')');
            }
            self.out.push_str(":\n");
            for inst in &b.insts {
                self.out.push_str("    ");
                if let Some(r) = inst.result {
                    self.reg(r);
                    self.out.push_str(" = ");
                }
                self.op(&inst.op);
                self.out.push('\n');
            }
            self.out.push_str("    ");
            self.term(&b.term);
            self.out.push('\n');
        }
        self.out.push_str("}\n");
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Function(f) => {
                self.params = &[];
                let mut p = Printer {
                    out: std::mem::take(&mut self.out),
                    params: &f.type_params,
                    lib: self.lib,
                };
                p.function(f);
                self.out = p.out;
            }
            Item::Struct(s) => {
                let mut p = Printer {
                    out: std::mem::take(&mut self.out),
                    params: &s.type_params,
                    lib: self.lib,
                };
                let _ = write!(p.out, "struct {}", s.name);
                p.type_params(&s.type_params);
                p.out.push_str(" {\n");
                for (name, t) in &s.fields {
                    let _ = write!(p.out, "    {name}: ");
                    p.ty(t);
                    p.out.push_str(",\n");
                }
                p.out.push_str("}\n");
                self.out = p.out;
            }
            Item::Import(d) => {
                let _ = write!(self.out, "import fn {}", d.name);
                self.sig(&d.sig);
                self.out.push('\n');
            }
            Item::Extern(d) => {
                let _ = write!(self.out, "extern fn @{}", d.name);
                self.sig(&d.sig);
                self.out.push('\n');
            }
            Item::Memory(m) => {
                let import = if m.linkage == Linkage::Import {
                    "import "
                } else {
                    ""
                };
                let _ = write!(self.out, "{import}memory {}", m.name);
                self.sizes(m.linkage, false);
                self.out.push('\n');
            }
            Item::Table(t) => {
                let import = if t.linkage == Linkage::Import {
                    "import "
                } else {
                    ""
                };
                let _ = write!(self.out, "{import}table {} fn", t.name);
                self.sig(&t.sig);
                self.sizes(t.linkage, true);
                self.out.push('\n');
            }
        }
    }
}

/// Prints a whole library, items separated by blank lines.
pub fn print_library(lib: &Library) -> String {
    let mut p = Printer {
        out: String::new(),
        params: &[],
        lib: Some(lib),
    };
    for (k, item) in lib.items().iter().enumerate() {
        if k > 0 {
            p.out.push('\n');
        }
        p.item(item);
    }
    p.out
}

/// Prints one function; `lib` supplies field names for `field_addr`
/// (without it fields print by index, which the parser also reads).
pub fn print_function(f: &Function, lib: Option<&Library>) -> String {
    let mut p = Printer {
        out: String::new(),
        params: &f.type_params,
        lib,
    };
    p.function(f);
    p.out
}

/// Displays a function in the text form (fields by index).
pub struct FunctionDisplay<'a>(pub &'a Function);

impl fmt::Display for FunctionDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print_function(self.0, None))
    }
}
