//! The encoder against iced-x86, the reference: every form with every
//! register in each register operand, memory operands over every base,
//! index, scale and boundary displacement, rip-relative targets, and
//! immediates at the ends of their ranges.

use iced_x86::{Code, Encoder, Instruction, MemoryOperand, OpKind, Register};

use super::{Class, FORMS, Form, Immediate, Operands, Writer, encoder_fallbacks, write};
use crate::inst::Ins;

/// Where the instructions are placed (rip-relative operands depend on it).
const IP: u64 = 0x10_0000;

/// An operand of an instruction to build with iced-x86's constructors.
#[derive(Clone, Copy, Debug)]
enum Op {
    R(Register),
    M(MemoryOperand),
    I(i64),
}

/// `code` with `ops`, by iced-x86's checked constructors (which also
/// pick the immediate's operand kind the reference way).
fn build(code: Code, ops: &[Op]) -> Instruction {
    let imm32 = |v: i64| i32::try_from(v).unwrap_or(v as u32 as i32);
    let built = match *ops {
        [] => Ok(Instruction::with(code)),
        [Op::R(a)] => Instruction::with1(code, a),
        [Op::M(a)] => Instruction::with1(code, a),
        [Op::R(a), Op::R(b)] => Instruction::with2(code, a, b),
        [Op::R(a), Op::M(b)] => Instruction::with2(code, a, b),
        [Op::M(a), Op::R(b)] => Instruction::with2(code, a, b),
        [Op::R(a), Op::I(v)] => Instruction::with2(code, a, v),
        [Op::M(a), Op::I(v)] if v > i64::from(i32::MAX) => Instruction::with2(code, a, v as u32),
        [Op::M(a), Op::I(v)] => Instruction::with2(code, a, imm32(v)),
        [Op::R(a), Op::R(b), Op::I(v)] => Instruction::with3(code, a, b, imm32(v)),
        [Op::R(a), Op::M(b), Op::I(v)] => Instruction::with3(code, a, b, imm32(v)),
        _ => panic!("no constructor for {code:?} {ops:?}"),
    };
    built.unwrap_or_else(|e| panic!("{code:?} {ops:?}: {e}"))
}

/// Bytes and displacement offset from iced-x86, `None` when it refuses.
fn reference(ins: &Instruction) -> Option<(Vec<u8>, Option<usize>)> {
    let mut enc = Encoder::new(64);
    enc.encode(ins, IP).ok()?;
    let offsets = enc.get_constant_offsets();
    let disp = offsets
        .has_displacement()
        .then(|| offsets.displacement_offset());
    Some((enc.take_buffer(), disp))
}

/// Bytes and displacement offset from [`write`], `None` when it refuses
/// (or when the instruction record cannot hold the instruction).
fn ours(ins: &Instruction) -> Option<(Vec<u8>, Option<usize>)> {
    let mut out = vec![0xAA; 3];
    let e = write(&Ins::from_iced(ins, IP)?, &mut out)?;
    assert_eq!(out.len(), 3 + e.len, "{ins:?}: length reported");
    assert_eq!(out.get(..3), Some(&[0xAA; 3][..]), "{ins:?}: wrote before");
    Some((out.split_off(3), e.displacement))
}

/// The sixteen registers of `class` (the low bytes for 8 bits: al–bl,
/// spl–dil, r8b–r15b).
fn registers(class: Class) -> Vec<Register> {
    match class {
        Class::Gpr64 => (0..16).map(|n| Register::RAX + n).collect(),
        Class::Gpr32 => (0..16).map(|n| Register::EAX + n).collect(),
        Class::Gpr16 => (0..16).map(|n| Register::AX + n).collect(),
        Class::Gpr8 => (0..4)
            .map(|n| Register::AL + n)
            .chain((0..12).map(|n| Register::SPL + n))
            .collect(),
        Class::Xmm => (0..16).map(|n| Register::XMM0 + n).collect(),
        Class::Mem => Vec::new(),
    }
}

