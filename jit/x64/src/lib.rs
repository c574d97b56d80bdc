//! The x86-64 backend of the template IR: concrete, verified functions to machine code in
//! W^X memory, System V calling convention, agreeing bit for bit with the
//! reference interpreter.
//!
//! The pipeline is short and each stage is a module:
//! `regalloc` computes liveness and assigns every virtual register
//! a register, a spill slot, an immediate or a pool constant (linear
//! scan); `lower` turns each IR operation into instruction records
//! (`inst`: an iced-x86 `Code` naming the operation and its operands)
//! over those locations (`asm` is its builder, `moves` the parallel-move
//! resolver for block arguments and calls); `emit` encodes at offset 0
//! with `encode`, the backend's own table of instruction forms (iced-x86
//! is its reference and its fallback, see [`encoder_fallbacks`]), resolves
//! labels and the constant pool, and leaves fixed-size call sites; [`Backend::publish`] reserves room in an
//! [`execmem::CodeBatch`], links the call sites for the now-known address
//! and publishes the batch with one protection change.
//!
//! Callees are reached through a [`CallResolver`] the embedder provides:
//! the loader answers with an entry point ([`CallTarget::Direct`]; it may
//! compile the callee first) or with the address of a slot it fills later
//! ([`CallTarget::Slot`], for lazy binding and cycles). Functions compiled
//! in one batch call each other directly without asking. Direct calls
//! become `call rel32` when the target is within ±2 GiB and go through an
//! 8-byte slot after the function otherwise.
//!
//! Shared memories and tables are reached through their descriptors
//! (`jit_shared`), whose addresses the resolver gives as well
//! ([`CallResolver::memory`], [`CallResolver::table`]; a
//! [`SharedResolver`] holds them by name): the code embeds each address
//! and reads the length at every access, so no length or base it uses can
//! be stale, and grows call `jit_shared`'s runtime.
//!
//! Traps call the trap handler named in [`Options`] with the trap kind in
//! `edi` and the code in `esi` (see [`TrapRuntime`] for the handler that
//! turns a trap back into a [`Trap`] value for the caller).

#![deny(unsafe_code)]

mod asm;
mod disasm;
mod emit;
mod encode;
mod error;
// Unsafe code: the SIGSEGV handler behind implicit null checks.
#[allow(unsafe_code)]
mod fault;
mod inst;
pub mod lazy;
mod lower;
mod moves;
mod regalloc;
mod runtime;
pub mod thunk;
mod unroll;

use std::collections::HashMap;

use execmem::{CodeBatch, ExecMemory, PublishedCode, Reservation};

pub use disasm::{Syntax, disassemble, disassemble_function};
pub use emit::{LinkForm, LinkSite, Prepared};
pub use encode::encoder_fallbacks;
pub use error::Error;
pub use lower::{TRAP_DIVIDE_BY_ZERO, TRAP_EXPLICIT, TRAP_NULL_POINTER, TRAP_OUT_OF_BOUNDS};
pub use runtime::{Trap, TrapRuntime};

use emit::SiteKind;
use jit_ir::instantiate::Instance;
use jit_ir::ir::{Callee, Function};
use jit_ir::verify::RegTypes;
use jit_shared::Space;

/// Where calls to a callee go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallTarget {
    /// The callee's entry point.
    Direct(u64),
    /// The address of an 8-byte slot holding the entry point; calls load
    /// it every time, so the slot may be filled or patched later.
    Slot(u64),
}

/// Maps callees (instantiations by mangled name, other modules' symbols,
/// native imports) to where calls reach them, and shared memories and
/// tables to their descriptors.
pub trait CallResolver {
    /// Where calls to `callee` (a [`Callee::Symbol`] or
    /// [`Callee::Import`]) go. May compile the callee first.
    ///
    /// # Errors
    ///
    /// Whatever stops the callee from being found or compiled; the
    /// compilation fails with [`Error::Unresolved`].
    fn resolve(&mut self, callee: &Callee) -> Result<CallTarget, jit_ir::Error>;

    /// The address of the [`MemoryDescriptor`](jit_shared::MemoryDescriptor)
    /// of the shared memory `name` (its
    /// [`descriptor_address`](jit_shared::SharedMemory::descriptor_address)).
    /// The code embeds it and reads the descriptor at every access, so
    /// the memory must outlive the code. Asked once per memory a function
    /// uses.
    ///
    /// # Errors
    ///
    /// By default, [`jit_ir::ErrorKind::Unresolved`] naming the memory: a
    /// resolver that knows no memory. The compilation fails with
    /// [`Error::UnresolvedShared`].
    fn memory(&mut self, name: &str) -> Result<u64, jit_ir::Error> {
        Err(unresolved(name))
    }

