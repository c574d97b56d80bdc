//! Tiered execution (BRIEF §11): instantiations that run in the reference
//! interpreter behind a real function pointer, and move to compiled code
//! when they are hot.
//!
//! Under [`TierPolicy::Interpreted`] or [`TierPolicy::Auto`] a miss checks
//! the template and arguments (`check_instantiation`: the errors a refused
//! argument or a template that does not verify give under `compiled`) and
//! makes a record and a *stub* (`jit::backend::thunk`): the name's address
//! from then on. The instance is built when it first runs or compiles, its
//! callees resolved when called. The
//! stub jumps through the first field of the instantiation's [`Tiered`]
//! record: the process-wide interpreter entry while it is interpreted,
//! its compiled code once it is compiled. A caller that kept the pointer
//! reaches compiled code after tier-up without asking again.
//!
//! Counting. A call through the stub, or a call the interpreter makes to
//! another tiered instantiation, counts one call while the instantiation is
//! interpreted. Under `Auto`, the call that finds [`TierConfig::calls`]
//! calls already counted compiles it (exactly once: the first thread to
//! move the state from interpreted to compiling does it; the others keep
//! interpreting), stores the compiled entry in the record (one atomic
//! store) and runs compiled; with [`TierConfig::background`] a thread of
//! its own compiles and the interpreter keeps serving meanwhile. The
//! interpreter counts back-edges per loop header in each call; at
//! [`TierConfig::back_edges`] to one header the loop is hot, and the call
//! continues in a loop entry compiled for the outermost loop it is in
//! (`jit::osr`): on-stack replacement. A compile that fails leaves the
//! instantiation interpreted and is counted, never reported to the caller.
//!
//! Traps. The interpreter calls compiled and native code through the trap
//! runtime's guarded call, so a trap anywhere below an interpreted call
//! returns to it as a value; the stub's call then reports it through the
//! trap handler exactly as compiled code does. An interpreter error that
//! compiled code could not have (the interpreter's call depth bound, a
//! callee that no longer resolves because its loader was freed) is
//! reported on stderr before the process aborts: there is no way to
//! return an error through a C function pointer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use dashmap::DashMap;
use jit::backend::thunk::{self, ThunkFrame};
use jit::backend::{Backend, TrapRuntime};
use jit::interp::{Interpreter, LoopAnswer, NativeCalls, Resolver, Target, Tiering, Value};
use jit::ir::{BlockId, Callee, Function, Reg};
use jit::verify::RegTypes;
use jit::{ErrorKind, TrapKind};

use crate::error::{Error, Result};
use crate::instances::ResolveContext;
use crate::loader::{Loader, WeakLoader};
use jit::hash::{BuildIntHasher, BuildNameHasher};

/// Environment variable choosing the tier policy (`compiled`,
/// `interpreted` or `auto`).
pub const TIER_ENV: &str = "SMFJIT_TIER";
/// Environment variable setting [`TierConfig::calls`].
pub const TIER_CALLS_ENV: &str = "SMFJIT_TIER_CALLS";
/// Environment variable setting [`TierConfig::back_edges`].
pub const TIER_BACKEDGES_ENV: &str = "SMFJIT_TIER_BACKEDGES";
/// Environment variable setting [`TierConfig::background`] (`1` or `0`).
pub const TIER_BACKGROUND_ENV: &str = "SMFJIT_TIER_BACKGROUND";

/// Where instantiations run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TierPolicy {
    /// Compiled on their miss (the default).
    #[default]
    Compiled,
    /// Always in the interpreter, never compiled.
    Interpreted,
    /// In the interpreter first, compiled when hot.
    Auto,
}

impl TierPolicy {
    /// The policy's name, as [`TIER_ENV`] spells it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            TierPolicy::Compiled => "compiled",
            TierPolicy::Interpreted => "interpreted",
            TierPolicy::Auto => "auto",
        }
    }
}

impl std::str::FromStr for TierPolicy {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "compiled" => Ok(TierPolicy::Compiled),
            "interpreted" => Ok(TierPolicy::Interpreted),
            "auto" => Ok(TierPolicy::Auto),
            other => Err(format!(
                "tier `{other}` is none of compiled, interpreted, auto"
            )),
        }
    }
}

