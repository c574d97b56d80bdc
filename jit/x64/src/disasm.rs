//! Disassembly of generated or precompiled code with iced-x86's
//! formatters, for tests and for `smf-inspect disasm`.

use iced_x86::{Decoder, DecoderOptions, Formatter, GasFormatter, IntelFormatter, NasmFormatter};

/// Assembly syntax of a listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Syntax {
    /// Intel syntax (`mov rax, [rdi]`).
    #[default]
    Intel,
    /// GNU as / AT&T syntax (`mov (%rdi),%rax`).
    Gas,
    /// NASM syntax.
    Nasm,
}

/// A listing of `bytes` decoded as 64-bit code placed at `address`: one
/// line per instruction, `address  hex bytes  instruction`. Bytes that do
/// not decode show as `(bad)`, so data after the code (the constant pool)
/// is listed without failing.
pub fn disassemble(bytes: &[u8], address: u64, syntax: Syntax) -> String {
    let mut formatter: Box<dyn Formatter> = match syntax {
        Syntax::Intel => Box::new(IntelFormatter::new()),
        Syntax::Gas => Box::new(GasFormatter::new()),
        Syntax::Nasm => Box::new(NasmFormatter::new()),
    };
    let mut decoder = Decoder::with_ip(64, bytes, address, DecoderOptions::NONE);
    let mut out = String::new();
    let mut text = String::new();
    let mut instruction = iced_x86::Instruction::default();
    while decoder.can_decode() {
        let offset = decoder.position();
        decoder.decode_out(&mut instruction);
        text.clear();
        if instruction.is_invalid() {
            text.push_str("(bad)");
        } else {
            formatter.format(&instruction, &mut text);
        }
        let end = offset + instruction.len().max(1);
        let hex: String = bytes
            .get(offset..end.min(bytes.len()))
            .unwrap_or(&[])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        out.push_str(&format!("{:016x}  {hex:<24} {text}\n", instruction.ip()));
    }
    out
}