    /// The address of the [`TableDescriptor`](jit_shared::TableDescriptor)
    /// of the shared table `name`, as [`CallResolver::memory`] for
    /// memories.
    ///
    /// # Errors
    ///
    /// By default, [`jit_ir::ErrorKind::Unresolved`] naming the table. The
    /// compilation fails with [`Error::UnresolvedShared`].
    fn table(&mut self, name: &str) -> Result<u64, jit_ir::Error> {
        Err(unresolved(name))
    }
}

#[cold]
fn unresolved(name: &str) -> jit_ir::Error {
    jit_ir::Error::new(jit_ir::ErrorKind::Unresolved(name.to_owned()))
}

/// Any closure from callee to target is a resolver (of callees only: it
/// knows no shared memory or table; see [`SharedResolver`]).
impl<F> CallResolver for F
where
    F: FnMut(&Callee) -> Result<CallTarget, jit_ir::Error>,
{
    fn resolve(&mut self, callee: &Callee) -> Result<CallTarget, jit_ir::Error> {
        self(callee)
    }
}

/// A resolver of callees (any [`CallResolver`], a closure for one)
/// together with the descriptors of shared memories and tables by name:
/// what an embedder or a test gives the backend for code that uses them.
/// A name it was not given is asked of the inner resolver.
///
/// ```
/// use jit_shared::{SharedMemory, SharedTable};
/// use jit_x64::{CallResolver, NoCallees, SharedResolver};
///
/// let heap = SharedMemory::new("heap", 1, Some(4))?;
/// let dispatch = SharedTable::new("dispatch", 4, None)?;
/// let mut resolver = SharedResolver::new(NoCallees)
///     .with_memory("heap", heap.descriptor_address())
///     .with_table("dispatch", dispatch.descriptor_address());
/// assert_eq!(resolver.memory("heap")?, heap.descriptor_address());
/// assert!(resolver.table("heap").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct SharedResolver<C> {
    callees: C,
    memories: HashMap<String, u64>,
    tables: HashMap<String, u64>,
}

impl<C> SharedResolver<C> {
    /// A resolver asking `callees` for callees, and knowing no memory or
    /// table yet.
    pub fn new(callees: C) -> Self {
        SharedResolver {
            callees,
            memories: HashMap::new(),
            tables: HashMap::new(),
        }
    }

    /// Answers the memory `name` with the descriptor at `descriptor` (a
    /// [`SharedMemory::descriptor_address`](jit_shared::SharedMemory::descriptor_address),
    /// which must outlive the code compiled with it).
    #[must_use]
    pub fn with_memory(mut self, name: impl Into<String>, descriptor: u64) -> Self {
        self.memories.insert(name.into(), descriptor);
        self
    }

    /// Answers the table `name` with the descriptor at `descriptor` (a
    /// [`SharedTable::descriptor_address`](jit_shared::SharedTable::descriptor_address),
    /// which must outlive the code compiled with it).
    #[must_use]
    pub fn with_table(mut self, name: impl Into<String>, descriptor: u64) -> Self {
        self.tables.insert(name.into(), descriptor);
        self
    }

    /// The resolver of callees.
    pub fn callees(&mut self) -> &mut C {
        &mut self.callees
    }
}

impl<C: CallResolver> CallResolver for SharedResolver<C> {
    fn resolve(&mut self, callee: &Callee) -> Result<CallTarget, jit_ir::Error> {
        self.callees.resolve(callee)
    }

    fn memory(&mut self, name: &str) -> Result<u64, jit_ir::Error> {
        match self.memories.get(name) {
            Some(&descriptor) => Ok(descriptor),
            None => self.callees.memory(name),
        }
    }

    fn table(&mut self, name: &str) -> Result<u64, jit_ir::Error> {
        match self.tables.get(name) {
            Some(&descriptor) => Ok(descriptor),
            None => self.callees.table(name),
        }
    }
}

/// A resolver that knows no callee: for functions that call nothing
/// outside their batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCallees;

impl CallResolver for NoCallees {
    fn resolve(&mut self, callee: &Callee) -> Result<CallTarget, jit_ir::Error> {
        let name = match callee {
            Callee::Symbol(s) | Callee::Import(s) => s.clone(),
            Callee::Template { name, .. } => name.to_string(),
        };
        Err(jit_ir::Error::new(jit_ir::ErrorKind::Unresolved(name)))
    }
}

