//! Test modules built with `smf::ModuleBuilder` around code assembled with
//! iced-x86, and a test instantiator that "compiles" names into tiny
//! functions.
#![allow(dead_code)] // each test file uses part of this

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use iced_x86::code_asm::CodeAssembler;
use loader::{Address, InstanceCode, Instantiator, ResolveContext};
use smf::{Binding, ModuleBuilder, RelocType, SectionType, SymbolDef, SymbolType, raw};

/// Assembles position-independent instructions (no relative operand
/// leaves the fragment).
pub fn asm(f: impl FnOnce(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(64).unwrap();
    f(&mut a).unwrap();
    a.assemble(0).unwrap()
}

/// One relocation inside a function, relative to the function's start.
#[derive(Debug, Clone)]
pub struct Fixup {
    pub offset: u64,
    pub symbol: String,
    pub kind: RelocType,
    pub addend: i64,
}

/// A function's bytes with the relocations its fields need.
#[derive(Debug, Clone, Default)]
pub struct Code {
    pub bytes: Vec<u8>,
    pub fixups: Vec<Fixup>,
}

impl Code {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends assembled instructions.
    pub fn asm(
        mut self,
        f: impl FnOnce(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>,
    ) -> Self {
        self.bytes.extend(asm(f));
        self
    }

    fn field(
        mut self,
        opcode: &[u8],
        width: usize,
        symbol: &str,
        kind: RelocType,
        addend: i64,
    ) -> Self {
        self.bytes.extend_from_slice(opcode);
        self.fixups.push(Fixup {
            offset: self.bytes.len() as u64,
            symbol: symbol.to_owned(),
            kind,
            addend,
        });
        self.bytes.extend(std::iter::repeat_n(0, width));
        self
    }

    /// `call symbol` through a `plt32` relocation.
    pub fn call_plt(self, symbol: &str) -> Self {
        self.field(&[0xE8], 4, symbol, RelocType::Plt32, -4)
    }

    /// `call symbol` through a `pc32` relocation.
    pub fn call_pc32(self, symbol: &str) -> Self {
        self.field(&[0xE8], 4, symbol, RelocType::Pc32, -4)
    }

    /// `call [rip + slot of symbol]` through a `gotpcrel` relocation.
    pub fn call_got(self, symbol: &str) -> Self {
        self.field(&[0xFF, 0x15], 4, symbol, RelocType::GotPcRel, -4)
    }

    /// `mov rax, symbol + addend` through an `abs64` relocation.
    pub fn movabs_rax(self, symbol: &str, addend: i64) -> Self {
        self.field(&[0x48, 0xB8], 8, symbol, RelocType::Abs64, addend)
    }

    /// `lea rax, [rip + symbol + addend]` through a `pc32` relocation.
    pub fn lea_rax(self, symbol: &str, addend: i64) -> Self {
        self.field(&[0x48, 0x8D, 0x05], 4, symbol, RelocType::Pc32, addend - 4)
    }

    /// `mov rax, [rip + slot of symbol]` through a `gotpcrel` relocation.
    pub fn load_got_rax(self, symbol: &str) -> Self {
        self.field(&[0x48, 0x8B, 0x05], 4, symbol, RelocType::GotPcRel, -4)
    }

    /// `ret`.
    pub fn ret(mut self) -> Self {
        self.bytes.push(0xC3);
        self
    }
}

/// A function returning `value` in eax.
pub fn returns(value: i32) -> Code {
    Code::new().asm(|a| {
        a.mov(iced_x86::code_asm::eax, value)?;
        a.ret()
    })
}

/// A function that calls `symbol` with its arguments and returns its
/// result: `call` emits the call instruction and its relocation.
pub fn forwards(symbol: &str, call: fn(Code, &str) -> Code) -> Code {
    use iced_x86::code_asm::rsp;
    // The call needs rsp 16-byte aligned; on entry it is 8 off.
    let code = Code::new().asm(|a| a.sub(rsp, 8));
    call(code, symbol).asm(|a| a.add(rsp, 8)).ret()
}

/// A data section's contents and the relocations inside it.
#[derive(Debug, Clone)]
pub struct DataSection {
    pub kind: SectionType,
    pub name: String,
    pub bytes: Vec<u8>,
    pub bss_size: u64,
    pub symbols: Vec<(String, u64)>,
    pub fixups: Vec<Fixup>,
}

/// Describes a module: functions in one `.text` section, data sections,
/// and the binding of each symbol (default global).
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub functions: Vec<(String, Binding, Code)>,
    pub data: Vec<DataSection>,
    pub weak_imports: Vec<String>,
    pub local: Vec<String>,
    pub note: Option<String>,
}

impl Spec {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn function(mut self, name: &str, code: Code) -> Self {
        self.functions
            .push((name.to_owned(), Binding::Global, code));
        self
    }

    pub fn weak_function(mut self, name: &str, code: Code) -> Self {
        self.functions.push((name.to_owned(), Binding::Weak, code));
        self
    }

    pub fn local_function(mut self, name: &str, code: Code) -> Self {
        self.functions.push((name.to_owned(), Binding::Local, code));
        self
    }

    pub fn data(mut self, section: DataSection) -> Self {
        self.data.push(section);
        self
    }

    pub fn weak_import(mut self, name: &str) -> Self {
        self.weak_imports.push(name.to_owned());
        self
    }

    /// The module's bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut b = ModuleBuilder::new();
        let mut text = Vec::new();
        let mut placed = Vec::new();
        for (_, _, code) in &self.functions {
            while text.len() % 16 != 0 {
                text.push(0xCC);
            }
            placed.push(text.len() as u64);
            text.extend_from_slice(&code.bytes);
        }
        let mut symbols: HashMap<String, smf::SymbolId> = HashMap::new();
        let mut pending: Vec<(smf::SectionId, u64, Fixup)> = Vec::new();
        if !text.is_empty() {
            let flags = raw::section_flags::READ | raw::section_flags::EXEC;
            let id = b
                .add_section(SectionType::Code, ".text", flags, 16, &text)
                .unwrap();
            for ((name, binding, code), at) in self.functions.iter().zip(&placed) {
                let mut def = SymbolDef::function(name, id, *at, code.bytes.len() as u64);
                def.binding = *binding;
                symbols.insert(name.clone(), b.add_symbol(def).unwrap());
                for f in &code.fixups {
                    pending.push((id, at + f.offset, f.clone()));
                }
            }
        }
        for d in &self.data {
            let flags = raw::section_flags::READ
                | if d.kind == SectionType::RoData {
                    0
                } else {
                    raw::section_flags::WRITE
                };
            let id = if d.kind == SectionType::Bss {
                b.add_bss(&d.name, d.bss_size, 8).unwrap()
            } else {
                b.add_section(d.kind, &d.name, flags, 8, &d.bytes).unwrap()
            };
            for (name, at) in &d.symbols {
                let mut def = SymbolDef::function(name, id, *at, 8);
                def.sym_type = SymbolType::Data;
                symbols.insert(name.clone(), b.add_symbol(def).unwrap());
            }
            for f in &d.fixups {
                pending.push((id, f.offset, f.clone()));
            }
        }
        for (target, offset, f) in pending {
            let symbol = match symbols.get(&f.symbol) {
                Some(id) => *id,
                None => {
                    let mut def = SymbolDef::import(&f.symbol, SymbolType::Function);
                    if self.weak_imports.contains(&f.symbol) {
                        def.binding = Binding::Weak;
                    }
                    let id = b.add_symbol(def).unwrap();
                    symbols.insert(f.symbol.clone(), id);
                    id
                }
            };
            b.add_relocation(target, offset, symbol, f.kind, f.addend);
        }
        if let Some(note) = &self.note {
            b.set_note(note, smf::NoteSize::Recorded).unwrap();
        }
        b.build().unwrap()
    }

    /// Writes the module into `dir` as `name` and returns its path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.build()).unwrap();
        path
    }
}

