//! Loading one module: code into executable memory, data into read-write
//! memory, relocations applied, imports bound, exports listed.
//!
//! Layout in memory:
//! - every `Code` section gets a reservation in one [`execmem::CodeBatch`],
//!   followed by the call stubs that out-of-reach `plt32` relocations need;
//!   the batch is published once, after every relocation is applied;
//! - `RoData` sections and the slots of `gotpcrel` relocations (each holding
//!   its symbol's address) share one mapping, made read-only after
//!   relocation;
//! - `Data` and `Bss` sections share one read-write mapping.
//!
//! Sections of other types (relocations, templates, the note, debug data)
//! are not placed in memory. The note is parsed and the template code and
//! template symbols copied (`offered`), so nothing of a loaded module reads
//! the file's bytes after load.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use execmem::{CodeBatch, PublishedCode, Reservation};
use jit::hash::BuildIntHasher;
use memmap2::{Mmap, MmapMut};
use smf::{Binding, Module, RelocType, Relocation, Section, SectionType, SymbolType};

use crate::cache::{FileIdentity, SmfFile};
use crate::error::{Error, Result};
use crate::exports::Export;
use crate::lazy::{self, Binder, KeepAlive, LazyImport};
use crate::limits::{MAX_LOAD_ALIGNMENT, STUB_STRIDE};
use crate::native::NativeLibraries;
use crate::note::ModuleNote;
use crate::offered::OfferedTemplates;
use crate::relocate::{self, Patch};
use crate::resolution::{Address, ImportSource, JIT_OBJECT, ModuleId};

/// What keeps an import's target alive while the importing module lives.
/// The fields are never read: holding them is the point.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub(crate) enum Keep {
    /// An export of another loaded module.
    Module(Arc<LoadedModule>),
    /// An instantiation's published code.
    Code(PublishedCode),
    /// A native library of the search list.
    Native(Arc<NativeLibraries>),
    /// An instantiation placed in the importing module's own batch.
    SameBatch,
}

/// How an import of a module was bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The symbol's name.
    pub name: String,
    /// The address bound to (0 for an unresolved weak import).
    pub address: usize,
    /// Where it came from.
    pub source: ImportSource,
}

/// A module placed in memory. Its code and data stay mapped while this
/// value lives: the loader holds it until unloaded or replaced, and every
/// module that bound an import to it holds it too.
#[derive(Debug)]
pub struct LoadedModule {
    id: ModuleId,
    file: Arc<SmfFile>,
    code: Option<PublishedCode>,
    rodata: Option<Mmap>,
    data: Option<MmapMut>,
    exports: Vec<Export>,
    imports: Vec<Import>,
    keep: Vec<Keep>,
    /// Descriptors of lazily bound imports; their binding stubs point here.
    /// Boxed because each address is embedded in code: a descriptor must not
    /// move when the vector grows.
    #[allow(clippy::vec_box)]
    lazy: Vec<Box<LazyImport>>,
    note: Option<ModuleNote>,
    /// The templates, copied at load, if the module has any.
    templates: Option<OfferedTemplates>,
    stubs: usize,
}

impl LoadedModule {
    /// The module's identifier in its loader.
    #[must_use]
    pub fn id(&self) -> ModuleId {
        self.id
    }

    /// The path it was loaded from.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The identity of the file version that was loaded.
    #[must_use]
    pub fn identity(&self) -> FileIdentity {
        self.file.identity()
    }

    /// Whether the file at [`LoadedModule::path`] is no longer the version
    /// that was loaded: replaced (by rename, or by a rewrite in place),
    /// truncated or deleted. A stale module keeps running, exporting and
    /// instantiating the version it loaded; [`Loader::reload`] reads the
    /// new file. Asks the file system each time (two `stat` calls).
    ///
    /// [`Loader::reload`]: crate::Loader::reload
    #[must_use]
    pub fn is_stale(&self) -> bool {
        !self.file.is_current()
    }

    /// The validated file (shared with the cache). Its bytes are a map of
    /// the file for large modules: reading them after the file was
    /// truncated in place faults, so check [`SmfFile::is_current`] first
    /// and expect the check to race a writer. The loader reads nothing of
    /// it after load.
    #[must_use]
    pub fn file(&self) -> &Arc<SmfFile> {
        &self.file
    }

    /// The published code, if the module has code sections.
    #[must_use]
    pub fn code(&self) -> Option<&PublishedCode> {
        self.code.as_ref()
    }

