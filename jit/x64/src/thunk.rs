//! The machine code of interpreter thunks, for tiered execution: a real
//! System V function pointer for an instantiation that runs in the
//! interpreter, which reaches compiled code once the instantiation is
//! compiled. The loader decides when to switch; this module only knows
//! the bytes.
//!
//! Every tiered instantiation gets a *stub* of [`STUB_SIZE`] bytes, its
//! stable entry: `mov rax, context; jmp [rax]`. The context is the
//! instantiation's record in the loader, whose first field is the 8-byte
//! *target* the stub jumps through: the shared *interpreter entry* while
//! the instantiation is interpreted, its compiled code after tier-up (one
//! atomic store). rax is free at a call's entry (only variadic callees read
//! al, and no instantiation is variadic), so the interpreter entry finds
//! the context there and compiled code ignores it.
//!
//! The interpreter entry, one per process, stores the six integer and
//! eight float argument registers into a [`ThunkFrame`] on its stack,
//! calls `run(context, frame)` (Rust, `extern "C"`) and returns the result
//! `run` left in the frame, in rax and xmm0: the caller sees an ordinary
//! call.

/// Bytes of one stub (`endbr64; mov rax, imm64; jmp [rax]`).
pub const STUB_SIZE: usize = 16;

/// What the interpreter entry hands to `run`: the argument registers as
/// the caller set them, and room for the result.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ThunkFrame {
    /// rdi, rsi, rdx, rcx, r8, r9.
    pub ints: [u64; 6],
    /// xmm0–xmm7, low 64 bits.
    pub floats: [u64; 8],
    /// What the entry returns in rax.
    pub rax: u64,
    /// What the entry returns in xmm0's low 64 bits.
    pub xmm0: u64,
}

const FRAME_SIZE: u8 = 128;
const _: () = assert!(std::mem::size_of::<ThunkFrame>() == FRAME_SIZE as usize);

/// The stub of one tiered instantiation whose record is at `context`.
///
/// Written as bytes, like the lazy-binding trampoline: a module binding a
/// thousand tiered imports writes a thousand stubs, and its form never
/// varies beyond the address. A unit test compares it with iced-x86.
#[must_use]
pub fn stub(context: u64) -> [u8; STUB_SIZE] {
    let mut code = [0u8; STUB_SIZE];
    code[..4].copy_from_slice(&[0xF3, 0x0F, 0x1E, 0xFA]); // endbr64
    code[4..6].copy_from_slice(&[0x48, 0xB8]); // mov rax, imm64
    code[6..14].copy_from_slice(&context.to_le_bytes());
    code[14..].copy_from_slice(&[0xFF, 0x20]); // jmp qword ptr [rax]
    code
}

/// The interpreter entry (see the module documentation), calling `run`:
/// an `extern "C" fn(context: usize, frame: *mut ThunkFrame)`.
#[must_use]
pub fn interpreter_entry(run: u64) -> Vec<u8> {
    let mut code = Vec::with_capacity(128);
    code.extend_from_slice(&[0xF3, 0x0F, 0x1E, 0xFA]); // endbr64
    // rsp is 8 off 16-byte alignment at entry; rbp restores it and the
    // frame keeps it for the call.
    code.extend_from_slice(&[0x55, 0x48, 0x89, 0xE5]); // push rbp; mov rbp, rsp
    code.extend_from_slice(&[0x48, 0x81, 0xEC, FRAME_SIZE, 0, 0, 0]); // sub rsp, 128
    // rdi, rsi, rdx, rcx, r8, r9 by their numbers.
    for (k, r) in [7u8, 6, 2, 1, 8, 9].into_iter().enumerate() {
        let rex = if r >= 8 { 0x4C } else { 0x48 };
        rsp_operand(&mut code, &[rex, 0x89], r & 7, k as u8 * 8); // mov [rsp+d], r
    }
    for k in 0..8u8 {
        rsp_operand(&mut code, &[0xF2, 0x0F, 0x11], k, 48 + k * 8); // movsd [rsp+d], xmmk
    }
    code.extend_from_slice(&[0x48, 0x89, 0xC7]); // mov rdi, rax
    code.extend_from_slice(&[0x48, 0x89, 0xE6]); // mov rsi, rsp
    code.extend_from_slice(&[0x48, 0xB8]); // mov rax, imm64
    code.extend_from_slice(&run.to_le_bytes());
    code.extend_from_slice(&[0xFF, 0xD0]); // call rax
    rsp_operand(&mut code, &[0x48, 0x8B], 0, 112); // mov rax, [rsp+112]
    rsp_operand(&mut code, &[0xF2, 0x0F, 0x10], 0, 120); // movsd xmm0, [rsp+120]
    code.extend_from_slice(&[0xC9, 0xC3]); // leave; ret
    code
}

/// `opcode` with a ModRM naming register field `reg` and the memory operand
/// `[rsp+disp]` (a SIB byte; no displacement byte when it is 0).
fn rsp_operand(code: &mut Vec<u8>, opcode: &[u8], reg: u8, disp: u8) {
    code.extend_from_slice(opcode);
    if disp == 0 {
        code.extend_from_slice(&[(reg << 3) | 0b100, 0x24]);
    } else {
        code.extend_from_slice(&[0b0100_0000 | (reg << 3) | 0b100, 0x24, disp]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stub_is_what_iced_x86_assembles() {
        use iced_x86::code_asm::{CodeAssembler, qword_ptr, rax};
        let context = 0x1122_3344_5566_7788;
        let mut a = CodeAssembler::new(64).unwrap();
        a.endbr64().unwrap();
        a.mov(rax, context).unwrap();
        a.jmp(qword_ptr(rax)).unwrap();
        assert_eq!(a.assemble(0).unwrap(), stub(context));
    }

    #[test]
    fn the_interpreter_entry_is_what_iced_x86_assembles() {
        use iced_x86::code_asm::{
            CodeAssembler, qword_ptr, r8, r9, rax, rbp, rcx, rdi, rdx, rsi, rsp, xmm0, xmm1, xmm2,
            xmm3, xmm4, xmm5, xmm6, xmm7,
        };
        let run = 0x0102_0304_0506_0708;
        let mut a = CodeAssembler::new(64).unwrap();
        a.endbr64().unwrap();
        a.push(rbp).unwrap();
        a.mov(rbp, rsp).unwrap();
        a.sub(rsp, 128).unwrap();
        for (k, r) in [rdi, rsi, rdx, rcx, r8, r9].into_iter().enumerate() {
            a.mov(qword_ptr(rsp + k as i32 * 8), r).unwrap();
        }
        let xmm = [xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7];
        for (k, x) in xmm.into_iter().enumerate() {
            a.movsd_2(qword_ptr(rsp + 48 + k as i32 * 8), x).unwrap();
        }
        a.mov(rdi, rax).unwrap();
        a.mov(rsi, rsp).unwrap();
        a.mov(rax, run).unwrap();
        a.call(rax).unwrap();
        a.mov(rax, qword_ptr(rsp + 112)).unwrap();
        a.movsd_2(xmm0, qword_ptr(rsp + 120)).unwrap();
        a.leave().unwrap();
        a.ret().unwrap();
        assert_eq!(a.assemble(0).unwrap(), interpreter_entry(run));
    }
}
