//! Ahead-of-time compilation: concrete functions and instantiations to a
//! relocatable Code section with the real x86-64 backend.
//!
//! Each function is prepared with every callee going through a resolver
//! that only numbers the callees, then laid out in `.text` (16-byte
//! aligned, `int3` padding). What depends on where things end up becomes
//! a relocation (`doc/formats/manifest.md`, *Ahead-of-time code*):
//!
//! - a call to a function of the same `.text` is a `call rel32` whose
//!   displacement is written here, so it needs nothing at load;
//! - a call to any other symbol (another module's export, an instantiation
//!   left to the loader) is `plt32` with addend −4;
//! - a call to a native import goes through a slot: `call [rip + rel32]`,
//!   `gotpcrel` with addend −4;
//! - a function address (`func_addr`) is the `abs64` immediate of a
//!   `mov r64, imm64`;
//! - the trap handler's address, which the backend keeps in the function's
//!   constant pool, is `abs64` against the runtime symbol [`TRAP_SYMBOL`].

use std::collections::{HashMap, HashSet};

use jit::backend::{Backend, CallResolver, CallTarget, LinkForm, Options, PreparedFunction};
use jit::instantiate::Instance;
use jit::ir::{Callee, Op};
use smf::RelocType;

/// The undefined symbol every module with code imports for its trap
/// handler: an `extern "C" fn(kind: u32, code: u32) -> !` the loader binds
/// (`jit::backend::TrapRuntime::handler` is one); example: [`compile`].
pub const TRAP_SYMBOL: &str = "__smfjit_trap";

/// Alignment of every function in `.text`.
const FUNCTION_ALIGN: usize = 16;

/// Trap-handler values no real handler has (non-canonical addresses):
/// compiling with two of them and comparing finds the pool entry holding
/// the handler. A third covers a function whose float constants happen to
/// have one probe's bits (the pool shares equal entries).
const TRAP_PROBES: [u64; 3] = [
    0x5452_4150_5f41_4f54,
    0x7472_6170_5f61_6f74,
    0x8000_7472_6170_0001,
];

/// A function placed in `.text` (example: [`compile`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Its symbol.
    pub symbol: String,
    /// Offset in `.text`.
    pub offset: u64,
    /// Bytes of code, constant pool and (unused) far-call slots.
    pub size: u64,
}

/// A field of `.text` the loader patches (example: [`compile`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixup {
    /// Offset of the field in `.text`.
    pub offset: u64,
    /// The symbol it refers to.
    pub symbol: String,
    /// How.
    pub kind: RelocType,
    /// The addend.
    pub addend: i64,
}

/// A compiled Code section (example: [`compile`]).
#[derive(Debug, Clone, Default)]
pub struct Text {
    /// The section's bytes.
    pub bytes: Vec<u8>,
    /// The functions, in the order given.
    pub functions: Vec<Placed>,
    /// The relocations, by offset.
    pub fixups: Vec<Fixup>,
}

/// Numbers each callee as the backend asks for it. Native imports are
/// reached through a slot (they may lie anywhere in the address space)
/// unless their address is taken, which needs the entry itself.
struct Numbering<'a> {
    names: Vec<String>,
    address_taken: &'a HashSet<String>,
}

impl CallResolver for Numbering<'_> {
    fn resolve(&mut self, callee: &Callee) -> Result<CallTarget, jit::Error> {
        let (name, native) = match callee {
            Callee::Symbol(s) => (s, false),
            Callee::Import(s) => (s, true),
            Callee::Template { name, .. } => {
                return Err(jit::Error::new(jit::ErrorKind::Unresolved(
                    name.to_string(),
                )));
            }
        };
        // The numbers only identify the callee in the link sites; they are
        // never used as addresses.
        let n = self.names.len() as u64;
        self.names.push(name.clone());
        Ok(if native && !self.address_taken.contains(name) {
            CallTarget::Slot(n)
        } else {
            CallTarget::Direct(n)
        })
    }
}