/// Calls a loaded `extern "C" fn() -> i32`.
pub fn call_i32(address: Address) -> i32 {
    // SAFETY: every test function called through this helper was assembled
    // as `extern "C" fn() -> i32` and its module is still loaded.
    let f: extern "C" fn() -> i32 = unsafe { std::mem::transmute(address.as_ptr()) };
    f()
}

/// Calls a loaded `extern "C" fn() -> u64`.
pub fn call_u64(address: Address) -> u64 {
    // SAFETY: as `call_i32`, for functions returning rax.
    let f: extern "C" fn() -> u64 = unsafe { std::mem::transmute(address.as_ptr()) };
    f()
}

/// The test instantiator. Names it knows:
/// - `const$N`: a function returning N;
/// - `sum$A$B`: resolves A and B (recursively) and returns A() + B();
/// - `deep$N`: for N > 0 resolves `deep$N-1` and returns 1 + its result;
///   `deep$0` returns 0;
/// - `cyc$X`: resolves the name after `cyc$X`'s `$` chain (`cyc$a` needs
///   `cyc$b`, `cyc$b` needs `cyc$c`, `cyc$c` needs `cyc$a`);
/// - `ping$` and `pong$`: `n == 0 ? 0 : 1 + other(n - 1)`, mutually
///   recursive, the inner one calling the outer through its slot;
/// - `batch$N`: returns N, placed in the loading module's batch if any;
/// - `bsum$A$B`: `batch$A() + batch$B()`, all three in that batch if any;
/// - `fail$...`: an error; anything else: declined.
///
/// Counts compilations per name; `delay` makes each compilation sleep so
/// concurrent misses overlap.
#[derive(Debug, Default)]
pub struct TestJit {
    pub compiled: Mutex<HashMap<String, usize>>,
    pub total: AtomicUsize,
    pub delay_ms: u64,
}