    /// The exported definitions (`Global` and `Weak` symbols of loaded
    /// sections), in symbol-table order.
    #[must_use]
    pub fn exports(&self) -> &[Export] {
        &self.exports
    }

    /// How each import was bound, in first-use order.
    #[must_use]
    pub fn imports(&self) -> &[Import] {
        &self.imports
    }

    /// The parsed `note.sdn`, if the module has one, as it stands in
    /// memory: instantiations made at run time move from `possible` to
    /// `instantiations` with status `jit_compiled`. The value is a read
    /// guard; an instantiation finishing while it is held is recorded once
    /// it is released.
    #[must_use]
    pub fn note(&self) -> Option<impl std::ops::Deref<Target = sdn::note::Note> + '_> {
        self.note.as_ref().map(ModuleNote::read)
    }

    /// Records that `mangled_name` was compiled at run time, if this
    /// module's note lists it in `possible`: the row moves to
    /// `instantiations` with status `jit_compiled` and `to_obj` as given.
    /// The loader calls this for every loaded module after each
    /// instantiation; a name not listed, or recorded already, changes
    /// nothing.
    pub fn record_jit_compiled(&self, mangled_name: &str, to_obj: &str) {
        if let Some(note) = &self.note {
            note.record(mangled_name, to_obj);
        }
    }

    /// The `TemplateCode` section's bytes as loaded, if present: a copy
    /// made at load (of the decompressed contents, for a compressed
    /// section), so they stay the loaded version's whatever happens to the
    /// file.
    #[must_use]
    pub fn template_code(&self) -> Option<&[u8]> {
        self.templates.as_ref().map(|t| &**t.code())
    }

    /// Whether the module has a `TemplateCode` section.
    #[must_use]
    pub fn has_template_code(&self) -> bool {
        self.templates.is_some()
    }

    /// Where the TemplateCode section starts in the module's file, so that
    /// errors found in its bytes can name file offsets; 0 for a compressed
    /// section, whose errors name offsets in its decompressed bytes (as
    /// `smf-inspect hex` shows them).
    #[must_use]
    pub fn template_code_offset(&self) -> u64 {
        self.templates.as_ref().map_or(0, OfferedTemplates::offset)
    }

    /// The templates the module offers, as loaded.
    pub(crate) fn templates(&self) -> Option<&OfferedTemplates> {
        self.templates.as_ref()
    }

    /// Unbinds each lazily bound import whose name and bound address
    /// `stale` names (see `LazyImport::unbind_if`): its next call binds it
    /// again. Returns what kept the old targets alive.
    pub(crate) fn unbind_lazy(&self, stale: impl Fn(&str, usize) -> bool) -> Vec<KeepAlive> {
        self.lazy
            .iter()
            .filter_map(|l| l.unbind_if(|address| stale(l.name(), address)))
            .collect()
    }

    /// The lazily bound imports and, once called, what each was bound to.
    pub fn lazy_imports(&self) -> impl Iterator<Item = (&str, Option<Address>)> {
        self.lazy
            .iter()
            .map(|l| (l.name(), l.bound_address().map(Address::new)))
    }

    /// Number of call stubs made for out-of-reach `plt32` relocations.
    #[must_use]
    pub fn stub_count(&self) -> usize {
        self.stubs
    }

    /// Address of an export of this module by name.
    #[must_use]
    pub fn export(&self, name: &str) -> Option<Address> {
        self.exports
            .iter()
            .find(|e| &*e.name == name)
            .map(|e| Address::new(e.address))
    }

    /// The modules this one bound imports to.
    pub fn dependencies(&self) -> impl Iterator<Item = ModuleId> + '_ {
        self.keep.iter().filter_map(|k| match k {
            Keep::Module(m) => Some(m.id),
            _ => None,
        })
    }
}

/// Something per symbol of the module, by symbol index: hashed with one
/// multiplication (the default hasher, SipHash, was a tenth of a load that
/// binds a thousand imports).
type SymbolMap<V> = HashMap<u32, V, BuildIntHasher>;

/// Where one loaded section lives.
#[derive(Debug, Clone, Copy)]
enum Place {
    Code(Reservation),
    ReadOnly(usize),
    ReadWrite(usize),
}

/// Where each loaded section lives, by section index: looked up once per
/// symbol and relocation, so a vector rather than a hash map (indices are
/// below the module's section count, at most 65,535).
#[derive(Debug, Default)]
struct Places(Vec<Option<Place>>);

