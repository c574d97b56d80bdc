//! From the lowered instruction list to bytes: the backend's encoder
//! ([`super::encode`]) for every instruction, labels resolved by patching,
//! a constant pool and the call sites left for linking.
//!
//! The code is encoded once, at offset 0, before its final address is
//! known (execmem needs a reservation's size before it tells the address).
//! Everything inside the function is position-independent: branches and
//! pool references are rip-relative and patched here. What depends on the
//! final address — calls to other functions and function addresses — is
//! given a fixed-size site and patched by [`Prepared::link`] once the
//! address is known, choosing a direct `call rel32` when the target is
//! within ±2 GiB and a call through an 8-byte slot after the code
//! otherwise. Forward branches use rel32; backward branches use rel8 when
//! they reach.
//!
//! Layout of a function: code, padding to 8, the constant pool (float
//! constants, bounds, the trap handler's address), then one 8-byte slot
//! per external callee for far calls.

use iced_x86::{Code, Register};

use super::encode::Writer;
use super::inst::{Imm, Ins};
use jit_shared::spare::Spares;

/// A condition code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cc {
    E,
    Ne,
    L,
    Le,
    G,
    Ge,
    B,
    Be,
    A,
    Ae,
    P,
    Np,
}

impl Cc {
    /// The opposite condition.
    pub(super) fn negate(self) -> Cc {
        match self {
            Cc::E => Cc::Ne,
            Cc::Ne => Cc::E,
            Cc::L => Cc::Ge,
            Cc::Ge => Cc::L,
            Cc::Le => Cc::G,
            Cc::G => Cc::Le,
            Cc::B => Cc::Ae,
            Cc::Ae => Cc::B,
            Cc::Be => Cc::A,
            Cc::A => Cc::Be,
            Cc::P => Cc::Np,
            Cc::Np => Cc::P,
        }
    }

    /// The condition with its operands swapped (`a < b` ⇔ `b > a`).
    pub(super) fn swap(self) -> Cc {
        match self {
            Cc::L => Cc::G,
            Cc::G => Cc::L,
            Cc::Le => Cc::Ge,
            Cc::Ge => Cc::Le,
            Cc::B => Cc::A,
            Cc::A => Cc::B,
            Cc::Be => Cc::Ae,
            Cc::Ae => Cc::Be,
            other => other,
        }
    }

    /// The condition's 4-bit `tttn` field of `jcc` (`0x70 + tttn` rel8,
    /// `0x0F 0x80 + tttn` rel32), Intel SDM vol. 2, appendix B.1.4.7.
    fn tttn(self) -> u8 {
        match self {
            Cc::B => 0x2,
            Cc::Ae => 0x3,
            Cc::E => 0x4,
            Cc::Ne => 0x5,
            Cc::Be => 0x6,
            Cc::A => 0x7,
            Cc::P => 0xA,
            Cc::Np => 0xB,
            Cc::L => 0xC,
            Cc::Ge => 0xD,
            Cc::Le => 0xE,
            Cc::G => 0xF,
        }
    }

    /// `setcc r/m8`.
    pub(super) fn setcc(self) -> Code {
        match self {
            Cc::E => Code::Sete_rm8,
            Cc::Ne => Code::Setne_rm8,
            Cc::L => Code::Setl_rm8,
            Cc::Le => Code::Setle_rm8,
            Cc::G => Code::Setg_rm8,
            Cc::Ge => Code::Setge_rm8,
            Cc::B => Code::Setb_rm8,
            Cc::Be => Code::Setbe_rm8,
            Cc::A => Code::Seta_rm8,
            Cc::Ae => Code::Setae_rm8,
            Cc::P => Code::Setp_rm8,
            Cc::Np => Code::Setnp_rm8,
        }
    }

    /// `cmovcc r64, r/m64`.
    pub(super) fn cmov(self) -> Code {
        match self {
            Cc::E => Code::Cmove_r64_rm64,
            Cc::Ne => Code::Cmovne_r64_rm64,
            Cc::L => Code::Cmovl_r64_rm64,
            Cc::Le => Code::Cmovle_r64_rm64,
            Cc::G => Code::Cmovg_r64_rm64,
            Cc::Ge => Code::Cmovge_r64_rm64,
            Cc::B => Code::Cmovb_r64_rm64,
            Cc::Be => Code::Cmovbe_r64_rm64,
            Cc::A => Code::Cmova_r64_rm64,
            Cc::Ae => Code::Cmovae_r64_rm64,
            Cc::P => Code::Cmovp_r64_rm64,
            Cc::Np => Code::Cmovnp_r64_rm64,
        }
    }
}