impl TestJit {
    pub fn with_delay(delay_ms: u64) -> Self {
        Self {
            delay_ms,
            ..Self::default()
        }
    }

    pub fn count(&self, name: &str) -> usize {
        self.compiled
            .lock()
            .unwrap()
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// Places `code` in the batch of the module being loaded when there is
    /// one, otherwise publishes it alone.
    fn place(
        &self,
        ctx: &mut ResolveContext<'_>,
        name: &str,
        code: &[u8],
    ) -> loader::Result<Option<InstanceCode>> {
        *self
            .compiled
            .lock()
            .unwrap()
            .entry(name.to_owned())
            .or_default() += 1;
        self.total.fetch_add(1, Ordering::SeqCst);
        match ctx.batch() {
            Some(batch) => {
                let entry = batch.reserve(name, code.len(), 16)?;
                batch.write(&entry, 0, code)?;
                Ok(Some(InstanceCode::in_batch(&entry)))
            }
            None => self.publish(ctx, name, code).map(Some),
        }
    }

    fn publish(
        &self,
        ctx: &ResolveContext<'_>,
        name: &str,
        code: &[u8],
    ) -> loader::Result<InstanceCode> {
        let function = ctx.memory().publish_function(name, code)?;
        Ok(InstanceCode::from(function))
    }
}

/// A function that calls `a` and `b` (absolute addresses) and returns the
/// sum of their i32 results.
fn sum_code(a: Address, b: Address) -> Vec<u8> {
    use iced_x86::code_asm::*;
    asm(|x| {
        x.push(rbx)?;
        x.mov(rax, a.get() as u64)?;
        x.call(rax)?;
        x.mov(ebx, eax)?;
        x.mov(rax, b.get() as u64)?;
        x.call(rax)?;
        x.add(eax, ebx)?;
        x.pop(rbx)?;
        x.ret()
    })
}

/// `f(n) = n == 0 ? 0 : 1 + callee(n - 1)` where the callee is called at
/// a known address, or through a slot when it is not compiled yet.
fn countdown_code(callee: Result<Address, *const usize>) -> Vec<u8> {
    use iced_x86::code_asm::*;
    asm(|a| {
        let mut zero = a.create_label();
        a.test(edi, edi)?;
        a.jz(zero)?;
        a.sub(rsp, 8)?;
        a.dec(edi)?;
        match callee {
            Ok(address) => {
                a.mov(rax, address.get() as u64)?;
                a.call(rax)?;
            }
            Err(slot) => {
                a.mov(rax, slot as u64)?;
                a.call(qword_ptr(rax))?;
            }
        }
        a.inc(eax)?;
        a.add(rsp, 8)?;
        a.ret()?;
        a.set_label(&mut zero)?;
        a.xor(eax, eax)?;
        a.ret()
    })
}

impl Instantiator for TestJit {
    fn instantiate(
        &self,
        name: &str,
        ctx: &mut ResolveContext<'_>,
    ) -> loader::Result<Option<InstanceCode>> {
        let parts: Vec<&str> = name.split('$').collect();
        let code = match parts.as_slice() {
            ["const", n] => {
                let Ok(n) = n.parse::<i32>() else {
                    return Ok(None);
                };
                returns(n).bytes
            }
            ["sum", a, b] => {
                let a = ctx.resolve(a)?;
                let b = ctx.resolve(b)?;
                sum_code(a, b)
            }
            ["deep", n] => {
                let Ok(n) = n.parse::<u32>() else {
                    return Ok(None);
                };
                if n == 0 {
                    returns(0).bytes
                } else {
                    let inner = ctx.resolve(&format!("deep${}", n - 1))?;
                    let one = ctx.resolve("const$1")?;
                    sum_code(one, inner)
                }
            }
            ["cyc", x] => {
                let next = match *x {
                    "a" => "cyc$b",
                    "b" => "cyc$c",
                    "c" => "cyc$a",
                    _ => return Ok(None),
                };
                ctx.resolve(next)?;
                returns(0).bytes
            }
            [name @ ("ping" | "pong"), ""] => {
                let other = if *name == "ping" { "pong$" } else { "ping$" };
                // Mutual recursion: the second of the two calls the first
                // through its slot, filled when the first finishes.
                let callee = if ctx.in_chain(other) {
                    Err(ctx.slot(other).as_ptr())
                } else {
                    Ok(ctx.resolve(other)?)
                };
                countdown_code(callee)
            }
            ["batch", n] => {
                let Ok(n) = n.parse::<i32>() else {
                    return Ok(None);
                };
                return self.place(ctx, name, &returns(n).bytes);
            }
            ["bsum", a, b] => {
                // Both callees go into the same batch when there is one, and
                // are linked to their reservations before anything runs.
                let a = ctx.resolve(&format!("batch${a}"))?;
                let b = ctx.resolve(&format!("batch${b}"))?;
                return self.place(ctx, name, &sum_code(a, b));
            }
            ["fail", ..] => {
                return Err(loader::Error::InstantiationFailed {
                    name: name.to_owned(),
                    source: loader::InstantiationError::other("the test instantiator refuses it"),
                });
            }
            _ => return Ok(None),
        };
        if self.delay_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(self.delay_ms));
        }
        *self
            .compiled
            .lock()
            .unwrap()
            .entry(name.to_owned())
            .or_default() += 1;
        self.total.fetch_add(1, Ordering::SeqCst);
        self.publish(ctx, name, &code).map(Some)
    }
}

