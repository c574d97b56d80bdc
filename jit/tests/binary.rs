//! The binary form: round trips (the library and arbitrary functions) and
//! a decoder that meets hostile bytes with typed errors, never a panic.

mod common;

use common::Rng;
use jit::binary::{decode_library, encode_library};
use jit::ir::{
    BinOp, Block, BlockCall, BlockId, Callee, CmpOp, Constraint, Declaration, Function, Inst,
    IntType, Item, Library, Literal, Op, Reg, Signature, StructDef, StructType, TemplateName,
    Terminator, Type, TypeParam, UnOp,
};
use jit::{ErrorKind, Location};
use proptest::prelude::*;

#[test]
fn the_library_round_trips_and_prints_identically() {
    let lib = common::collections();
    let encoded = encode_library(&lib);
    let decoded = decode_library(&encoded.bytes).expect("decodes");
    assert_eq!(decoded.library, lib);
    assert_eq!(decoded.offsets, encoded.offsets);
    let text = jit::text::print_library(&lib);
    assert_eq!(jit::text::print_library(&decoded.library), text);
    // And the printed text parses back to the same library (a fixed point).
    assert_eq!(jit::text::parse_library(&text).expect("reparses"), lib);
    assert_eq!(encode_library(&decoded.library), encoded);
}

#[test]
fn offsets_point_at_each_entry() {
    let lib = common::collections();
    let encoded = encode_library(&lib);
    assert_eq!(encoded.offsets[0], 10, "after magic, version and count");
    for (item, &off) in lib.items().iter().zip(&encoded.offsets) {
        let want = match item {
            Item::Function(_) => 1,
            Item::Struct(_) => 2,
            Item::Import(_) => 3,
            Item::Extern(_) => 4,
            Item::Memory(_) => 5,
            Item::Table(_) => 6,
        };
        assert_eq!(encoded.bytes[off], want, "kind byte of {}", item.name());
    }
}

#[test]
fn every_truncation_is_a_typed_error() {
    let bytes = encode_library(&common::collections()).bytes;
    for cut in 0..bytes.len() {
        let err = decode_library(&bytes[..cut]).expect_err("truncated input must fail");
        match err.location {
            Location::Offset(o) => assert!(o <= cut, "offset {o} past the cut {cut}"),
            other => panic!("no offset for cut {cut}: {other:?}"),
        }
    }
}

