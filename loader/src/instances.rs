//! The instantiation cache and the miss hook: the last two steps of a
//! resolution (BRIEF §2), after the loaded modules' exports.
//!
//! A name that no module exports is looked up here; when it is not cached
//! either, the configured [`Instantiator`] is asked to produce it. Each name
//! has one [`Cell`] in a concurrent map: the first thread to miss inserts it
//! and compiles; any other thread missing the same name meanwhile waits on
//! that cell alone, so unrelated names compile in parallel and each name is
//! compiled exactly once. A finished cell answers later lookups without a
//! lock.
//!
//! Every resolution chain (one call of [`Loader::resolve`] and everything it
//! instantiates, recursively) carries a [`ResolveContext`]: its depth is
//! bounded, a name that reappears in its own chain is a cycle, and a chain
//! about to wait for a cell owned by another chain first follows the
//! wait-for graph, so two threads that need each other's instantiations
//! report the cycle instead of deadlocking.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};

use dashmap::DashMap;
use execmem::{PublishedCode, PublishedFunction, Reservation};

use crate::error::{Error, InstantiationError, Result};
use crate::exports::Export;
use crate::gate::{Closed, Gate};
use crate::loader::Loader;
use crate::resolution::{Address, ModuleId};
use crate::slots::SymbolSlot;
use crate::tier::{TierStats, TierTotals};
use jit::hash::BuildNameHasher;

/// The machine code of one instantiation as the loader holds it: what an
/// [`Instantiator`] produced for a name, the entry address and either the
/// published code that holds it (which the cache keeps alive) or the
/// reservation in the batch of the module being loaded, published with that
/// module. (The instantiated IR it was compiled from is
/// `jit::instantiate::Instance`.)
#[derive(Debug, Clone)]
pub struct InstanceCode {
    address: Address,
    code: Option<PublishedCode>,
    /// The entry's reservation, when it waits in [`ResolveContext::batch`].
    pending: Option<Reservation>,
    /// Bytes of the function (its reservation), for the statistics.
    size: usize,
    /// The entry's reservation inside `code`, to read its bytes back.
    entry: Option<Reservation>,
    /// The loaded module whose template it was made from.
    origin: Option<ModuleId>,
}

impl InstanceCode {
    /// The instance whose entry is `entry` inside `code`.
    ///
    /// # Errors
    /// [`Error::Memory`] when `entry` belongs to another batch.
    pub fn new(code: PublishedCode, entry: &Reservation) -> Result<Self> {
        let address = Address::new(code.entry(entry)? as usize);
        Ok(Self {
            address,
            code: Some(code),
            pending: None,
            size: entry.size(),
            entry: Some(*entry),
            origin: None,
        })
    }

    /// An instance whose code was reserved and written in
    /// [`ResolveContext::batch`]: it becomes callable when the module being
    /// loaded is published, and until then resolves (for linking) to the
    /// reservation's address inside the same chain.
    #[must_use]
    pub fn in_batch(entry: &Reservation) -> Self {
        Self {
            address: Address::new(entry.address()),
            code: None,
            pending: Some(*entry),
            size: entry.size(),
            entry: None,
            origin: None,
        }
    }

    /// This instance, made from a template of the loaded module `module`:
    /// a [`Loader::reload`] of that module drops it from the instance cache
    /// (see the loader's `reload`), so that the next resolution makes it
    /// again from the new templates.
    #[must_use]
    pub fn with_origin(mut self, module: ModuleId) -> Self {
        self.origin = Some(module);
        self
    }

    /// The loaded module whose template it was made from, if the
    /// instantiator said ([`InstanceCode::with_origin`]).
    #[must_use]
    pub fn origin(&self) -> Option<ModuleId> {
        self.origin
    }

    /// The entry address.
    #[must_use]
    pub fn address(&self) -> Address {
        self.address
    }

    /// Bytes reserved for the function (its code, constants and stubs).
    #[must_use]
    pub fn size(&self) -> usize {
        self.size
    }

    /// The function's published bytes (`None` while it waits in a
    /// module's batch), for disassembly.
    #[must_use]
    pub fn bytes(&self) -> Option<&[u8]> {
        self.code.as_ref()?.bytes(self.entry.as_ref()?).ok()
    }

    /// How many of [`bytes`](Self::bytes) are instructions (the rest is
    /// the constant pool and call slots); `None` while it waits in a
    /// module's batch.
    #[must_use]
    pub fn instruction_len(&self) -> Option<usize> {
        self.code
            .as_ref()?
            .instruction_len(self.entry.as_ref()?)
            .ok()
    }

    /// The published code kept alive for the instance (`None` while it
    /// waits in a module's batch).
    #[must_use]
    pub fn code(&self) -> Option<&PublishedCode> {
        self.code.as_ref()
    }
}

impl From<PublishedFunction> for InstanceCode {
    fn from(function: PublishedFunction) -> Self {
        Self {
            address: Address::new(function.entry() as usize),
            code: Some(function.code().clone()),
            pending: None,
            size: function.bytes().len(),
            entry: Some(function.reservation()),
            origin: None,
        }
    }
}