/// One element of a lowered function.
#[derive(Clone, Debug)]
pub(super) enum Item {
    /// An ordinary instruction.
    Ins(Ins),
    /// An instruction of a fixed form written as its bytes (see [`Fixed`]).
    Bytes(Fixed),
    /// An instruction whose memory operand is `[rip + pool entry]`.
    Pool(Ins, u32),
    /// Binds a label here.
    Label(u32),
    /// No-operations up to the next 16-byte boundary of the function (a
    /// loop's first instruction starts a fetch block).
    Align,
    /// Unconditional jump to a label.
    Jmp(u32),
    /// Conditional jump to a label.
    Jcc(Cc, u32),
    /// A call to external callee `n`, patched at link time.
    Call(u32),
    /// `mov reg, imm64` with the address of external callee `n`, patched
    /// at link time.
    AddrOf(Register, u32),
}

/// The bytes of an instruction whose form never varies beyond its
/// register numbers: written directly instead of going through the
/// encoder's table, which costs several times as much for these one- to
/// three-byte instructions. A unit test checks every form
/// against iced-x86's encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Fixed {
    len: u8,
    bytes: [u8; 7],
}

/// The hardware number (0–15) of a 64-bit general-purpose register.
/// Panics on any other register: that is a bug in the lowering.
fn gpr_number(r: Register) -> u8 {
    assert!(r.is_gpr64(), "{r:?} is not a 64-bit general register");
    (r as u32).wrapping_sub(Register::RAX as u32) as u8 & 15
}

impl Fixed {
    /// The form of `bytes`; more than 7 is a bug in the caller and panics.
    fn of(bytes: &[u8]) -> Fixed {
        assert!(bytes.len() <= 7, "a fixed form has at most 7 bytes");
        let mut out = [0u8; 7];
        let len = bytes.len().min(out.len());
        out[..len].copy_from_slice(&bytes[..len]);
        Fixed {
            len: len as u8,
            bytes: out,
        }
    }

    /// The bytes to write.
    #[cfg(test)]
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// `endbr64`.
    pub(super) fn endbr64() -> Fixed {
        Fixed::of(&[0xF3, 0x0F, 0x1E, 0xFA])
    }

    /// `ret`.
    pub(super) fn ret() -> Fixed {
        Fixed::of(&[0xC3])
    }

    /// `cqo` (sign-extends rax into rdx).
    pub(super) fn cqo() -> Fixed {
        Fixed::of(&[0x48, 0x99])
    }

    /// `ud2`.
    pub(super) fn ud2() -> Fixed {
        Fixed::of(&[0x0F, 0x0B])
    }

    /// `push r64` (`0x50 + r`, REX.B for r8–r15).
    pub(super) fn push(r: Register) -> Fixed {
        Fixed::one_register(0x50, r)
    }

    /// `pop r64` (`0x58 + r`, REX.B for r8–r15).
    pub(super) fn pop(r: Register) -> Fixed {
        Fixed::one_register(0x58, r)
    }

    fn one_register(opcode: u8, r: Register) -> Fixed {
        let n = gpr_number(r);
        if n < 8 {
            Fixed::of(&[opcode + n])
        } else {
            Fixed::of(&[0x41, opcode + n - 8])
        }
    }

    /// `mov dst, src` on 64-bit registers (`REX.W 8B /r`, the form iced-x86
    /// calls `Mov_r64_rm64`: dst in ModRM.reg, src in ModRM.rm).
    pub(super) fn mov(dst: Register, src: Register) -> Fixed {
        let (d, s) = (gpr_number(dst), gpr_number(src));
        let rex = 0x48 | ((d >> 3) << 2) | (s >> 3);
        Fixed::of(&[rex, 0x8B, 0xC0 | ((d & 7) << 3) | (s & 7)])
    }

    /// `sub rsp, imm32` (`REX.W 81 /5 id`) and `add rsp, imm32`
    /// (`REX.W 81 /0 id`): the frame's allocation and release.
    pub(super) fn rsp_adjust(release: bool, bytes: u32) -> Fixed {
        let modrm = if release { 0xC4 } else { 0xEC };
        let [a, b, c, d] = bytes.to_le_bytes();
        Fixed::of(&[0x48, 0x81, modrm, a, b, c, d])
    }
}