impl Places {
    fn insert(&mut self, index: u32, place: Place) {
        let Ok(k) = usize::try_from(index) else {
            return;
        };
        if self.0.len() <= k {
            self.0.resize(k + 1, None);
        }
        if let Some(slot) = self.0.get_mut(k) {
            *slot = Some(place);
        }
    }

    fn get(&self, index: &u32) -> Option<&Place> {
        self.0.get(usize::try_from(*index).ok()?)?.as_ref()
    }
}

/// Resolves an import for the module being loaded.
pub(crate) trait ImportResolver {
    /// The address of `name` and what keeps it alive, or `None` when
    /// nothing defines it.
    fn resolve_import(&mut self, name: &str) -> Result<Option<(Address, Keep, ImportSource)>>;

    /// Lends the module's batch while imports are bound, so that
    /// instantiations can be placed in it.
    fn lend_batch(&mut self, batch: CodeBatch);

    /// Takes the batch back.
    fn take_batch(&mut self) -> Option<CodeBatch>;

    /// Reports the batch published (instances placed in it become callable).
    fn published(&mut self, code: Option<&PublishedCode>);

    /// Told, before the first import is bound, how many of them have
    /// mangled names (are likely instantiations).
    fn expect(&mut self, instantiations: usize) {
        let _ = instantiations;
    }
}

/// Everything needed to load one file.
pub(crate) struct LoadRequest<'a> {
    pub id: ModuleId,
    pub file: Arc<SmfFile>,
    pub memory: &'a execmem::ExecMemory,
    /// Present for lazy binding: who binds, and the trampoline's address.
    pub lazy: Option<(Arc<dyn Binder>, usize)>,
}

fn unsupported(path: &Path, reason: String) -> Error {
    Error::Unsupported {
        path: path.to_path_buf(),
        reason,
    }
}

/// Offset of `size` bytes aligned to `align` after `end`, and the new end.
fn place_after(end: usize, size: usize, align: usize) -> Option<(usize, usize)> {
    let start = end.checked_next_multiple_of(align)?;
    Some((start, start.checked_add(size)?))
}

fn map_anon(path: &Path, len: usize) -> Result<Option<MmapMut>> {
    if len == 0 {
        return Ok(None);
    }
    MmapMut::map_anon(len)
        .map(Some)
        .map_err(|e| Error::DataMemory {
            path: path.to_path_buf(),
            len,
            source: Arc::new(e),
        })
}

/// Loads the module of `request.file`, in phases: lay out the sections,
/// choose the lazily bound imports and the `gotpcrel` slots, place the
/// sections in memory, bind the symbols, write the call stubs and the lazy
/// entries, apply the relocations, publish.
pub(crate) fn load(
    request: LoadRequest<'_>,
    imports: &mut dyn ImportResolver,
) -> Result<LoadedModule> {
    let file = Arc::clone(&request.file);
    let path = file.path();
    let module = file.module();
    module.check_host().map_err(|source| Error::InvalidModule {
        path: path.to_path_buf(),
        source,
    })?;

    let mut layout = lay_out_sections(module, path)?;
    // Counted first: collecting the flattened sections' entries would grow
    // the vector (and copy it) a dozen times for a large module.
    let mut relocations: Vec<Relocation> = Vec::with_capacity(
        module
            .sections()
            .filter_map(|s| Some(s.relocations()?.len()))
            .sum(),
    );
    relocations.extend(module.relocations().map(|(_, _, r)| r));
    let lazy_slots = match request.lazy {
        Some(_) => select_lazy_imports(module, &relocations, &mut layout.rw_end, path)?,
        None => Vec::new(),
    };
    let got = allocate_got_slots(&relocations, &lazy_slots, &mut layout.ro_end, path)?;
    let (mut image, batch) = place_sections(module, layout, request.memory, path)?;

    // Instantiations the imports need may be placed in this module's batch.
    imports.lend_batch(batch);
    let mut bound = bind_symbols(module, path, &relocations, &image, &lazy_slots, imports)?;
    let mut batch = imports.take_batch().ok_or(Error::LostBatch {
        what: "the module's batch was not given back",
    })?;

    image.fill_got(&got, &bound.values);
    let stubs = write_stubs(&relocations, &image, &bound.values, &mut batch)?;
    let mut lazy = LazyEntries::default();
    if let (Some((binder, trampoline)), false) = (&request.lazy, lazy_slots.is_empty()) {
        lazy = write_lazy_entries(
            module,
            path,
            &lazy_slots,
            (binder, *trampoline),
            &mut image,
            &mut batch,
        )?;
        bound.imports.extend(lazy.imports());
    }
    let targets = Targets {
        values: &bound.values,
        got: &got,
        ro_base: image.ro_base,
        stubs: &stubs,
        lazy: &lazy.entries,
    };
    apply_relocations(module, path, &relocations, &targets, &mut image, &mut batch)?;

    let exports = list_exports(module, &image, request.id);
    let (rodata, data) = image.finish(path)?;
    let code = publish(batch)?;
    imports.published(code.as_ref());
    let note = module
        .note_sdn()
        .map(|text| sdn::note::Note::parse(text).map(ModuleNote::new))
        .transpose()
        .map_err(|source| Error::InvalidNote {
            path: path.to_path_buf(),
            source,
        })?;
    if let Some(note) = &note {
        for import in bound
            .imports
            .iter()
            .filter(|i| i.source == ImportSource::Instance)
        {
            note.record(&import.name, JIT_OBJECT);
        }
    }
    let templates = OfferedTemplates::copy(module);
    Ok(LoadedModule {
        id: request.id,
        file,
        code,
        rodata,
        data,
        exports,
        imports: bound.imports,
        keep: bound.keep,
        lazy: lazy.descriptors,
        note,
        templates,
        stubs: stubs.len(),
    })
}

