//! `smf-build`: builds an SMF module from an SDN manifest.
//!
//! A manifest names the module, the template sources (text IR, paths
//! relative to the manifest) and the instantiations other programs may ask
//! for at run time (`possible`). The build parses and verifies the sources,
//! encodes them into the TemplateCode section, gives every generic function
//! and struct a template symbol and every native import or foreign symbol an
//! undefined one, checks that each `possible` instantiation really
//! instantiates, compiles concrete functions and the `compile` list (with
//! their dependencies) ahead of time into a relocatable `.text` ([`aot`]),
//! and writes the `note.sdn` tables. The same manifest and sources always
//! give the same bytes. With [`Options::compression`] (`--compress
//! zstd[:LEVEL]`) the template code and the note are stored compressed
//! (`doc/formats/smf.md`, *Compressed sections*). The format of a manifest
//! is in `doc/formats/manifest.md`.

pub mod aot;
mod manifest;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use jit::instantiate::Instance;
use jit::ir::{Item, Library, Linkage};
use sdn::note::{
    CircularError, DepKind, Dependency, Instantiation, Note, Possible, Status, TypeArgs,
};
use smf::raw::{section_flags, symbol_flags};
use smf::{Binding, ModuleBuilder, NoteSize, SectionType, SymbolDef, SymbolId, SymbolType};

pub use manifest::{Manifest, ModuleInfo, PossibleEntry};

/// How to build beyond what the manifest says; see
/// [`build_module_with`] for an example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// How the sections worth compressing are stored.
    pub compression: CompressionChoice,
}

/// A compression method and level, as `--compress` takes it: `none`,
/// `zstd` (at [`smf::ZSTD_DEFAULT_LEVEL`]) or `zstd:LEVEL`.
///
/// ```
/// use smfjit::build::CompressionChoice;
///
/// let choice: CompressionChoice = "zstd:19".parse()?;
/// assert_eq!(choice.method, smfjit::smf::Compression::Zstd);
/// assert_eq!(choice.level, Some(19));
/// assert!("lz4".parse::<CompressionChoice>().is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionChoice {
    /// The method.
    pub method: smf::Compression,
    /// The level; `None` for the method's default.
    pub level: Option<u8>,
}

impl Default for CompressionChoice {
    fn default() -> Self {
        Self {
            method: smf::Compression::None,
            level: None,
        }
    }
}

impl std::str::FromStr for CompressionChoice {
    type Err = String;

    /// Parses `none`, `zstd` or `zstd:LEVEL` (LEVEL in [`smf::ZSTD_LEVELS`]).
    fn from_str(text: &str) -> Result<Self, String> {
        let (method, level) = match text.split_once(':') {
            Some((method, level)) => (method, Some(level)),
            None => (text, None),
        };
        let levels = smf::ZSTD_LEVELS;
        let expected = format!(
            "expected none, zstd or zstd:LEVEL with LEVEL from {} to {}",
            levels.start(),
            levels.end()
        );
        let method = match method {
            "none" if level.is_none() => smf::Compression::None,
            "zstd" => smf::Compression::Zstd,
            "lz4" => {
                return Err(format!(
                    "lz4 is not supported: SMF sections are compressed with zstd ({expected})"
                ));
            }
            _ => return Err(format!("unknown compression '{text}': {expected}")),
        };
        let level = level
            .map(|l| {
                l.parse::<u8>()
                    .ok()
                    .filter(|l| levels.contains(l))
                    .ok_or_else(|| format!("zstd level '{l}' is not a level: {expected}"))
            })
            .transpose()?;
        Ok(Self { method, level })
    }
}