/// How calls to an external callee are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SiteKind {
    /// The callee's entry itself: `call rel32` (or through a slot when far).
    Direct,
    /// An 8-byte slot holding the entry, owned by the caller of the backend.
    Slot(u64),
}

#[derive(Clone, Copy, Debug)]
struct Site {
    offset: usize,
    ext: u32,
    call: bool,
}

/// Encoded code, position-independent except for its sites.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub(super) bytes: Vec<u8>,
    /// Bytes of instructions, before the padding and the pool.
    code_len: usize,
    sites: Vec<Site>,
    kinds: Vec<SiteKind>,
    slots_at: usize,
}

/// The encoder's working buffers, kept per thread for the next function.
#[derive(Default)]
struct Scratch {
    /// The code as it is written.
    code: Vec<u8>,
    /// Each label's offset, `usize::MAX` until bound.
    at: Vec<usize>,
    /// (rel32 position, label) of forward branches: the rel32 is relative
    /// to position + 4.
    jumps: Vec<(usize, u32)>,
    /// (disp32 position, instruction end, pool entry).
    pool_refs: Vec<(usize, usize, u32)>,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
    /// The vectors of dropped [`Prepared`] functions (placed, linked and
    /// done with), for the next ones this thread lowers and encodes.
    static SPARE_BYTES: Spares<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
    static SPARE_SITES: Spares<Vec<Site>> = const { std::cell::Cell::new(Vec::new()) };
    static SPARE_KINDS: Spares<Vec<SiteKind>> = const { std::cell::Cell::new(Vec::new()) };
}

/// An empty list for the call-site kinds of the next function lowered,
/// in the storage of one that was dropped when there is one.
pub(super) fn spare_kinds() -> Vec<SiteKind> {
    let mut kinds = jit_shared::spare::take(&SPARE_KINDS);
    kinds.clear();
    kinds
}

/// Keeps a dropped function's vectors for the next one.
impl Drop for Prepared {
    fn drop(&mut self) {
        jit_shared::spare::give(&SPARE_BYTES, std::mem::take(&mut self.bytes));
        jit_shared::spare::give(&SPARE_SITES, std::mem::take(&mut self.sites));
        jit_shared::spare::give(&SPARE_KINDS, std::mem::take(&mut self.kinds));
    }
}

