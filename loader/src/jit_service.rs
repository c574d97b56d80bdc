//! The JIT-on-miss instantiator: the [`Instantiator`] that turns a mangled
//! name no module exports into machine code from a loaded module's
//! templates (BRIEF §2, the last steps of a miss).
//!
//! For a name such as `sort$u16` it
//! 1. demangles it to a template name (`sort`) and picks the loaded module
//!    that offers that template in its symbol table: a module whose symbol
//!    is `Global` wins over one whose copy is `Local` or `Weak`, load order
//!    among equals. The module must accept the name: its `note.sdn` lists it
//!    (`possible`, or `instantiations` after an earlier run), or
//!    [`JitConfig::open_world`] allows any well-formed instantiation;
//! 2. takes that module's template library: the section's framing is read
//!    on the first miss, and each template is decoded on its first lookup
//!    and verified on its first instantiation, once in the process for
//!    every loader that loads the same section (`template_cache`, which
//!    also keeps the libraries used last after their modules are gone).
//!    Template symbols and code are the copies made at load (`offered`):
//!    a module whose file was replaced, deleted or truncated since keeps
//!    instantiating the version it loaded;
//! 3. substitutes the type arguments (`jit::instantiate`);
//! 4. lowers and encodes with the x86-64 backend, callees resolved through
//!    the same resolution chain ([`ResolveContext::resolve`]: other modules'
//!    exports, cached or new instantiations), a callee still being compiled
//!    in this chain through its [`crate::SymbolSlot`] (mutual recursion),
//!    native imports through a module's export, then the loader's native
//!    libraries;
//! 5. places the code in the batch of the module being loaded when there
//!    is one (`Now` binding: one publication for the module and everything
//!    its imports needed); otherwise the outermost instantiation of the
//!    chain opens a batch that it and every instantiation it causes share,
//!    published once when it is done.
//!
//! The loader around it does the rest: exactly-once compilation per name,
//! the depth bound, cycle reports, statistics, and the move of the note row
//! from `possible` to `instantiations` (`jit_compiled`), which it records in
//! every loaded module's note when an instantiation finishes.
//!
//! Generated code and ahead-of-time code (through the `__smfjit_trap`
//! import, [`TRAP_SYMBOL`], bound by [`Loader::with_jit`] ahead of the
//! native libraries) report traps to one process-wide
//! [`TrapRuntime`] ([`trap_runtime`]), so a caller sees the same [`jit::Trap`]
//! whichever compiled the function.
//!
//! The note is written back into the module file only when asked
//! ([`write_back_note`]): the module is rewritten with the new note
//! (`smf::rewrite_note`) into a temporary file beside it, synced, which then
//! replaces it (`rename`), so a reader of the path sees the old file or the
//! new one, never a mix; the directory is synced after the rename, so a
//! crash leaves one of them too.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use jit::backend::{Backend, CallResolver, CallTarget, PreparedFunction, TrapRuntime};
use jit::hash::BuildIntHasher;
use jit::ir::{Callee, Library, TemplateName};

use crate::error::{Error, InstantiationError, Result};
use crate::instances::{InstanceCode, Instantiator, ResolveContext, TemplateStats};
use crate::loader::{Loader, LoaderConfig};
use crate::module::LoadedModule;
use crate::resolution::{Address, ModuleId};
use crate::template_cache;
use crate::tier::{TierConfig, TierPolicy, TierShared, TierStats, TierTotals};

/// The runtime symbol ahead-of-time code imports for traps: an
/// `extern "C" fn(kind: u32, code: u32) -> !` (the name `smf-build` gives
/// the trap handler's `abs64` relocations).
pub const TRAP_SYMBOL: &str = "__smfjit_trap";

/// Alignment of each instantiation's entry point.
const ENTRY_ALIGN: usize = 16;

/// Bytes mapped up front for the batch of one miss: a page holds a typical
/// instantiation with its callees (a sort and its helpers take ~1 KiB),
/// and mapping no more than that spares unmapping an unused tail at
/// publication; a larger chain maps further regions as it goes.
const CHAIN_CAPACITY: usize = 4096;