/// Memory operands over every base, no index or every index but rsp,
/// every scale, boundary displacements as disp8-if-it-fits (displacement
/// size 1), without a displacement (size 0) and forced disp32 (size 8);
/// every index and scale without a base; and rip-relative targets around
/// the instruction.
fn memory_operands() -> Vec<MemoryOperand> {
    let disps = [0i64, 1, -1, 127, 128, -128, -129, 0x1234, -0x1234];
    let ends = [i64::from(i32::MAX), i64::from(i32::MIN)];
    let mut out = Vec::new();
    for base in registers(Class::Gpr64) {
        let indexes = std::iter::once(Register::None).chain(
            registers(Class::Gpr64)
                .into_iter()
                .filter(|&r| r != Register::RSP),
        );
        for index in indexes {
            for scale in [1, 2, 4, 8] {
                let m = |disp: i64, size: u32| {
                    MemoryOperand::new(base, index, scale, disp, size, false, Register::None)
                };
                out.extend(disps.iter().chain(&ends).map(|&d| m(d, 1)));
                out.extend([m(0, 0), m(0, 8), m(-129, 8)]);
            }
        }
    }
    // No base: `[index * scale + disp32]`, whatever the displacement size.
    for index in registers(Class::Gpr64)
        .into_iter()
        .filter(|&r| r != Register::RSP)
    {
        for scale in [1, 2, 4, 8] {
            for (disp, size) in [
                (0, 0),
                (0, 1),
                (5, 0),
                (-129, 1),
                (0, 8),
                (i64::from(i32::MIN), 8),
            ] {
                out.push(MemoryOperand::new(
                    Register::None,
                    index,
                    scale,
                    disp,
                    size,
                    false,
                    Register::None,
                ));
            }
        }
    }
    for target in [0i64, 0x100, -0x100, 0x7FFF_0000, -0x7FFF_0000] {
        out.push(MemoryOperand::with_base_displ(
            Register::RIP,
            IP as i64 + target,
        ));
    }
    out
}

/// Immediates at the ends of the range of `kind` and around the imm8
/// boundary where it reaches it.
fn immediates(kind: OpKind) -> Vec<i64> {
    match kind {
        OpKind::Immediate8 => vec![0, 1, 0x7F, 0x80, 0xFF],
        OpKind::Immediate8to32 | OpKind::Immediate8to64 => vec![0, 1, -1, 127, -128],
        OpKind::Immediate32 => vec![0, 1, 127, 128, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF],
        OpKind::Immediate32to64 => vec![
            0,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            i64::from(i32::MIN),
            i64::from(i32::MAX),
        ],
        OpKind::Immediate64 => vec![
            0,
            1,
            -1,
            i64::from(u32::MAX),
            i64::from(u32::MAX) + 1,
            i64::MIN,
            i64::MAX,
            0x1234_5678_9ABC_DEF0,
        ],
        other => panic!("no immediates of kind {other:?}"),
    }
}

/// The operand lists to try for `form`: each register operand over its
/// whole class (pairs of register operands over every pair), the r/m
/// operand over every memory operand with the other operands cycling
/// through their values.
fn operand_lists(form: &Form, memory: &[MemoryOperand]) -> Vec<Vec<Op>> {
    let regs = |c| registers(c).into_iter().map(Op::R).collect::<Vec<_>>();
    let cycle = |values: &[Op], k: usize| values.get(k % values.len().max(1)).copied();
    let mems: Vec<Op> = memory.iter().copied().map(Op::M).collect();
    let mut lists: Vec<Vec<Op>> = match form.operands {
        Operands::None => vec![vec![]],
        Operands::Plus(c) => regs(c).into_iter().map(|r| vec![r]).collect(),
        Operands::Rm(_, m) => regs(m).into_iter().chain(mems).map(|o| vec![o]).collect(),
        Operands::RegRm(r, m) | Operands::RmReg(m, r) => {
            let (rs, ms) = (regs(r), regs(m));
            let mut pairs: Vec<(Op, Op)> = rs
                .iter()
                .flat_map(|&a| ms.iter().map(move |&b| (a, b)))
                .collect();
            pairs.extend(
                mems.iter()
                    .enumerate()
                    .filter_map(|(k, &b)| Some((cycle(&rs, k)?, b))),
            );
            let reg_first = matches!(form.operands, Operands::RegRm(..));
            pairs
                .into_iter()
                .map(|(a, b)| if reg_first { vec![a, b] } else { vec![b, a] })
                .collect()
        }
    };
    match form.immediate {
        Immediate::None => {}
        Immediate::Cl => lists.iter_mut().for_each(|l| l.push(Op::R(Register::CL))),
        Immediate::Byte(kind) | Immediate::Dword(kind) => {
            with_immediates(&mut lists, kind.op_kind());
        }
        Immediate::Qword => with_immediates(&mut lists, OpKind::Immediate64),
    }
    lists
}

/// Every list without memory operands with each immediate of `kind`, and
/// those with one cycling through them.
fn with_immediates(lists: &mut Vec<Vec<Op>>, kind: OpKind) {
    let values = immediates(kind);
    let mut out = Vec::with_capacity(lists.len() * 2);
    for (k, list) in lists.drain(..).enumerate() {
        if list.iter().any(|o| matches!(o, Op::M(_))) {
            let v = values.get(k % values.len()).copied().unwrap_or(0);
            out.push(list.into_iter().chain([Op::I(v)]).collect());
        } else {
            for &v in &values {
                out.push(list.iter().copied().chain([Op::I(v)]).collect());
            }
        }
    }
    *lists = out;
}