/// Encodes `items`; `pool` holds 8-byte constants referenced by
/// [`Item::Pool`], `kinds` says how each external callee is reached.
/// `reference` encodes every instruction with iced-x86's `Encoder`
/// instead of the backend's own (see [`super::encode`]).
pub(super) fn encode(
    items: &[Item],
    labels: usize,
    pool: &[u64],
    kinds: Vec<SiteKind>,
    reference: bool,
) -> Result<Prepared, iced_x86::IcedError> {
    // The code goes into this thread's buffer of the last function; the
    // result is copied out at its exact size below, into the storage of a
    // function that was dropped when there is one (else one small
    // allocation instead of a large one sized for the worst case).
    let Scratch {
        code: mut spare,
        mut at,
        mut jumps,
        mut pool_refs,
    } = SCRATCH.take();
    spare.clear();
    spare.reserve(items.len() * 5 + 64);
    let mut out = Writer::new(spare, reference);
    at.clear();
    at.resize(labels, usize::MAX);
    jumps.clear();
    pool_refs.clear();
    let mut sites = jit_shared::spare::take(&SPARE_SITES);
    sites.clear();
    sites.reserve(kinds.len());
    for item in items {
        let pos = out.len();
        match item {
            Item::Ins(ins) => {
                out.instruction(ins)?;
            }
            Item::Bytes(fixed) => out.raw(&fixed.bytes, usize::from(fixed.len)),
            Item::Pool(ins, entry) => {
                // The displacement is patched below, once the pool's
                // place is known.
                let e = out.instruction(ins)?;
                pool_refs.push((pos + e.displacement.unwrap_or(0), pos + e.len, *entry));
            }
            Item::Label(l) => {
                if let Some(slot) = at.get_mut(*l as usize) {
                    *slot = pos;
                }
            }
            Item::Align => {
                let pad = pos.next_multiple_of(16) - pos;
                if pad > 0 {
                    out.raw(&PADS[pad - 1], pad);
                }
            }
            Item::Jmp(l) | Item::Jcc(_, l) => {
                let cc = match item {
                    Item::Jcc(cc, _) => Some(*cc),
                    _ => None,
                };
                let target = at.get(*l as usize).copied().unwrap_or(usize::MAX);
                let (len, field) = branch(cc, pos, target);
                out.raw(&field, len);
                if target == usize::MAX {
                    jumps.push((pos + len - 4, *l));
                }
            }
            Item::Call(ext) => {
                let size = match kinds.get(*ext as usize) {
                    Some(SiteKind::Slot(_)) => 10,
                    _ => 6,
                };
                sites.push(Site {
                    offset: pos,
                    ext: *ext,
                    call: true,
                });
                out.raw(&[0xCC; 10], size);
            }
            Item::AddrOf(reg, ext) => {
                let e = out.instruction(&Ins::with_imm(Code::Mov_r64_imm64, *reg, Imm::U64(0)))?;
                sites.push(Site {
                    offset: pos + e.len - 8,
                    ext: *ext,
                    call: false,
                });
            }
        }
    }
    let code = out.finish();
    let code_len = code.len();
    let code_end = code_len.next_multiple_of(8);
    let pool_at = code_end;
    let slots_at = pool_at + 8 * pool.len();
    let mut bytes = jit_shared::spare::take(&SPARE_BYTES);
    bytes.clear();
    bytes.reserve_exact(slots_at + 8 * kinds.len());
    bytes.extend_from_slice(&code);
    for &(p, l) in &jumps {
        let target = at.get(l as usize).copied().unwrap_or(usize::MAX);
        let rel = (target as i64) - (p as i64 + 4);
        if let Some(b) = bytes.get_mut(p..p + 4) {
            b.copy_from_slice(&(rel as i32).to_le_bytes());
        }
    }
    bytes.resize(code_end, 0xCC);
    for c in pool {
        bytes.extend_from_slice(&c.to_le_bytes());
    }
    for &(p, end, entry) in &pool_refs {
        let rel = (pool_at + 8 * entry as usize) as i64 - end as i64;
        if let Some(b) = bytes.get_mut(p..p + 4) {
            b.copy_from_slice(&(rel as i32).to_le_bytes());
        }
    }
    SCRATCH.set(Scratch {
        code,
        at,
        jumps,
        pool_refs,
    });
    bytes.resize(slots_at + 8 * kinds.len(), 0);
    Ok(Prepared {
        bytes,
        code_len,
        sites,
        kinds,
        slots_at,
    })
}

