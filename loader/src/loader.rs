//! The loader: modules in load order, the export snapshot, the instance
//! cache and the native libraries, behind one cheap-to-clone handle.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use arc_swap::ArcSwap;
use execmem::ExecMemory;

use crate::cache::{CacheConfig, CacheStats, SmfCache, SmfFile};
use crate::error::{Error, Result};
use crate::exports::ExportTable;
use crate::instances::{
    FinishHook, InstanceCode, InstanceStats, Instances, Instantiator, Reach, ResolveContext,
};
use crate::lazy::{self, Binder, KeepAlive};
use crate::limits;
use crate::module::{self, ImportResolver, Keep, LoadRequest, LoadedModule};
use crate::native::NativeLibraries;
use crate::resolution::{Address, ImportSource, JIT_OBJECT, ModuleId};
use crate::shared::SharedRegistry;
use crate::slots::{Slots, SymbolSlot};
use crate::tier::{TierConfig, TierStats};
use jit::shared::{SharedMemory, SharedTable};

/// When a module's imports are bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Binding {
    /// Every import is resolved (and instantiated if need be) while the
    /// module loads; the module's code is published in one batch, after
    /// every relocation is applied.
    #[default]
    Now,
    /// Function imports called through `plt32` or `gotpcrel` are bound at
    /// their first call, through a slot and the resolver trampoline (see
    /// the `lazy` module); every other import is bound at load.
    Lazy,
}

/// How a [`Loader`] is set up.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    /// The SMF cache's limits.
    pub cache: CacheConfig,
    /// The executable memory's configuration. The loader's default is
    /// execmem's with [`execmem::Strategy::FileWrite`]: a miss publishes a
    /// function or two at a time, which file writes do without a
    /// protection change and without a writable mapping of code (see
    /// doc/ARCHITECTURE.md); where the kernel refuses memory files the
    /// allocator falls back to `mprotect`.
    pub memory: execmem::Config,
    /// Native libraries searched for imports no module defines, in order.
    pub native_libraries: Vec<String>,
    /// Bound on nested instantiations.
    pub max_depth: usize,
    /// Whether misses go to the instantiator.
    pub instantiation_enabled: bool,
    /// When imports are bound.
    pub binding: Binding,
    /// Where instantiations run: compiled on their miss, interpreted, or
    /// interpreted until hot (`Loader::with_jit` honours it).
    pub tier: TierConfig,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self {
            cache: CacheConfig::default(),
            memory: execmem::Config {
                strategy: execmem::Strategy::FileWrite,
                ..execmem::Config::default()
            },
            native_libraries: limits::DEFAULT_NATIVE_LIBRARIES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            max_depth: limits::DEFAULT_MAX_DEPTH,
            instantiation_enabled: true,
            binding: Binding::Now,
            tier: TierConfig::default(),
        }
    }
}

/// The environment variable [`LoaderConfig::from_env`] reads the
/// executable-memory strategy from: `file` (file writes, the default),
/// `mprotect` or `dual`.
pub const CODE_MEMORY_ENV: &str = "SMFJIT_CODE_MEMORY";

/// The strategy [`CODE_MEMORY_ENV`] names.
fn code_memory(value: &str) -> Result<execmem::Strategy> {
    match value {
        "file" => Ok(execmem::Strategy::FileWrite),
        "mprotect" => Ok(execmem::Strategy::Mprotect),
        "dual" => Ok(execmem::Strategy::DualMapping),
        other => Err(Error::Config {
            variable: CODE_MEMORY_ENV.to_owned(),
            reason: format!("strategy `{other}` is none of file, mprotect, dual"),
        }),
    }
}

impl LoaderConfig {
    /// The default configuration with what the environment sets: the tier
    /// policy and thresholds (`SMFJIT_TIER`, `SMFJIT_TIER_CALLS`,
    /// `SMFJIT_TIER_BACKEDGES`, `SMFJIT_TIER_BACKGROUND`; see
    /// [`TierConfig::from_env`]), the executable memory's strategy
    /// ([`CODE_MEMORY_ENV`]) and what the executable memory reads itself
    /// (`execmem::Config::default`, e.g. `SMFJIT_PERF_MAP`). An empty
    /// variable counts as unset.
    ///
    /// # Errors
    /// [`Error::Config`] for a variable whose value is not valid.
    pub fn from_env() -> Result<Self> {
        let mut memory = Self::default().memory;
        if let Some(value) = std::env::var(CODE_MEMORY_ENV)
            .ok()
            .filter(|v| !v.is_empty())
        {
            memory.strategy = code_memory(&value)?;
        }
        Ok(Self {
            tier: TierConfig::from_env()?,
            memory,
            ..Self::default()
        })
    }
}