/// The miss hook: produces code for a name that no loaded module exports.
///
/// The JIT implements it by instantiating a template; tests implement it
/// with hand-assembled code. It may resolve other names through `ctx`
/// (recursively instantiating them), which is how depth bounds and cycle
/// detection see the whole chain.
pub trait Instantiator: Send + Sync {
    /// Produces `name`, or `Ok(None)` when it is not something this
    /// instantiator can make (the resolution then fails as unresolved, or
    /// an import goes on to the native libraries).
    ///
    /// # Errors
    /// Whatever stops the instantiation; it is reported to every thread that
    /// waited for the name, and the name may be asked for again later.
    fn instantiate(&self, name: &str, ctx: &mut ResolveContext<'_>)
    -> Result<Option<InstanceCode>>;

    /// Told that about `additional` more names are coming (a module about
    /// to bind its imports), so that records can make room at once.
    fn reserve(&self, additional: usize) {
        let _ = additional;
    }

    /// The templates this instantiator has decoded and verified, for the
    /// loader's statistics ([`InstanceStats::templates`]); none by default.
    fn template_stats(&self) -> TemplateStats {
        TemplateStats::default()
    }

    /// The tier counters of `name`, when it runs tiered; never by default.
    fn tier_stats(&self, _name: &str) -> Option<TierStats> {
        None
    }

    /// The tier counters of every tiered instantiation
    /// ([`InstanceStats::tiers`]); zero by default.
    fn tier_totals(&self) -> TierTotals {
        TierTotals::default()
    }

    /// The loader dropped its instance of `name` at `address` from the
    /// instance cache (a [`Loader::reload`] replaced a module it was made
    /// from or reaches): whatever the instantiator keeps to hand that
    /// instance out again must go, so the name's next miss makes it anew.
    /// The code stays mapped for whoever still runs it. Nothing by default.
    ///
    /// It is called while the reload holds the loader's module list: it
    /// must not call back into the loader (resolve, load, list modules),
    /// only forget what it keeps.
    fn dropped(&self, _name: &str, _address: Address) {}

    /// Code this instantiator published outside the instance cache (a
    /// tiered instantiation compiled once hot, its loop entries) whose
    /// bytes hold `address`: the instantiation's name and the function's
    /// address range, for [`Loader::address_info`]. None by default.
    fn code_at(&self, _address: usize) -> Option<(Arc<str>, Range<usize>)> {
        None
    }
}

/// Templates an instantiator decoded and verified (the JIT's: entries of
/// the loaded modules' TemplateCode sections, each decoded at most once and
/// verified at most once in the process).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TemplateStats {
    /// Entries decoded (templates, struct templates, declarations).
    pub decoded: u64,
    /// Entries the verifier ran on.
    pub verified: u64,
}

/// A shared instantiator (the caller keeps a handle, e.g. to its own
/// statistics).
impl<T: Instantiator + ?Sized> Instantiator for Arc<T> {
    fn instantiate(
        &self,
        name: &str,
        ctx: &mut ResolveContext<'_>,
    ) -> Result<Option<InstanceCode>> {
        (**self).instantiate(name, ctx)
    }

    fn template_stats(&self) -> TemplateStats {
        (**self).template_stats()
    }

    fn tier_stats(&self, name: &str) -> Option<TierStats> {
        (**self).tier_stats(name)
    }

    fn tier_totals(&self) -> TierTotals {
        (**self).tier_totals()
    }

    fn dropped(&self, name: &str, address: Address) {
        (**self).dropped(name, address);
    }

    fn code_at(&self, address: usize) -> Option<(Arc<str>, Range<usize>)> {
        (**self).code_at(address)
    }

    fn reserve(&self, additional: usize) {
        (**self).reserve(additional);
    }
}

/// The state of one resolution chain, handed to the [`Instantiator`].
#[derive(Debug)]
pub struct ResolveContext<'l> {
    loader: &'l Loader,
    id: u64,
    path: Vec<Arc<str>>,
    /// The batch of the module being loaded with `Now` binding.
    batch: Option<execmem::CodeBatch>,
    /// Instances reserved in `batch`, finished when it is published. Each
    /// one's cell holds its reservation's address meanwhile
    /// ([`Cell::pending`]), so the chain finds it again by name through
    /// the instance map.
    pending: Vec<Pending>,
    /// What the code being made reaches, innermost instantiation last:
    /// each compilation takes what was recorded after it started (see
    /// [`Reach`]); what is left belongs to the chain itself.
    reached: Vec<Reach>,
    /// Whether the chain entered the loader's reload gate (`gate.rs`).
    in_gate: bool,
}

/// An instance reserved in the batch of a module being loaded.
#[derive(Debug)]
struct Pending {
    cell: Arc<Cell>,
    reservation: Reservation,
    origin: Option<ModuleId>,
}

/// Something an instance's code calls or refers to directly, by address:
/// when a reload replaces the module, or drops the instance, the code
/// would still reach the old one, so it is dropped too (as is an instance
/// made from the module's templates, [`InstanceCode::origin`]).
#[derive(Debug, Clone)]
pub(crate) enum Reach {
    /// An export of this loaded module.
    Module(ModuleId),
    /// The cached instance of this name.
    Instance(Arc<str>),
}