/// The recommended no-operation of each length from 1 to 9 bytes (`nop`,
/// `66 nop`, then `nop` with a memory operand of growing size), the
/// `k`th `k + 1` bytes long.
const NOPS: [[u8; 9]; 9] = [
    [0x90, 0, 0, 0, 0, 0, 0, 0, 0],
    [0x66, 0x90, 0, 0, 0, 0, 0, 0, 0],
    [0x0F, 0x1F, 0x00, 0, 0, 0, 0, 0, 0],
    [0x0F, 0x1F, 0x40, 0x00, 0, 0, 0, 0, 0],
    [0x0F, 0x1F, 0x44, 0x00, 0x00, 0, 0, 0, 0],
    [0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00, 0, 0, 0],
    [0x0F, 0x1F, 0x80, 0x00, 0x00, 0x00, 0x00, 0, 0],
    [0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00, 0],
    [0x66, 0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
];

/// Padding of each length from 1 to 15 bytes: one no-operation up to 9
/// bytes, a 9-byte one and the rest beyond.
const PADS: [[u8; 15]; 15] = {
    let mut pads = [[0u8; 15]; 15];
    let mut len = 1;
    while len <= 15 {
        let first = if len > 9 { 9 } else { len };
        let mut k = 0;
        while k < first {
            pads[len - 1][k] = NOPS[first - 1][k];
            k += 1;
        }
        let rest = len - first;
        let mut j = 0;
        while j < rest {
            pads[len - 1][first + j] = NOPS[rest - 1][j];
            j += 1;
        }
        len += 1;
    }
    pads
};

/// The bytes of a branch at `pos` to `target` (`usize::MAX`: a forward
/// label, its rel32 left zero for patching) and their length: the rel8
/// form for backward targets it reaches, rel32 otherwise.
fn branch(cc: Option<Cc>, pos: usize, target: usize) -> (usize, [u8; 6]) {
    let mut out = [0u8; 6];
    if target != usize::MAX && pos + 2 - target <= 128 {
        out[0] = cc.map_or(0xEB, |cc| 0x70 | cc.tttn());
        out[1] = (target as i64 - (pos as i64 + 2)) as i8 as u8;
        return (2, out);
    }
    let opcode: &[u8] = match cc {
        Some(cc) => &[0x0F, 0x80 | cc.tttn()],
        None => &[0xE9],
    };
    let len = opcode.len() + 4;
    out[..opcode.len()].copy_from_slice(opcode);
    if target != usize::MAX {
        let rel = (target as i64 - (pos + len) as i64) as i32;
        out[opcode.len()..len].copy_from_slice(&rel.to_le_bytes());
    }
    (len, out)
}

fn rel32(from_end: u64, to: u64) -> Option<i32> {
    i32::try_from(to.wrapping_sub(from_end) as i64).ok()
}

impl Prepared {
    /// Size of the code, its pool and its slots in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// Bytes of instructions (trap stubs included): where the padding
    /// and the constant pool start.
    pub fn code_len(&self) -> usize {
        self.code_len
    }

    /// Patches the call sites for code placed at `address`, `entries[n]`
    /// being the entry of external callee `n` (ignored for slot callees),
    /// and writes the result into `out` (exactly [`Prepared::size`] bytes).
    pub(super) fn link(&self, address: u64, entries: &[u64], out: &mut [u8]) {
        out.copy_from_slice(&self.bytes);
        let put = |out: &mut [u8], at: usize, bytes: &[u8]| {
            if let Some(b) = out.get_mut(at..at + bytes.len()) {
                b.copy_from_slice(bytes);
            }
        };
        for site in &self.sites {
            let n = site.ext as usize;
            let kind = self.kinds.get(n).copied().unwrap_or(SiteKind::Direct);
            let entry = entries.get(n).copied().unwrap_or(0);
            let slot_off = self.slots_at + 8 * n;
            let here = address + site.offset as u64;
            if !site.call {
                let value = match kind {
                    SiteKind::Direct => entry,
                    SiteKind::Slot(s) => s,
                };
                put(out, site.offset, &value.to_le_bytes());
                continue;
            }
            match kind {
                SiteKind::Direct => match rel32(here + 6, entry) {
                    Some(rel) => {
                        put(out, site.offset, &[0x90, 0xE8]);
                        put(out, site.offset + 2, &rel.to_le_bytes());
                    }
                    None => {
                        put(out, slot_off, &entry.to_le_bytes());
                        let disp = (slot_off as i64 - (site.offset as i64 + 6)) as i32;
                        put(out, site.offset, &[0xFF, 0x15]);
                        put(out, site.offset + 2, &disp.to_le_bytes());
                    }
                },
                SiteKind::Slot(s) => match rel32(here + 10, s) {
                    Some(rel) => {
                        put(out, site.offset, &[0x0F, 0x1F, 0x40, 0x00, 0xFF, 0x15]);
                        put(out, site.offset + 6, &rel.to_le_bytes());
                    }
                    None => {
                        put(out, slot_off, &s.to_le_bytes());
                        let disp = (slot_off as i64 - (site.offset as i64 + 7)) as i32;
                        put(out, site.offset, &[0x4C, 0x8B, 0x1D]);
                        put(out, site.offset + 3, &disp.to_le_bytes());
                        put(out, site.offset + 7, &[0x41, 0xFF, 0x13]);
                    }
                },
            }
        }
    }
}

/// A field of relocatable code that holds where a callee is: what an
/// embedder linking the code itself (an ahead-of-time object file) must
/// patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkSite {
    /// Offset of the field from the function's first byte.
    pub offset: usize,
    /// The external callee, numbered in the order the [`super::CallResolver`]
    /// was asked (each distinct callee is asked once).
    pub callee: usize,
    /// What the field holds.
    pub form: LinkForm,
}