/// Where the loaded sections go before any memory is mapped: offsets in
/// the read-only and read-write maps, and the code sections to reserve.
struct Layout<'a> {
    /// `RoData`, `Data` and `Bss` sections by index; code sections are added
    /// when they are reserved in the batch.
    places: Places,
    /// Code sections with their size (at least 1) and alignment.
    code: Vec<(Section<'a>, usize, usize)>,
    /// Bytes the code sections need in the batch, alignment included.
    code_total: usize,
    /// Length of the read-only map (sections, then `gotpcrel` slots).
    ro_end: usize,
    /// Length of the read-write map (sections, then lazy imports' slots).
    rw_end: usize,
}

/// Lays out every `Code`, `RoData`, `Data` and `Bss` section.
fn lay_out_sections<'m>(module: &'m Module<'_>, path: &Path) -> Result<Layout<'m>> {
    let mut layout = Layout {
        places: Places::default(),
        code: Vec::new(),
        code_total: 0,
        ro_end: 0,
        rw_end: 0,
    };
    for section in module.sections() {
        let kind = section.section_type();
        if !matches!(
            kind,
            Some(SectionType::Code | SectionType::Data | SectionType::RoData | SectionType::Bss)
        ) {
            continue;
        }
        let align = section.alignment();
        if align > MAX_LOAD_ALIGNMENT {
            return Err(unsupported(
                path,
                format!(
                    "section {} '{}' asks for alignment {align}, above the {MAX_LOAD_ALIGNMENT} the loader honours",
                    section.index(),
                    section.name()
                ),
            ));
        }
        let align = usize::try_from(align.max(1)).unwrap_or(1);
        let size = usize::try_from(section.memory_size())
            .map_err(|_| unsupported(path, format!("section {} is too large", section.index())))?;
        let overflow = || unsupported(path, "sections are too large".to_owned());
        match kind {
            Some(SectionType::Code) => {
                layout.code_total = layout
                    .code_total
                    .checked_add(size.max(1))
                    .and_then(|t| t.checked_add(align))
                    .ok_or_else(overflow)?;
                layout.code.push((section, size.max(1), align));
            }
            Some(SectionType::RoData) => {
                let (start, end) = place_after(layout.ro_end, size, align).ok_or_else(overflow)?;
                layout
                    .places
                    .insert(section.index(), Place::ReadOnly(start));
                layout.ro_end = end;
            }
            _ => {
                let (start, end) = place_after(layout.rw_end, size, align).ok_or_else(overflow)?;
                layout
                    .places
                    .insert(section.index(), Place::ReadWrite(start));
                layout.rw_end = end;
            }
        }
    }
    Ok(layout)
}

/// Appends an 8-byte slot to a map ending at `end`; returns its offset.
fn add_slot(end: &mut usize, path: &Path) -> Result<usize> {
    let (start, new_end) =
        place_after(*end, 8, 8).ok_or_else(|| unsupported(path, "too many slots".to_owned()))?;
    *end = new_end;
    Ok(start)
}

