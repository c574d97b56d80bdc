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
/// not decode show as `(bad)`; code followed by data should be listed with
/// [`disassemble_function`], which knows where the instructions stop.
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

/// A generated function's listing: its first `instruction_len` bytes as
/// instructions (as [`disassemble`]), then the rest — the padding to 8
/// bytes, the constant pool and the call slots — as data, in the same
/// columns: `.byte` for the padding up to an 8-byte boundary of the
/// function and for a short tail, `.quad` for each 8-byte word.
pub fn disassemble_function(
    bytes: &[u8],
    instruction_len: usize,
    address: u64,
    syntax: Syntax,
) -> String {
    let split = instruction_len.min(bytes.len());
    let (code, data) = bytes.split_at(split);
    let mut out = disassemble(code, address, syntax);
    let padding = (split.next_multiple_of(8) - split).min(data.len());
    let (pad, words) = data.split_at(padding);
    let mut at = address + split as u64;
    if !pad.is_empty() {
        push_data_line(&mut out, at, pad);
        at += pad.len() as u64;
    }
    for word in words.chunks(8) {
        push_data_line(&mut out, at, word);
        at += word.len() as u64;
    }
    out
}

/// One line of data: `.quad` for a whole 8-byte word, `.byte`s otherwise.
fn push_data_line(out: &mut String, address: u64, bytes: &[u8]) {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let text = match <[u8; 8]>::try_from(bytes) {
        Ok(word) => format!(".quad {:#018x}", u64::from_le_bytes(word)),
        Err(_) => {
            let list: Vec<String> = bytes.iter().map(|b| format!("{b:#04x}")).collect();
            format!(".byte {}", list.join(", "))
        }
    };
    out.push_str(&format!("{address:016x}  {hex:<24} {text}\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_listing_stops_at_the_instructions_and_shows_the_pool_as_data() {
        // ret; int3 padding to 8; one pool word; a short tail.
        let mut bytes = vec![0xC3, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC];
        bytes.extend_from_slice(&0x3FF0_0000_0000_0000u64.to_le_bytes());
        bytes.extend_from_slice(&[1, 2]);
        let listing = disassemble_function(&bytes, 1, 0x1000, Syntax::Intel);
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 4, "{listing}");
        assert!(lines[0].starts_with("0000000000001000  c3") && lines[0].ends_with("ret"));
        assert!(lines[1].starts_with("0000000000001001  cccccccccccccc"));
        assert!(lines[1].ends_with(".byte 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc"));
        assert!(lines[2].starts_with("0000000000001008  000000000000f03f"));
        assert!(lines[2].ends_with(".quad 0x3ff0000000000000"));
        assert!(lines[3].ends_with(".byte 0x01, 0x02"));
    }

    #[test]
    fn function_listing_of_code_alone_equals_the_plain_listing() {
        let bytes = [0x90, 0xC3];
        assert_eq!(
            disassemble_function(&bytes, 2, 0x40, Syntax::Gas),
            disassemble(&bytes, 0x40, Syntax::Gas)
        );
        assert_eq!(
            disassemble_function(&bytes, 9, 0x40, Syntax::Gas),
            disassemble(&bytes, 0x40, Syntax::Gas)
        );
    }
}