/// A snapshot of everything the loader counts.
#[derive(Debug, Clone, Copy)]
pub struct LoaderStats {
    /// The SMF cache: hits, misses, files and bytes mapped or read.
    pub cache: CacheStats,
    /// The instantiation cache and the miss hook.
    pub instances: InstanceStats,
    /// The executable memory.
    pub memory: execmem::Stats,
    /// Modules loaded now.
    pub modules: usize,
    /// Distinct exported names now.
    pub exports: usize,
    /// Shared memories and tables loaded modules define now.
    pub shared: usize,
    /// Loaded modules whose file on disk is no longer the version they
    /// loaded ([`LoadedModule::is_stale`]); they keep serving that version
    /// until reloaded.
    pub stale_modules: usize,
}

/// The snapshot: every winning export with its module, and the finished
/// instantiations folded in so far (no module; they never shadow an export).
type Table = ExportTable<Option<Arc<LoadedModule>>>;

struct Inner {
    cache: SmfCache,
    memory: ExecMemory,
    natives: Arc<NativeLibraries>,
    instances: Instances,
    exports: ArcSwap<Table>,
    /// Loaded modules in load order. Held only to change the list and
    /// rebuild the export table, never while loading or resolving.
    modules: Mutex<Vec<Arc<LoadedModule>>>,
    /// Versions that hot reloads replaced, with the instances they
    /// dropped, kept mapped because a thread may have read a slot just
    /// before the swap and still be about to run the old code; released
    /// by `reclaim_replaced`.
    replaced: Mutex<Vec<Replaced>>,
    slots: Arc<Slots>,
    /// While a reload makes its dropped instances again: the old address
    /// of each that has a slot, which the slot keeps until the new one is
    /// made (a slot called through must never read 0 in between).
    held: Mutex<HashMap<Arc<str>, usize>>,
    next_id: AtomicU64,
    binding: Binding,
    /// Binds lazy imports on behalf of this loader without keeping it alive.
    binder: Arc<dyn Binder>,
    /// The resolver trampoline, published on the first lazy load.
    trampoline: OnceLock<execmem::PublishedFunction>,
    /// The memories and tables loaded modules define.
    shared: SharedRegistry,
    /// Held for the whole of a load, reload or unload: they change the
    /// module list and the memories and tables together, one at a time.
    lifecycle: Mutex<()>,
}

/// What one reload replaced, kept mapped until
/// [`Loader::reclaim_replaced`]: the old version, the instances dropped
/// with it, and what lazily bound imports held of either.
struct Replaced {
    _module: Arc<LoadedModule>,
    _instances: Vec<InstanceCode>,
    _bindings: Vec<KeepAlive>,
}

/// Loads SMF modules and resolves names: exports of loaded modules first,
/// then cached instantiations, then the [`Instantiator`].
///
/// Cloning is cheap and shares everything; `Send` and `Sync`.
#[derive(Clone)]
pub struct Loader {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("modules", &self.lock_modules().len())
            .field("instances", &self.inner.instances)
            .finish()
    }
}

impl Loader {
    /// A loader with no modules.
    ///
    /// # Errors
    /// [`Error::Memory`] when the executable memory configuration is invalid.
    pub fn new(config: LoaderConfig) -> Result<Self> {
        let memory = ExecMemory::new(config.memory)?;
        Ok(Self::with_memory(config, memory))
    }