impl Drop for ResolveContext<'_> {
    fn drop(&mut self) {
        // A chain that ends with instances still waiting in its batch lost
        // the batch (the load failed): their waiters must hear of it.
        let pending = self.take_pending();
        if !pending.is_empty() {
            self.loader.instances().fail_pending(pending);
        }
        if self.in_gate {
            self.loader.instances().gate.leave();
        }
    }
}

static NEXT_CONTEXT: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The chains compiling on this thread and the name each compiles,
    /// innermost last.
    static COMPILING: std::cell::RefCell<Vec<(u64, Arc<str>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl<'l> ResolveContext<'l> {
    pub(crate) fn new(loader: &'l Loader) -> Self {
        Self {
            loader,
            id: NEXT_CONTEXT.fetch_add(1, Ordering::Relaxed),
            path: Vec::new(),
            batch: None,
            pending: Vec::new(),
            reached: Vec::new(),
            in_gate: false,
        }
    }

    /// Enters the loader's reload gate for the rest of the chain (see
    /// `gate.rs`), unless it is in already: a reload waits for the chain
    /// to end, and the chain waits for a reload in progress.
    pub(crate) fn enter_gate(&mut self) {
        if !self.in_gate {
            self.in_gate = self.loader.instances().gate.enter();
        }
    }

    /// Records that the code being made reaches `reach`.
    pub(crate) fn reach(&mut self, reach: Reach) {
        self.reached.push(reach);
    }

    /// What the chain's own code reaches, outside any instantiation (a
    /// tier-up compiling outside a miss), taken.
    pub(crate) fn take_reached(&mut self) -> Vec<Reach> {
        std::mem::take(&mut self.reached)
    }

    /// The batch of the module being loaded, when this chain binds its
    /// imports (`Now` binding): code reserved and written here is published
    /// with the module, in one publication; return it as
    /// [`InstanceCode::in_batch`]. `None` outside module loading, where an
    /// instantiator publishes its code itself.
    pub fn batch(&mut self) -> Option<&mut execmem::CodeBatch> {
        self.batch.as_mut()
    }

    /// Makes room for about `additional` instances made in this chain (a
    /// module about to bind that many instantiated imports).
    pub(crate) fn expect(&mut self, additional: usize) {
        self.pending.reserve(additional);
        self.reached.reserve(additional);
        if let Some(batch) = &mut self.batch {
            batch.expect_functions(additional);
        }
    }

    /// Lends the module's batch to the chain for import binding.
    pub(crate) fn lend_batch(&mut self, batch: execmem::CodeBatch) {
        self.batch = Some(batch);
    }

    /// Takes the module's batch back.
    pub(crate) fn take_batch(&mut self) -> Option<execmem::CodeBatch> {
        self.batch.take()
    }

    /// Records an instance reserved in the batch, finished with it.
    fn push_pending(&mut self, pending: Pending) {
        pending
            .cell
            .pending
            .store(pending.reservation.address(), Ordering::Relaxed);
        self.pending.push(pending);
    }

    /// The pending instances, taken.
    fn take_pending(&mut self) -> Vec<Pending> {
        std::mem::take(&mut self.pending)
    }

    /// Finishes the instances waiting in the batch, now published as `code`.
    pub(crate) fn finish_batch(&mut self, code: Option<&PublishedCode>) {
        let pending = self.take_pending();
        self.loader.instances().finish_pending(pending, code);
    }

    /// Resolves `name` as part of this chain: exports, then cached
    /// instances, then (nested) instantiation.
    ///
    /// # Errors
    /// As [`Loader::resolve`], plus [`Error::DepthExceeded`] and
    /// [`Error::Cycle`] for this chain.
    pub fn resolve(&mut self, name: &str) -> Result<Address> {
        let loader = self.loader;
        loader.resolve_with(name, self)
    }

    /// The loader this chain resolves in (its modules, notes, templates).
    #[must_use]
    pub fn loader(&self) -> &'l Loader {
        self.loader
    }

    /// The executable memory new code should be published in.
    #[must_use]
    pub fn memory(&self) -> &'l execmem::ExecMemory {
        self.loader.memory()
    }

    /// Whether `name` is being instantiated in this chain: resolving it
    /// again would be a cycle. A compiler that can call through a slot (a
    /// recursive template) asks for [`ResolveContext::slot`] instead.
    #[must_use]
    pub fn in_chain(&self, name: &str) -> bool {
        self.path.iter().any(|n| **n == *name)
    }

    /// The slot of `name` (see [`Loader::slot`]); for a name being
    /// instantiated it is filled when the instantiation finishes.
    #[must_use]
    pub fn slot(&self, name: &str) -> SymbolSlot {
        self.loader.slot(name)
    }

    /// Number of instantiations in progress in this chain.
    #[must_use]
    pub fn depth(&self) -> usize {
        self.path.len()
    }

    /// The name the innermost instantiation of this chain makes, as the
    /// instance cache holds it.
    pub(crate) fn current(&self) -> Option<&Arc<str>> {
        self.path.last()
    }

    /// The names being instantiated in this chain, outermost first.
    pub fn path(&self) -> impl ExactSizeIterator<Item = &str> {
        self.path.iter().map(|name| &**name)
    }

    fn path_strings(&self) -> Vec<String> {
        self.path.iter().map(|name| name.to_string()).collect()
    }
}

