//! The machine code of lazy binding: the resolver trampoline and each
//! import's PLT entry and binding stub. The loader decides what is bound
//! and when; this module only knows the bytes.
//!
//! Each lazily bound import gets an entry of [`ENTRY_SIZE`] bytes in its
//! module's code:
//! - a PLT entry, `jmp [rip+slot]`, which the import's `plt32` call sites
//!   call (its `gotpcrel` sites use the slot directly);
//! - at [`STUB_OFFSET`], a binding stub, `mov r11, descriptor; jmp
//!   [rip+0]` followed by the trampoline's address, where the slot points
//!   until the import is bound.
//!
//! The resolver trampoline, one per loader, saves every register an
//! argument may be in (rdi, rsi, rdx, rcx, r8, r9, rax for the vector
//! count of variadic calls, r10, and xmm0–xmm7 — the whole ymm registers
//! when the CPU has AVX), aligns the stack, calls the binder with the
//! descriptor from r11 as its only argument, restores everything and jumps
//! to the address the binder returned: the original call continues as if
//! it had gone there directly, and its return comes back to the call site.

/// Bytes of one lazily bound import in code: the PLT entry (6 bytes, padded
/// to 8) and the binding stub (24 bytes).
pub const ENTRY_SIZE: usize = 32;
/// Offset of the binding stub inside an entry.
pub const STUB_OFFSET: usize = 8;

/// Assembles the resolver trampoline (see the module documentation) that
/// calls `binder`, an `extern "C" fn(descriptor: usize) -> usize` returning
/// where the call continues. `avx` saves the whole ymm registers.
///
/// The trampoline is written as its bytes: its form never varies beyond
/// the binder's address and the vector width, and assembling it with
/// iced-x86 would build iced-x86's encoder tables, the largest cost of a
/// fresh process's first load, in every process that binds lazily. A unit
/// test compares the bytes with iced-x86's assembly of the same code.
pub fn resolver_trampoline(avx: bool, binder: u64) -> Vec<u8> {
    // The argument registers saved: rdi, rsi, rdx, rcx, r8, r9, rax (the
    // vector count of variadic calls) and r10, by their numbers.
    const SAVED: [u8; 8] = [7, 6, 2, 1, 8, 9, 0, 10];
    let width: u32 = if avx { 32 } else { 16 };
    let area = width * 8;
    let mut code = Vec::with_capacity(160);
    code.extend_from_slice(&[0xF3, 0x0F, 0x1E, 0xFA]); // endbr64
    // On entry rsp is 8 off 16-byte alignment (the caller's return address);
    // rbp brings it back, and 8 pushes and the save area keep it.
    code.extend_from_slice(&[0x55, 0x48, 0x89, 0xE5]); // push rbp; mov rbp, rsp
    for r in SAVED {
        push_pop(&mut code, 0x50, r);
    }
    code.extend_from_slice(&[0x48, 0x81, 0xEC]); // sub rsp, imm32
    code.extend_from_slice(&area.to_le_bytes());
    for (k, disp) in (0..8u8).zip((0..).step_by(width as usize)) {
        vector_slot(&mut code, avx, 0x7F, k, disp); // store
    }
    code.extend_from_slice(&[0x4C, 0x89, 0xDF]); // mov rdi, r11
    code.extend_from_slice(&[0x48, 0xB8]); // mov rax, imm64
    code.extend_from_slice(&binder.to_le_bytes());
    code.extend_from_slice(&[0xFF, 0xD0]); // call rax
    code.extend_from_slice(&[0x49, 0x89, 0xC3]); // mov r11, rax
    for (k, disp) in (0..8u8).zip((0..).step_by(width as usize)) {
        vector_slot(&mut code, avx, 0x6F, k, disp); // load
    }
    code.extend_from_slice(&[0x48, 0x81, 0xC4]); // add rsp, imm32
    code.extend_from_slice(&area.to_le_bytes());
    for r in SAVED.into_iter().rev() {
        push_pop(&mut code, 0x58, r);
    }
    code.push(0x5D); // pop rbp
    code.extend_from_slice(&[0x41, 0xFF, 0xE3]); // jmp r11
    code
}