/// How the JIT instantiator chooses what it may compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitConfig {
    /// Instantiate any well-formed mangled name whose template a loaded
    /// module offers, not only the names its `note.sdn` lists.
    pub open_world: bool,
}

impl Default for JitConfig {
    /// Open world: applications ask for instantiations their libraries did
    /// not foresee (the `app` fixture's `sum$f32`).
    fn default() -> Self {
        Self { open_world: true }
    }
}

/// The trap runtime shared by every loader of the process, with the memory
/// holding its code.
struct SharedRuntime {
    _memory: execmem::ExecMemory,
    runtime: TrapRuntime,
}

static TRAP_RUNTIME: OnceLock<std::result::Result<SharedRuntime, Arc<jit::backend::Error>>> =
    OnceLock::new();

/// The process-wide trap runtime: `__smfjit_trap` is bound to its
/// [`TrapRuntime::handler`] and generated code calls the same handler, so
/// [`TrapRuntime::call`] on it catches traps of either kind of code.
///
/// # Errors
/// [`Error::TrapRuntime`] when its code could not be published (the first
/// call tries; the outcome is kept).
pub fn trap_runtime() -> Result<&'static TrapRuntime> {
    let shared = TRAP_RUNTIME.get_or_init(|| {
        let memory = execmem::ExecMemory::new(execmem::Config::default())
            .map_err(|e| Arc::new(jit::backend::Error::from(e)))?;
        let runtime = TrapRuntime::new(&memory).map_err(Arc::new)?;
        Ok(SharedRuntime {
            _memory: memory,
            runtime,
        })
    });
    match shared {
        Ok(shared) => Ok(&shared.runtime),
        Err(source) => Err(Error::TrapRuntime {
            source: Arc::clone(source),
        }),
    }
}

/// One loaded module's decoded and verified template library, once asked
/// for.
#[derive(Debug, Default)]
struct ModuleTemplates {
    library: OnceLock<std::result::Result<Arc<Library>, jit::Error>>,
}

impl ModuleTemplates {
    /// The module's template library: its framing read on first use, each
    /// template decoded and verified on its own first use (and shared with
    /// every loader of the process that loads the same section).
    fn library(&self, module: &LoadedModule) -> Result<Arc<Library>> {
        let Some(offered) = module.templates() else {
            return Err(Error::Unsupported {
                path: module.path().to_path_buf(),
                reason: "its templates cannot be used: the module has no TemplateCode section"
                    .to_owned(),
            });
        };
        let decoded = self.library.get_or_init(|| {
            let library = template_cache::library(offered.code(), offered.offset())?;
            // The shared items were parsed into owned memory at validation.
            crate::shared::check_library(&library, module.file().module().shared_items())?;
            Ok(library)
        });
        decoded.clone().map_err(|source| Error::InvalidTemplates {
            path: module.path().to_path_buf(),
            source: Box::new(source),
        })
    }
}

/// The [`Instantiator`] that compiles templates of loaded modules on a miss
/// (see the module documentation for the steps).
#[derive(Debug)]
pub struct JitInstantiator {
    config: JitConfig,
    backend: Backend,
    trap: &'static TrapRuntime,
    /// Tiered execution, unless every instantiation is compiled on its
    /// miss ([`TierPolicy::Compiled`]).
    tier: Option<Arc<TierShared>>,
    /// Per loaded module, by id; entries of modules no longer loaded are
    /// dropped whenever a new module is indexed.
    modules: Mutex<HashMap<ModuleId, Arc<ModuleTemplates>, BuildIntHasher>>,
    /// Instances whose code is written, kept for their storage: the next
    /// instantiations refill them (`jit::instantiate::instantiate_reusing`)
    /// instead of allocating and freeing a few dozen small blocks per miss.
    /// Last in, first out, so a miss's callee gets the storage its
    /// predecessor's callee left; at most [`SPARE_INSTANCES`].
    spares: Mutex<Vec<jit::instantiate::Instance>>,
}