/// The encoding of a [`LinkSite`]'s field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkForm {
    /// The rel32 of `call rel32` to the callee's entry ([`super::CallTarget::Direct`]),
    /// relative to the field's end.
    CallRel32,
    /// The rel32 of `call [rip + rel32]` through the callee's slot
    /// ([`super::CallTarget::Slot`]), relative to the field's end.
    SlotRel32,
    /// The 64-bit absolute address of the callee's entry (or, for a slot
    /// callee, of its slot): the immediate of a `mov r64, imm64`.
    Abs64,
}

impl super::PreparedFunction {
    /// The code with every call site in its near form and every field that
    /// depends on a callee zeroed, and those fields. Placed anywhere and
    /// patched as the sites say, it runs like [`super::Backend::publish`]'s
    /// output; the far-call slots after the pool stay unused. Callees of
    /// the batch (`Member`) are reported like the others, numbered by
    /// their position among the function's callees.
    pub fn relocatable(&self) -> (Vec<u8>, Vec<LinkSite>) {
        let code = &self.code;
        let mut out = vec![0u8; code.size()];
        // Linking at address 0 with every entry at 0 writes the near form
        // of each site (both fit in rel32); the fields are zeroed after.
        code.link(0, &vec![0; code.kinds.len()], &mut out);
        let mut sites = Vec::with_capacity(code.sites.len());
        for site in &code.sites {
            let n = site.ext as usize;
            let (offset, form, width) = match (site.call, code.kinds.get(n)) {
                (false, _) => (site.offset, LinkForm::Abs64, 8),
                (true, Some(SiteKind::Slot(_))) => (site.offset + 6, LinkForm::SlotRel32, 4),
                (true, _) => (site.offset + 2, LinkForm::CallRel32, 4),
            };
            if let Some(field) = out.get_mut(offset..offset + width) {
                field.fill(0);
            }
            sites.push(LinkSite {
                offset,
                callee: n,
                form,
            });
        }
        (out, sites)
    }
}

#[cfg(test)]
mod tests {
    use super::{Cc, Fixed, PADS, branch};
    use iced_x86::{Code, Decoder, DecoderOptions, Encoder, Instruction, Mnemonic, Register};

    #[test]
    fn every_padding_decodes_as_no_operations_of_exactly_its_length() {
        for (k, pad) in PADS.iter().enumerate() {
            let len = k + 1;
            let mut decoder = Decoder::new(64, &pad[..len], DecoderOptions::NONE);
            let mut total = 0;
            let mut count = 0;
            while decoder.can_decode() {
                let ins = decoder.decode();
                assert_eq!(
                    ins.mnemonic(),
                    Mnemonic::Nop,
                    "padding of {len}: {pad:02x?}"
                );
                total += ins.len();
                count += 1;
            }
            assert_eq!(total, len);
            assert!(count <= 2, "padding of {len} is {count} instructions");
        }
    }

    const ALL: [Cc; 12] = [
        Cc::E,
        Cc::Ne,
        Cc::L,
        Cc::Le,
        Cc::G,
        Cc::Ge,
        Cc::B,
        Cc::Be,
        Cc::A,
        Cc::Ae,
        Cc::P,
        Cc::Np,
    ];

    /// What iced-x86 encodes for the branch `code` at `pos` to `target`.
    fn iced(code: Code, pos: usize, target: usize) -> Vec<u8> {
        let ins = Instruction::with_branch(code, target as u64).expect("branch");
        let mut enc = Encoder::new(64);
        enc.encode(&ins, pos as u64).expect("encoded");
        enc.take_buffer()
    }

    fn codes(cc: Option<Cc>) -> (Code, Code) {
        match cc {
            None => (Code::Jmp_rel8_64, Code::Jmp_rel32_64),
            Some(Cc::E) => (Code::Je_rel8_64, Code::Je_rel32_64),
            Some(Cc::Ne) => (Code::Jne_rel8_64, Code::Jne_rel32_64),
            Some(Cc::L) => (Code::Jl_rel8_64, Code::Jl_rel32_64),
            Some(Cc::Le) => (Code::Jle_rel8_64, Code::Jle_rel32_64),
            Some(Cc::G) => (Code::Jg_rel8_64, Code::Jg_rel32_64),
            Some(Cc::Ge) => (Code::Jge_rel8_64, Code::Jge_rel32_64),
            Some(Cc::B) => (Code::Jb_rel8_64, Code::Jb_rel32_64),
            Some(Cc::Be) => (Code::Jbe_rel8_64, Code::Jbe_rel32_64),
            Some(Cc::A) => (Code::Ja_rel8_64, Code::Ja_rel32_64),
            Some(Cc::Ae) => (Code::Jae_rel8_64, Code::Jae_rel32_64),
            Some(Cc::P) => (Code::Jp_rel8_64, Code::Jp_rel32_64),
            Some(Cc::Np) => (Code::Jnp_rel8_64, Code::Jnp_rel32_64),
        }
    }