/// One function compiled position-independently: its bytes and, per
/// field, the callee name and form.
struct Relocatable {
    bytes: Vec<u8>,
    sites: Vec<(usize, String, LinkForm)>,
    trap_at: usize,
}

fn prepare(
    backend: &Backend,
    instance: &Instance,
    address_taken: &HashSet<String>,
) -> Result<(PreparedFunction, Vec<String>), String> {
    let mut numbering = Numbering {
        names: Vec::new(),
        address_taken,
    };
    let prepared = backend
        .prepare(&instance.function, &instance.reg_types, &[], &mut numbering)
        .map_err(|e| e.to_string())?;
    Ok((prepared, numbering.names))
}

fn compile_one(instance: &Instance) -> Result<Relocatable, String> {
    let mut address_taken = HashSet::new();
    for block in &instance.function.blocks {
        for inst in &block.insts {
            if let Op::FuncAddr {
                callee: Callee::Import(name),
                ..
            } = &inst.op
            {
                address_taken.insert(name.clone());
            }
        }
    }
    let mut compiled = Vec::with_capacity(TRAP_PROBES.len());
    for probe in TRAP_PROBES {
        // Explicit null tests: the module's code runs in whatever process
        // loads it, whose fault handling is not this one's.
        let backend = Backend::new(Options {
            trap_handler: probe,
            implicit_null_checks: false,
        });
        let (prepared, names) = prepare(&backend, instance, &address_taken)?;
        let (bytes, sites) = prepared.relocatable();
        compiled.push((probe, bytes, sites, names));
    }
    let pairs = [(0, 1), (0, 2), (1, 2)];
    let (trap_at, (mut bytes, sites, names)) = pairs
        .iter()
        .find_map(|&(i, j)| {
            let (pa, a, ..) = compiled.get(i)?;
            let (pb, b, ..) = compiled.get(j)?;
            let at = trap_entry(a, *pa, b, *pb)?;
            let (_, bytes, sites, names) = compiled.swap_remove(i);
            Some((at, (bytes, sites, names)))
        })
        .ok_or_else(|| {
            format!(
                "cannot locate the trap handler in the code of '{}'",
                instance.symbol
            )
        })?;
    if let Some(field) = bytes.get_mut(trap_at..trap_at + 8) {
        field.fill(0);
    }
    let sites = sites
        .into_iter()
        .map(|s| {
            let name = names.get(s.callee).cloned().unwrap_or_default();
            (s.offset, name, s.form)
        })
        .collect();
    Ok(Relocatable {
        bytes,
        sites,
        trap_at,
    })
}

/// The offset of the one 8-byte pool entry where two compilations that
/// differ only in the trap handler (`pa` in `a`, `pb` in `b`) differ;
/// `None` unless that is the only difference (a float constant with a
/// probe's bits would share the entry and change the pool's size).
fn trap_entry(a: &[u8], pa: u64, b: &[u8], pb: u64) -> Option<usize> {
    if a.len() != b.len() {
        return None;
    }
    let first = a.iter().zip(b).position(|(x, y)| x != y)?;
    let at = first - first % 8;
    let same_elsewhere = a
        .iter()
        .zip(b)
        .enumerate()
        .all(|(i, (x, y))| x == y || (at..at + 8).contains(&i));
    let holds = |code: &[u8], probe: u64| code.get(at..at + 8) == Some(&probe.to_le_bytes()[..]);
    (holds(a, pa) && holds(b, pb) && same_elsewhere).then_some(at)
}