/// `push r64` (`opcode` 0x50) or `pop r64` (0x58) of register number `r`.
fn push_pop(code: &mut Vec<u8>, opcode: u8, r: u8) {
    if r >= 8 {
        code.push(0x41);
    }
    code.push(opcode + (r & 7));
}

/// `movdqu [rsp + disp], xmmK` (`opcode` 0x7F) or `movdqu xmmK, [rsp +
/// disp]` (0x6F), or with `avx` the `vmovdqu` of ymmK (VEX.256.F3.0F);
/// `k` is below 8 and `disp` below 256, so no REX or VEX.R bit and an
/// 8-bit displacement (none for 0).
fn vector_slot(code: &mut Vec<u8>, avx: bool, opcode: u8, k: u8, disp: u32) {
    if avx {
        code.extend_from_slice(&[0xC5, 0xFE, opcode]);
    } else {
        code.extend_from_slice(&[0xF3, 0x0F, opcode]);
    }
    let reg = (k & 7) << 3;
    match u8::try_from(disp) {
        Ok(0) => code.extend_from_slice(&[reg | 0x04, 0x24]),
        Ok(d) if d < 0x80 => code.extend_from_slice(&[0x40 | reg | 0x04, 0x24, d]),
        _ => {
            code.extend_from_slice(&[0x80 | reg | 0x04, 0x24]);
            code.extend_from_slice(&disp.to_le_bytes());
        }
    }
}