/// The tier policy and its thresholds (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierConfig {
    /// Where instantiations run.
    pub policy: TierPolicy,
    /// Under `Auto`: calls that run interpreted; the next one compiles.
    pub calls: u32,
    /// Under `Auto`: back-edges to one loop header in one call after which
    /// the call continues in compiled code.
    pub back_edges: u32,
    /// Under `Auto`: compile on a thread of its own while the interpreter
    /// keeps serving, instead of in the call that crossed the threshold.
    pub background: bool,
}

impl Default for TierConfig {
    fn default() -> Self {
        Self {
            policy: TierPolicy::Compiled,
            calls: crate::limits::DEFAULT_TIER_CALLS,
            back_edges: crate::limits::DEFAULT_TIER_BACKEDGES,
            background: false,
        }
    }
}

impl TierConfig {
    /// The default configuration with what the environment sets:
    /// [`TIER_ENV`], [`TIER_CALLS_ENV`], [`TIER_BACKEDGES_ENV`],
    /// [`TIER_BACKGROUND_ENV`].
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable whose value is not valid.
    pub fn from_env() -> Result<Self> {
        let mut config = Self::default();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let invalid = |variable: &str, reason: String| Error::Config {
            variable: variable.to_owned(),
            reason,
        };
        if let Some(policy) = var(TIER_ENV) {
            config.policy = policy.parse().map_err(|e| invalid(TIER_ENV, e))?;
        }
        let threshold = |name: &str| -> Result<Option<u32>> {
            var(name)
                .map(|text| match text.parse::<u32>() {
                    Ok(n) if n >= 1 => Ok(n),
                    _ => Err(invalid(
                        name,
                        format!("`{text}` is not a whole number from 1 to {}", u32::MAX),
                    )),
                })
                .transpose()
        };
        if let Some(calls) = threshold(TIER_CALLS_ENV)? {
            config.calls = calls;
        }
        if let Some(edges) = threshold(TIER_BACKEDGES_ENV)? {
            config.back_edges = edges;
        }
        if let Some(flag) = var(TIER_BACKGROUND_ENV) {
            config.background = match flag.as_str() {
                "1" => true,
                "0" => false,
                other => {
                    return Err(invalid(
                        TIER_BACKGROUND_ENV,
                        format!("`{other}` is not 0 or 1"),
                    ));
                }
            };
        }
        Ok(config)
    }
}

/// The tier an instantiation runs in now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Its calls enter the interpreter.
    Interpreted,
    /// Its stub reaches compiled code.
    Compiled,
}

impl Tier {
    /// `"interpreted"` or `"compiled"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Tier::Interpreted => "interpreted",
            Tier::Compiled => "compiled",
        }
    }
}

/// The counters of one tiered instantiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierStats {
    /// Where it runs now.
    pub tier: Tier,
    /// Calls counted while it was interpreted (calls of compiled code are
    /// not counted).
    pub calls: u64,
    /// Calls that ran in the interpreter.
    pub interpreted_calls: u64,
    /// Loop back-edges its interpreted calls took.
    pub back_edges: u64,
    /// Times it was compiled and switched to (0 or 1).
    pub tier_ups: u64,
    /// Interpreted calls that continued in a compiled loop entry.
    pub osr_entries: u64,
    /// Compilations that failed (it stays interpreted).
    pub compile_failures: u64,
    /// Why the last compilation failed.
    pub last_failure: Option<String>,
    /// Where the compiled code starts, once it is switched to (the stub
    /// the name resolves to stays the entry callers use).
    pub compiled_entry: Option<usize>,
}

/// The tier counters of every tiered instantiation of a loader.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierTotals {
    /// Instantiations made to run in the interpreter first.
    pub tiered: u64,
    /// Calls counted while interpreted.
    pub calls: u64,
    /// Calls that ran in the interpreter.
    pub interpreted_calls: u64,
    /// Loop back-edges of interpreted calls.
    pub back_edges: u64,
    /// Instantiations compiled and switched to.
    pub tier_ups: u64,
    /// Interpreted calls that continued in compiled loop entries.
    pub osr_entries: u64,
    /// Failed compilations.
    pub compile_failures: u64,
}