    /// A loader placing code in `memory` (shared with, say, a JIT); the
    /// configuration's `memory` field is ignored.
    #[must_use]
    pub fn with_memory(config: LoaderConfig, memory: ExecMemory) -> Self {
        let slots = Arc::new(Slots::default());
        Self {
            inner: Arc::new_cyclic(|weak| Inner {
                cache: SmfCache::new(config.cache),
                memory,
                natives: Arc::new(NativeLibraries::new(config.native_libraries)),
                instances: Instances::new(
                    config.max_depth,
                    config.instantiation_enabled,
                    finish_hook(Arc::clone(&slots), weak.clone()),
                ),
                exports: ArcSwap::from_pointee(ExportTable::empty()),
                modules: Mutex::new(Vec::new()),
                replaced: Mutex::new(Vec::new()),
                slots,
                held: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                binding: config.binding,
                binder: Arc::new(WeakLoader(weak.clone())),
                trampoline: OnceLock::new(),
                shared: SharedRegistry::default(),
                lifecycle: Mutex::new(()),
            }),
        }
    }

    /// The module list, locked: for short reads that must not clone it
    /// (the JIT's choice of module on each miss). Never resolve, load or
    /// wait for an instantiation while holding it.
    pub(crate) fn lock_modules(&self) -> MutexGuard<'_, Vec<Arc<LoadedModule>>> {
        // The list is replaced whole under the lock, so it is never torn.
        self.inner
            .modules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The lifecycle lock (see `Inner::lifecycle`).
    fn lock_lifecycle(&self) -> MutexGuard<'_, ()> {
        self.inner
            .lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The descriptor address of the memory (or, with `table`, the table)
    /// `name`, for code made from templates naming it: the object stays
    /// under its name for the loader's life, its module loaded or not.
    pub(crate) fn shared_descriptor(&self, name: &str, table: bool) -> Option<u64> {
        if table {
            self.inner.shared.table_descriptor(name)
        } else {
            self.inner.shared.memory_descriptor(name)
        }
    }

    /// Installs the miss hook (replacing any previous one).
    pub fn set_instantiator(&self, instantiator: impl Instantiator + 'static) {
        self.inner
            .instances
            .set_instantiator(Some(Box::new(instantiator)));
    }

    /// Removes the miss hook: misses fail as unresolved.
    pub fn clear_instantiator(&self) {
        self.inner.instances.set_instantiator(None);
    }

    /// Turns instantiation on misses on or off (cached instances still
    /// resolve).
    pub fn set_instantiation_enabled(&self, enabled: bool) {
        self.inner.instances.set_enabled(enabled);
    }

    /// Whether misses go to the instantiator.
    #[must_use]
    pub fn instantiation_enabled(&self) -> bool {
        self.inner.instances.is_enabled()
    }

    /// The instance cache.
    pub(crate) fn instances(&self) -> &Instances {
        &self.inner.instances
    }

    /// The binding mode modules are loaded with.
    #[must_use]
    pub fn binding(&self) -> Binding {
        self.inner.binding
    }

    /// The SMF cache.
    #[must_use]
    pub fn cache(&self) -> &SmfCache {
        &self.inner.cache
    }

    /// The executable memory code is published in.
    #[must_use]
    pub fn memory(&self) -> &ExecMemory {
        &self.inner.memory
    }