/// The PLT entry and binding stub of one import, for an entry placed at
/// `entry` whose slot is at `slot`; the stub hands `descriptor` to the
/// trampoline at `trampoline`. `None` when the slot is out of `rel32`
/// reach of the entry.
pub fn entry(entry: u64, slot: u64, descriptor: u64, trampoline: u64) -> Option<[u8; ENTRY_SIZE]> {
    let mut bytes = [0xCCu8; ENTRY_SIZE];
    // jmp [rip + slot]: the displacement counts from the end of the 6 bytes.
    let displacement = i32::try_from(i128::from(slot) - i128::from(entry) - 6).ok()?;
    let (plt, stub) = bytes.split_at_mut(STUB_OFFSET);
    plt[..2].copy_from_slice(&[0xFF, 0x25]);
    plt[2..6].copy_from_slice(&displacement.to_le_bytes());
    // mov r11, descriptor; jmp [rip + 0]; the trampoline's address.
    stub[..2].copy_from_slice(&[0x49, 0xBB]);
    stub[2..10].copy_from_slice(&descriptor.to_le_bytes());
    stub[10..16].copy_from_slice(&[0xFF, 0x25, 0, 0, 0, 0]);
    stub[16..24].copy_from_slice(&trampoline.to_le_bytes());
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions, Mnemonic, Register};

    fn mnemonics(code: &[u8]) -> Vec<Mnemonic> {
        Decoder::with_ip(64, code, 0, DecoderOptions::NONE)
            .into_iter()
            .map(|i| i.mnemonic())
            .collect()
    }

    /// The trampoline as iced-x86 assembles it: the reference.
    fn assembled(avx: bool, binder: u64) -> Vec<u8> {
        use iced_x86::code_asm::{
            CodeAssembler, r8, r9, r10, r11, rax, rbp, rcx, rdi, rdx, rsi, rsp, xmmword_ptr,
            ymmword_ptr,
        };
        use iced_x86::code_asm::{xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7};
        use iced_x86::code_asm::{ymm0, ymm1, ymm2, ymm3, ymm4, ymm5, ymm6, ymm7};
        let integer = [rdi, rsi, rdx, rcx, r8, r9, rax, r10];
        let xmm = [xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7];
        let ymm = [ymm0, ymm1, ymm2, ymm3, ymm4, ymm5, ymm6, ymm7];
        let width: i32 = if avx { 32 } else { 16 };
        let mut a = CodeAssembler::new(64).unwrap();
        a.endbr64().unwrap();
        a.push(rbp).unwrap();
        a.mov(rbp, rsp).unwrap();
        for register in integer {
            a.push(register).unwrap();
        }
        a.sub(rsp, width * 8).unwrap();
        for (k, (x, y)) in xmm.into_iter().zip(ymm).enumerate() {
            let at = k as i32 * width;
            if avx {
                a.vmovdqu(ymmword_ptr(rsp + at), y).unwrap();
            } else {
                a.movdqu(xmmword_ptr(rsp + at), x).unwrap();
            }
        }
        a.mov(rdi, r11).unwrap();
        a.mov(rax, binder).unwrap();
        a.call(rax).unwrap();
        a.mov(r11, rax).unwrap();
        for (k, (x, y)) in xmm.into_iter().zip(ymm).enumerate() {
            let at = k as i32 * width;
            if avx {
                a.vmovdqu(y, ymmword_ptr(rsp + at)).unwrap();
            } else {
                a.movdqu(x, xmmword_ptr(rsp + at)).unwrap();
            }
        }
        a.add(rsp, width * 8).unwrap();
        for register in integer.into_iter().rev() {
            a.pop(register).unwrap();
        }
        a.pop(rbp).unwrap();
        a.jmp(r11).unwrap();
        a.assemble(0).unwrap()
    }

    #[test]
    fn the_trampoline_is_the_bytes_iced_x86_assembles() {
        for avx in [false, true] {
            for binder in [0, 0x1234_5678_9abc, u64::MAX] {
                assert_eq!(
                    resolver_trampoline(avx, binder),
                    assembled(avx, binder),
                    "avx {avx}, binder {binder:#x}"
                );
            }
        }
    }

    #[test]
    fn trampolines_assemble_with_and_without_avx() {
        let plain = resolver_trampoline(false, 0x1234_5678_9abc);
        let wide = resolver_trampoline(true, 0x1234_5678_9abc);
        assert_eq!(
            &plain[..4],
            &[0xF3, 0x0F, 0x1E, 0xFA],
            "starts with endbr64"
        );
        assert_eq!(&wide[..4], &[0xF3, 0x0F, 0x1E, 0xFA]);
        assert_eq!(
            &plain[plain.len() - 3..],
            &[0x41, 0xFF, 0xE3],
            "ends with jmp r11"
        );
        assert_ne!(plain, wide);
        let saves = |code: &[u8], m: Mnemonic| mnemonics(code).iter().filter(|&&x| x == m).count();
        // Eight vector registers saved and restored, nine pushes and pops.
        assert_eq!(saves(&plain, Mnemonic::Movdqu), 16);
        assert_eq!(saves(&wide, Mnemonic::Vmovdqu), 16);
        assert_eq!(saves(&plain, Mnemonic::Push), 9);
        assert_eq!(saves(&plain, Mnemonic::Pop), 9);
    }

    #[test]
    fn the_trampoline_calls_the_binder_with_the_descriptor() {
        let code = resolver_trampoline(false, 0x1234_5678_9abc);
        let insts: Vec<_> = Decoder::with_ip(64, &code, 0, DecoderOptions::NONE)
            .into_iter()
            .collect();
        let call = insts
            .iter()
            .position(|i| i.mnemonic() == Mnemonic::Call)
            .unwrap();
        let load = &insts[call - 1];
        assert_eq!(load.op0_register(), Register::RAX);
        assert_eq!(load.immediate64(), 0x1234_5678_9abc);
        assert!(
            insts[..call]
                .iter()
                .any(|i| i.op0_register() == Register::RDI && i.op1_register() == Register::R11),
            "the descriptor goes in rdi"
        );
    }

    #[test]
    fn entry_jumps_through_its_slot_and_stub_loads_the_descriptor() {
        let bytes = entry(0x1000, 0x3000, 0xAABB, 0x5000).unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0x25]);
        assert_eq!(
            i32::from_le_bytes(bytes[2..6].try_into().unwrap()),
            0x3000 - 0x1006
        );
        assert_eq!(&bytes[8..10], &[0x49, 0xBB]);
        assert_eq!(
            u64::from_le_bytes(bytes[10..18].try_into().unwrap()),
            0xAABB
        );
        assert_eq!(&bytes[18..24], &[0xFF, 0x25, 0, 0, 0, 0]);
        assert_eq!(
            u64::from_le_bytes(bytes[24..32].try_into().unwrap()),
            0x5000
        );
        assert!(entry(0, 1 << 40, 0, 0).is_none());
    }
}