/// Compiles `instances` into one `.text`, in order.
///
/// ```
/// let source = "fn twice(%x: i64) -> i64 {\nentry:\n    %y = add i64 %x, %x\n    ret %y\n}\n";
/// let library = smfjit::jit::text::parse_library(source)?;
/// let instance = smfjit::jit::instantiate::instantiate_symbol(&library, "twice")?;
/// let text = smfjit::build::aot::compile(&[instance])?;
/// assert_eq!(text.functions[0].symbol, "twice");
/// assert_eq!(text.functions[0].offset, 0);
/// // The trap handler's address is the only field left to the loader.
/// assert!(text.fixups.iter().all(|f| f.symbol == smfjit::build::aot::TRAP_SYMBOL));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// A function the backend cannot compile, or a `.text` too large for the
/// 32-bit displacements between its functions.
pub fn compile(instances: &[Instance]) -> Result<Text, String> {
    let mut text = Text::default();
    let mut pending = Vec::new();
    for instance in instances {
        let shared = instance
            .function
            .blocks
            .iter()
            .flat_map(|b| &b.insts)
            .any(|i| i.op.is_shared());
        if shared {
            return Err(format!(
                "`{}` uses a shared memory or table, which only code made at run time can \
                 reach (a descriptor has no address before the module is loaded): make it a \
                 template, or leave it out of `compile`",
                instance.symbol
            ));
        }
        let code = compile_one(instance)?;
        let offset = text.bytes.len().next_multiple_of(FUNCTION_ALIGN);
        text.bytes.resize(offset, 0xCC);
        text.bytes.extend_from_slice(&code.bytes);
        text.functions.push(Placed {
            symbol: instance.symbol.clone(),
            offset: offset as u64,
            size: code.bytes.len() as u64,
        });
        pending.push((offset, code));
    }
    let local: HashMap<&str, u64> = text
        .functions
        .iter()
        .map(|p| (p.symbol.as_str(), p.offset))
        .collect();
    let mut fixups = Vec::new();
    for (base, code) in &pending {
        fixups.push(Fixup {
            offset: (base + code.trap_at) as u64,
            symbol: TRAP_SYMBOL.to_owned(),
            kind: RelocType::Abs64,
            addend: 0,
        });
        for (at, name, form) in &code.sites {
            let field = base + at;
            let (kind, addend) = match form {
                LinkForm::CallRel32 => {
                    if let Some(&target) = local.get(name.as_str()) {
                        let rel = i32::try_from(target as i64 - (field as i64 + 4))
                            .map_err(|_| "'.text' exceeds 2 GiB".to_owned())?;
                        if let Some(b) = text.bytes.get_mut(field..field + 4) {
                            b.copy_from_slice(&rel.to_le_bytes());
                        }
                        continue;
                    }
                    (RelocType::Plt32, -4)
                }
                LinkForm::SlotRel32 => (RelocType::GotPcRel, -4),
                LinkForm::Abs64 => (RelocType::Abs64, 0),
            };
            fixups.push(Fixup {
                offset: field as u64,
                symbol: name.clone(),
                kind,
                addend,
            });
        }
    }
    fixups.sort_by_key(|f| f.offset);
    text.fixups = fixups;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::trap_entry;

    const A: u64 = 0x1111_2222_3333_4444;
    const B: u64 = 0x5555_6666_7777_8888;

    fn code(probe: u64, at: usize, len: usize) -> Vec<u8> {
        let mut v = vec![0x90; len];
        v[at..at + 8].copy_from_slice(&probe.to_le_bytes());
        v
    }

    #[test]
    fn finds_the_entry_that_holds_the_probes() {
        for at in [0, 8, 16] {
            assert_eq!(
                trap_entry(&code(A, at, 24), A, &code(B, at, 24), B),
                Some(at)
            );
        }
    }

    #[test]
    fn refuses_any_other_difference() {
        let (a, b) = (code(A, 8, 24), code(B, 8, 24));
        // Lengths differ (a constant shared the entry with one probe).
        assert_eq!(trap_entry(&a, A, &b[..23], B), None);
        // A byte differs outside the entry, just before and just after it.
        for k in [7, 16] {
            let mut c = b.clone();
            c[k] ^= 1;
            assert_eq!(trap_entry(&a, A, &c, B), None, "{k}");
        }
        // The entry differs but does not hold the probes.
        assert_eq!(trap_entry(&a, B, &b, A), None);
        // Nothing differs.
        assert_eq!(trap_entry(&a, A, &a, A), None);
    }
}