    /// Loads the module at `path` and makes its exports resolvable.
    ///
    /// # Errors
    /// Cache errors ([`Error::Io`], [`Error::InvalidModule`], ...), a module
    /// for another host, [`Error::Unsupported`] layouts, an
    /// [`Error::Unresolved`] import, [`Error::RelocationOverflow`],
    /// [`Error::Memory`], and instantiation errors of imports. Nothing is
    /// registered when loading fails.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Arc<LoadedModule>> {
        self.load_with_binding(path, self.inner.binding)
    }

    /// [`Loader::load`] with a binding mode other than the configured one.
    ///
    /// # Errors
    /// As [`Loader::load`], and [`Error::Memory`] when the lazy-binding
    /// trampoline cannot be published.
    pub fn load_with_binding(
        &self,
        path: impl AsRef<Path>,
        binding: Binding,
    ) -> Result<Arc<LoadedModule>> {
        let _lifecycle = self.lock_lifecycle();
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let module = Arc::new(self.build(id, path.as_ref(), binding, None)?);
        let mut modules = self.lock_modules();
        modules.push(Arc::clone(&module));
        self.inner.publish_exports(&modules, true);
        Ok(module)
    }

    /// Loads the module at `path` as `id`, its memories and tables
    /// registered first (adopting those of `replacing`, for a reload) and
    /// withdrawn again if the load fails.
    fn build(
        &self,
        id: ModuleId,
        path: &Path,
        binding: Binding,
        replacing: Option<ModuleId>,
    ) -> Result<LoadedModule> {
        let file = self.inner.cache.get(path)?;
        let shared = file.module().shared_items();
        self.inner
            .shared
            .register(id, file.path(), shared, replacing)?;
        let built = self.place(id, file, binding);
        if built.is_err() {
            self.inner.shared.rollback(id);
        }
        built
    }

    fn place(&self, id: ModuleId, file: Arc<SmfFile>, binding: Binding) -> Result<LoadedModule> {
        let lazy = match binding {
            Binding::Now => None,
            Binding::Lazy => Some((Arc::clone(&self.inner.binder), self.trampoline()?)),
        };
        let mut ctx = ResolveContext::new(self);
        let mut imports = Imports {
            loader: self,
            ctx: &mut ctx,
        };
        module::load(
            LoadRequest {
                id,
                file,
                memory: &self.inner.memory,
                lazy,
            },
            &mut imports,
        )
    }

    /// Address of the lazy-binding trampoline, published on first use.
    fn trampoline(&self) -> Result<usize> {
        if let Some(published) = self.inner.trampoline.get() {
            return Ok(published.entry() as usize);
        }
        let avx = std::arch::is_x86_feature_detected!("avx");
        let code = lazy::trampoline(avx);
        let published = self
            .inner
            .memory
            .publish_function("smfjit lazy binding", &code)?;
        // A racing thread may have published one first; either works, and
        // the one kept is the one every module uses from now on.
        Ok(self.inner.trampoline.get_or_init(|| published).entry() as usize)
    }

    /// Binds one import: the exports, the instance cache, the instantiator,
    /// then the native libraries.
    fn bind_import(
        &self,
        name: &str,
        ctx: &mut ResolveContext<'_>,
    ) -> Result<Option<(Address, Keep, ImportSource)>> {
        let inner = &self.inner;
        if let Some((export, Some(module))) = inner.exports.load().get(name) {
            return Ok(Some((
                Address::new(export.address),
                Keep::Module(Arc::clone(module)),
                ImportSource::Module(export.module),
            )));
        }
        if let Some(instance) = inner.instances.cached_instance(name) {
            let keep = instance
                .code()
                .map_or(Keep::SameBatch, |c| Keep::Code(c.clone()));
            return Ok(Some((instance.address(), keep, ImportSource::Instance)));
        }
        match inner.instances.miss_with_code(name, ctx) {
            Ok((address, code)) => {
                // Either published on its own (kept alive by the cache entry,
                // which the module holds too) or waiting in the module's own
                // batch.
                let keep = code.map_or(Keep::SameBatch, Keep::Code);
                return Ok(Some((address, keep, ImportSource::Instance)));
            }
            Err(Error::Unresolved { .. }) => {}
            Err(error) => return Err(error),
        }
        Ok(inner.natives.lookup(name).map(|address| {
            (
                Address::new(address),
                Keep::Native(Arc::clone(&inner.natives)),
                ImportSource::Native,
            )
        }))
    }

    /// Loads the current version of a loaded module's file and swaps it in
    /// at the same place in load order: every export's slot changes
    /// atomically to the new code.
    ///
    /// The instantiations made from the old version's templates, those
    /// calling its exports, and those calling any of these are dropped
    /// from the instance cache: the next resolution of each makes it from
    /// the new templates. Those a [`SymbolSlot`] was handed out for are
    /// made again at once, and their slots changed to them (a slot keeps
    /// its old address until then, and holds 0 if the name no longer
    /// instantiates); lazily bound imports of loaded modules that were
    /// bound to a dropped instance or an old export bind again at their
    /// next call. Instantiations wait while this happens, and the reload
    /// waits for those in progress (see `gate.rs`).
    ///
    /// The old version and the dropped instances stay mapped: a thread
    /// that read a slot just before the swap may still be on its way into
    /// the old code, and modules that bound to it at load call it
    /// directly. They are released by [`Loader::reclaim_replaced`] (or
    /// when the loader goes) once nothing else holds them.
    ///
    /// # Errors
    /// [`Error::NoSuchModule`] when `id` is not loaded;
    /// [`Error::Unsupported`] when called from inside an instantiation
    /// (it would wait for itself); every error of [`Loader::load`]. The old
    /// version stays in place then.
    pub fn reload(&self, id: ModuleId) -> Result<Arc<LoadedModule>> {
        let old = self.module(id).ok_or(Error::NoSuchModule(id))?;
        let path = old.path().to_path_buf();
        let inside = || Error::Unsupported {
            path: path.clone(),
            reason: "a module cannot be reloaded from inside an instantiation".to_owned(),
        };
        if self.inner.instances.gate_held_here() {
            return Err(inside());
        }
        let _lifecycle = self.lock_lifecycle();
        let old = self.module(id).ok_or(Error::NoSuchModule(id))?;
        let new_id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let binding = if old.lazy_imports().next().is_some() {
            Binding::Lazy
        } else {
            self.inner.binding
        };
        let module = Arc::new(self.build(new_id, &path, binding, Some(id))?);
        let Some(closed) = self.inner.instances.close_gate() else {
            self.inner.shared.rollback(new_id);
            return Err(inside());
        };
        let mut modules = self.lock_modules();
        let Some(place) = modules.iter().position(|m| m.id() == id) else {
            self.inner.shared.rollback(new_id);
            return Err(Error::NoSuchModule(id));
        };
        let replaced = std::mem::replace(&mut modules[place], Arc::clone(&module));
        self.inner.shared.remove(id);
        let retired = self.inner.instances.retire(id);
        self.inner.hold_slots(&retired);
        self.inner.publish_exports(&modules, true);
        let loaded = modules.clone();
        drop(modules);
        let bindings = unbind_stale_lazy_imports(&loaded, &replaced, &retired);
        self.remake_behind_slots(&retired);
        drop(closed);
        self.inner
            .replaced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Replaced {
                _module: replaced,
                _instances: retired.into_iter().map(|(_, code)| code).collect(),
                _bindings: bindings,
            });
        Ok(module)
    }

    /// Makes again, from the new templates, the instances a reload dropped
    /// that slots were handed out for, and stores every slot.
    fn remake_behind_slots(&self, retired: &[(Arc<str>, InstanceCode)]) {
        for (name, _) in retired {
            if self.inner.slots.contains(name) {
                // A name that no longer instantiates is left unresolved;
                // its slot then holds 0, as for an export that went away.
                let _ = self.resolve(name);
            }
        }
        // Slots change in the order of the changes, as in `publish_exports`.
        let _modules = self.lock_modules();
        self.inner.release_slots();
    }

    /// The instantiation of `name` made on an earlier miss, with its code,
    /// if there is one (exports of loaded modules are not instances).
    #[must_use]
    pub fn instance(&self, name: &str) -> Option<InstanceCode> {
        self.inner.instances.cached_instance(name)
    }

    /// Releases the versions that [`Loader::reload`] replaced, for the
    /// embedder to call once no thread can still be running code it reached
    /// through a slot before a reload (for example between frames, or after
    /// the threads that call through slots have passed a checkpoint). A
    /// version that a loaded module bound to, or that a caller still holds,
    /// stays mapped until that goes too. Returns how many were released.
    pub fn reclaim_replaced(&self) -> usize {
        let mut replaced = self
            .inner
            .replaced
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = replaced.len();
        replaced.clear();
        count
    }

    /// Removes a module: its exports stop resolving and its memory is
    /// returned once nothing else holds it. The shared memories and tables
    /// it defines stop resolving too (their descriptors stay valid for
    /// code compiled against them).
    ///
    /// # Errors
    /// [`Error::NoSuchModule`] when `id` is not loaded; [`Error::InUse`]
    /// when another loaded module imports a memory or table it defines
    /// (nothing changes then).
    pub fn unload(&self, id: ModuleId) -> Result<()> {
        let _lifecycle = self.lock_lifecycle();
        let mut modules = self.lock_modules();
        let place = modules
            .iter()
            .position(|m| m.id() == id)
            .ok_or(Error::NoSuchModule(id))?;
        self.inner.shared.check_unload(id, modules[place].path())?;
        self.inner.shared.remove(id);
        modules.remove(place);
        self.inner.publish_exports(&modules, true);
        Ok(())
    }

    /// The shared memory `name` a loaded module defines: the one every
    /// importer, tier and backend uses.
    #[must_use]
    pub fn shared_memory(&self, name: &str) -> Option<Arc<SharedMemory>> {
        self.inner.shared.memory(name)
    }

    /// The shared table `name` a loaded module defines, with the signature
    /// of its entries.
    #[must_use]
    pub fn shared_table(&self, name: &str) -> Option<(Arc<SharedTable>, Arc<jit::ir::Signature>)> {
        self.inner.shared.table(name)
    }

    /// The loaded module with this id.
    #[must_use]
    pub fn module(&self, id: ModuleId) -> Option<Arc<LoadedModule>> {
        self.lock_modules().iter().find(|m| m.id() == id).cloned()
    }

    /// Every loaded module, in load order.
    #[must_use]
    pub fn modules(&self) -> Vec<Arc<LoadedModule>> {
        self.lock_modules().clone()
    }

    /// The address of `name` among the loaded modules' exports only: one
    /// hash and a probe of the current snapshot, no lock, no allocation.
    #[inline]
    #[must_use]
    pub fn lookup_export(&self, name: &str) -> Option<Address> {
        self.export_of(name).map(|(address, _)| address)
    }

    /// The address of the export `name` and the module exporting it.
    #[inline]
    fn export_of(&self, name: &str) -> Option<(Address, ModuleId)> {
        let table = self.inner.exports.load();
        match table.get(name)? {
            (export, Some(_)) => Some((Address::new(export.address), export.module)),
            (_, None) => None,
        }
    }

    /// The module whose export `name` resolves to now; holding it keeps
    /// that code mapped across a reload or unload.
    #[must_use]
    pub fn exporter(&self, name: &str) -> Option<Arc<LoadedModule>> {
        let table = self.inner.exports.load();
        table.get(name).and_then(|(_, m)| m.clone())
    }

    /// The slot of `name`, created on first request; see [`SymbolSlot`].
    /// Asking for a slot resolves nothing: it holds 0 until a module
    /// exports the name or an instantiation of it finishes.
    #[must_use]
    pub fn slot(&self, name: &str) -> SymbolSlot {
        self.inner.slots.get_or_create(name, || {
            self.lookup_export(name)
                .or_else(|| self.inner.instances.peek(name))
                .map_or(0, Address::get)
        })
    }

    /// Resolves `name`: the loaded modules' exports, then the instantiation
    /// cache, then the instantiator (BRIEF §2, §6).
    ///
    /// # Errors
    /// [`Error::Unresolved`] when nothing defines or instantiates it;
    /// [`Error::InstantiationFailed`], [`Error::DepthExceeded`],
    /// [`Error::Cycle`] and whatever the instantiator reports.
    #[inline]
    pub fn resolve(&self, name: &str) -> Result<Address> {
        if let Some(address) = self.resolve_cached(name) {
            return Ok(address);
        }
        self.inner
            .instances
            .miss(name, &mut ResolveContext::new(self))
    }

    /// The first two steps of a resolution: the snapshot (exports, and
    /// instances folded into it), then the instance map.
    #[inline]
    fn resolve_cached(&self, name: &str) -> Option<Address> {
        if let Some((export, module)) = self.inner.exports.load().get(name) {
            if module.is_none() {
                self.inner.instances.count_hit();
            }
            return Some(Address::new(export.address));
        }
        self.inner.instances.cached(name)
    }

    /// [`Loader::resolve`] inside an existing chain, which records what
    /// the code being made reaches (`instances::Reach`).
    pub(crate) fn resolve_with(&self, name: &str, ctx: &mut ResolveContext<'_>) -> Result<Address> {
        if let Some((export, module)) = self.inner.exports.load().get(name) {
            if module.is_some() {
                ctx.reach(Reach::Module(export.module));
            } else {
                self.inner.instances.count_hit();
                ctx.reach(Reach::Instance(Arc::clone(&export.name)));
            }
            return Ok(Address::new(export.address));
        }
        if let Some((address, name)) = self.inner.instances.cached_named(name) {
            ctx.reach(Reach::Instance(name));
            return Ok(address);
        }
        self.inner.instances.miss(name, ctx)
    }

    /// [`Loader::lookup_export`] for code being made in `ctx`, which
    /// records that it reaches the exporting module.
    pub(crate) fn lookup_export_with(
        &self,
        name: &str,
        ctx: &mut ResolveContext<'_>,
    ) -> Option<Address> {
        let (address, module) = self.export_of(name)?;
        ctx.reach(Reach::Module(module));
        Some(address)
    }

    /// Drops every cached instantiation; code that was handed out stays
    /// mapped while modules that bound to it live. Returns how many there
    /// were.
    pub fn clear_instances(&self) -> usize {
        let modules = self.lock_modules();
        // The snapshot loses the instances before their code can go.
        self.inner.publish_exports(&modules, false);
        let cleared = self.inner.instances.clear();
        self.inner.refresh_slots();
        cleared
    }

    /// The tier counters of the instantiation `name`, when it runs tiered
    /// (`LoaderConfig::tier` other than compiled).
    #[must_use]
    pub fn tier_stats(&self, name: &str) -> Option<TierStats> {
        self.inner.instances.tier_stats(name)
    }

    /// A snapshot of every counter. Counting stale modules asks the file
    /// system about each loaded module.
    #[must_use]
    pub fn stats(&self) -> LoaderStats {
        let stale_modules = self.modules().iter().filter(|m| m.is_stale()).count();
        LoaderStats {
            cache: self.inner.cache.stats(),
            instances: self.inner.instances.stats(),
            memory: self.inner.memory.stats(),
            modules: self.lock_modules().len(),
            exports: self.inner.exports.load().count(|module| module.is_some()),
            shared: self.inner.shared.len(),
            stale_modules,
        }
    }

    /// The address of `name` in the native libraries, searched in order.
    pub(crate) fn native_symbol(&self, name: &str) -> Option<usize> {
        self.inner.natives.lookup(name)
    }

    /// Binds imports of `name` that no module or instantiation provides to
    /// `address` in code that lives for the rest of the process (the
    /// process-wide trap runtime), ahead of the native libraries.
    pub(crate) fn define_runtime_symbol(&self, name: &str, address: usize) {
        self.inner.natives.define_runtime(name, address);
    }

    /// The native libraries searched for imports, in order.
    #[must_use]
    pub fn native_libraries(&self) -> &[String] {
        self.inner.natives.names()
    }
}