#[test]
fn every_form_encodes_as_iced_x86_does() {
    let memory = memory_operands();
    let mut checked = 0usize;
    for (code, form) in FORMS {
        for ops in operand_lists(form, &memory) {
            let ins = build(*code, &ops);
            let want = reference(&ins);
            assert!(
                want.is_some() || ops.iter().any(|o| matches!(o, Op::M(_))),
                "iced-x86 refuses {code:?} {ops:?}"
            );
            assert_eq!(ours(&ins), want, "{code:?} {ops:?}");
            checked += 1;
        }
    }
    // About 100 forms, most with some 10,000 memory operands.
    assert!(checked > 500_000, "only {checked} instructions compared");
}

#[test]
fn displacements_past_i32_and_rip_targets_out_of_reach_are_refused_like_iced_x86() {
    let far = [
        MemoryOperand::with_base_displ(Register::RAX, i64::from(i32::MAX) + 1),
        MemoryOperand::with_base_displ(Register::R13, i64::from(i32::MIN) - 1),
        MemoryOperand::with_base_displ(Register::RIP, IP as i64 + (1 << 32)),
        MemoryOperand::with_base_displ(Register::RIP, IP as i64 - (1 << 32)),
    ];
    for m in far {
        let ins = build(Code::Mov_r64_rm64, &[Op::R(Register::RAX), Op::M(m)]);
        assert_eq!(reference(&ins), None, "{m:?}");
        assert_eq!(ours(&ins), None, "{m:?}");
    }
}

#[test]
fn operands_a_form_does_not_take_are_refused() {
    let rax = Register::RAX;
    let wrong = [
        // A 32-bit register where the form takes 64 bits.
        build(Code::Add_r64_rm64, &[Op::R(Register::EAX), Op::R(rax)]),
        // A register where only memory is allowed.
        Instruction::with2(Code::Lea_r64_m, rax, rax).expect("built"),
        // rsp cannot be an index.
        build(
            Code::Mov_r64_rm64,
            &[
                Op::R(rax),
                Op::M(MemoryOperand::with_base_index(rax, Register::RSP)),
            ],
        ),
        // A shift by a register other than cl.
        Instruction::with2(Code::Shl_rm64_CL, rax, Register::DL).expect("built"),
    ];
    for ins in wrong {
        assert_eq!(reference(&ins), None, "{ins:?}");
        assert_eq!(ours(&ins), None, "{ins:?}");
    }
    // The immediate's kind must be the form's.
    let mut ins = build(Code::Add_rm64_imm8, &[Op::R(rax), Op::I(1)]);
    ins.set_op1_kind(OpKind::Immediate8);
    assert_eq!(ours(&ins), None);
    // High-byte registers are not offered (the backend never uses them).
    let ins = build(
        Code::And_r8_rm8,
        &[Op::R(Register::AH), Op::R(Register::AL)],
    );
    assert_eq!(ours(&ins), None);
}

#[test]
fn an_instruction_without_a_form_goes_to_iced_x86_and_is_counted() {
    let ins = Instruction::with1(Code::Bswap_r64, Register::R9).expect("built");
    assert_eq!(ours(&ins), None);
    let before = encoder_fallbacks();
    let mut w = Writer::new(vec![0x90], false);
    let e = w
        .instruction(&Ins::from_iced(&ins, 1).expect("a record"))
        .expect("encoded");
    // Tests run in parallel: only this one falls back, but count at least.
    assert!(encoder_fallbacks() > before);
    assert_eq!(e.len, 3);
    assert_eq!(w.finish(), [0x90, 0x49, 0x0F, 0xC9]);
}

#[test]
fn the_reference_writer_encodes_everything_with_iced_x86_without_counting() {
    let ins = build(Code::Add_rm64_imm8, &[Op::R(Register::R12), Op::I(-2)]);
    let mut w = Writer::new(Vec::new(), true);
    let e = w
        .instruction(&Ins::from_iced(&ins, 0).expect("a record"))
        .expect("encoded");
    assert_eq!((e.len, e.displacement), (4, None));
    assert_eq!(w.finish(), [0x49, 0x83, 0xC4, 0xFE]);
}

/// `Code::Name` tokens in the backend's sources outside their tests.
fn codes_in_sources() -> Vec<String> {
    let sources = [
        include_str!("../asm.rs"),
        include_str!("../emit.rs"),
        include_str!("../lower.rs"),
        include_str!("../moves.rs"),
        include_str!("../runtime.rs"),
    ];
    let mut names = Vec::new();
    for src in sources {
        let code = src.split("#[cfg(test)]").next().unwrap_or(src);
        for (at, _) in code.match_indices("Code::") {
            let rest = code.get(at + 6..).unwrap_or("");
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            names.extend(rest.get(..end).map(str::to_owned));
        }
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn every_code_the_backend_names_has_a_form() {
    let forms: Vec<String> = FORMS.iter().map(|(c, _)| format!("{c:?}")).collect();
    let names = codes_in_sources();
    assert!(names.len() > 90, "only {} codes found", names.len());
    for name in names {
        assert!(forms.contains(&name), "Code::{name} has no form");
    }
}