/// Mappings of this process that are writable and executable at once.
pub fn writable_executable_mappings() -> Vec<String> {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|line| {
            let perms = line.split_whitespace().nth(1).unwrap_or("");
            perms.contains('w') && perms.contains('x')
        })
        .map(str::to_owned)
        .collect()
}

/// The bundled fixture module `name` (`tests/fixtures/NAME.smf`).
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/fixtures/{name}.smf"))
}

/// The signature written as a function type (`fn(ptr<f64>, i64) -> f64`).
pub fn signature(text: &str) -> jit::ir::Signature {
    match jit::text::parse_type(text).unwrap() {
        jit::ir::Type::Fn(sig) => *sig,
        other => panic!("not a function type: {other:?}"),
    }
}

/// Calls the function at `entry`, of signature `sig` (a function type's
/// text), through the process-wide trap runtime: a trap is an `Err`.
pub fn call_at(
    entry: *const u8,
    sig: &str,
    args: &[jit::interp::Value],
) -> Result<Option<jit::interp::Value>, jit::TrapKind> {
    let trap = loader::trap_runtime().unwrap();
    // SAFETY: `entry` is a resolved function of signature `sig`; pointer
    // arguments are live buffers the function reads within the length.
    unsafe { trap.call(entry, &signature(sig), args) }
}

/// Calls `symbol` as resolved by `loader` (a failure to resolve fails the
/// test), through the process-wide trap runtime.
pub fn call(
    loader: &loader::Loader,
    symbol: &str,
    sig: &str,
    args: &[jit::interp::Value],
) -> Result<Option<jit::interp::Value>, jit::TrapKind> {
    let entry = loader
        .resolve(symbol)
        .unwrap_or_else(|e| panic!("{symbol}: {e}"))
        .as_ptr();
    call_at(entry, sig, args)
}

/// A pointer argument to the elements of `xs`.
pub fn ptr<T>(xs: &[T]) -> jit::interp::Value {
    jit::interp::Value::Ptr(xs.as_ptr() as u64)
}

/// A length argument.
pub fn len(n: usize) -> jit::interp::Value {
    jit::interp::Value::I64(i64::try_from(n).unwrap())
}

/// A module offering the templates of `text`, every function a symbol.
pub fn module_of(dir: &Path, file: &str, text: &str) -> PathBuf {
    let lib = jit::text::parse_library(text).expect("parses");
    let encoded = jit::binary::encode_library(&lib);
    let mut b = smf::ModuleBuilder::new();
    b.set_template_code(&encoded.bytes).expect("template code");
    for (item, offset) in lib.items().iter().zip(&encoded.offsets) {
        if let jit::ir::Item::Function(f) = item {
            let params = u8::try_from(f.type_params.len()).expect("few parameters");
            b.add_symbol(smf::SymbolDef::template(
                &f.name.to_string(),
                params,
                u64::try_from(*offset).expect("offset"),
            ))
            .expect("symbol");
        }
    }
    let path = dir.join(file);
    std::fs::write(&path, b.build().expect("builds")).expect("writes");
    path
}
