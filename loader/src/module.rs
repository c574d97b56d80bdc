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
//! are not placed in memory. The note is parsed and the template code
//! copied, so nothing of a loaded module refers to the file's bytes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use execmem::{CodeBatch, PublishedCode, Reservation};
use memmap2::{Mmap, MmapMut};
use smf::{Binding, RelocType, SectionType, SymbolType};

use crate::cache::{FileIdentity, SmfFile};
use crate::error::{Error, Result};
use crate::exports::Export;
use crate::lazy::{self, Binder, LazyImport};
use crate::limits::{MAX_LOAD_ALIGNMENT, STUB_STRIDE};
use crate::native::NativeLibraries;
use crate::note::ModuleNote;
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
    template_code: Option<Box<[u8]>>,
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

    /// The validated file (shared with the cache). Its bytes are a map of
    /// the file for large modules; see `cache.rs` on reading them after the
    /// file may have been truncated ([`SmfFile::is_current`]).
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

    /// A copy of the `TemplateCode` section's bytes, if present.
    #[must_use]
    pub fn template_code(&self) -> Option<&[u8]> {
        self.template_code.as_deref()
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

/// Where one loaded section lives.
#[derive(Debug, Clone, Copy)]
enum Place {
    Code(Reservation),
    ReadOnly(usize),
    ReadWrite(usize),
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
            message: e.to_string(),
        })
}