/// The record's states.
const INTERPRETED: u8 = 0;
const COMPILING: u8 = 1;
const COMPILED: u8 = 2;
const FAILED: u8 = 3;

/// What every tiered instantiation of one JIT instantiator shares.
pub(crate) struct TierShared {
    config: TierConfig,
    loader: OnceLock<WeakLoader>,
    backend: Backend,
    trap: &'static TrapRuntime,
    /// The interpreter entry every interpreted stub jumps to.
    entry: usize,
    by_name: DashMap<Arc<str>, Weak<Tiered>, BuildNameHasher>,
    by_address: DashMap<usize, Weak<Tiered>, BuildIntHasher>,
    /// Counters of records that are gone, so totals never go backwards.
    tiered: AtomicU64,
}

impl std::fmt::Debug for TierShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TierShared")
            .field("config", &self.config)
            .field("instantiations", &self.by_name.len())
            .finish()
    }
}

/// One tiered instantiation. `#[repr(C)]` with `target` first: its stub
/// jumps through the record's first 8 bytes.
#[repr(C)]
pub(crate) struct Tiered {
    /// Where the stub goes: the interpreter entry, then compiled code.
    target: AtomicUsize,
    /// The stub's address.
    stub: AtomicUsize,
    me: Weak<Tiered>,
    shared: Arc<TierShared>,
    symbol: Arc<str>,
    /// What the instance is built from, on first use.
    source: Source,
    /// The instance, built when it first runs or compiles.
    built: OnceLock<std::result::Result<Built, String>>,
    state: AtomicU8,
    calls: AtomicU64,
    interpreted_calls: AtomicU64,
    back_edges: AtomicU64,
    tier_ups: AtomicU64,
    osr_entries: AtomicU64,
    compile_failures: AtomicU64,
    last_failure: Mutex<Option<String>>,
    /// Compiled code and loop entries, kept while the record lives.
    code: Mutex<Vec<execmem::PublishedCode>>,
    loops: Mutex<HashMap<u32, LoopState>>,
}

/// Where a checked instantiation (the template verifies, the arguments
/// satisfy its constraints) is built from: the library of its template;
/// the template and arguments are its symbol's, demangled again when it is
/// built.
pub(crate) struct Source {
    pub(crate) library: Arc<jit::ir::Library>,
}

/// A built instance: the concrete function and its register types.
struct Built {
    function: Arc<Function>,
    reg_types: RegTypes,
}

#[derive(Clone)]
enum LoopState {
    Entry { address: u64, transfer: Arc<[Reg]> },
    Refused,
    Failed,
}

/// Why an interpreted call through a stub did not return normally.
enum Failure {
    Trap(TrapKind),
    Fatal(String),
}