impl Inner {
    /// Rebuilds the snapshot from `modules` (and, with `instances`, every
    /// finished instantiation) and updates every slot. Called with the
    /// module list locked, so snapshots are published in the order of the
    /// changes.
    fn publish_exports(&self, modules: &[Arc<LoadedModule>], instances: bool) {
        let folded = if instances {
            self.instances.fold()
        } else {
            Vec::new()
        };
        let table = Table::build(
            modules
                .iter()
                .flat_map(|m| m.exports().iter().map(move |e| (e, Some(Arc::clone(m)))))
                .chain(folded.iter().map(|e| (e, None))),
        );
        self.exports.store(Arc::new(table));
        self.refresh_slots();
    }

    /// Stores in every slot what its name resolves to now (or, while a
    /// reload makes it again, its old address).
    fn refresh_slots(&self) {
        let table = self.exports.load();
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        self.slots.refresh(|name| match table.get(name) {
            Some((export, _)) => export.address,
            None => self
                .instances
                .peek(name)
                .map(Address::get)
                .or_else(|| held.get(name).copied())
                .unwrap_or(0),
        });
    }

    /// Keeps the slots of the instances a reload dropped at their old
    /// addresses until [`Inner::release_slots`].
    fn hold_slots(&self, retired: &[(Arc<str>, InstanceCode)]) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, code) in retired {
            if self.slots.contains(name) {
                held.insert(Arc::clone(name), code.address().get());
            }
        }
    }

    /// Ends [`Inner::hold_slots`]: every slot gets what its name resolves
    /// to now. Called with the module list locked, like `publish_exports`.
    fn release_slots(&self) {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.refresh_slots();
    }
}