/// Loads the module of `request.file`.
pub(crate) fn load(
    request: LoadRequest<'_>,
    imports: &mut dyn ImportResolver,
) -> Result<LoadedModule> {
    let file = Arc::clone(&request.file);
    let path = file.path().to_path_buf();
    let module = file.module();
    module.check_host().map_err(|source| Error::InvalidModule {
        path: path.clone(),
        source,
    })?;

    // Lay out every loaded section.
    let mut places: HashMap<u32, Place> = HashMap::new();
    let mut code_sections = Vec::new();
    let (mut ro_end, mut rw_end, mut code_total) = (0usize, 0usize, 0usize);
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
                &path,
                format!(
                    "section {} '{}' asks for alignment {align}, above the {MAX_LOAD_ALIGNMENT} the loader honours",
                    section.index(),
                    section.name()
                ),
            ));
        }
        let align = usize::try_from(align.max(1)).unwrap_or(1);
        let size = usize::try_from(section.memory_size())
            .map_err(|_| unsupported(&path, format!("section {} is too large", section.index())))?;
        let overflow = || unsupported(&path, "sections are too large".to_owned());
        match kind {
            Some(SectionType::Code) => {
                code_total = code_total
                    .checked_add(size.max(1))
                    .and_then(|t| t.checked_add(align))
                    .ok_or_else(overflow)?;
                code_sections.push((section, size.max(1), align));
            }
            Some(SectionType::RoData) => {
                let (start, end) = place_after(ro_end, size, align).ok_or_else(overflow)?;
                places.insert(section.index(), Place::ReadOnly(start));
                ro_end = end;
            }
            _ => {
                let (start, end) = place_after(rw_end, size, align).ok_or_else(overflow)?;
                places.insert(section.index(), Place::ReadWrite(start));
                rw_end = end;
            }
        }
    }

    // One slot per symbol reached through `gotpcrel`, after the read-only data.
    let relocations: Vec<_> = module.relocations().map(|(_, _, r)| r).collect();

    // Lazily bound imports: strong function imports reached only by calls
    // through plt32 or a gotpcrel slot; each gets a writable slot.
    let mut lazy_slots: Vec<(u32, usize)> = Vec::new();
    if request.lazy.is_some() {
        for r in &relocations {
            let index = r.symbol_index;
            if lazy_slots.iter().any(|(s, _)| *s == index) {
                continue;
            }
            let eligible = module.symbol(index).is_some_and(|s| {
                !s.is_defined()
                    && s.sym_type() == SymbolType::Function
                    && s.binding() != Binding::Weak
            }) && relocations.iter().all(|o| {
                o.symbol_index != index
                    || matches!(o.reloc_type, RelocType::Plt32 | RelocType::GotPcRel)
            });
            if eligible {
                let (start, end) = place_after(rw_end, 8, 8)
                    .ok_or_else(|| unsupported(&path, "too many slots".to_owned()))?;
                lazy_slots.push((index, start));
                rw_end = end;
            }
        }
    }
    let is_lazy = |index: u32| lazy_slots.iter().any(|(s, _)| *s == index);

    let mut got: HashMap<u32, usize> = HashMap::new();
    for r in &relocations {
        if r.reloc_type == RelocType::GotPcRel
            && !got.contains_key(&r.symbol_index)
            && !is_lazy(r.symbol_index)
        {
            let (start, end) = place_after(ro_end, 8, 8)
                .ok_or_else(|| unsupported(&path, "too many slots".to_owned()))?;
            got.insert(r.symbol_index, start);
            ro_end = end;
        }
    }

    let mut rodata = map_anon(&path, ro_end)?;
    let mut data = map_anon(&path, rw_end)?;
    let ro_base = rodata.as_ref().map_or(0, |m| m.as_ptr() as usize);
    let rw_base = data.as_ref().map_or(0, |m| m.as_ptr() as usize);

    let mut batch = request.memory.batch_with_capacity(code_total.max(1));
    for (section, size, align) in &code_sections {
        let reservation = batch.reserve(section.name(), *size, *align)?;
        batch.write(&reservation, 0, section.data())?;
        places.insert(section.index(), Place::Code(reservation));
    }
    for section in module.sections() {
        let (map, at) = match places.get(&section.index()) {
            Some(Place::ReadOnly(at)) => (rodata.as_mut(), *at),
            Some(Place::ReadWrite(at)) => (data.as_mut(), *at),
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
    let section_address = |index: u32| -> Option<usize> {
        match places.get(&index)? {
            Place::Code(r) => Some(r.address()),
            Place::ReadOnly(at) => ro_base.checked_add(*at),
            Place::ReadWrite(at) => rw_base.checked_add(*at),
        }
    };

    // Symbol values: definitions in loaded sections, imports resolved once.
    // Instantiations the imports need may be placed in this module's batch.
    imports.lend_batch(batch);
    let mut values: HashMap<u32, usize> = HashMap::new();
    let mut bound = Vec::new();
    let mut keep = Vec::new();
    for r in &relocations {
        if values.contains_key(&r.symbol_index) || is_lazy(r.symbol_index) {
            continue;
        }
        let Some(symbol) = module.symbol(r.symbol_index) else {
            continue;
        };
        let value = match symbol.section_index() {
            Some(index) => {
                let base = section_address(u32::from(index)).ok_or_else(|| {
                    unsupported(
                        &path,
                        format!(
                            "a relocation refers to '{}', defined in section {index}, which is not loaded",
                            symbol.name()
                        ),
                    )
                })?;
                base.checked_add(usize::try_from(symbol.value()).unwrap_or(usize::MAX))
                    .ok_or_else(|| {
                        unsupported(&path, format!("'{}' lies out of range", symbol.name()))
                    })?
            }
            None => {
                let (address, source) = match imports.resolve_import(symbol.name())? {
                    Some((address, k, source)) => {
                        keep.push(k);
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
                bound.push(Import {
                    name: symbol.name().to_owned(),
                    address,
                    source,
                });
                address
            }
        };
        values.insert(r.symbol_index, value);
    }

    let mut batch = imports
        .take_batch()
        .ok_or_else(|| Error::Memory("the module's batch was not given back".to_owned()))?;

    // Fill the slots, then find the plt32 calls that need a stub.
    for (symbol, at) in &got {
        let value = values.get(symbol).copied().unwrap_or(0);
        if let Some(dst) = rodata.as_mut().and_then(|m| m.get_mut(*at..*at + 8)) {
            dst.copy_from_slice(&(value as u64).to_le_bytes());
        }
    }
    let mut stub_targets: Vec<u32> = Vec::new();
    for r in &relocations {
        if r.reloc_type != RelocType::Plt32 || stub_targets.contains(&r.symbol_index) {
            continue;
        }
        let place = section_address(u32::from(r.target_section))
            .and_then(|b| b.checked_add(usize::try_from(r.offset).ok()?))
            .unwrap_or(0);
        let target = values.get(&r.symbol_index).copied().unwrap_or(0);
        if !relocate::reaches(target as u64, r.addend, place as u64) {
            stub_targets.push(r.symbol_index);
        }
    }
    let mut stubs: HashMap<u32, usize> = HashMap::new();
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

    // The PLT entries and binding stubs of lazy imports; each slot starts
    // out pointing at its stub.
    let mut lazy_entries: HashMap<u32, (usize, usize)> = HashMap::new();
    let mut lazy_imports = Vec::new();
    if let (Some((binder, trampoline)), false) = (&request.lazy, lazy_slots.is_empty()) {
        let reservation = batch.reserve("lazy plt", lazy_slots.len() * lazy::ENTRY_SIZE, 16)?;
        for (i, (index, slot_at)) in lazy_slots.iter().enumerate() {
            let name = module.symbol(*index).map_or("", |s| s.name());
            let slot = rw_base + slot_at;
            let entry = reservation.address() + i * lazy::ENTRY_SIZE;
            let descriptor = Box::new(LazyImport::new(name, slot, Arc::clone(binder)));
            let bytes = lazy::entry(
                entry,
                slot,
                &*descriptor as *const LazyImport as usize,
                *trampoline,
            )
            .ok_or_else(|| Error::RelocationOverflow {
                path: path.clone(),
                index: 0,
                kind: RelocType::Plt32,
                symbol: name.to_owned(),
                value: slot as i128 - entry as i128,
                place: entry,
            })?;
            batch.write(&reservation, i * lazy::ENTRY_SIZE, &bytes)?;
            let stub = (entry + lazy::STUB_OFFSET) as u64;
            if let Some(dst) = data
                .as_mut()
                .and_then(|m| m.get_mut(*slot_at..*slot_at + 8))
            {
                dst.copy_from_slice(&stub.to_le_bytes());
            }
            lazy_entries.insert(*index, (entry, slot));
            bound.push(Import {
                name: name.to_owned(),
                address: 0,
                source: ImportSource::Lazy,
            });
            lazy_imports.push(descriptor);
        }
    }

    // Apply every relocation.
    for (index, r) in relocations.iter().enumerate() {
        let s = values.get(&r.symbol_index).copied().unwrap_or(0);
        let lazy = lazy_entries.get(&r.symbol_index);
        let target = match (r.reloc_type, lazy) {
            (RelocType::GotPcRel, Some((_, slot))) => *slot,
            (RelocType::Plt32, Some((entry, _))) => *entry,
            (RelocType::GotPcRel, None) => got.get(&r.symbol_index).map_or(0, |at| ro_base + at),
            (RelocType::Plt32, None) => stubs.get(&r.symbol_index).copied().unwrap_or(s),
            _ => s,
        };
        let section_base = section_address(u32::from(r.target_section)).unwrap_or(0);
        let offset = usize::try_from(r.offset).unwrap_or(usize::MAX);
        let place = section_base.saturating_add(offset);
        let patch = relocate::compute(r.reloc_type, target as u64, r.addend, place as u64)
            .map_err(|value| Error::RelocationOverflow {
                path: path.clone(),
                index: index as u64,
                kind: r.reloc_type,
                symbol: module
                    .symbol(r.symbol_index)
                    .map_or_else(String::new, |s| s.name().to_owned()),
                value,
                place,
            })?;
        let field: Option<&mut [u8]> = match places.get(&u32::from(r.target_section)) {
            Some(Place::Code(res)) => batch.bytes_mut(res)?.get_mut(offset..),
            Some(Place::ReadOnly(at)) => rodata
                .as_mut()
                .and_then(|m| m.get_mut(at.saturating_add(offset)..)),
            Some(Place::ReadWrite(at)) => data
                .as_mut()
                .and_then(|m| m.get_mut(at.saturating_add(offset)..)),
            None => None,
        };
        if !field.is_some_and(|f| patch.write(f)) && patch != Patch::Nothing {
            return Err(unsupported(
                &path,
                format!("relocation {index} patches a section that is not loaded"),
            ));
        }
    }

    let rodata = match rodata {
        Some(map) => Some(map.make_read_only().map_err(|e| Error::DataMemory {
            path: path.clone(),
            len: ro_end,
            message: e.to_string(),
        })?),
        None => None,
    };
    let code = publish(batch)?;
    imports.published(code.as_ref());

    let exports = module
        .symbols()
        .filter(|s| matches!(s.binding(), Binding::Global | Binding::Weak) && !s.is_template())
        .filter_map(|s| {
            let base = section_address(u32::from(s.section_index()?))?;
            Some(Export {
                name: Arc::from(s.name()),
                address: base.checked_add(usize::try_from(s.value()).ok()?)?,
                binding: s.binding(),
                module: request.id,
            })
        })
        .collect();
    let note = module
        .note_sdn()
        .map(|text| sdn::note::Note::parse(text).map(ModuleNote::new))
        .transpose()
        .map_err(|e| Error::InvalidNote {
            path: path.clone(),
            message: e.to_string(),
        })?;
    let template_code = module.template_code().map(Box::from);
    if let Some(note) = &note {
        for import in bound.iter().filter(|i| i.source == ImportSource::Instance) {
            note.record(&import.name, JIT_OBJECT);
        }
    }
    Ok(LoadedModule {
        id: request.id,
        file,
        code,
        rodata,
        data,
        exports,
        imports: bound,
        keep,
        lazy: lazy_imports,
        note,
        template_code,
        stubs: stub_targets.len(),
    })
}

fn publish(batch: CodeBatch) -> Result<Option<PublishedCode>> {
    if batch.is_empty() {
        return Ok(None);
    }
    Ok(Some(batch.publish()?))
}

impl LoadedModule {
    /// Whether `address` lies in this module's code or data.
    #[must_use]
    pub fn contains(&self, address: usize) -> bool {
        let in_map = |base: Option<(usize, usize)>| {
            base.is_some_and(|(start, len)| (start..start + len).contains(&address))
        };
        self.code.as_ref().is_some_and(|c| c.contains(address))
            || in_map(self.rodata.as_ref().map(|m| (m.as_ptr() as usize, m.len())))
            || in_map(self.data.as_ref().map(|m| (m.as_ptr() as usize, m.len())))
    }
}