    #[test]
    fn branches_are_the_bytes_iced_x86_encodes() {
        let pos = 1000;
        for cc in ALL.into_iter().map(Some).chain([None]) {
            let (short, near) = codes(cc);
            // Backward: rel8 reaches down to -128 from the end of the
            // 2-byte form (pos + 2 - 128), one byte further needs rel32.
            for target in [pos + 2 - 128, pos + 2 - 127, pos, pos - 1] {
                let (len, bytes) = branch(cc, pos, target);
                assert_eq!(
                    bytes[..len],
                    iced(short, pos, target)[..],
                    "{cc:?} to {target}"
                );
            }
            for target in [pos + 2 - 129, pos - 500, 0] {
                let (len, bytes) = branch(cc, pos, target);
                assert_eq!(
                    bytes[..len],
                    iced(near, pos, target)[..],
                    "{cc:?} to {target}"
                );
            }
            // Forward: the rel32 form with its field zero, to be patched.
            let (len, bytes) = branch(cc, pos, usize::MAX);
            assert_eq!(
                bytes[..len],
                iced(near, pos, pos + len)[..],
                "{cc:?} forward"
            );
        }
    }

    /// What iced-x86 encodes for `ins`.
    fn iced_bytes(ins: Result<Instruction, iced_x86::IcedError>) -> Vec<u8> {
        let mut enc = Encoder::new(64);
        enc.encode(&ins.expect("instruction"), 0).expect("encoded");
        enc.take_buffer()
    }

    /// The sixteen 64-bit general registers, rax to r15.
    fn gprs() -> impl Iterator<Item = Register> {
        (0..16).map(|n| Register::RAX + n)
    }

    #[test]
    fn fixed_forms_without_operands_are_the_bytes_iced_x86_encodes() {
        for (fixed, code) in [
            (Fixed::endbr64(), Code::Endbr64),
            (Fixed::ret(), Code::Retnq),
            (Fixed::cqo(), Code::Cqo),
            (Fixed::ud2(), Code::Ud2),
        ] {
            assert_eq!(
                fixed.as_slice(),
                iced_bytes(Ok(Instruction::with(code))),
                "{code:?}"
            );
        }
    }

    #[test]
    fn pushes_pops_and_moves_are_the_bytes_iced_x86_encodes_for_every_register() {
        for r in gprs() {
            assert_eq!(
                Fixed::push(r).as_slice(),
                iced_bytes(Instruction::with1(Code::Push_r64, r)),
                "push {r:?}"
            );
            assert_eq!(
                Fixed::pop(r).as_slice(),
                iced_bytes(Instruction::with1(Code::Pop_r64, r)),
                "pop {r:?}"
            );
            for src in gprs() {
                assert_eq!(
                    Fixed::mov(r, src).as_slice(),
                    iced_bytes(Instruction::with2(Code::Mov_r64_rm64, r, src)),
                    "mov {r:?}, {src:?}"
                );
            }
        }
    }

    #[test]
    fn frame_adjustments_are_the_bytes_iced_x86_encodes() {
        // Both ends of the imm8 range and past them: the imm32 form is kept
        // whatever the size, as the code it replaces asked for.
        for bytes in [0u32, 8, 127, 128, 129, 4096, i32::MAX as u32] {
            assert_eq!(
                Fixed::rsp_adjust(false, bytes).as_slice(),
                iced_bytes(Instruction::with2(
                    Code::Sub_rm64_imm32,
                    Register::RSP,
                    bytes as i32
                )),
                "sub rsp, {bytes}"
            );
            assert_eq!(
                Fixed::rsp_adjust(true, bytes).as_slice(),
                iced_bytes(Instruction::with2(
                    Code::Add_rm64_imm32,
                    Register::RSP,
                    bytes as i32
                )),
                "add rsp, {bytes}"
            );
        }
    }
}