impl TierShared {
    pub(crate) fn new(
        config: TierConfig,
        backend: Backend,
        trap: &'static TrapRuntime,
    ) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            config,
            loader: OnceLock::new(),
            backend,
            trap,
            entry: interpreter_entry()?,
            // Fixed shard counts, as the instance map's: the default asks
            // the system how many CPUs there are for each new map.
            by_name: DashMap::with_hasher_and_shard_amount(
                BuildNameHasher::default(),
                crate::limits::INSTANCE_SHARDS,
            ),
            by_address: DashMap::with_hasher_and_shard_amount(
                BuildIntHasher::default(),
                crate::limits::INSTANCE_SHARDS,
            ),
            tiered: AtomicU64::new(0),
        }))
    }

    pub(crate) fn config(&self) -> TierConfig {
        self.config
    }

    /// Ties the records to `loader` (weakly: stubs never keep it alive).
    pub(crate) fn attach(&self, loader: &Loader) {
        let _ = self.loader.set(loader.downgrade());
    }

    fn loader(&self) -> Option<Loader> {
        self.loader.get()?.upgrade()
    }

    fn record(&self, name: &str) -> Option<Arc<Tiered>> {
        self.by_name.get(name)?.upgrade()
    }

    fn record_at(&self, address: u64) -> Option<Arc<Tiered>> {
        self.by_address
            .get(&usize::try_from(address).ok()?)?
            .upgrade()
    }

    /// Makes the record of `instance` and writes its stub into `batch`;
    /// the batch keeps the record alive as long as its code.
    pub(crate) fn make(
        self: &Arc<Self>,
        symbol: Arc<str>,
        source: Source,
        batch: &mut execmem::CodeBatch,
    ) -> Result<execmem::Reservation> {
        let record = Arc::new_cyclic(|me| Tiered {
            target: AtomicUsize::new(self.entry),
            stub: AtomicUsize::new(0),
            me: me.clone(),
            shared: Arc::clone(self),
            symbol: Arc::clone(&symbol),
            source,
            built: OnceLock::new(),
            state: AtomicU8::new(INTERPRETED),
            calls: AtomicU64::new(0),
            interpreted_calls: AtomicU64::new(0),
            back_edges: AtomicU64::new(0),
            tier_ups: AtomicU64::new(0),
            osr_entries: AtomicU64::new(0),
            compile_failures: AtomicU64::new(0),
            last_failure: Mutex::new(None),
            code: Mutex::new(Vec::new()),
            loops: Mutex::new(HashMap::new()),
        });
        let reservation = batch.reserve(&symbol, thunk::STUB_SIZE, thunk::STUB_SIZE)?;
        record.stub.store(reservation.address(), Ordering::Relaxed);
        let context = Arc::as_ptr(&record) as u64;
        batch
            .bytes_mut(&reservation)?
            .copy_from_slice(&thunk::stub(context));
        batch.keep_alive(Arc::clone(&record) as Arc<dyn std::any::Any + Send + Sync>);
        self.by_address
            .insert(reservation.address(), Arc::downgrade(&record));
        self.by_name.insert(symbol, Arc::downgrade(&record));
        self.tiered.fetch_add(1, Ordering::Relaxed);
        Ok(reservation)
    }

    /// Makes room for `additional` more records.
    pub(crate) fn reserve(&self, additional: usize) {
        crate::instances::reserve(&self.by_name, additional);
        crate::instances::reserve(&self.by_address, additional);
    }

    /// Forgets the record of `name` whose stub is at `address` (the loader
    /// dropped that instantiation): the interpreter resolves the name
    /// through the loader again, which makes it anew. The record lives on
    /// while code holding its stub does.
    pub(crate) fn forget(&self, name: &str, address: crate::Address) {
        self.by_name.remove_if(name, |_, record| {
            record
                .upgrade()
                .is_none_or(|r| r.stub.load(Ordering::Relaxed) == address.get())
        });
    }

    /// The counters of `name`, when it is a tiered instantiation.
    pub(crate) fn stats(&self, name: &str) -> Option<TierStats> {
        self.record(name).map(|r| r.stats())
    }

    /// The tiered instantiation whose compiled code (its body or a loop
    /// entry) holds `address`: its name and the function's address range.
    pub(crate) fn code_at(&self, address: usize) -> Option<(Arc<str>, std::ops::Range<usize>)> {
        self.by_name.iter().find_map(|entry| {
            let record = entry.value().upgrade()?;
            let code = record.code.lock().unwrap_or_else(PoisonError::into_inner);
            let range = code.iter().find_map(|code| code.function_at(address))?;
            Some((Arc::clone(&record.symbol), range))
        })
    }

    /// The counters of every live record.
    pub(crate) fn totals(&self) -> TierTotals {
        let mut totals = TierTotals {
            tiered: self.tiered.load(Ordering::Relaxed),
            ..TierTotals::default()
        };
        for entry in &self.by_name {
            let Some(record) = entry.value().upgrade() else {
                continue;
            };
            let s = record.stats();
            totals.calls += s.calls;
            totals.interpreted_calls += s.interpreted_calls;
            totals.back_edges += s.back_edges;
            totals.tier_ups += s.tier_ups;
            totals.osr_entries += s.osr_entries;
            totals.compile_failures += s.compile_failures;
        }
        totals
    }
}