/// Instances kept for their storage: a miss with its nested callee misses
/// holds a few at once, and more would only keep memory alive.
const SPARE_INSTANCES: usize = 4;

/// Largest instance, in instructions, kept for its storage: a rare large
/// function's buffers are given back to the allocator rather than held.
const SPARE_MAX_INSTS: usize = 512;

impl JitInstantiator {
    /// An instantiator generating code that traps through
    /// [`trap_runtime`].
    ///
    /// # Errors
    /// As [`trap_runtime`].
    pub fn new(config: JitConfig) -> Result<Self> {
        Self::with_tier(config, TierConfig::default())
    }

    /// An instantiator whose instantiations run where `tier` says
    /// (`crate::tier`): compiled on their miss, or in the interpreter
    /// behind a stub until hot.
    ///
    /// # Errors
    /// As [`trap_runtime`]; [`Error::Memory`] when the interpreter entry
    /// cannot be published.
    pub fn with_tier(config: JitConfig, tier: TierConfig) -> Result<Self> {
        let trap = trap_runtime()?;
        let backend = Backend::new(trap.options());
        let tier = match tier.policy {
            TierPolicy::Compiled => None,
            _ => Some(TierShared::new(tier, backend.clone(), trap)?),
        };
        Ok(Self {
            config,
            backend,
            tier,
            trap,
            modules: Mutex::new(HashMap::default()),
            spares: Mutex::new(Vec::with_capacity(SPARE_INSTANCES)),
        })
    }

    /// Makes this the miss hook of `loader` and binds `__smfjit_trap`
    /// imports of its modules to the trap handler — like a native
    /// function, so that modules load (and trap alike) even with
    /// instantiation switched off.
    pub fn install(self, loader: &Loader) {
        loader.define_runtime_symbol(TRAP_SYMBOL, self.trap.handler() as usize);
        if let Some(tier) = &self.tier {
            tier.attach(loader);
        }
        loader.set_instantiator(self);
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> JitConfig {
        self.config
    }

    /// The tier configuration.
    #[must_use]
    pub fn tier_config(&self) -> TierConfig {
        self.tier
            .as_ref()
            .map_or_else(TierConfig::default, |tier| tier.config())
    }

    fn templates(
        &self,
        module: &LoadedModule,
        loaded: &[Arc<LoadedModule>],
    ) -> Arc<ModuleTemplates> {
        let mut modules = self.modules.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = modules.get(&module.id()) {
            return Arc::clone(found);
        }
        let templates = Arc::new(ModuleTemplates::default());
        modules.retain(|id, _| loaded.iter().any(|m| m.id() == *id));
        modules.insert(module.id(), Arc::clone(&templates));
        templates
    }

    /// The module that offers `template` and accepts `name`, with its
    /// templates: a `Global` template symbol first, then load order. What
    /// is read of each module was copied at load, so a module whose file
    /// changed since takes part as the version it loaded.
    fn choose(
        &self,
        loader: &Loader,
        name: &str,
        template: &str,
    ) -> Option<(Arc<LoadedModule>, Arc<ModuleTemplates>)> {
        // Read under the list's lock rather than cloned: this runs on every
        // miss. Nothing here resolves or waits.
        let loaded = loader.lock_modules();
        let mut best: Option<(bool, &Arc<LoadedModule>)> = None;
        for module in loaded.iter() {
            let Some(binding) = module.templates().and_then(|t| t.binding(template)) else {
                continue;
            };
            let global = binding == smf::Binding::Global;
            let listed = || {
                module.note().is_some_and(|note| {
                    note.possible(name).is_some() || note.instantiation(name).is_some()
                })
            };
            if !(self.config.open_world || listed()) {
                continue;
            }
            if best.is_none_or(|(g, _)| global && !g) {
                best = Some((global, module));
            }
        }
        let (_, module) = best?;
        Some((Arc::clone(module), self.templates(module, &loaded)))
    }

    /// Lowers and encodes `instance`, its callees resolved in `ctx`.
    fn prepare(
        &self,
        instance: &jit::instantiate::Instance,
        ctx: &mut ResolveContext<'_>,
    ) -> Result<PreparedFunction> {
        let symbol = instance.symbol.as_str();
        prepare_function(
            &self.backend,
            &instance.function,
            &instance.reg_types,
            symbol,
            symbol,
            ctx,
        )
    }
}

/// Lowers and encodes `function` (named `name` in errors), its calls to
/// `symbol` kept inside its own code and every other callee resolved in
/// `ctx`. The loader's own error for a callee (a cycle, a depth bound, an
/// unresolved name) is what the caller sees, not its wrapping.
pub(crate) fn prepare_function(
    backend: &Backend,
    function: &jit::ir::Function,
    types: &jit::verify::RegTypes,
    symbol: &str,
    name: &str,
    ctx: &mut ResolveContext<'_>,
) -> Result<PreparedFunction> {
    let mut resolver = Callees { ctx, error: None };
    let prepared = backend.prepare(function, types, &[symbol], &mut resolver);
    prepared.map_err(|error| {
        resolver
            .error
            .unwrap_or_else(|| Error::instantiation(name, error))
    })
}

/// What a function being compiled reaches, as seen from the chain `ctx`:
/// callees through the chain, shared memories and tables through the
/// loader's registry (their descriptors, never copies). The first error of
/// the loader's own is kept, so that the caller sees it rather than its
/// wrapping.
struct Callees<'c, 'l> {
    ctx: &'c mut ResolveContext<'l>,
    error: Option<Error>,
}

impl CallResolver for Callees<'_, '_> {
    fn resolve(&mut self, callee: &Callee) -> std::result::Result<CallTarget, jit::Error> {
        resolve_callee(callee, self.ctx).map_err(|error| {
            let unresolved = jit::Error::new(jit::ErrorKind::Unresolved(error.to_string()));
            self.error.get_or_insert(error);
            unresolved
        })
    }