/// What the generated code needs from its environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Address of the trap handler, an `extern "C" fn(kind: u32, code: u32) -> !`
    /// (kinds [`TRAP_DIVIDE_BY_ZERO`], [`TRAP_EXPLICIT`],
    /// [`TRAP_NULL_POINTER`], [`TRAP_OUT_OF_BOUNDS`]).
    /// [`TrapRuntime::handler`] provides one.
    pub trap_handler: u64,
    /// Loads and stores through a null address trap by faulting on page 0
    /// instead of testing the address first: the access's own fault is
    /// turned into the `NullPointer` trap by the fault handler a
    /// [`TrapRuntime`] installs. Only for code that runs in this process
    /// while a runtime that reports [`TrapRuntime::catches_null_faults`]
    /// exists ([`TrapRuntime::options`] sets both fields).
    pub implicit_null_checks: bool,
}

/// The code generator. Cheap to create and `Sync`: one per loader.
#[derive(Clone, Debug)]
pub struct Backend {
    options: Options,
}

/// How one external callee of a prepared function is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// A function of the same batch, by index.
    Member(usize),
    /// What the resolver said.
    Resolved(CallTarget),
}

/// A function encoded and ready to be placed: its size is known, its
/// call sites await the final address.
#[derive(Clone, Debug)]
pub struct PreparedFunction {
    name: String,
    code: Prepared,
    targets: Vec<Target>,
}

impl PreparedFunction {
    /// The function's symbol.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes of code, constant pool and call slots.
    pub fn size(&self) -> usize {
        self.code.size()
    }

    /// Bytes of instructions: the function's first [`code_len`] bytes
    /// decode as code (trap stubs included), the rest — padding to 8, the
    /// constant pool, the call slots — is data.
    ///
    /// [`code_len`]: PreparedFunction::code_len
    pub fn code_len(&self) -> usize {
        self.code.code_len()
    }

    /// Writes the function, linked for its entry at `address`, into `out`
    /// (exactly [`PreparedFunction::size`] bytes of a reservation the
    /// caller made, e.g. in a batch it publishes itself). `members` holds
    /// the entry of each name of the `batch` list given to
    /// [`Backend::prepare`], in that order; resolved callees are linked as
    /// the resolver answered.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when `out` is not the function's size or a
    /// batch member has no entry in `members`.
    pub fn link_into(&self, address: u64, members: &[u64], out: &mut [u8]) -> Result<(), Error> {
        if out.len() != self.size() {
            return Err(Error::unsupported(
                &self.name,
                format!(
                    "linking into {} bytes, but the function takes {}",
                    out.len(),
                    self.size()
                ),
            ));
        }
        let mut entries = Vec::with_capacity(self.targets.len());
        for target in &self.targets {
            entries.push(match target {
                Target::Member(i) => *members.get(*i).ok_or_else(|| {
                    Error::unsupported(&self.name, format!("batch member {i} has no entry"))
                })?,
                Target::Resolved(CallTarget::Direct(a) | CallTarget::Slot(a)) => *a,
            });
        }
        self.code.link(address, &entries, out);
        Ok(())
    }
}

/// A function lowered to instructions, not yet encoded.
#[derive(Clone)]
pub struct LoweredFunction {
    name: String,
    asm: asm::Asm,
    kinds: Vec<SiteKind>,
    targets: Vec<Target>,
}

impl std::fmt::Debug for LoweredFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoweredFunction")
            .field("name", &self.name)
            .field("items", &self.asm.items.len())
            .finish()
    }
}

impl LoweredFunction {
    /// Number of instructions, labels and call sites.
    pub fn len(&self) -> usize {
        self.asm.items.len()
    }

    /// Whether nothing was lowered (never for a verified function, which
    /// has at least `endbr64` and a return or trap).
    pub fn is_empty(&self) -> bool {
        self.asm.items.is_empty()
    }

    /// Encodes (with the backend's own encoder, see
    /// [`encoder_fallbacks`]), resolves labels and the constant pool.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] for an instruction that cannot be encoded (a
    /// backend bug), [`Error::TooLarge`] past execmem's reservation limit.
    pub fn encode(self) -> Result<PreparedFunction, Error> {
        self.encode_with(false)
    }

    /// As [`LoweredFunction::encode`], but every instruction encoded by
    /// iced-x86's `Encoder`: the reference the backend's own encoder is
    /// checked against, byte for byte. Slower, and it builds iced-x86's
    /// op-code tables; for tests.
    ///
    /// # Errors
    ///
    /// As [`LoweredFunction::encode`].
    pub fn encode_reference(self) -> Result<PreparedFunction, Error> {
        self.encode_with(true)
    }