/// The imports bound at their first call: strong function imports reached
/// only by calls through `plt32` or a `gotpcrel` slot. Each gets a slot in
/// the read-write map; returns the symbol index and slot offset of each.
fn select_lazy_imports(
    module: &Module<'_>,
    relocations: &[Relocation],
    rw_end: &mut usize,
    path: &Path,
) -> Result<Vec<(u32, usize)>> {
    let mut lazy_slots: Vec<(u32, usize)> = Vec::new();
    for r in relocations {
        let index = r.symbol_index;
        if is_lazy(&lazy_slots, index) {
            continue;
        }
        let eligible = module.symbol(index).is_some_and(|s| {
            !s.is_defined() && s.sym_type() == SymbolType::Function && s.binding() != Binding::Weak
        }) && relocations.iter().all(|o| {
            o.symbol_index != index
                || matches!(o.reloc_type, RelocType::Plt32 | RelocType::GotPcRel)
        });
        if eligible {
            lazy_slots.push((index, add_slot(rw_end, path)?));
        }
    }
    Ok(lazy_slots)
}

/// Whether the symbol `index` binds lazily.
fn is_lazy(lazy_slots: &[(u32, usize)], index: u32) -> bool {
    lazy_slots.iter().any(|(s, _)| *s == index)
}

/// One slot per symbol reached through `gotpcrel` (a lazy import uses its
/// own slot instead), after the read-only data: symbol index to offset.
fn allocate_got_slots(
    relocations: &[Relocation],
    lazy_slots: &[(u32, usize)],
    ro_end: &mut usize,
    path: &Path,
) -> Result<SymbolMap<usize>> {
    let mut got: SymbolMap<usize> = SymbolMap::default();
    for r in relocations {
        if r.reloc_type == RelocType::GotPcRel
            && !got.contains_key(&r.symbol_index)
            && !is_lazy(lazy_slots, r.symbol_index)
        {
            got.insert(r.symbol_index, add_slot(ro_end, path)?);
        }
    }
    Ok(got)
}

/// The module's memory while it is filled in: the read-only and read-write
/// maps, and where each loaded section lies.
struct Image {
    places: Places,
    rodata: Option<MmapMut>,
    data: Option<MmapMut>,
    ro_base: usize,
    rw_base: usize,
}

/// Maps the data memory, reserves and writes the code sections in a new
/// batch, and copies the data sections.
fn place_sections(
    module: &Module<'_>,
    layout: Layout<'_>,
    memory: &execmem::ExecMemory,
    path: &Path,
) -> Result<(Image, CodeBatch)> {
    let rodata = map_anon(path, layout.ro_end)?;
    let data = map_anon(path, layout.rw_end)?;
    let mut image = Image {
        places: layout.places,
        ro_base: rodata.as_ref().map_or(0, |m| m.as_ptr() as usize),
        rw_base: data.as_ref().map_or(0, |m| m.as_ptr() as usize),
        rodata,
        data,
    };
    let mut batch = memory.batch_with_capacity(layout.code_total.max(1));
    for (section, size, align) in &layout.code {
        let reservation = batch.reserve(section.name(), *size, *align)?;
        batch.write(&reservation, 0, section.data())?;
        if batch.announces() {
            name_functions(module, section.index(), &reservation, &mut batch)?;
        }
        image
            .places
            .insert(section.index(), Place::Code(reservation));
    }
    for section in module.sections() {
        let (map, at) = match image.places.get(&section.index()) {
            Some(Place::ReadOnly(at)) => (image.rodata.as_mut(), *at),
            Some(Place::ReadWrite(at)) => (image.data.as_mut(), *at),
            _ => continue,
        };
        let bytes = section.data();
        if let Some(dst) = map
            .and_then(|m| m.get_mut(at..))
            .and_then(|m| m.get_mut(..bytes.len()))
        {
            dst.copy_from_slice(bytes);
        }
    }
    Ok((image, batch))
}