#[test]
fn header_errors_are_specific() {
    let good = encode_library(&common::collections()).bytes;
    let mut bad = good.clone();
    bad[3] = b'X';
    let e = decode_library(&bad).expect_err("magic");
    assert_eq!(e.kind, ErrorKind::BadMagic(*b"GTPX"));
    assert_eq!(e.location, Location::Offset(0));
    let mut bad = good.clone();
    bad[4] = 2;
    let e = decode_library(&bad).expect_err("version");
    assert_eq!(e.kind, ErrorKind::UnsupportedVersion(2));
    assert_eq!(e.location, Location::Offset(4));
    let mut bad = good.clone();
    bad[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = decode_library(&bad).expect_err("count");
    assert!(
        matches!(
            e.kind,
            ErrorKind::Limit {
                what: "entry count",
                ..
            }
        ),
        "{e}"
    );
    let mut bad = good.clone();
    bad.push(0);
    let e = decode_library(&bad).expect_err("trailing");
    assert_eq!(e.kind, ErrorKind::TrailingBytes(1));
    assert_eq!(e.location, Location::Offset(good.len()));
    let mut bad = good.clone();
    bad[10] = 9;
    let e = decode_library(&bad).expect_err("kind");
    assert_eq!(
        e.kind,
        ErrorKind::BadTag {
            what: "entry kind",
            tag: 9
        }
    );
    assert_eq!(e.location, Location::Offset(10));
}

/// A section with one entry of `kind` whose payload is `payload`.
fn section(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = b"GTPL".to_vec();
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.push(kind);
    out.push(u8::try_from(payload.len()).expect("short payload"));
    out.extend_from_slice(payload);
    out
}

#[test]
fn hostile_payloads_are_rejected_without_allocating() {
    // An import whose name length is a 10-byte varint beyond 32 bits.
    let e = decode_library(&section(3, &[0xff; 10])).expect_err("varint");
    assert_eq!(e.kind, ErrorKind::VarintOverflow("a declared name"));
    // A struct claiming 1000 fields in a few bytes.
    let e = decode_library(&section(2, &[1, b'S', 0, 0xe8, 0x07])).expect_err("fields");
    assert_eq!(e.kind, ErrorKind::Truncated("field count"));
    // A type nested far deeper than the limit: ptr<ptr<…>>.
    // (import `f` with one parameter of that type and no result)
    let mut payload = vec![1, b'f', 1];
    payload.extend(std::iter::repeat_n(0x0d, 100));
    payload.extend_from_slice(&[0x04, 0]);
    let e = decode_library(&section(3, &payload)).expect_err("depth");
    assert!(
        matches!(
            e.kind,
            ErrorKind::Limit {
                what: "type nesting depth",
                ..
            }
        ),
        "{e}"
    );
    // An entry length running past the end.
    let mut short = section(3, &[1, b'm', 0, 0]);
    short[11] = 200;
    let e = decode_library(&short).expect_err("length");
    assert_eq!(e.kind, ErrorKind::Truncated("an entry"));
    // An entry longer than its content.
    let mut long = section(3, &[1, b'm', 0, 0, 0]);
    long[11] = 5;
    let e = decode_library(&long).expect_err("slack");
    assert_eq!(
        e.kind,
        ErrorKind::EntryLength {
            declared: 5,
            used: 4
        }
    );
    // Invalid UTF-8 in a name.
    let e = decode_library(&section(3, &[1, 0xff, 0, 0])).expect_err("utf-8");
    assert!(matches!(e.kind, ErrorKind::BadName(_)), "{e}");
    // A decodable entry: import m() with no result.
    let ok = decode_library(&section(3, &[1, b'm', 0, 0])).expect("valid");
    assert_eq!(
        ok.library.import("m").map(|d| d.sig.clone()),
        Some(Signature::default())
    );
}

#[test]
fn random_mutations_never_panic() {
    let good = encode_library(&common::collections()).bytes;
    let mut rng = Rng(0x5eed);
    for _ in 0..3000 {
        let mut bytes = good.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() % bytes.len() as u64) as usize;
            bytes[at] = rng.next() as u8;
        }
        // Either outcome is fine; what matters is a typed result.
        if let Ok(d) = decode_library(&bytes) {
            let _ = jit::verify::verify_library(&d.library);
        }
    }
}

// --- arbitrary functions -------------------------------------------------

const NAMES: [&str; 5] = ["a", "sum", "Vec", "x_1", "_T"];

struct Gen(Rng);

impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        self.0.next() % n
    }

    fn name(&mut self) -> String {
        NAMES[self.below(NAMES.len() as u64) as usize].to_owned()
    }

    fn ty(&mut self, depth: u32) -> Type {
        let leaf = depth >= 3;
        match self.below(if leaf { 12 } else { 16 }) {
            k @ 0..=7 => Type::Int(IntType::ALL[k as usize]),
            8 => Type::F32,
            9 => Type::F64,
            10 => Type::Bool,
            11 => Type::RawPtr,
            12 => self.ty(depth + 1).ptr_to(),
            13 => Type::Fn(Box::new(self.sig(depth + 1))),
            14 => Type::Param(self.below(3) as u32),
            _ => Type::Struct(Box::new(self.struct_type(depth + 1))),
        }
    }

    fn struct_type(&mut self, depth: u32) -> StructType {
        let n = self.below(3);
        StructType {
            name: self.name(),
            args: (0..n).map(|_| self.ty(depth)).collect(),
        }
    }

    fn sig(&mut self, depth: u32) -> Signature {
        let n = self.below(4);
        let params = (0..n).map(|_| self.ty(depth)).collect();
        let ret = if self.below(2) == 0 {
            None
        } else {
            Some(self.ty(depth))
        };
        Signature { params, ret }
    }

    fn reg(&mut self, limit: u32) -> Reg {
        Reg(self.below(u64::from(limit) + 3) as u32)
    }

    fn regs(&mut self, limit: u32) -> Vec<Reg> {
        let n = self.below(4);
        (0..n).map(|_| self.reg(limit)).collect()
    }

    fn literal(&mut self) -> Literal {
        match self.below(4) {
            0 => Literal::Int(
                i128::from(self.0.next() as i64) * if self.below(2) == 0 { 1 } else { -1 },
            ),
            1 => Literal::Float(self.0.next()),
            2 => Literal::Bool(self.below(2) == 0),
            _ => Literal::Null,
        }
    }

    fn callee(&mut self) -> Callee {
        match self.below(3) {
            0 => {
                let n = self.below(3);
                let owner = if self.below(2) == 0 {
                    None
                } else {
                    Some(self.name())
                };
                Callee::Template {
                    name: TemplateName {
                        owner,
                        name: self.name(),
                    },
                    type_args: (0..n).map(|_| self.ty(1)).collect(),
                }
            }
            1 => Callee::Symbol(format!("{}$f64", self.name())),
            _ => Callee::Import(self.name()),
        }
    }

    fn op(&mut self, limit: u32) -> Op {
        let r = |g: &mut Gen| g.reg(limit);
        let opt = |g: &mut Gen| {
            if g.below(2) == 0 {
                None
            } else {
                Some(g.reg(limit))
            }
        };
        match self.below(17) {
            0 => Op::Const {
                ty: self.ty(0),
                value: self.literal(),
            },
            1 => Op::Unary {
                op: if self.below(2) == 0 {
                    UnOp::Neg
                } else {
                    UnOp::Not
                },
                ty: self.ty(0),
                arg: r(self),
            },
            2 => Op::Binary {
                op: [BinOp::Add, BinOp::Rem, BinOp::Shr, BinOp::Xor][self.below(4) as usize],
                ty: self.ty(0),
                lhs: r(self),
                rhs: r(self),
            },
            3 => Op::Cmp {
                op: [CmpOp::Eq, CmpOp::Ge][self.below(2) as usize],
                ty: self.ty(0),
                lhs: r(self),
                rhs: r(self),
            },
            4 => Op::Cast {
                from: self.ty(0),
                to: self.ty(0),
                arg: r(self),
            },
            5 => Op::Bitcast {
                from: self.ty(0),
                to: self.ty(0),
                arg: r(self),
            },
            6 => Op::Select {
                ty: self.ty(0),
                cond: r(self),
                if_true: r(self),
                if_false: r(self),
            },
            7 => Op::Load {
                ty: self.ty(0),
                addr: r(self),
                index: opt(self),
            },
            8 => Op::Store {
                ty: self.ty(0),
                addr: r(self),
                index: opt(self),
                value: r(self),
            },
            9 => Op::ElemAddr {
                elem: self.ty(0),
                base: r(self),
                index: r(self),
            },
            10 => Op::FieldAddr {
                strukt: self.struct_type(1),
                field: self.below(5) as u32,
                base: r(self),
            },
            11 => Op::Addr {
                ty: self.ty(0),
                base: r(self),
                index: opt(self),
                scale: self.0.next(),
                disp: self.0.next() as i64,
            },
            12 => Op::SizeOf { ty: self.ty(0) },
            13 => Op::AlignOf { ty: self.ty(0) },
            14 => Op::Call {
                callee: self.callee(),
                sig: self.sig(1),
                args: self.regs(limit),
            },
            15 => Op::CallIndirect {
                sig: self.sig(1),
                target: r(self),
                args: self.regs(limit),
            },
            _ => Op::FuncAddr {
                callee: self.callee(),
                sig: self.sig(1),
            },
        }
    }

    fn target(&mut self, blocks: u64, limit: u32) -> BlockCall {
        BlockCall {
            block: BlockId(self.below(blocks + 1) as u32),
            args: self.regs(limit),
        }
    }

    fn function(&mut self) -> Function {
        let sig = self.sig(0);
        let mut next = sig.params.len() as u32;
        let ntp = self.below(3);
        let constraints = [
            Constraint::Any,
            Constraint::Int,
            Constraint::Float,
            Constraint::Num,
        ];
        let type_params = (0..ntp)
            .map(|k| TypeParam {
                name: format!("T{k}"),
                constraint: constraints[self.below(4) as usize],
            })
            .collect();
        let nblocks = 1 + self.below(4);
        let mut blocks = Vec::new();
        for b in 0..nblocks {
            let np = if b == 0 { 0 } else { self.below(3) };
            let params = (0..np)
                .map(|_| {
                    next += 1;
                    (Reg(next - 1), self.ty(0))
                })
                .collect();
            let ni = self.below(8);
            let mut insts = Vec::new();
            for _ in 0..ni {
                let op = self.op(next);
                let result = op.has_result().then(|| {
                    next += 1;
                    Reg(next - 1)
                });
                insts.push(Inst { result, op });
            }
            let term = match self.below(5) {
                0 => Terminator::Br(self.target(nblocks, next)),
                1 => Terminator::CondBr {
                    cond: self.reg(next),
                    then: self.target(nblocks, next),
                    otherwise: self.target(nblocks, next),
                },
                2 => Terminator::Ret(None),
                3 => Terminator::Ret(Some(self.reg(next))),
                _ => Terminator::Trap(self.0.next() as u32),
            };
            blocks.push(Block {
                params,
                insts,
                term,
            });
        }
        let owner = if self.below(2) == 0 {
            None
        } else {
            Some(self.name())
        };
        Function {
            name: TemplateName {
                owner,
                name: format!("f{}", self.below(1000)),
            },
            type_params,
            sig,
            blocks,
        }
    }

    fn library(&mut self) -> Library {
        let mut items = Vec::new();
        for k in 0..1 + self.below(4) {
            items.push(match self.below(4) {
                0 => {
                    let mut f = self.function();
                    f.name.name = format!("f{k}");
                    Item::Function(f)
                }
                1 => {
                    let n = self.below(4);
                    Item::Struct(StructDef {
                        name: format!("S{k}"),
                        type_params: vec![TypeParam {
                            name: "T".into(),
                            constraint: Constraint::Any,
                        }],
                        fields: (0..n).map(|j| (format!("f{j}"), self.ty(0))).collect(),
                    })
                }
                2 => Item::Import(Declaration {
                    name: format!("i{k}"),
                    sig: self.sig(0),
                }),
                _ => Item::Extern(Declaration {
                    name: format!("e{k}$x"),
                    sig: self.sig(0),
                }),
            });
        }
        Library::new(items).expect("distinct names")
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_libraries_round_trip(seed in any::<u64>()) {
        let lib = Gen(Rng(seed | 1)).library();
        let encoded = encode_library(&lib);
        let decoded = decode_library(&encoded.bytes).expect("decodes what was encoded");
        prop_assert_eq!(&decoded.library, &lib);
        prop_assert_eq!(decoded.offsets, encoded.offsets);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = b"GTPL\x01\x00\x01\x00\x00\x00".to_vec();
        bytes.extend_from_slice(&tail);
        if let Ok(d) = decode_library(&bytes) {
            let _ = jit::verify::verify_library(&d.library);
        }
    }
}

#[test]
fn items_are_found_by_their_entry_offset() {
    let lib = common::collections();
    let encoded = encode_library(&lib);
    let decoded = decode_library(&encoded.bytes).expect("decodes");
    for (item, &off) in lib.items().iter().zip(&encoded.offsets) {
        assert_eq!(decoded.item_at(off), Some(item));
        assert_eq!(
            decoded.item_at(off + 1),
            None,
            "inside an entry is not an entry"
        );
    }
    assert_eq!(decoded.item_at(0), None);
    assert_eq!(decoded.item_at(encoded.bytes.len()), None);
}