    fn memory(&mut self, name: &str) -> std::result::Result<u64, jit::Error> {
        shared_descriptor(self.ctx.loader(), name, false)
    }

    fn table(&mut self, name: &str) -> std::result::Result<u64, jit::Error> {
        shared_descriptor(self.ctx.loader(), name, true)
    }
}

/// The descriptor of the memory (`table` false) or table `name`, as code
/// made by this loader reaches it.
pub(crate) fn shared_descriptor(
    loader: &Loader,
    name: &str,
    table: bool,
) -> std::result::Result<u64, jit::Error> {
    loader.shared_descriptor(name, table).ok_or_else(|| {
        let kind = if table { "table" } else { "memory" };
        jit::Error::new(jit::ErrorKind::Unresolved(format!(
            "the {kind} `{name}`, which no loaded module defines"
        )))
    })
}

/// Where calls to `callee` go, as seen from the chain `ctx`.
pub(crate) fn resolve_callee(callee: &Callee, ctx: &mut ResolveContext<'_>) -> Result<CallTarget> {
    let direct = |address: Address| CallTarget::Direct(address.get() as u64);
    match callee {
        // Mutual recursion: the callee waits further out in this chain and
        // gets its address when it finishes; call it through its slot.
        Callee::Symbol(name) if ctx.in_chain(name) => {
            Ok(CallTarget::Slot(ctx.slot(name).as_ptr() as u64))
        }
        Callee::Symbol(name) => ctx.resolve(name).map(direct),
        // A native import: a module exporting the name wins (as for a
        // module's own imports), then the native libraries; only a name
        // neither has is asked of the whole chain, so `malloc` never
        // reaches the miss path.
        Callee::Import(name) => {
            let loader = ctx.loader();
            match loader.lookup_export_with(name, ctx) {
                Some(address) => Ok(direct(address)),
                None => match loader.native_symbol(name) {
                    Some(address) => Ok(CallTarget::Direct(address as u64)),
                    None => ctx.resolve(name).map(direct),
                },
            }
        }
        Callee::Template { name, .. } => Err(Error::instantiation(
            &name.to_string(),
            InstantiationError::UninstantiatedCall,
        )),
    }
}

thread_local! {
    /// Where a tiered miss spells its instance's symbol, kept from one miss
    /// to the next.
    static SYMBOL: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    /// A miss's demangled template and type arguments, kept likewise (a
    /// short stack: a miss nested in another takes the next one down).
    static PARTS: jit::shared::spare::Spares<(TemplateName, Vec<jit::ir::Type>)> =
        const { std::cell::Cell::new(Vec::new()) };
}

impl Instantiator for JitInstantiator {
    fn tier_stats(&self, name: &str) -> Option<TierStats> {
        self.tier.as_ref()?.stats(name)
    }