/// Names the module's functions in code section `index` inside its
/// reservation, so debuggers and profilers see each function rather than
/// the section as one.
fn name_functions(
    module: &Module<'_>,
    index: u32,
    reservation: &execmem::Reservation,
    batch: &mut CodeBatch,
) -> Result<()> {
    let functions = module.symbols().filter(|symbol| {
        symbol.is_defined()
            && symbol.sym_type() == smf::SymbolType::Function
            && symbol.section_index().map(u32::from) == Some(index)
            && symbol.size() > 0
    });
    for symbol in functions {
        // Validation kept symbols inside their section; a range that
        // still does not fit is skipped rather than failing the load.
        let (Ok(offset), Ok(len)) = (
            usize::try_from(symbol.value()),
            usize::try_from(symbol.size()),
        ) else {
            continue;
        };
        match batch.name_within(reservation, offset, len, symbol.name()) {
            Ok(()) | Err(execmem::Error::InvalidLength { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

impl Image {
    /// Where the loaded section `index` lies in memory.
    fn section_address(&self, index: u32) -> Option<usize> {
        match self.places.get(&index)? {
            Place::Code(r) => Some(r.address()),
            Place::ReadOnly(at) => self.ro_base.checked_add(*at),
            Place::ReadWrite(at) => self.rw_base.checked_add(*at),
        }
    }

    /// Stores each `gotpcrel` slot's symbol value in it.
    fn fill_got(&mut self, got: &SymbolMap<usize>, values: &SymbolMap<usize>) {
        for (symbol, at) in got {
            let value = values.get(symbol).copied().unwrap_or(0);
            if let Some(dst) = self.rodata.as_mut().and_then(|m| m.get_mut(*at..*at + 8)) {
                dst.copy_from_slice(&(value as u64).to_le_bytes());
            }
        }
    }

    /// The bytes from `offset` in loaded section `section` to its map's end
    /// (or its reservation's), `None` for a section not loaded.
    fn field<'b>(
        &'b mut self,
        batch: &'b mut CodeBatch,
        section: u32,
        offset: usize,
    ) -> Result<Option<&'b mut [u8]>> {
        Ok(match self.places.get(&section) {
            Some(Place::Code(res)) => batch.bytes_mut(res)?.get_mut(offset..),
            Some(Place::ReadOnly(at)) => self
                .rodata
                .as_mut()
                .and_then(|m| m.get_mut(at.saturating_add(offset)..)),
            Some(Place::ReadWrite(at)) => self
                .data
                .as_mut()
                .and_then(|m| m.get_mut(at.saturating_add(offset)..)),
            None => None,
        })
    }

    /// The maps as the module keeps them: read-only data made read-only.
    fn finish(self, path: &Path) -> Result<(Option<Mmap>, Option<MmapMut>)> {
        let rodata = match self.rodata {
            Some(map) => {
                let len = map.len();
                Some(map.make_read_only().map_err(|e| Error::DataMemory {
                    path: path.to_path_buf(),
                    len,
                    source: Arc::new(e),
                })?)
            }
            None => None,
        };
        Ok((rodata, self.data))
    }
}

/// The symbols relocations refer to, with their values.
struct BoundSymbols {
    /// Value of each symbol by index (lazy imports have none).
    values: SymbolMap<usize>,
    /// How each import was bound, in first-use order.
    imports: Vec<Import>,
    /// What keeps the imports' targets alive.
    keep: Vec<Keep>,
}

/// Gives every symbol a relocation refers to its value: a definition's
/// address in its loaded section, an import's address from `imports`
/// (resolved once per symbol). Lazy imports are left for their first call.
fn bind_symbols(
    module: &Module<'_>,
    path: &Path,
    relocations: &[Relocation],
    image: &Image,
    lazy_slots: &[(u32, usize)],
    imports: &mut dyn ImportResolver,
) -> Result<BoundSymbols> {
    // Room at once for what binding adds one by one; the instance cache is
    // told of the imports that look like instantiations (mangled names).
    let (mut undefined, mut mangled) = (0, 0);
    for symbol in module.symbols().filter(|s| s.section_index().is_none()) {
        undefined += 1;
        mangled += usize::from(symbol.name().contains('$'));
    }
    imports.expect(mangled);
    let referenced = relocations.len().min(module.symbol_count() as usize);
    let mut bound = BoundSymbols {
        values: SymbolMap::with_capacity_and_hasher(referenced, BuildIntHasher::default()),
        imports: Vec::with_capacity(undefined),
        keep: Vec::with_capacity(undefined),
    };
    for r in relocations {
        if bound.values.contains_key(&r.symbol_index) || is_lazy(lazy_slots, r.symbol_index) {
            continue;
        }
        let Some(symbol) = module.symbol(r.symbol_index) else {
            continue;
        };
        let value = match symbol.section_index() {
            Some(index) => {
                let base = image.section_address(u32::from(index)).ok_or_else(|| {
                    unsupported(
                        path,
                        format!(
                            "a relocation refers to '{}', defined in section {index}, which is not loaded",
                            symbol.name()
                        ),
                    )
                })?;
                base.checked_add(usize::try_from(symbol.value()).unwrap_or(usize::MAX))
                    .ok_or_else(|| {
                        unsupported(path, format!("'{}' lies out of range", symbol.name()))
                    })?
            }
            None => {
                let (address, source) = match imports.resolve_import(symbol.name())? {
                    Some((address, k, source)) => {
                        bound.keep.push(k);
                        (address.get(), source)
                    }
                    None if symbol.binding() == Binding::Weak => (0, ImportSource::WeakUndefined),
                    None => {
                        return Err(Error::Unresolved {
                            name: symbol.name().to_owned(),
                            detail: format!(" (imported by '{}')", path.display()),
                        });
                    }
                };
                bound.imports.push(Import {
                    name: symbol.name().to_owned(),
                    address,
                    source,
                });
                address
            }
        };
        bound.values.insert(r.symbol_index, value);
    }
    Ok(bound)
}

/// Writes a call stub for each symbol that a `plt32` call cannot reach
/// directly; returns each such symbol's stub address.
fn write_stubs(
    relocations: &[Relocation],
    image: &Image,
    values: &SymbolMap<usize>,
    batch: &mut CodeBatch,
) -> Result<SymbolMap<usize>> {
    let mut stub_targets: Vec<u32> = Vec::new();
    for r in relocations {
        if r.reloc_type != RelocType::Plt32 || stub_targets.contains(&r.symbol_index) {
            continue;
        }
        let place = image
            .section_address(u32::from(r.target_section))
            .and_then(|b| b.checked_add(usize::try_from(r.offset).ok()?))
            .unwrap_or(0);
        let target = values.get(&r.symbol_index).copied().unwrap_or(0);
        if !relocate::reaches(target as u64, r.addend, place as u64) {
            stub_targets.push(r.symbol_index);
        }
    }
    let mut stubs: SymbolMap<usize> = SymbolMap::default();
    if !stub_targets.is_empty() {
        let reservation =
            batch.reserve("plt stubs", stub_targets.len() * STUB_STRIDE, STUB_STRIDE)?;
        for (i, symbol) in stub_targets.iter().enumerate() {
            let target = values.get(symbol).copied().unwrap_or(0);
            batch.write(
                &reservation,
                i * STUB_STRIDE,
                &relocate::stub(target as u64),
            )?;
            stubs.insert(*symbol, reservation.address() + i * STUB_STRIDE);
        }
    }
    Ok(stubs)
}

/// The lazily bound imports as written into the module.
#[derive(Default)]
struct LazyEntries {
    /// Symbol index to the addresses of its PLT entry and its slot.
    entries: SymbolMap<(usize, usize)>,
    /// The binding descriptors, in slot order; boxed because each address
    /// is embedded in code (see [`LoadedModule`]'s `lazy`).
    #[allow(clippy::vec_box)]
    descriptors: Vec<Box<LazyImport>>,
}

impl LazyEntries {
    /// The imports as listed by [`LoadedModule::imports`]: bound lazily,
    /// to no address yet.
    fn imports(&self) -> impl Iterator<Item = Import> + '_ {
        self.descriptors.iter().map(|d| Import {
            name: d.name().to_owned(),
            address: 0,
            source: ImportSource::Lazy,
        })
    }
}

/// Writes the PLT entry and binding stub of each lazy import, and points
/// each slot at its stub until the import is bound.
fn write_lazy_entries(
    module: &Module<'_>,
    path: &Path,
    lazy_slots: &[(u32, usize)],
    (binder, trampoline): (&Arc<dyn Binder>, usize),
    image: &mut Image,
    batch: &mut CodeBatch,
) -> Result<LazyEntries> {
    let mut lazy = LazyEntries::default();
    let reservation = batch.reserve("lazy plt", lazy_slots.len() * lazy::ENTRY_SIZE, 16)?;
    for (i, (index, slot_at)) in lazy_slots.iter().enumerate() {
        let name = module.symbol(*index).map_or("", |s| s.name());
        let slot = image.rw_base + slot_at;
        let entry = reservation.address() + i * lazy::ENTRY_SIZE;
        let stub = entry + lazy::STUB_OFFSET;
        let descriptor = Box::new(LazyImport::new(name, slot, stub, Arc::clone(binder)));
        let bytes = lazy::entry(
            entry,
            slot,
            &*descriptor as *const LazyImport as usize,
            trampoline,
        )
        .ok_or_else(|| Error::RelocationOverflow {
            path: path.to_path_buf(),
            index: 0,
            kind: RelocType::Plt32,
            symbol: name.to_owned(),
            value: slot as i128 - entry as i128,
            place: entry,
        })?;
        batch.write(&reservation, i * lazy::ENTRY_SIZE, &bytes)?;
        if let Some(dst) = image
            .data
            .as_mut()
            .and_then(|m| m.get_mut(*slot_at..*slot_at + 8))
        {
            dst.copy_from_slice(&(stub as u64).to_le_bytes());
        }
        lazy.entries.insert(*index, (entry, slot));
        lazy.descriptors.push(descriptor);
    }
    Ok(lazy)
}

/// What each relocation's symbol stands for at its sites.
struct Targets<'t> {
    values: &'t SymbolMap<usize>,
    /// `gotpcrel` slots, as offsets from `ro_base`.
    got: &'t SymbolMap<usize>,
    ro_base: usize,
    stubs: &'t SymbolMap<usize>,
    lazy: &'t SymbolMap<(usize, usize)>,
}

impl Targets<'_> {
    /// The address `r` computes with: the symbol's value, or the slot, the
    /// stub or the PLT entry its kind of site goes through.
    fn of(&self, r: &Relocation) -> usize {
        let s = self.values.get(&r.symbol_index).copied().unwrap_or(0);
        match (r.reloc_type, self.lazy.get(&r.symbol_index)) {
            (RelocType::GotPcRel, Some((_, slot))) => *slot,
            (RelocType::Plt32, Some((entry, _))) => *entry,
            (RelocType::GotPcRel, None) => self
                .got
                .get(&r.symbol_index)
                .map_or(0, |at| self.ro_base + at),
            (RelocType::Plt32, None) => self.stubs.get(&r.symbol_index).copied().unwrap_or(s),
            _ => s,
        }
    }
}