    fn encode_with(self, reference: bool) -> Result<PreparedFunction, Error> {
        let name = self.name;
        let code = emit::encode(
            &self.asm.items,
            self.asm.label_count(),
            &self.asm.pool,
            self.kinds,
            reference,
        );
        self.asm.recycle();
        let code = code.map_err(|e| Error::encode(&name, &e))?;
        if code.size() > execmem::limits::MAX_RESERVATION_LEN {
            return Err(Error::TooLarge {
                function: name,
                what: "code size",
            });
        }
        Ok(PreparedFunction {
            name,
            code,
            targets: self.targets,
        })
    }
}

/// Published code of one function.
#[derive(Clone, Debug)]
pub struct CompiledFunction {
    code: PublishedCode,
    reservation: Reservation,
}

impl CompiledFunction {
    /// The entry point (it starts with `endbr64`).
    pub fn entry(&self) -> *const u8 {
        self.reservation.address() as *const u8
    }

    /// The entry point as an address.
    pub fn address(&self) -> u64 {
        self.reservation.address() as u64
    }

    /// The published bytes: code, then constant pool and call slots.
    pub fn bytes(&self) -> &[u8] {
        self.code.bytes(&self.reservation).unwrap_or(&[])
    }

    /// How many of [`bytes`](Self::bytes) are instructions.
    pub fn instruction_len(&self) -> usize {
        self.code
            .instruction_len(&self.reservation)
            .unwrap_or(self.reservation.size())
    }

    /// The published memory, which stays mapped while any clone lives.
    pub fn code(&self) -> &PublishedCode {
        &self.code
    }
}

/// Published code of a batch of functions, in the order given.
#[derive(Clone, Debug)]
pub struct CompiledBatch {
    code: PublishedCode,
    functions: Vec<(String, Reservation)>,
}

impl CompiledBatch {
    /// The functions with their symbols, in batch order.
    pub fn functions(&self) -> impl Iterator<Item = (&str, CompiledFunction)> + '_ {
        self.functions.iter().map(|(n, r)| {
            (
                n.as_str(),
                CompiledFunction {
                    code: self.code.clone(),
                    reservation: *r,
                },
            )
        })
    }

    /// The compiled function named `symbol`.
    pub fn function(&self, symbol: &str) -> Option<CompiledFunction> {
        self.functions().find(|(n, _)| *n == symbol).map(|(_, f)| f)
    }

    /// The published memory shared by every function of the batch.
    pub fn code(&self) -> &PublishedCode {
        &self.code
    }
}

/// What the lowering of one function asks of the embedder, answered
/// through its [`CallResolver`]: callees outside the batch (recorded in
/// order as link targets) and descriptors, with errors naming the
/// function.
struct Environment<'a> {
    function: &'a str,
    batch: &'a [&'a str],
    resolver: &'a mut dyn CallResolver,
    targets: Vec<Target>,
}

impl lower::Environment for Environment<'_> {
    fn callee(&mut self, callee: &Callee) -> Result<SiteKind, Error> {
        let symbol = match callee {
            Callee::Symbol(s) => Some(s.as_str()),
            _ => None,
        };
        let target = match symbol.and_then(|s| self.batch.iter().position(|b| *b == s)) {
            Some(i) => Target::Member(i),
            None => Target::Resolved(self.resolver.resolve(callee).map_err(|source| {
                Error::Unresolved {
                    function: self.function.to_owned(),
                    callee: match callee {
                        Callee::Symbol(s) | Callee::Import(s) => s.clone(),
                        Callee::Template { name, .. } => name.to_string(),
                    },
                    source: Box::new(source),
                }
            })?),
        };
        let kind = match target {
            Target::Resolved(CallTarget::Slot(s)) => SiteKind::Slot(s),
            _ => SiteKind::Direct,
        };
        self.targets.push(target);
        Ok(kind)
    }

    fn descriptor(&mut self, space: Space, name: &str) -> Result<u64, Error> {
        let found = match space {
            Space::Memory => self.resolver.memory(name),
            Space::Table => self.resolver.table(name),
        };
        found.map_err(|source| Error::UnresolvedShared {
            function: self.function.to_owned(),
            space,
            name: name.to_owned(),
            source: Box::new(source),
        })
    }
}

impl Backend {
    /// A backend generating code for `options`.
    pub fn new(options: Options) -> Self {
        Backend { options }
    }