/// Counters of the instantiation cache and the miss hook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstanceStats {
    /// Resolutions answered by an instance already in the cache.
    pub cache_hits: u64,
    /// Names handed to the instantiator.
    pub requests: u64,
    /// Instantiations that produced code.
    pub instantiations: u64,
    /// Requests the instantiator declined (`Ok(None)`).
    pub declined: u64,
    /// Requests that failed (instantiator errors, depth, cycles).
    pub failures: u64,
    /// Times a thread waited for another thread's instantiation of the
    /// same name.
    pub waits: u64,
    /// Nanoseconds spent inside the instantiator, nested calls included in
    /// their callers' time as well.
    pub compile_nanos: u64,
    /// Bytes of code published by instantiations.
    pub code_bytes: u64,
    /// Instances held now.
    pub instances: usize,
    /// Templates the instantiator decoded and verified.
    pub templates: TemplateStats,
    /// Tiered execution: instantiations run in the interpreter first,
    /// calls and back-edges counted, tier-ups, loop entries, failures.
    pub tiers: TierTotals,
}

#[derive(Debug, Default)]
struct Counters {
    cache_hits: AtomicU64,
    requests: AtomicU64,
    instantiations: AtomicU64,
    declined: AtomicU64,
    failures: AtomicU64,
    waits: AtomicU64,
    /// Time in instantiators, in ticks of `clock`.
    compile_ticks: AtomicU64,
    code_bytes: AtomicU64,
}

/// One name's instantiation: in flight until `done` is set.
#[derive(Debug)]
struct Cell {
    name: Arc<str>,
    /// The chain compiling it.
    owner: u64,
    done: OnceLock<Result<InstanceCode>>,
    /// Guards `done` being set against `finished` being waited for, and
    /// counts the threads waiting: a condition variable wakes with a system
    /// call whether anyone waits or not, so the owner only wakes waiters
    /// that exist (a module's load finishes a thousand instances nobody
    /// else waits for).
    lock: Mutex<usize>,
    finished: Condvar,
    /// What its code reaches: recorded when it is made, and grown when a
    /// tiered instantiation compiles ([`Instances::add_reaches`]).
    reaches: Mutex<Vec<Reach>>,
    /// While it waits in its owner chain's batch (made, not yet
    /// published): its reservation's address, which that chain resolves
    /// the name to; 0 otherwise. Only the owner reads it.
    pending: AtomicUsize,
}

impl Cell {
    fn finish(&self, result: Result<InstanceCode>) -> Result<Address> {
        let answer = result
            .as_ref()
            .map(InstanceCode::address)
            .map_err(Clone::clone);
        let waiting = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        // Only the owner sets `done`, exactly once.
        let _ = self.done.set(result);
        if *waiting > 0 {
            self.finished.notify_all();
        }
        answer
    }

    fn lock_reaches(&self) -> std::sync::MutexGuard<'_, Vec<Reach>> {
        // Replaced or extended whole: never torn.
        self.reaches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait(&self) -> Result<Address> {
        let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(result) = self.done.get() {
                return result
                    .as_ref()
                    .map(InstanceCode::address)
                    .map_err(Clone::clone);
            }
            *guard += 1;
            guard = self
                .finished
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
            *guard -= 1;
        }
    }
}

/// The instantiation cache with its miss hook.
pub(crate) struct Instances {
    cells: DashMap<Arc<str>, Arc<Cell>, BuildNameHasher>,
    /// Which cell each waiting chain waits for (the wait-for graph).
    waiting: Mutex<HashMap<u64, Arc<Cell>>>,
    instantiator: arc_swap::ArcSwapOption<Box<dyn Instantiator>>,
    enabled: AtomicBool,
    max_depth: usize,
    counters: Counters,
    /// Converts `counters.compile_ticks` to nanoseconds.
    clock: crate::ticks::TickClock,
    /// Told the name and address of every finished instantiation.
    on_finish: FinishHook,
    /// Finished instances held now.
    live: AtomicUsize,
    /// Finished instances the loader's snapshot holds (see `should_fold`).
    folded: AtomicUsize,
    /// Lets instantiations run side by side, or a reload alone.
    gate: Gate,
}

/// Instances made before the loader first folds them into its snapshot.
const FIRST_FOLD: usize = 64;

/// What [`Instances`] calls after each successful instantiation, with
/// whether the loader may fold the finished instances into its snapshot
/// now (not while a batch's instances settle one after another: whoever
/// published the batch folds, or checks, once after it).
pub(crate) type FinishHook = Box<dyn Fn(&str, Address, bool) + Send + Sync>;

impl std::fmt::Debug for Instances {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instances")
            .field("instances", &self.cells.len())
            .field("enabled", &self.enabled.load(Ordering::Relaxed))
            .field("max_depth", &self.max_depth)
            .finish()
    }
}

