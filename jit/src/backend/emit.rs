//! From the lowered instruction list to bytes: iced-x86's `Encoder` for
//! every instruction, labels resolved by patching, a constant pool and the
//! call sites left for linking.
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

use iced_x86::{Code, Encoder, Instruction, MemoryOperand, Register};

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

    fn jcc(self, short: bool) -> Code {
        match (self, short) {
            (Cc::E, false) => Code::Je_rel32_64,
            (Cc::Ne, false) => Code::Jne_rel32_64,
            (Cc::L, false) => Code::Jl_rel32_64,
            (Cc::Le, false) => Code::Jle_rel32_64,
            (Cc::G, false) => Code::Jg_rel32_64,
            (Cc::Ge, false) => Code::Jge_rel32_64,
            (Cc::B, false) => Code::Jb_rel32_64,
            (Cc::Be, false) => Code::Jbe_rel32_64,
            (Cc::A, false) => Code::Ja_rel32_64,
            (Cc::Ae, false) => Code::Jae_rel32_64,
            (Cc::P, false) => Code::Jp_rel32_64,
            (Cc::Np, false) => Code::Jnp_rel32_64,
            (Cc::E, true) => Code::Je_rel8_64,
            (Cc::Ne, true) => Code::Jne_rel8_64,
            (Cc::L, true) => Code::Jl_rel8_64,
            (Cc::Le, true) => Code::Jle_rel8_64,
            (Cc::G, true) => Code::Jg_rel8_64,
            (Cc::Ge, true) => Code::Jge_rel8_64,
            (Cc::B, true) => Code::Jb_rel8_64,
            (Cc::Be, true) => Code::Jbe_rel8_64,
            (Cc::A, true) => Code::Ja_rel8_64,
            (Cc::Ae, true) => Code::Jae_rel8_64,
            (Cc::P, true) => Code::Jp_rel8_64,
            (Cc::Np, true) => Code::Jnp_rel8_64,
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
    Ins(Instruction),
    /// An instruction whose memory operand is `[rip + pool entry]`.
    Pool(Instruction, u32),
    /// Binds a label here.
    Label(u32),
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
    sites: Vec<Site>,
    kinds: Vec<SiteKind>,
    slots_at: usize,
}

/// The marker a memory operand gets until its displacement is patched.
pub(super) fn pool_mem() -> MemoryOperand {
    MemoryOperand::with_base_displ(Register::RIP, 0)
}

thread_local! {
    /// The encoder's output buffer of the last function this thread
    /// encoded, reused by the next.
    static SPARE_CODE: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Encodes `items`; `pool` holds 8-byte constants referenced by
/// [`Item::Pool`], `kinds` says how each external callee is reached.
pub(super) fn encode(
    items: &[Item],
    labels: usize,
    pool: &[u64],
    kinds: Vec<SiteKind>,
) -> Result<Prepared, iced_x86::IcedError> {
    let mut enc = Encoder::try_with_capacity(64, 0)?;
    // The encoder writes into this thread's buffer of the last function;
    // the result is copied out at its exact size below (one small
    // allocation instead of a large one sized for the worst case).
    let mut spare = SPARE_CODE.take();
    spare.clear();
    spare.reserve(items.len() * 5 + 64);
    enc.set_buffer(spare);
    let mut at = vec![usize::MAX; labels];
    // (rel32 position, label): the rel32 is relative to position + 4.
    let mut jumps: Vec<(usize, u32)> = Vec::with_capacity(labels);
    // (disp32 position, instruction end, pool entry).
    let mut pool_refs: Vec<(usize, usize, u32)> = Vec::with_capacity(pool.len());
    let mut sites = Vec::with_capacity(kinds.len());
    let mut pos = 0usize;
    let raw = |enc: &mut Encoder, bytes: &[u8]| {
        let mut b = enc.take_buffer();
        b.extend_from_slice(bytes);
        enc.set_buffer(b);
    };
    for item in items {
        match item {
            Item::Ins(ins) => pos += enc.encode(ins, pos as u64)?,
            Item::Pool(ins, entry) => {
                let mut ins = *ins;
                ins.set_memory_displacement64(pos as u64);
                let len = enc.encode(&ins, pos as u64)?;
                let off = enc.get_constant_offsets().displacement_offset();
                pool_refs.push((pos + off, pos + len, *entry));
                pos += len;
            }
            Item::Label(l) => {
                if let Some(slot) = at.get_mut(*l as usize) {
                    *slot = pos;
                }
            }
            Item::Jmp(l) | Item::Jcc(_, l) => {
                let cc = match item {
                    Item::Jcc(cc, _) => Some(*cc),
                    _ => None,
                };
                let code = |short| match cc {
                    Some(cc) => cc.jcc(short),
                    None if short => Code::Jmp_rel8_64,
                    None => Code::Jmp_rel32_64,
                };
                let target = at.get(*l as usize).copied().unwrap_or(usize::MAX);
                if target != usize::MAX {
                    // Backward: the short form when it reaches.
                    let short = pos + 2 - target <= 128;
                    let ins = Instruction::with_branch(code(short), target as u64)?;
                    pos += enc.encode(&ins, pos as u64)?;
                } else {
                    let ins = Instruction::with_branch(code(false), pos as u64)?;
                    pos += enc.encode(&ins, pos as u64)?;
                    jumps.push((pos - 4, *l));
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
                raw(&mut enc, &[0xCC; 10][..size]);
                pos += size;
            }
            Item::AddrOf(reg, ext) => {
                let ins = Instruction::with2(Code::Mov_r64_imm64, *reg, 0u64)?;
                let len = enc.encode(&ins, pos as u64)?;
                sites.push(Site {
                    offset: pos + len - 8,
                    ext: *ext,
                    call: false,
                });
                pos += len;
            }
        }
    }
    let code = enc.take_buffer();
    let code_end = code.len().next_multiple_of(8);
    let pool_at = code_end;
    let slots_at = pool_at + 8 * pool.len();
    let mut bytes = Vec::with_capacity(slots_at + 8 * kinds.len());
    bytes.extend_from_slice(&code);
    SPARE_CODE.set(code);
    for (p, l) in jumps {
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
    for (p, end, entry) in pool_refs {
        let rel = (pool_at + 8 * entry as usize) as i64 - end as i64;
        if let Some(b) = bytes.get_mut(p..p + 4) {
            b.copy_from_slice(&(rel as i32).to_le_bytes());
        }
    }
    bytes.resize(slots_at + 8 * kinds.len(), 0);
    Ok(Prepared {
        bytes,
        sites,
        kinds,
        slots_at,
    })
}

fn rel32(from_end: u64, to: u64) -> Option<i32> {
    i32::try_from(to.wrapping_sub(from_end) as i64).ok()
}

impl Prepared {
    /// Size of the code, its pool and its slots in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len()
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