/// Points the lazily bound imports of `loaded` that were bound to an
/// instance a reload dropped (`retired`), or to an export of the version it
/// `replaced`, back at their binding stubs; returns what kept their old
/// targets alive.
fn unbind_stale_lazy_imports(
    loaded: &[Arc<LoadedModule>],
    replaced: &LoadedModule,
    retired: &[(Arc<str>, InstanceCode)],
) -> Vec<KeepAlive> {
    let stale: HashMap<&str, usize> = retired
        .iter()
        .map(|(name, code)| (&**name, code.address().get()))
        .chain(replaced.exports().iter().map(|e| (&*e.name, e.address)))
        .collect();
    loaded
        .iter()
        .flat_map(|m| m.unbind_lazy(|name, address| stale.get(name) == Some(&address)))
        .collect()
}

/// What happens after an instantiation: its slot (if any) gets the
/// address, and every loaded module listing the name in its note's
/// `possible` table records it as `jit_compiled` (a module being loaded
/// records the instantiations its imports caused itself).
fn finish_hook(slots: Arc<Slots>, loader: Weak<Inner>) -> FinishHook {
    Box::new(move |name, address, fold| {
        slots.set(name, address.get());
        if let Some(inner) = loader.upgrade() {
            let modules = inner.modules.lock().unwrap_or_else(PoisonError::into_inner);
            // Recording takes a note's lock only if it is free (or queues),
            // so holding the list meanwhile cannot deadlock.
            for module in modules.iter() {
                module.record_jit_compiled(name, JIT_OBJECT);
            }
            if fold && inner.instances.should_fold() {
                inner.publish_exports(&modules, true);
            }
        }
    })
}