/// The address of `cell` when it was made earlier in the chain of `ctx`
/// and waits in its batch (a module binding the same instantiation twice),
/// recorded as reached.
fn pending_in(cell: &Arc<Cell>, ctx: &mut ResolveContext<'_>) -> Option<Address> {
    if cell.owner != ctx.id || cell.done.get().is_some() {
        return None;
    }
    let address = cell.pending.load(Ordering::Relaxed);
    if address == 0 {
        return None;
    }
    ctx.reach(Reach::Instance(Arc::clone(&cell.name)));
    Some(Address::new(address))
}

/// Gives every shard of `map` room for its share of `additional` more
/// entries, so that a load binding many names grows each shard's table
/// once instead of doubling it (and hashing every key again) on the way.
pub(crate) fn reserve<K, V, S>(map: &DashMap<K, V, S>, additional: usize)
where
    K: Eq + std::hash::Hash,
    S: std::hash::BuildHasher + Clone,
{
    let shards = map.shards();
    // Names spread unevenly over the shards: a quarter more than the mean.
    let share = additional.div_ceil(shards.len());
    let share = share + share / 4;
    for shard in shards {
        // The map keeps each entry under the 64-bit hash of its key, which
        // `hash_usize` returns whole on this 64-bit target.
        shard
            .write()
            .reserve(share, |(key, _)| map.hash_usize(key) as u64);
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl Instances {
    pub(crate) fn new(max_depth: usize, enabled: bool, on_finish: FinishHook) -> Self {
        Self {
            // A fixed shard count: the default asks how many CPUs the
            // process may use, which on Linux reads cgroup files (a dozen
            // system calls in every fresh process's first loader).
            cells: DashMap::with_hasher_and_shard_amount(
                BuildNameHasher::default(),
                crate::limits::INSTANCE_SHARDS,
            ),
            waiting: Mutex::new(HashMap::new()),
            instantiator: arc_swap::ArcSwapOption::empty(),
            enabled: AtomicBool::new(enabled),
            max_depth,
            counters: Counters::default(),
            clock: crate::ticks::TickClock::new(),
            on_finish,
            live: AtomicUsize::new(0),
            folded: AtomicUsize::new(0),
            gate: Gate::default(),
        }
    }

    /// Makes room for `additional` more names (a module about to bind that
    /// many imports), here and in the instantiator's own records.
    pub(crate) fn reserve(&self, additional: usize) {
        reserve(&self.cells, additional);
        if let Some(instantiator) = &*self.instantiator.load() {
            instantiator.reserve(additional);
        }
    }

    pub(crate) fn set_instantiator(&self, instantiator: Option<Box<dyn Instantiator>>) {
        self.instantiator.store(instantiator.map(Arc::new));
    }

    pub(crate) fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Release);
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// A finished instance of `name`, if cached.
    #[inline]
    pub(crate) fn cached(&self, name: &str) -> Option<Address> {
        let address = self.peek(name)?;
        self.count_hit();
        Some(address)
    }

    /// [`Instances::cached`], with the name as the cache holds it.
    #[inline]
    pub(crate) fn cached_named(&self, name: &str) -> Option<(Address, Arc<str>)> {
        let cell = self.cells.get(name)?;
        let address = cell.done.get()?.as_ref().ok()?.address();
        self.count_hit();
        Some((address, Arc::clone(cell.key())))
    }

    /// Counts a resolution answered by a cached instance.
    #[inline]
    pub(crate) fn count_hit(&self) {
        bump(&self.counters.cache_hits, 1);
    }

    /// Whether the instances the loader's snapshot lacks outnumber those it
    /// holds, so that folding them in now copies each instance a bounded
    /// number of times on average.
    pub(crate) fn should_fold(&self) -> bool {
        let live = self.live.load(Ordering::Relaxed);
        let folded = self.folded.load(Ordering::Relaxed);
        live >= FIRST_FOLD && live.saturating_sub(folded) >= folded.max(FIRST_FOLD)
    }

    /// Every finished instance as an export entry (weak, module 0), noting
    /// that the snapshot about to be built holds them all.
    pub(crate) fn fold(&self) -> Vec<Export> {
        let finished: Vec<Export> = self
            .cells
            .iter()
            .filter_map(|cell| {
                let address = cell.done.get()?.as_ref().ok()?.address();
                Some(Export {
                    name: Arc::clone(cell.key()),
                    address: address.get(),
                    binding: smf::Binding::Weak,
                    module: 0,
                })
            })
            .collect();
        self.folded.store(finished.len(), Ordering::Relaxed);
        finished
    }

    /// A finished instance of `name`, if cached, without counting a hit.
    pub(crate) fn peek(&self, name: &str) -> Option<Address> {
        let cell = self.cells.get(name)?;
        cell.done.get()?.as_ref().ok().map(InstanceCode::address)
    }

    /// A finished instance of `name` with its code, if cached.
    pub(crate) fn cached_instance(&self, name: &str) -> Option<InstanceCode> {
        let cell = self.cells.get(name)?;
        cell.done.get()?.as_ref().ok().cloned()
    }

    /// The miss path: waits for or performs the instantiation of `name`.
    pub(crate) fn miss(&self, name: &str, ctx: &mut ResolveContext<'_>) -> Result<Address> {
        self.miss_with_code(name, ctx).map(|(address, _)| address)
    }

    /// [`Instances::miss`], with the published code that holds the
    /// instance (none while it waits in the chain's batch).
    pub(crate) fn miss_with_code(
        &self,
        name: &str,
        ctx: &mut ResolveContext<'_>,
    ) -> Result<(Address, Option<PublishedCode>)> {
        let unresolved = |detail: &str| Error::Unresolved {
            name: name.to_owned(),
            detail: detail.to_owned(),
        };
        if !self.is_enabled() {
            return Err(unresolved(" (instantiation is disabled)"));
        }
        let Some(instantiator) = self.instantiator.load_full() else {
            return Err(unresolved(" (no instantiator is configured)"));
        };
        if let Some(start) = ctx.path.iter().position(|n| **n == *name) {
            bump(&self.counters.failures, 1);
            let mut path: Vec<String> = ctx.path_strings().split_off(start);
            path.push(name.to_owned());
            return Err(Error::Cycle { path });
        }
        if ctx.depth() >= self.max_depth {
            // A name already made in this chain needs no more depth.
            if let Some(cell) = self.cells.get(name)
                && let Some(address) = pending_in(&cell, ctx)
            {
                return Ok((address, None));
            }
            bump(&self.counters.failures, 1);
            let mut path = ctx.path_strings();
            path.push(name.to_owned());
            return Err(Error::DepthExceeded {
                name: name.to_owned(),
                limit: self.max_depth,
                path,
            });
        }
        ctx.enter_gate();
        let (cell, owner) = self.cell(name, ctx.id);
        if !owner && let Some(address) = pending_in(&cell, ctx) {
            return Ok((address, None));
        }
        let address = if owner {
            self.compile(&**instantiator, &cell, ctx)
        } else {
            self.wait_for(&cell, ctx)
        }?;
        ctx.reach(Reach::Instance(Arc::clone(&cell.name)));
        let code = match cell.done.get() {
            Some(Ok(instance)) => instance.code().cloned(),
            _ => None,
        };
        Ok((address, code))
    }

    /// The cell of `name`, and whether it is new (made here, owned by the
    /// chain `owner`): one hash of the name and one lock of its shard, and
    /// the name copied only into a new cell.
    fn cell(&self, name: &str, owner: u64) -> (Arc<Cell>, bool) {
        let hash = self.cells.hash_usize(&name);
        let shard = &self.cells.shards()[self.cells.determine_shard(hash)];
        let mut table = shard.write();
        // The map keeps each entry under the 64-bit hash of its key
        // (`hash_usize` is that hash on this 64-bit target).
        let hash = hash as u64;
        if let Some((_, cell)) = table.get(hash, |(key, _)| **key == *name) {
            return (Arc::clone(cell.get()), false);
        }
        let name: Arc<str> = Arc::from(name);
        let cell = Arc::new(Cell {
            name: Arc::clone(&name),
            owner,
            done: OnceLock::new(),
            lock: Mutex::new(0),
            finished: Condvar::new(),
            reaches: Mutex::new(Vec::new()),
            pending: AtomicUsize::new(0),
        });
        table.insert(
            hash,
            (name, dashmap::SharedValue::new(Arc::clone(&cell))),
            |(key, _)| self.cells.hash_usize(key) as u64,
        );
        (cell, true)
    }

    fn compile(
        &self,
        instantiator: &dyn Instantiator,
        cell: &Arc<Cell>,
        ctx: &mut ResolveContext<'_>,
    ) -> Result<Address> {
        bump(&self.counters.requests, 1);
        // What the instantiator's resolutions record from here on is what
        // this instance reaches.
        let mark = ctx.reached.len();
        ctx.path.push(Arc::clone(&cell.name));
        COMPILING.with(|chains| chains.borrow_mut().push((ctx.id, Arc::clone(&cell.name))));
        let started = crate::ticks::now();
        // A panicking instantiator must still finish the cell, or every
        // thread waiting for the name would wait forever; the panic becomes
        // this name's error (the panic hook has already reported it).
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            instantiator.instantiate(&cell.name, ctx)
        }))
        .unwrap_or_else(|_| {
            Err(Error::instantiation(
                &cell.name,
                InstantiationError::Panicked,
            ))
        });
        let ticks = crate::ticks::now().saturating_sub(started);
        COMPILING.with(|chains| chains.borrow_mut().pop());
        ctx.path.pop();
        bump(&self.counters.compile_ticks, ticks);
        // (Its origin, the module of its template, is in its code.)
        let reaches = ctx.reached.split_off(mark);
        if !reaches.is_empty() {
            *cell.lock_reaches() = reaches;
        }
        let result = match outcome {
            Ok(Some(InstanceCode {
                pending: Some(reservation),
                address,
                size,
                origin,
                ..
            })) => {
                let ours = ctx
                    .batch
                    .as_mut()
                    .is_some_and(|batch| batch.bytes_mut(&reservation).is_ok());
                if ours {
                    // Finished when the module's batch is published.
                    bump(&self.counters.instantiations, 1);
                    bump(&self.counters.code_bytes, size as u64);
                    ctx.push_pending(Pending {
                        cell: Arc::clone(cell),
                        reservation,
                        origin,
                    });
                    return Ok(address);
                }
                bump(&self.counters.failures, 1);
                Err(Error::instantiation(
                    &cell.name,
                    InstantiationError::ForeignBatch,
                ))
            }
            Ok(Some(instance)) => {
                bump(&self.counters.instantiations, 1);
                bump(&self.counters.code_bytes, instance.size as u64);
                Ok(instance)
            }
            Ok(None) => {
                bump(&self.counters.declined, 1);
                Err(Error::Unresolved {
                    name: cell.name.to_string(),
                    detail: String::new(),
                })
            }
            Err(error) => {
                bump(&self.counters.failures, 1);
                Err(error)
            }
        };
        self.settle(cell, result, true)
    }

    /// Finishes a cell: waiters wake, a success is announced (with `fold`
    /// passed on to the hook), a failure leaves the map so that a later
    /// request tries again.
    fn settle(
        &self,
        cell: &Arc<Cell>,
        result: Result<InstanceCode>,
        fold: bool,
    ) -> Result<Address> {
        let failed = result.is_err();
        let answer = cell.finish(result);
        if let Ok(address) = &answer {
            self.live.fetch_add(1, Ordering::Relaxed);
            (self.on_finish)(&cell.name, *address, fold);
        }
        if failed {
            // Waiters already hold the cell and see the error.
            self.cells
                .remove_if(&cell.name, |_, held| Arc::ptr_eq(held, cell));
        }
        answer
    }

    /// Finishes instances that waited in a module's batch, now published as
    /// `code` (`None`: the batch held nothing, which cannot be with pending
    /// instances, and fails them).
    fn finish_pending(&self, pending: Vec<Pending>, code: Option<&PublishedCode>) {
        for Pending {
            cell,
            reservation,
            origin,
        } in pending
        {
            let result = match code {
                Some(code) => InstanceCode::new(code.clone(), &reservation)
                    .map(|instance| InstanceCode { origin, ..instance }),
                None => Err(Error::LostBatch {
                    what: "the batch was published empty",
                }),
            };
            // The chain's root settles after its batch (and folds then);
            // a module's load publishes its snapshot after it.
            let _ = self.settle(&cell, result, false);
        }
    }

    /// Fails instances whose batch was never published.
    fn fail_pending(&self, pending: Vec<Pending>) {
        for Pending { cell, .. } in pending {
            bump(&self.counters.failures, 1);
            let error = Error::instantiation(&cell.name, InstantiationError::LoadFailed);
            let _ = self.settle(&cell, Err(error), false);
        }
    }

    fn wait_for(&self, cell: &Arc<Cell>, ctx: &ResolveContext<'_>) -> Result<Address> {
        if let Some(result) = cell.done.get() {
            bump(&self.counters.cache_hits, 1);
            return result
                .as_ref()
                .map(InstanceCode::address)
                .map_err(Clone::clone);
        }
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            waiting.insert(ctx.id, Arc::clone(cell));
            if let Some(cycle) = find_cycle(&waiting, cell, ctx) {
                waiting.remove(&ctx.id);
                bump(&self.counters.failures, 1);
                return Err(Error::Cycle { path: cycle });
            }
        }
        bump(&self.counters.waits, 1);
        let result = cell.wait();
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&ctx.id);
        result
    }

    /// Whether this thread is inside the reload gate, or has closed it.
    pub(crate) fn gate_held_here(&self) -> bool {
        self.gate.held_here()
    }

    /// Closes the reload gate (`gate.rs`) until the guard goes: waits for
    /// the resolution chains inside to end and keeps new ones out. `None`
    /// when this thread is inside a chain.
    pub(crate) fn close_gate(&self) -> Option<Closed<'_>> {
        self.gate.close()
    }

    /// Drops from the cache every finished instance that reaches `module`
    /// (made from its templates, or calling its exports), and every
    /// instance that reaches one dropped, transitively; the instantiator
    /// is told of each ([`Instantiator::dropped`]). Returns them with
    /// their code, which the caller keeps mapped for whoever still runs
    /// it. Called with the gate closed, so no instance is being made.
    pub(crate) fn retire(&self, module: ModuleId) -> Vec<(Arc<str>, InstanceCode)> {
        let finished: Vec<(Arc<str>, Option<ModuleId>, Arc<Cell>)> = self
            .cells
            .iter()
            .filter_map(|cell| {
                let origin = cell.done.get()?.as_ref().ok()?.origin;
                Some((Arc::clone(cell.key()), origin, Arc::clone(cell.value())))
            })
            .collect();
        let mut dropped: HashSet<Arc<str>, BuildNameHasher> = HashSet::default();
        // Each pass drops what reaches the module or an instance dropped by
        // an earlier pass: as many passes as the longest chain of callers.
        loop {
            let before = dropped.len();
            for (name, origin, cell) in &finished {
                if dropped.contains(name) {
                    continue;
                }
                let stale = *origin == Some(module)
                    || cell.lock_reaches().iter().any(|reach| match reach {
                        Reach::Module(id) => *id == module,
                        Reach::Instance(callee) => dropped.contains(callee),
                    });
                if stale {
                    dropped.insert(Arc::clone(name));
                }
            }
            if dropped.len() == before {
                break;
            }
        }
        let retired: Vec<(Arc<str>, InstanceCode)> = dropped
            .into_iter()
            .filter_map(|name| {
                let (_, cell) = self.cells.remove(&name)?;
                let code = cell.done.get()?.as_ref().ok()?.clone();
                Some((name, code))
            })
            .collect();
        let _ = self
            .live
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |live| {
                Some(live.saturating_sub(retired.len()))
            });
        if let Some(instantiator) = self.instantiator.load().as_ref() {
            for (name, code) in &retired {
                instantiator.dropped(name, code.address());
            }
        }
        retired
    }

    /// Adds to what the instance of `name` at `address` reaches (code a
    /// tiered instantiation compiled later, calling `reaches`); nothing
    /// when the cache holds no such instance any more.
    pub(crate) fn add_reaches(&self, name: &str, address: Address, reaches: Vec<Reach>) {
        if reaches.is_empty() {
            return;
        }
        let Some(cell) = self.cells.get(name) else {
            return;
        };
        if matches!(cell.done.get(), Some(Ok(code)) if code.address() == address) {
            cell.lock_reaches().extend(reaches);
        }
    }

    /// Drops every cached instance (their code is unmapped once no caller
    /// holds it any more) and returns how many there were.
    pub(crate) fn clear(&self) -> usize {
        let finished: Vec<Arc<str>> = self
            .cells
            .iter()
            .filter(|cell| cell.done.get().is_some())
            .map(|cell| Arc::clone(cell.key()))
            .collect();
        let cleared = finished
            .iter()
            .filter(|name| self.cells.remove(&***name).is_some())
            .count();
        self.live.store(0, Ordering::Relaxed);
        self.folded.store(0, Ordering::Relaxed);
        cleared
    }

    pub(crate) fn stats(&self) -> InstanceStats {
        let c = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        InstanceStats {
            cache_hits: load(&c.cache_hits),
            requests: load(&c.requests),
            instantiations: load(&c.instantiations),
            declined: load(&c.declined),
            failures: load(&c.failures),
            waits: load(&c.waits),
            compile_nanos: self.clock.nanos(load(&c.compile_ticks)),
            code_bytes: load(&c.code_bytes),
            instances: self
                .cells
                .iter()
                .filter(|cell| matches!(cell.done.get(), Some(Ok(_))))
                .count(),
            templates: self
                .instantiator
                .load()
                .as_ref()
                .map(|i| i.template_stats())
                .unwrap_or_default(),
            tiers: self
                .instantiator
                .load()
                .as_ref()
                .map(|i| i.tier_totals())
                .unwrap_or_default(),
        }
    }

    /// The tier counters of `name` from the instantiator.
    pub(crate) fn tier_stats(&self, name: &str) -> Option<TierStats> {
        self.instantiator.load().as_ref()?.tier_stats(name)
    }

    /// The finished instance whose reserved bytes hold `address`, with
    /// its name; a linear scan, for the rare [`Loader::address_info`].
    pub(crate) fn containing(&self, address: usize) -> Option<(Arc<str>, InstanceCode)> {
        self.cells.iter().find_map(|cell| {
            let code = cell.done.get()?.as_ref().ok()?;
            let start = code.address().get();
            (start..start + code.size())
                .contains(&address)
                .then(|| (Arc::clone(cell.key()), code.clone()))
        })
    }

    /// [`Instantiator::code_at`] of the installed instantiator.
    pub(crate) fn code_at(&self, address: usize) -> Option<(Arc<str>, Range<usize>)> {
        self.instantiator.load().as_ref()?.code_at(address)
    }
}