/// Applies every relocation to the placed sections.
fn apply_relocations(
    module: &Module<'_>,
    path: &Path,
    relocations: &[Relocation],
    targets: &Targets<'_>,
    image: &mut Image,
    batch: &mut CodeBatch,
) -> Result<()> {
    for (index, r) in relocations.iter().enumerate() {
        let target = targets.of(r);
        let section_base = image
            .section_address(u32::from(r.target_section))
            .unwrap_or(0);
        let offset = usize::try_from(r.offset).unwrap_or(usize::MAX);
        let place = section_base.saturating_add(offset);
        let patch = relocate::compute(r.reloc_type, target as u64, r.addend, place as u64)
            .map_err(|value| Error::RelocationOverflow {
                path: path.to_path_buf(),
                index: index as u64,
                kind: r.reloc_type,
                symbol: module
                    .symbol(r.symbol_index)
                    .map_or_else(String::new, |s| s.name().to_owned()),
                value,
                place,
            })?;
        let field = image.field(batch, u32::from(r.target_section), offset)?;
        if !field.is_some_and(|f| patch.write(f)) && patch != Patch::Nothing {
            return Err(unsupported(
                path,
                format!("relocation {index} patches a section that is not loaded"),
            ));
        }
    }
    Ok(())
}

/// The module's exports: `Global` and `Weak` definitions in loaded sections.
fn list_exports(module: &Module<'_>, image: &Image, id: ModuleId) -> Vec<Export> {
    module
        .symbols()
        .filter(|s| matches!(s.binding(), Binding::Global | Binding::Weak) && !s.is_template())
        .filter_map(|s| {
            let base = image.section_address(u32::from(s.section_index()?))?;
            Some(Export {
                name: Arc::from(s.name()),
                address: base.checked_add(usize::try_from(s.value()).ok()?)?,
                binding: s.binding(),
                module: id,
            })
        })
        .collect()
}

fn publish(batch: CodeBatch) -> Result<Option<PublishedCode>> {
    if batch.is_empty() {
        return Ok(None);
    }
    Ok(Some(batch.publish()?))
}

impl LoadedModule {
    /// Whether `address` lies in this module's code (the bytes of one of
    /// the functions published with it, instances made at its load
    /// included; not the padding, nor other code sharing its pages) or in
    /// its read-only data or data.
    #[must_use]
    pub fn contains(&self, address: usize) -> bool {
        let in_map = |base: Option<(usize, usize)>| {
            base.is_some_and(|(start, len)| (start..start + len).contains(&address))
        };
        self.code
            .as_ref()
            .is_some_and(|c| c.function_at(address).is_some())
            || in_map(self.rodata.as_ref().map(|m| (m.as_ptr() as usize, m.len())))
            || in_map(self.data.as_ref().map(|m| (m.as_ptr() as usize, m.len())))
    }
}