impl Tiered {
    /// The instance, built on first use (substitution and the instance
    /// check; the template and arguments were checked at the miss).
    fn built(&self) -> std::result::Result<&Built, String> {
        let built = self.built.get_or_init(|| {
            jit::instantiate::instantiate_symbol(&self.source.library, &self.symbol)
                .map(|instance| Built {
                    function: instance.function,
                    reg_types: instance.reg_types,
                })
                .map_err(|e| format!("it cannot be instantiated: {e}"))
        });
        built.as_ref().map_err(Clone::clone)
    }

    /// The built function, when it could be built.
    fn function(&self) -> Option<&Arc<Function>> {
        self.built().ok().map(|b| &b.function)
    }

    fn stats(&self) -> TierStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TierStats {
            tier: if self.state.load(Ordering::Acquire) == COMPILED {
                Tier::Compiled
            } else {
                Tier::Interpreted
            },
            calls: load(&self.calls),
            interpreted_calls: load(&self.interpreted_calls),
            back_edges: load(&self.back_edges),
            tier_ups: load(&self.tier_ups),
            osr_entries: load(&self.osr_entries),
            compile_failures: load(&self.compile_failures),
            last_failure: self
                .last_failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            compiled_entry: self.compiled(),
        }
    }

    /// The compiled entry, once the record switched to it.
    fn compiled(&self) -> Option<usize> {
        (self.state.load(Ordering::Acquire) == COMPILED)
            .then(|| self.target.load(Ordering::Acquire))
    }

    /// Counts a call: the compiled entry to call, or `None` to interpret it.
    fn count_call(&self) -> Option<usize> {
        if let Some(entry) = self.compiled() {
            return Some(entry);
        }
        let counted = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let config = self.shared.config;
        if config.policy == TierPolicy::Auto && counted > u64::from(config.calls) {
            self.tier_up();
        }
        let compiled = self.compiled();
        if compiled.is_none() {
            self.interpreted_calls.fetch_add(1, Ordering::Relaxed);
        }
        compiled
    }

    /// Compiles the instantiation and switches its stub to the code, once:
    /// the caller that moves the state to compiling does it.
    fn tier_up(&self) {
        if self
            .state
            .compare_exchange(INTERPRETED, COMPILING, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        if self.shared.config.background
            && let Some(me) = self.me.upgrade()
        {
            let spawned = std::thread::Builder::new()
                .name("smfjit-tier-up".to_owned())
                .spawn(move || me.finish_tier_up());
            if spawned.is_ok() {
                return;
            }
        }
        self.finish_tier_up();
    }

    fn finish_tier_up(&self) {
        let compiled = self
            .built()
            .map_err(|reason| {
                Error::instantiation(&self.symbol, jit::Error::new(ErrorKind::Unresolved(reason)))
            })
            .and_then(|b| self.compile(&b.function, &b.reg_types, &self.symbol));
        match compiled {
            Ok(entry) => {
                self.target.store(entry, Ordering::Release);
                self.tier_ups.fetch_add(1, Ordering::Relaxed);
                self.state.store(COMPILED, Ordering::Release);
            }
            Err(error) => {
                self.fail(&error);
                self.state.store(FAILED, Ordering::Release);
            }
        }
    }

    fn fail(&self, error: &Error) {
        self.compile_failures.fetch_add(1, Ordering::Relaxed);
        *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
    }

    /// Compiles `function` (this instantiation or one of its loop entries)
    /// into code of its own, callees resolved as a miss resolves them, and
    /// returns its entry.
    fn compile(&self, function: &Function, types: &RegTypes, name: &str) -> Result<usize> {
        let loader = self.shared.loader().ok_or_else(|| Error::Unresolved {
            name: name.to_owned(),
            detail: " (its loader was freed)".to_owned(),
        })?;
        let mut ctx = ResolveContext::new(&loader);
        // Until what the code reaches is recorded below, no reload may drop
        // what it links to (it would not know to drop this instantiation).
        ctx.enter_gate();
        let prepared = crate::jit_service::prepare_function(
            &self.shared.backend,
            function,
            types,
            &self.symbol,
            name,
            &mut ctx,
        )?;
        let mut batch = loader.memory().batch_with_capacity(prepared.size());
        let reservation = batch.reserve(name, prepared.size(), 16)?;
        let entry = reservation.address() as u64;
        // The instantiation's own symbol stays inside this code: a recursive
        // call goes straight to the compiled entry (a loop entry's goes to
        // the stub, which reaches the same code once compiled).
        let own = if name == &*self.symbol {
            entry
        } else {
            self.stub.load(Ordering::Relaxed) as u64
        };
        prepared
            .link_into(entry, &[own], batch.bytes_mut(&reservation)?)
            .map_err(|e| Error::instantiation(name, e))?;
        batch.set_instruction_len(&reservation, prepared.code_len())?;
        let code = batch.publish()?;
        let address = code.entry(&reservation)? as usize;
        self.code
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(code);
        // A reload dropping what this code calls drops the instantiation
        // too, so that nothing hands out code calling the old version.
        let stub = crate::Address::new(self.stub.load(Ordering::Relaxed));
        loader
            .instances()
            .add_reaches(&self.symbol, stub, ctx.take_reached());
        Ok(address)
    }

    /// The loop entry at `header`, compiled on first use.
    fn loop_entry(&self, header: BlockId) -> LoopAnswer {
        if self.shared.config.policy != TierPolicy::Auto {
            return LoopAnswer::Never;
        }
        let mut loops = self.loops.lock().unwrap_or_else(PoisonError::into_inner);
        let state = match loops.get(&header.0) {
            Some(state) => state.clone(),
            None => {
                let state = self.make_loop_entry(header);
                loops.insert(header.0, state.clone());
                state
            }
        };
        drop(loops);
        match state {
            LoopState::Entry { address, transfer } => {
                self.osr_entries.fetch_add(1, Ordering::Relaxed);
                LoopAnswer::Enter { address, transfer }
            }
            LoopState::Refused => LoopAnswer::NotHere,
            LoopState::Failed => LoopAnswer::Never,
        }
    }

    fn make_loop_entry(&self, header: BlockId) -> LoopState {
        let Ok(built) = self.built() else {
            return LoopState::Failed;
        };
        let entry = match jit::osr::loop_entry(&built.function, &built.reg_types, header) {
            Ok(entry) => entry,
            Err(e) if matches!(e.kind, ErrorKind::NoLoopEntry { .. }) => return LoopState::Refused,
            Err(e) => {
                self.fail(&Error::instantiation(&self.symbol, e));
                return LoopState::Failed;
            }
        };
        let name = jit::osr::entry_name(&self.symbol, header);
        match self.compile(&entry.function, &entry.reg_types, &name) {
            Ok(address) => LoopState::Entry {
                address: address as u64,
                transfer: entry.transfer.into(),
            },
            Err(error) => {
                self.fail(&error);
                LoopState::Failed
            }
        }
    }

    /// A call through the stub: run compiled code if the record switched
    /// (or switches now), else interpret.
    fn call(&self, frame: &mut ThunkFrame) -> std::result::Result<(), Failure> {
        if let Some(entry) = self.count_call() {
            // SAFETY: the entry is this instantiation's compiled code, of
            // the signature the caller called the stub with; the registers
            // are the caller's.
            let [rax, xmm0] = unsafe {
                self.shared
                    .trap
                    .call_raw(entry as *const u8, &frame.ints, &frame.floats)
            }
            .map_err(Failure::Trap)?;
            frame.rax = rax;
            frame.xmm0 = xmm0;
            return Ok(());
        }
        let built = self.built().map_err(Failure::Fatal)?;
        let args = arguments(&built.function, frame);
        let loader = self
            .shared
            .loader()
            .ok_or_else(|| Failure::Fatal("its loader was freed".to_owned()))?;
        let resolver = TierResolver {
            shared: &self.shared,
            loader: &loader,
        };
        let interpreter = Interpreter::new(&resolver)
            .with_tiering(&resolver)
            .with_native_calls(&resolver);
        // SAFETY: the caller called this instantiation's function pointer
        // with arguments valid for it, as it would the compiled code.
        let result = unsafe { interpreter.call(&built.function, &args) };
        match result {
            Ok(value) => {
                let bits = value.as_ref().map_or(0, Value::to_bits);
                if built
                    .function
                    .sig
                    .ret
                    .as_ref()
                    .is_some_and(jit::ir::Type::is_float)
                {
                    frame.xmm0 = bits;
                } else {
                    frame.rax = bits;
                }
                Ok(())
            }
            Err(error) => match error.kind {
                ErrorKind::Trap(trap) => Err(Failure::Trap(trap)),
                _ => Err(Failure::Fatal(error.to_string())),
            },
        }
    }
}