    fn tier_totals(&self) -> TierTotals {
        self.tier
            .as_ref()
            .map(|tier| tier.totals())
            .unwrap_or_default()
    }

    fn code_at(&self, address: usize) -> Option<(Arc<str>, std::ops::Range<usize>)> {
        self.tier.as_ref()?.code_at(address)
    }

    fn dropped(&self, name: &str, address: Address) {
        if let Some(tier) = &self.tier {
            tier.forget(name, address);
        }
    }

    fn reserve(&self, additional: usize) {
        if let Some(tier) = &self.tier {
            tier.reserve(additional);
        }
    }

    fn template_stats(&self) -> TemplateStats {
        let modules = self.modules.lock().unwrap_or_else(PoisonError::into_inner);
        // Two modules with the same section share one library: count it once.
        let mut seen: Vec<*const Library> = Vec::new();
        let mut stats = TemplateStats::default();
        for library in modules
            .values()
            .filter_map(|m| m.library.get()?.as_ref().ok())
        {
            if seen.contains(&Arc::as_ptr(library)) {
                continue;
            }
            seen.push(Arc::as_ptr(library));
            stats.decoded += library.decoded_count();
            stats.verified += library.verified_count();
        }
        stats
    }

    fn instantiate(
        &self,
        name: &str,
        ctx: &mut ResolveContext<'_>,
    ) -> Result<Option<InstanceCode>> {
        // The demangled parts' storage comes from this thread's last misses.
        let (mut template, mut type_args) = jit::shared::spare::take(&PARTS);
        // A name outside the mangling scheme is no instantiation at all.
        let made = match jit::mangle::demangle_into(name, &mut template, &mut type_args) {
            Ok(()) => self.instantiate_parts(name, &template, &type_args, ctx),
            Err(_) => Ok(None),
        };
        jit::shared::spare::give(&PARTS, (template, type_args));
        made
    }
}

impl JitInstantiator {
    /// [`Instantiator::instantiate`] once `name` is demangled.
    fn instantiate_parts(
        &self,
        name: &str,
        template: &TemplateName,
        type_args: &[jit::ir::Type],
        ctx: &mut ResolveContext<'_>,
    ) -> Result<Option<InstanceCode>> {
        // The symbol table's key: a free function's own name, spelled
        // `Owner::name` only for a method.
        let key = match &template.owner {
            None => std::borrow::Cow::Borrowed(template.name.as_str()),
            Some(_) => std::borrow::Cow::Owned(template.to_string()),
        };
        let Some((module, templates)) = self.choose(ctx.loader(), name, &key) else {
            return Ok(None);
        };
        // A reload of the module drops what was made from its templates.
        let origin = module.id();
        let library = templates.library(&module)?;
        if let Some(tier) = &self.tier {
            // The instance is built when it first runs: the miss checks
            // what can be checked without building it.
            // The name as the instance cache holds it, when it is already
            // the canonical spelling (the usual case): no copy at all.
            let symbol = SYMBOL.with_borrow_mut(|symbol| {
                jit::instantiate::check_instantiation(&library, template, type_args, symbol)
                    .map_err(|e| Error::instantiation(name, e))?;
                Ok::<_, Error>(match ctx.current() {
                    Some(current) if **current == **symbol => Arc::clone(current),
                    _ => Arc::from(symbol.as_str()),
                })
            })?;
            let source = crate::tier::Source { library };
            return place_tiered(tier, symbol, source, ctx).map(|c| Some(c.with_origin(origin)));
        }
        // Demangled once: the template and arguments found above.
        let instance =
            jit::instantiate::instantiate_reusing(&library, template, type_args, self.spare())
                .map_err(|e| Error::instantiation(name, e))?;
        if ctx.batch().is_some() {
            // A module being loaded (`Now`), or an outer instantiation of
            // this chain, publishes the batch.
            let placed = self.place(&instance, ctx);
            self.keep_spare(instance);
            return placed.map(|r| Some(InstanceCode::in_batch(&r).with_origin(origin)));
        }
        // The outermost instantiation of a chain opens a batch for itself
        // and every instantiation it causes, and publishes them together:
        // one protection change per miss, however many callees it needed.
        ctx.lend_batch(ctx.memory().batch_with_capacity(CHAIN_CAPACITY));
        let placed = self.place(&instance, ctx);
        self.keep_spare(instance);
        let batch = ctx.take_batch();
        let published = match (placed, batch) {
            (Ok(reservation), Some(batch)) => batch
                .publish()
                .map_err(Error::from)
                .and_then(|code| Ok((InstanceCode::new(code.clone(), &reservation)?, code))),
            (Err(error), _) => Err(error),
            (Ok(_), None) => Err(Error::instantiation(name, InstantiationError::NoBatch)),
        };
        match published {
            Ok((entry, code)) => {
                ctx.finish_batch(Some(&code));
                Ok(Some(entry.with_origin(origin)))
            }
            Err(error) => {
                // The callees placed in the lost batch fail with it.
                ctx.finish_batch(None);
                Err(error)
            }
        }
    }
}

impl JitInstantiator {
    /// The storage of an earlier instance, if one is kept.
    fn spare(&self) -> Option<jit::instantiate::Instance> {
        self.spares
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    /// Keeps `instance`, whose code is written, for its storage; a large
    /// one, or one more than [`SPARE_INSTANCES`], is dropped.
    fn keep_spare(&self, instance: jit::instantiate::Instance) {
        if instance.function.inst_count() > SPARE_MAX_INSTS {
            return;
        }
        let mut spares = self.spares.lock().unwrap_or_else(PoisonError::into_inner);
        if spares.len() < SPARE_INSTANCES {
            spares.push(instance);
        }
    }

    /// Compiles `instance` and writes it into the chain's batch.
    fn place(
        &self,
        instance: &jit::instantiate::Instance,
        ctx: &mut ResolveContext<'_>,
    ) -> Result<execmem::Reservation> {
        let name = instance.symbol.as_str();
        let prepared = self.prepare(instance, ctx)?;
        let batch = ctx
            .batch()
            .ok_or_else(|| Error::instantiation(name, InstantiationError::NoBatch))?;
        let reservation = batch.reserve(name, prepared.size(), ENTRY_ALIGN)?;
        let entry = reservation.address() as u64;
        prepared
            .link_into(entry, &[entry], batch.bytes_mut(&reservation)?)
            .map_err(|e| Error::instantiation(name, e))?;
        batch.set_instruction_len(&reservation, prepared.code_len())?;
        Ok(reservation)
    }
}

/// Makes a tiered instantiation of `source`: its record and stub, placed
/// in the chain's batch or published on their own.
fn place_tiered(
    tier: &Arc<TierShared>,
    symbol: Arc<str>,
    source: crate::tier::Source,
    ctx: &mut ResolveContext<'_>,
) -> Result<InstanceCode> {
    if let Some(batch) = ctx.batch() {
        let reservation = tier.make(symbol, source, batch)?;
        return Ok(InstanceCode::in_batch(&reservation));
    }
    let mut batch = ctx
        .memory()
        .batch_with_capacity(jit::backend::thunk::STUB_SIZE);
    let reservation = tier.make(symbol, source, &mut batch)?;
    let code = batch.publish()?;
    InstanceCode::new(code, &reservation)
}

impl Loader {
    /// A loader whose misses instantiate templates of its modules
    /// ([`JitInstantiator`] with the default [`JitConfig`]), with
    /// `__smfjit_trap` bound to the process-wide [`trap_runtime`].
    ///
    /// # Errors
    /// As [`Loader::new`] and [`trap_runtime`].
    pub fn with_jit(config: LoaderConfig) -> Result<Self> {
        let tier = config.tier;
        let loader = Self::new(config)?;
        JitInstantiator::with_tier(JitConfig::default(), tier)?.install(&loader);
        Ok(loader)
    }
}

/// Writes `module`'s note as it stands in memory (instantiations made at
/// run time moved from `possible` to `instantiations`, `jit_compiled`) back
/// into its file, atomically and durably: the module is rewritten with the
/// new note into a temporary file in the same directory, synced, which
/// replaces the file by `rename`, and the directory is synced. Returns
/// `false`, writing nothing, for a module without a note.
///
/// The loaded module keeps running from what it loaded; the file gets a new
/// identity, so the module is stale from then on
/// ([`LoadedModule::is_stale`]) and loading or reloading the path reads the
/// new version.
///
/// # Errors
/// [`Error::UnwritableNote`] when the note cannot be written as SDN;
/// [`Error::Unsupported`] when the file changed on disk since the module
/// was loaded (nothing is written over a newer version);
/// [`Error::ChangedWhileReading`] when it changes while being read;
/// [`Error::InvalidModule`] when the module cannot be
/// rewritten; [`Error::Io`] when the temporary file cannot be written or
/// moved into place (the original is then left as it was), or when the
/// directory cannot be synced (the new file is then in place, but a crash
/// may bring the old one back).
pub fn write_back_note(module: &LoadedModule) -> Result<bool> {
    let path = module.path();
    let Some(note) = module.note() else {
        return Ok(false);
    };
    let text = note
        .to_sdn_string()
        .map_err(|source| Error::UnwritableNote {
            path: path.to_path_buf(),
            source,
        })?;
    drop(note);
    let file = module.file();
    if !file.is_current() {
        return Err(Error::Unsupported {
            path: path.to_path_buf(),
            reason: "the file changed on disk since it was loaded; its note is not written \
                     over the newer version"
                .to_owned(),
        });
    }
    // Read through the open file, not the map: a truncation racing the
    // check above is then an error, not a fault.
    let current = file.read_copy()?;
    let bytes = smf::rewrite_note(&current, &text).map_err(|source| Error::InvalidModule {
        path: path.to_path_buf(),
        source,
    })?;
    replace_durably(path, &bytes, || file.is_current())?;
    Ok(true)
}

/// Replaces the file at `path` by one holding `bytes`, with its
/// permissions, so that a reader sees the old file or the new one and a
/// crash leaves one of them: the bytes go to a temporary file in the same
/// directory, which is synced, renamed over `path`, and then the directory
/// is synced, since the rename lives in the directory and is durable only
/// once the directory is. `still_current` is asked again right before the
/// rename, so that a newer file renamed over `path` meanwhile is not
/// replaced (what remains is the moment between that check and the
/// rename, which no portable call closes).
fn replace_durably(
    path: &std::path::Path,
    bytes: &[u8],
    still_current: impl FnOnce() -> bool,
) -> Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => std::path::Path::new("."),
    };
    let io = |action, error: std::io::Error| Error::io(action, path, error);
    let mut temporary = tempfile::NamedTempFile::new_in(directory)
        .map_err(|e| io("create a temporary file beside", e))?;
    let permissions = std::fs::metadata(path)
        .map_err(|e| io("inspect", e))?
        .permissions();
    temporary
        .write_all(bytes)
        .and_then(|()| temporary.as_file().set_permissions(permissions))
        .and_then(|()| temporary.as_file().sync_all())
        .map_err(|e| io("write the rewritten module beside", e))?;
    if !still_current() {
        return Err(Error::Unsupported {
            path: path.to_path_buf(),
            reason: "the file changed on disk while its note was being written; its note \
                     is not written over the newer version"
                .to_owned(),
        });
    }
    temporary
        .persist(path)
        .map_err(|e| io("replace", e.error))?;
    std::fs::File::open(directory)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("sync the directory of", e))
}