    /// Register allocation, lowering and encoding of one function, whose
    /// calls to names in `batch` (its own included) stay inside the batch:
    /// [`Backend::lower`] then [`LoweredFunction::encode`].
    ///
    /// # Errors
    ///
    /// As [`Backend::lower`] and [`LoweredFunction::encode`].
    pub fn prepare(
        &self,
        func: &Function,
        types: &RegTypes,
        batch: &[&str],
        resolver: &mut dyn CallResolver,
    ) -> Result<PreparedFunction, Error> {
        self.lower(func, types, batch, resolver)?.encode()
    }

    /// Register allocation and lowering to instruction records, callees
    /// resolved; nothing encoded yet.
    ///
    /// # Errors
    ///
    /// [`Error::Unresolved`] when the resolver fails, [`Error::Unsupported`]
    /// for a function that was not instantiated.
    pub fn lower(
        &self,
        func: &Function,
        types: &RegTypes,
        batch: &[&str],
        resolver: &mut dyn CallResolver,
    ) -> Result<LoweredFunction, Error> {
        let name = func.name.to_string();
        let split = unroll::split_reductions(func, types);
        let (func, types) = split.as_ref().map_or((func, types), |(f, t)| (f, t));
        let alloc = regalloc::allocate(func, types);
        let mut env = Environment {
            function: &name,
            batch,
            resolver,
            targets: Vec::new(),
        };
        let lowered = lower::lower(func, &alloc, &self.options, &mut env);
        regalloc::recycle(alloc);
        let (asm, ext) = lowered?;
        let targets = env.targets;
        Ok(LoweredFunction {
            name,
            asm,
            kinds: ext.kinds,
            targets,
        })
    }

    /// Places prepared functions into one batch of `memory`, links their
    /// calls and publishes them with one protection change.
    ///
    /// # Errors
    ///
    /// [`Error::Memory`] when execmem refuses, [`Error::DuplicateSymbol`].
    pub fn publish(
        &self,
        memory: &ExecMemory,
        prepared: &[PreparedFunction],
    ) -> Result<CompiledBatch, Error> {
        let total: usize = prepared.iter().map(|p| p.size() + 16).sum();
        let mut batch: CodeBatch = memory.batch_with_capacity(total);
        let mut seen = HashMap::with_capacity(prepared.len());
        let mut reservations = Vec::with_capacity(prepared.len());
        for p in prepared {
            if seen.insert(p.name.as_str(), ()).is_some() {
                return Err(Error::DuplicateSymbol(p.name.clone()));
            }
            reservations.push(batch.reserve(&p.name, p.size(), 16)?);
        }
        let members: Vec<u64> = reservations.iter().map(|r| r.address() as u64).collect();
        for (p, r) in prepared.iter().zip(&reservations) {
            p.link_into(r.address() as u64, &members, batch.bytes_mut(r)?)?;
            batch.set_instruction_len(r, p.code_len())?;
        }
        let code = batch.publish()?;
        Ok(CompiledBatch {
            code,
            functions: prepared
                .iter()
                .map(|p| p.name.clone())
                .zip(reservations)
                .collect(),
        })
    }

    /// Compiles one function to a callable entry point. Calls to its own
    /// symbol are direct; every other callee goes through `resolver`.
    ///
    /// # Errors
    ///
    /// As [`Backend::prepare`] and [`Backend::publish`].
    pub fn compile(
        &self,
        memory: &ExecMemory,
        func: &Function,
        types: &RegTypes,
        resolver: &mut dyn CallResolver,
    ) -> Result<CompiledFunction, Error> {
        let name = func.name.to_string();
        let p = self.prepare(func, types, &[name.as_str()], resolver)?;
        let batch = self.publish(memory, std::slice::from_ref(&p))?;
        let (code, mut functions) = (batch.code, batch.functions);
        let reservation = functions
            .pop()
            .map(|(_, r)| r)
            .ok_or(Error::DuplicateSymbol(name))?;
        Ok(CompiledFunction { code, reservation })
    }

    /// Compiles instantiations together: they call each other directly
    /// and are published at once (the loader's `Now` binding).
    ///
    /// # Errors
    ///
    /// As [`Backend::prepare`] and [`Backend::publish`].
    pub fn compile_batch(
        &self,
        memory: &ExecMemory,
        instances: &[&Instance],
        resolver: &mut dyn CallResolver,
    ) -> Result<CompiledBatch, Error> {
        let names: Vec<&str> = instances.iter().map(|i| i.symbol.as_str()).collect();
        let mut prepared = Vec::with_capacity(instances.len());
        for i in instances {
            prepared.push(self.prepare(&i.function, &i.reg_types, &names, resolver)?);
        }
        self.publish(memory, &prepared)
    }
}