/// The arguments of a call through a stub, from the caller's registers:
/// integer-class parameters from rdi…r9 in order, floats from xmm0…xmm7,
/// each cut to its width and extended (the ABI leaves the upper bits of
/// narrow arguments undefined).
fn arguments(function: &Function, frame: &ThunkFrame) -> Vec<Value> {
    let (mut ints, mut floats) = (frame.ints.iter(), frame.floats.iter());
    function
        .sig
        .params
        .iter()
        .map(|ty| {
            let raw = if ty.is_float() {
                floats.next()
            } else {
                ints.next()
            };
            Value::from_bits(ty, raw.copied().unwrap_or(0))
        })
        .collect()
}

/// The interpreter's view of the loader during a tiered call.
struct TierResolver<'a> {
    shared: &'a TierShared,
    loader: &'a Loader,
}

fn unresolved(error: &Error) -> jit::Error {
    jit::Error::new(ErrorKind::Unresolved(error.to_string()))
}

impl TierResolver<'_> {
    /// How the interpreter reaches a tiered instantiation: a new frame
    /// while it is interpreted, its compiled code once it is compiled.
    fn enter(record: &Tiered) -> std::result::Result<Target, jit::Error> {
        match record.count_call() {
            Some(entry) => Ok(Target::Native(entry as u64)),
            None => record
                .function()
                .map(|f| Target::Interpreted(Arc::clone(f)))
                .ok_or_else(|| {
                    jit::Error::new(ErrorKind::Unresolved(format!(
                        "{} ({})",
                        record.symbol,
                        record.built().err().unwrap_or_default()
                    )))
                }),
        }
    }
}

