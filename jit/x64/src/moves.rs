//! Parallel moves: block arguments into block parameters, call arguments
//! into argument registers, parameters out of them. All sources are read
//! as if at once; cycles are broken through r11 or xmm15 and memory to
//! memory copies go through rax or xmm14.

use iced_x86::{Code, Register};

use super::asm::{Asm, SCRATCH_B, XSCRATCH_A, XSCRATCH_B, slot_mem};
use super::inst::{Imm, Ins};
use super::regalloc::Loc;

/// One move of a parallel assignment.
#[derive(Clone, Copy, Debug)]
pub(super) struct Move {
    /// Where the value goes.
    pub dst: Loc,
    /// Where it is now.
    pub src: Loc,
    /// Whether it is a float (xmm class).
    pub float: bool,
}

fn same(a: Loc, b: Loc) -> bool {
    match (a, b) {
        (Loc::Gpr(x), Loc::Gpr(y)) | (Loc::Xmm(x), Loc::Xmm(y)) => x == y,
        (Loc::Stack(x), Loc::Stack(y)) => x == y,
        _ => false,
    }
}

fn emit(asm: &mut Asm, m: Move) {
    match (m.float, m.dst) {
        // Parallel moves run where the flags are dead (before a jump or a
        // call, after a conditional branch has read them), so zero is
        // the zeroing idiom: shorter, and no execution unit.
        (false, Loc::Gpr(r)) if m.src == Loc::Imm(0) => {
            asm.push(Ins::with2(Code::Xor_r64_rm64, r, r));
        }
        (false, Loc::Gpr(r)) => asm.load_gpr(r, m.src),
        (false, Loc::Stack(s)) => match m.src {
            Loc::Gpr(r) => asm.store_gpr(m.dst, r),
            Loc::Imm(v) if let Ok(v) = i32::try_from(v as i64) => {
                asm.push(Ins::with_imm(
                    Code::Mov_rm64_imm32,
                    slot_mem(s),
                    Imm::S32(v),
                ));
            }
            src => {
                asm.load_gpr(Register::RAX, src);
                asm.store_gpr(m.dst, Register::RAX);
            }
        },
        (true, Loc::Xmm(r)) => asm.load_xmm(r, m.src, false),
        (true, Loc::Stack(_)) => {
            let r = asm.xmm(m.src, XSCRATCH_A, false);
            asm.store_xmm(m.dst, r, false);
        }
        _ => {}
    }
}

/// Whether `m` changes anything: its destination is a place and not
/// already its source.
fn needed(m: &Move) -> bool {
    !same(m.dst, m.src) && matches!(m.dst, Loc::Gpr(_) | Loc::Xmm(_) | Loc::Stack(_))
}

/// Emits the move of `src` to `dst`: [`parallel`] of a single move,
/// without a list.
pub(super) fn single(asm: &mut Asm, dst: Loc, src: Loc, float: bool) {
    let m = Move { dst, src, float };
    if needed(&m) {
        emit(asm, m);
    }
}

/// Emits `moves` as one parallel assignment.
pub(super) fn parallel(asm: &mut Asm, moves: &mut Vec<Move>) {
    moves.retain(needed);
    while !moves.is_empty() {
        let ready = (0..moves.len()).find(|&i| {
            let d = moves[i].dst;
            !moves
                .iter()
                .enumerate()
                .any(|(j, m)| j != i && same(m.src, d))
        });
        match ready {
            Some(i) => {
                let m = moves.swap_remove(i);
                emit(asm, m);
            }
            None => {
                // Every destination is still to be read: a cycle. Park the
                // first destination's value in a temporary.
                let d = moves[0].dst;
                let float = moves[0].float;
                let tmp = if float {
                    Loc::Xmm(XSCRATCH_B)
                } else {
                    Loc::Gpr(SCRATCH_B)
                };
                emit(
                    asm,
                    Move {
                        dst: tmp,
                        src: d,
                        float,
                    },
                );
                for m in moves.iter_mut() {
                    if same(m.src, d) {
                        m.src = tmp;
                    }
                }
            }
        }
    }
}