/// Follows the wait-for graph from `cell`: if its owner (transitively)
/// waits for a cell that `ctx` owns, the chains deadlock; returns the cycle
/// of names, starting and ending with the same one.
fn find_cycle(
    waiting: &HashMap<u64, Arc<Cell>>,
    cell: &Arc<Cell>,
    ctx: &ResolveContext<'_>,
) -> Option<Vec<String>> {
    let mut visited = vec![cell.name.to_string()];
    let mut current = cell;
    // Each step moves to a different waiting chain, so the walk ends within
    // as many steps as there are waiters.
    for _ in 0..=waiting.len() {
        if current.owner == ctx.id {
            // The cell is in this chain's path, or waits in its batch (a
            // module being loaded) and cannot finish before the chain does.
            let mut path = match ctx.path.iter().position(|n| *n == current.name) {
                Some(start) => ctx.path_strings().split_off(start),
                None => vec![current.name.to_string()],
            };
            path.extend(visited);
            return Some(path);
        }
        // Another chain on this very thread (an instantiator that called
        // `Loader::resolve` instead of `ResolveContext::resolve`) owns the
        // cell: it cannot finish while this thread waits.
        let on_this_thread = COMPILING.with(|chains| {
            let chains = chains.borrow();
            let start = chains.iter().position(|(id, _)| *id == current.owner)?;
            Some(
                chains[start..]
                    .iter()
                    .map(|(_, n)| n.to_string())
                    .collect::<Vec<_>>(),
            )
        });
        if let Some(mut path) = on_this_thread {
            path.extend(visited);
            return Some(path);
        }
        current = waiting.get(&current.owner)?;
        visited.push(current.name.to_string());
    }
    None
}