impl Resolver for TierResolver<'_> {
    fn resolve(&self, symbol: &str) -> std::result::Result<Target, jit::Error> {
        if let Some(record) = self.shared.record(symbol) {
            return Self::enter(&record);
        }
        let address = self.loader.resolve(symbol).map_err(|e| unresolved(&e))?;
        match self.shared.record(symbol) {
            Some(record) => Self::enter(&record),
            None => Ok(Target::Native(address.get() as u64)),
        }
    }

    fn import(&self, name: &str) -> std::result::Result<u64, jit::Error> {
        let mut ctx = ResolveContext::new(self.loader);
        match crate::jit_service::resolve_callee(&Callee::Import(name.to_owned()), &mut ctx) {
            Ok(jit::backend::CallTarget::Direct(address)) => Ok(address),
            Ok(jit::backend::CallTarget::Slot(_)) => {
                Err(jit::Error::new(ErrorKind::Unresolved(name.to_owned())))
            }
            Err(error) => Err(unresolved(&error)),
        }
    }

    fn address_of(&self, symbol: &str) -> std::result::Result<u64, jit::Error> {
        self.loader
            .resolve(symbol)
            .map(|a| a.get() as u64)
            .map_err(|e| unresolved(&e))
    }

    fn memory(&self, name: &str) -> std::result::Result<u64, jit::Error> {
        crate::jit_service::shared_descriptor(self.loader, name, false)
    }

    fn table(&self, name: &str) -> std::result::Result<u64, jit::Error> {
        crate::jit_service::shared_descriptor(self.loader, name, true)
    }

    fn target_at(&self, address: u64) -> Option<Target> {
        match self.shared.record_at(address) {
            Some(record) => Self::enter(&record).ok(),
            // Compiled or native code: called as compiled code would.
            None => Some(Target::Native(address)),
        }
    }
}