/// Import binding for a module being loaded, within one resolution chain.
struct Imports<'a, 'l> {
    loader: &'a Loader,
    ctx: &'a mut ResolveContext<'l>,
}

impl ImportResolver for Imports<'_, '_> {
    fn resolve_import(&mut self, name: &str) -> Result<Option<(Address, Keep, ImportSource)>> {
        self.loader.bind_import(name, self.ctx)
    }

    fn lend_batch(&mut self, batch: execmem::CodeBatch) {
        self.ctx.lend_batch(batch);
    }

    fn take_batch(&mut self) -> Option<execmem::CodeBatch> {
        self.ctx.take_batch()
    }

    fn published(&mut self, code: Option<&execmem::PublishedCode>) {
        self.ctx.finish_batch(code);
    }

    fn expect(&mut self, instantiations: usize) {
        self.loader.inner.instances.reserve(instantiations);
        self.ctx.expect(instantiations);
    }
}

/// A weak handle to a loader: lazy binding's view of it, so modules (which
/// hold it through their binding descriptors) do not keep their loader
/// alive, and tiered code's.
pub(crate) struct WeakLoader(Weak<Inner>);

impl WeakLoader {
    /// The loader, while it lives.
    pub(crate) fn upgrade(&self) -> Option<Loader> {
        self.0.upgrade().map(|inner| Loader { inner })
    }
}

impl Loader {
    /// A handle that does not keep the loader alive.
    pub(crate) fn downgrade(&self) -> WeakLoader {
        WeakLoader(Arc::downgrade(&self.inner))
    }
}

impl Binder for WeakLoader {
    fn bind(&self, name: &str, store: &mut dyn FnMut(Address, KeepAlive)) -> Result<bool> {
        let inner = self.0.upgrade().ok_or_else(|| Error::Unresolved {
            name: name.to_owned(),
            detail: " (its loader was freed)".to_owned(),
        })?;
        let loader = Loader { inner };
        let mut ctx = ResolveContext::new(&loader);
        // Bound while no reload is under way, and stored before one can
        // start (the context holds the gate until it is dropped): one that
        // comes later unbinds it again if what it binds to is replaced.
        ctx.enter_gate();
        let Some((address, keep, _)) = loader.bind_import(name, &mut ctx)? else {
            return Ok(false);
        };
        store(address, Box::new(keep) as KeepAlive);
        Ok(true)
    }
}