/// Why a build failed: which file, and what is wrong with it.
///
/// ```
/// use std::path::Path;
/// use smfjit::build::{BuildError, build_module};
///
/// let error = build_module(Path::new("no/such/manifest.sdn")).unwrap_err();
/// assert!(matches!(error, BuildError::Io { .. }));
/// assert!(error.to_string().starts_with("'no/such/manifest.sdn': "));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A file could not be read or written.
    #[error("'{}': {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The manifest is not valid SDN or does not match the manifest schema.
    #[error("'{}':{}", path.display(), located(.source))]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// The SDN error.
        source: sdn::Error,
    },
    /// A template source does not parse or verify.
    #[error("'{}': {source}", path.display())]
    Source {
        /// The source file.
        path: PathBuf,
        /// The IR error (boxed: it is large and rare).
        source: Box<jit::Error>,
    },
    /// The manifest asks for something the sources cannot provide.
    #[error("'{}': {message}", path.display())]
    Invalid {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The module could not be assembled.
    #[error("cannot assemble the module: {0}")]
    Module(#[from] smf::Error),
}

fn located(e: &sdn::Error) -> String {
    match e.location() {
        Some(at) => format!("{}:{}: {}", at.line, at.column, e.message()),
        None => format!(" {}", e.message()),
    }
}

/// Reads the manifest at `path`, builds the module and returns its bytes.
///
/// ```
/// use std::path::Path;
///
/// let bytes = smfjit::build::build_module(Path::new("tests/fixtures/src/collections.sdn"))?;
/// let module = smfjit::smf::Module::parse(&bytes)?;
/// assert!(module.symbols().any(|s| s.name() == "sum$i32"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// An unreadable file, a manifest or source with errors, a `possible`
/// instantiation that does not instantiate, a function the backend cannot
/// compile, or a module the SMF writer refuses.
pub fn build_module(path: &Path) -> Result<Vec<u8>, BuildError> {
    build_module_with(path, &Options::default())
}

/// [`build_module`] with `options`.
///
/// ```
/// use std::path::Path;
/// use smfjit::build::{Options, build_module_with};
///
/// let manifest = Path::new("tests/fixtures/src/collections.sdn");
/// let plain = build_module_with(manifest, &Options::default())?;
/// let options = Options { compression: "zstd".parse()? };
/// let packed = build_module_with(manifest, &options)?;
/// assert!(packed.len() < plain.len());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`build_module`]; and a compression the SMF writer refuses.
pub fn build_module_with(path: &Path, options: &Options) -> Result<Vec<u8>, BuildError> {
    let text = read(path)?;
    let manifest = parse_manifest(path, &text)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let invalid = |message: String| BuildError::Invalid {
        path: path.to_owned(),
        message,
    };
    let own = read_sources(dir, &manifest.sources)?;
    let mut used_sources = Vec::new();
    let mut inputs = text.clone();
    for used in &manifest.uses {
        let used_path = dir.join(used);
        let used_text = read(&used_path)?;
        let other = parse_manifest(&used_path, &used_text)?;
        let used_dir = used_path.parent().unwrap_or(Path::new("."));
        used_sources.extend(read_sources(used_dir, &other.sources)?);
        inputs.push_str(&used_text);
    }
    // The used modules' items, parsed on their own as their build does,
    // are the foreign ones; all sources are then parsed as one text so
    // names resolve across them.
    let foreign: HashSet<String> = parse_sources(&used_sources)?
        .iter()
        .map(Item::name)
        .collect();
    let all: Vec<Source> = own.into_iter().chain(used_sources).collect();
    let items = parse_sources(&all)?;
    let local: HashSet<String> = items
        .iter()
        .map(Item::name)
        .filter(|n| !foreign.contains(n))
        .collect();
    for source in &all {
        inputs.push_str(&source.text);
    }
    let library = verified_library(items, dir, &manifest.sources)?;

    let units = units_to_compile(&library, &manifest, &local).map_err(invalid)?;
    let instances: Vec<Instance> = units.iter().map(|u| u.instance.clone()).collect();
    let text_section = aot::compile(&instances).map_err(invalid)?;

    let mut builder = ModuleBuilder::new();
    builder
        .platform(manifest.module.platform().map_err(invalid)?)
        .arch(manifest.module.arch().map_err(invalid)?)
        .source_hash(smf::fnv1a64(inputs.as_bytes()))
        .compress(options.compression.method, options.compression.level)?;
    let encoded = jit::binary::encode_library(&library);
    if !library.items().is_empty() {
        builder.set_template_code(&encoded.bytes)?;
    }
    let mut symbols: HashMap<String, SymbolId> = HashMap::new();
    for (item, offset) in library.items().iter().zip(&encoded.offsets) {
        if let Some(def) = symbol_for(item, *offset as u64, local.contains(&item.name())) {
            symbols.insert(def.name.clone(), builder.add_symbol(def)?);
        }
    }
    for item in library.items() {
        if let Some(shared) = shared_item(item, local.contains(&item.name())) {
            builder.add_shared_item(shared)?;
        }
    }
    if !units.is_empty() {
        let code = builder.add_section(
            SectionType::Code,
            ".text",
            section_flags::READ | section_flags::EXEC,
            16,
            &text_section.bytes,
        )?;
        for (unit, placed) in units.iter().zip(&text_section.functions) {
            let mut def = SymbolDef::function(&placed.symbol, code, placed.offset, placed.size);
            if !unit.instance.type_args.is_empty() {
                def.flags |= symbol_flags::SPECIALIZED;
            }
            symbols.insert(placed.symbol.clone(), builder.add_symbol(def)?);
        }
        for fixup in &text_section.fixups {
            let id = match symbols.get(&fixup.symbol) {
                Some(id) => *id,
                None => {
                    let id = builder
                        .add_symbol(SymbolDef::import(&fixup.symbol, SymbolType::Function))?;
                    symbols.insert(fixup.symbol.clone(), id);
                    id
                }
            };
            builder.add_relocation(code, fixup.offset, id, fixup.kind, fixup.addend);
        }
    }

    let mut note = Note::default();
    note_compiled(&mut note, &units, &manifest.module.name, path);
    for (row, entry) in manifest.possible.iter().enumerate() {
        let row_error = |e: jit::Error| {
            invalid(format!(
                "possible row {}: '{}': {e}",
                row + 1,
                entry.mangled_name
            ))
        };
        // Instantiating proves the row names a template of this module whose
        // constraints the arguments satisfy.
        jit::instantiate::instantiate_symbol(&library, &entry.mangled_name).map_err(row_error)?;
        let (template, args) = jit::mangle::demangle(&entry.mangled_name).map_err(row_error)?;
        // Instantiating everything it needs finds the cycles a loader will
        // meet (polymorphic recursion never ends); they are recorded, not
        // refused, since the row itself is valid.
        match jit::instantiate::instantiate_all(&library, &template, &args) {
            Ok(_) => {}
            Err(jit::Error {
                kind: jit::ErrorKind::InstantiationDepth { chain, .. },
                ..
            }) => note.circular_errors.push(CircularError {
                id: row_id(note.circular_errors.len()),
                cycle_path: chain.join(" -> "),
                error_code: CYCLE_ERROR_CODE.into(),
            }),
            Err(e) => return Err(row_error(e)),
        }
        note.possible.push(Possible {
            id: row_id(row),
            template: template.to_string(),
            type_args: TypeArgs(args.iter().map(ToString::to_string).collect()),
            mangled_name: entry.mangled_name.clone(),
            required_by: entry.required_by.clone(),
            can_defer: entry.can_defer,
        });
    }
    let note_text = note
        .to_sdn_string()
        .map_err(|source| BuildError::Manifest {
            path: path.to_owned(),
            source,
        })?;
    builder.set_note(&note_text, NoteSize::Recorded)?;
    Ok(builder.build()?)
}

/// The `circular_errors` code of an instantiation chain that never ends.
const CYCLE_ERROR_CODE: &str = "E0420";

/// Row ids count from 1.
fn row_id(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

fn parse_manifest(path: &Path, text: &str) -> Result<Manifest, BuildError> {
    sdn::from_str(text).map_err(|source| BuildError::Manifest {
        path: path.to_owned(),
        source,
    })
}

/// A function to compile and why.
struct Unit {
    instance: Instance,
    /// The unit whose code calls this one (for a dependency).
    parent: Option<usize>,
    /// `compile[N]`, the concrete function itself, or the caller's symbol.
    from_loc: String,
}

/// The concrete functions of this module, the `compile` list, and every
/// instantiation of this module's templates they depend on (transitively,
/// each once). Instantiations of other modules' templates are not
/// compiled here: calls reach them through undefined symbols.
fn units_to_compile(
    library: &Library,
    manifest: &Manifest,
    local: &HashSet<String>,
) -> Result<Vec<Unit>, String> {
    let mut units = Vec::new();
    for item in library.items() {
        if let Item::Function(f) = item
            && f.type_params.is_empty()
            && local.contains(&item.name())
        {
            let instance = jit::instantiate::instantiate(library, &f.name, &[])
                .map_err(|e| format!("function '{}': {e}", f.name))?;
            units.push(Unit {
                from_loc: instance.symbol.clone(),
                instance,
                parent: None,
            });
        }
    }
    for (n, name) in manifest.compile.iter().enumerate() {
        let row = |e: &dyn std::fmt::Display| format!("compile[{}]: '{name}': {e}", n + 1);
        let (template, args) = jit::mangle::demangle(name).map_err(|e| row(&e))?;
        if args.is_empty() || !local.contains(&template.to_string()) {
            return Err(row(&"not an instantiation of a template of this module"));
        }
        if units.iter().any(|u: &Unit| u.instance.symbol == *name) {
            return Err(row(&"listed twice"));
        }
        let instance =
            jit::instantiate::instantiate(library, &template, &args).map_err(|e| row(&e))?;
        units.push(Unit {
            instance,
            parent: None,
            from_loc: format!("compile[{}]", n + 1),
        });
    }
    let mut seen: HashSet<String> = units.iter().map(|u| u.instance.symbol.clone()).collect();
    let mut next = 0;
    while let Some(unit) = units.get(next) {
        let caller = unit.instance.symbol.clone();
        for dep in unit.instance.dependencies.clone() {
            let (template, args) =
                jit::mangle::demangle(&dep).map_err(|e| format!("'{caller}': {e}"))?;
            if !local.contains(&template.to_string()) || !seen.insert(dep.clone()) {
                continue;
            }
            let chain = chain_to(&units, next);
            if chain.len() >= jit::limits::MAX_INSTANTIATION_DEPTH {
                return Err(format!(
                    "instantiation depth exceeds {}: {} -> {dep}",
                    jit::limits::MAX_INSTANTIATION_DEPTH,
                    chain.join(" -> ")
                ));
            }
            let instance = jit::instantiate::instantiate(library, &template, &args)
                .map_err(|e| format!("'{dep}' (needed by '{caller}'): {e}"))?;
            units.push(Unit {
                instance,
                parent: Some(next),
                from_loc: caller.clone(),
            });
        }
        next += 1;
    }
    Ok(units)
}

/// Symbols from the root unit down to `index`.
fn chain_to(units: &[Unit], index: usize) -> Vec<String> {
    let mut chain = Vec::new();
    let mut at = Some(index);
    while let Some(unit) = at.and_then(|i| units.get(i)) {
        chain.push(unit.instance.symbol.clone());
        at = unit.parent;
    }
    chain.reverse();
    chain
}

/// `instantiations` rows (status `compiled`) for the compiled
/// instantiations and `dependencies` rows between them.
fn note_compiled(note: &mut Note, units: &[Unit], module: &str, manifest: &Path) {
    let from_file = manifest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut ids: HashMap<&str, u32> = HashMap::new();
    for unit in units.iter().filter(|u| !u.instance.type_args.is_empty()) {
        let id = row_id(note.instantiations.len());
        ids.insert(&unit.instance.symbol, id);
        note.instantiations.push(Instantiation {
            id,
            template: unit.instance.template.to_string(),
            type_args: TypeArgs(
                unit.instance
                    .type_args
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ),
            mangled_name: unit.instance.symbol.clone(),
            from_file: from_file.clone(),
            from_loc: unit.from_loc.clone(),
            to_obj: module.to_owned(),
            status: Status::Compiled,
        });
    }
    for unit in units {
        let Some(&from) = ids.get(unit.instance.symbol.as_str()) else {
            continue;
        };
        for dep in &unit.instance.dependencies {
            if let Some(&to) = ids.get(dep.as_str()) {
                note.dependencies.push(Dependency {
                    from_inst: from,
                    to_inst: to,
                    dep_kind: DepKind::MethodDep,
                });
            }
        }
    }
}

fn read(path: &Path) -> Result<String, BuildError> {
    std::fs::read_to_string(path).map_err(|source| BuildError::Io {
        path: path.to_owned(),
        source,
    })
}

/// A source file and its text.
struct Source {
    path: PathBuf,
    text: String,
}

fn read_sources(dir: &Path, names: &[String]) -> Result<Vec<Source>, BuildError> {
    names
        .iter()
        .map(|name| {
            let path = dir.join(name);
            Ok(Source {
                text: read(&path)?,
                path,
            })
        })
        .collect()
}

/// Parses `sources` as one text, so an item of one may call an item of
/// another; an error at a line of the joined text names the source and its
/// own line.
fn parse_sources(sources: &[Source]) -> Result<Vec<Item>, BuildError> {
    let mut joined = String::new();
    let mut starts = Vec::with_capacity(sources.len());
    for source in sources {
        starts.push(joined.matches('\n').count() + 1);
        joined.push_str(&source.text);
        if !joined.ends_with('\n') {
            joined.push('\n');
        }
    }
    let lib = jit::text::parse_library(&joined).map_err(|mut e| {
        let mut file = sources.first().map(|s| s.path.clone()).unwrap_or_default();
        if let jit::Location::Text { line, .. } = &mut e.location
            && let Some(k) = starts.iter().rposition(|start| *start <= *line)
        {
            *line -= starts.get(k).map_or(0, |start| start - 1);
            file = sources.get(k).map(|s| s.path.clone()).unwrap_or_default();
        }
        BuildError::Source {
            path: file,
            source: Box::new(e),
        }
    })?;
    Ok(lib.items().to_vec())
}

/// Gathers items into one library, which the verifier checks as a whole.
fn verified_library(
    items: Vec<Item>,
    dir: &Path,
    sources: &[String],
) -> Result<Library, BuildError> {
    let whole = |source| BuildError::Source {
        path: dir.join(sources.join(", ")),
        source: Box::new(source),
    };
    let library = Library::new(items).map_err(whole)?;
    jit::verify::verify_library(&library).map_err(whole)?;
    Ok(library)
}

/// The `Shared` section entry of a memory or table of the template
/// library: what the module's own sources declare, as declared; what a
/// module it uses defines, imported (its templates reach it by name).
fn shared_item(item: &Item, own: bool) -> Option<smf::SharedItem> {
    let (name, signature, linkage) = match item {
        Item::Memory(m) => (&m.name, None, m.linkage),
        Item::Table(t) => {
            let sig = jit::ir::Type::Fn(Box::new(t.sig.clone())).to_string();
            (&t.name, Some(sig), t.linkage)
        }
        _ => return None,
    };
    Some(match (linkage, signature) {
        (Linkage::Define { initial, maximum }, None) if own => {
            smf::SharedItem::memory(name, initial, maximum)
        }
        (Linkage::Define { initial, maximum }, Some(sig)) if own => {
            smf::SharedItem::table(name, &sig, initial, maximum)
        }
        (_, None) => smf::SharedItem::import_memory(name),
        (_, Some(sig)) => smf::SharedItem::import_table(name, &sig),
    })
}

/// The symbol an item of the template library gets: generic functions
/// and structs of this module are global templates, those copied from a
/// module it uses are local ones (its templates call them by name, the
/// loader finds the exporting module), declarations are undefined symbols.
/// Concrete functions get theirs when compiled.
fn symbol_for(item: &Item, offset: u64, own: bool) -> Option<SymbolDef> {
    let binding = if own { Binding::Global } else { Binding::Local };
    let template = |params: usize| SymbolDef {
        binding,
        ..SymbolDef::template(
            &item.name(),
            u8::try_from(params).unwrap_or(u8::MAX),
            offset,
        )
    };
    Some(match item {
        Item::Function(f) if f.type_params.is_empty() => return None,
        Item::Function(f) => template(f.type_params.len()),
        Item::Struct(s) => SymbolDef {
            sym_type: SymbolType::Type,
            ..template(s.type_params.len())
        },
        Item::Import(d) | Item::Extern(d) => SymbolDef::import(&d.name, SymbolType::Function),
        // Declared in the module's `.shared` section instead.
        Item::Memory(_) | Item::Table(_) => return None,
    })
}