impl Tiering for TierResolver<'_> {
    fn back_edge_threshold(&self) -> u32 {
        match self.shared.config.policy {
            TierPolicy::Auto => self.shared.config.back_edges,
            _ => u32::MAX,
        }
    }

    fn loop_entry(&self, func: &Arc<Function>, header: BlockId) -> LoopAnswer {
        match self.shared.record(&func.name.name) {
            Some(record) if record.function().is_some_and(|f| Arc::ptr_eq(f, func)) => {
                record.loop_entry(header)
            }
            _ => LoopAnswer::Never,
        }
    }

    fn back_edges(&self, func: &Arc<Function>, taken: u64) {
        if let Some(record) = self.shared.record(&func.name.name) {
            record.back_edges.fetch_add(taken, Ordering::Relaxed);
        }
    }
}

impl NativeCalls for TierResolver<'_> {
    unsafe fn call(
        &self,
        address: u64,
        ints: &[u64; 6],
        floats: &[u64; 8],
    ) -> std::result::Result<[u64; 2], TrapKind> {
        // SAFETY: forwarded: the interpreter's caller vouched for the
        // function and its arguments.
        unsafe {
            self.shared
                .trap
                .call_raw(address as *const u8, ints, floats)
        }
    }
}

/// What the interpreter entry calls: runs one call through a stub.
extern "C" fn run_thunk(context: usize, frame: *mut ThunkFrame) {
    let failure = {
        // SAFETY: `context` is the record whose stub jumped here; the code
        // holding the stub keeps the record alive (`CodeBatch::keep_alive`)
        // and the stub is running. `frame` is the interpreter entry's
        // frame, live until this returns.
        let (record, frame) = unsafe { (&*(context as *const Tiered), &mut *frame) };
        match record.call(frame) {
            Ok(()) => return,
            Err(failure) => (failure, record.shared.trap, Arc::clone(&record.symbol)),
        }
    };
    match failure {
        (Failure::Trap(trap), runtime, symbol) => {
            drop(symbol);
            // SAFETY: nothing on this frame owns anything any more, and the
            // interpreter entry's frame owns nothing: both are abandoned.
            unsafe { runtime.raise(trap) }
        }
        (Failure::Fatal(message), _, symbol) => {
            eprintln!("fatal: the interpreted call of {symbol} failed: {message}");
            std::process::abort()
        }
    }
}

/// The process-wide interpreter entry, with the memory holding it.
struct SharedEntry {
    _memory: execmem::ExecMemory,
    _code: execmem::PublishedCode,
    address: usize,
}

static INTERPRETER_ENTRY: OnceLock<std::result::Result<SharedEntry, Arc<execmem::Error>>> =
    OnceLock::new();

/// The interpreter entry's address, published on first use.
fn interpreter_entry() -> Result<usize> {
    let entry = INTERPRETER_ENTRY.get_or_init(|| {
        let publish = || -> std::result::Result<SharedEntry, execmem::Error> {
            let memory = execmem::ExecMemory::new(execmem::Config::default())?;
            let code = thunk::interpreter_entry(run_thunk as *const () as usize as u64);
            let mut batch = memory.batch();
            let reservation = batch.reserve("smfjit_interpreter_entry", code.len(), 16)?;
            batch.bytes_mut(&reservation)?.copy_from_slice(&code);
            let published = batch.publish()?;
            let address = published.entry(&reservation)? as usize;
            Ok(SharedEntry {
                _memory: memory,
                _code: published,
                address,
            })
        };
        publish().map_err(Arc::new)
    });
    match entry {
        Ok(entry) => Ok(entry.address),
        Err(source) => Err(Error::Memory {
            source: Arc::clone(source),
        }),
    }
}
