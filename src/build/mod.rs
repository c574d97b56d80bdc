//! `smf-build`: builds an SMF module from an SDN manifest.
//!
//! A manifest names the module, the template sources (text IR, paths
//! relative to the manifest) and the instantiations other programs may ask
//! for at run time (`possible`). The build parses and verifies the sources,
//! encodes them into the TemplateCode section, gives every generic function
//! and struct a template symbol and every native import or foreign symbol an
//! undefined one, checks that each `possible` instantiation really
//! instantiates, and writes the `note.sdn` tables. The same manifest and
//! sources always give the same bytes. The format of a manifest is in
//! `doc/formats/manifest.md`.

mod manifest;

use std::path::{Path, PathBuf};

use jit::ir::{Item, Library};
use sdn::note::{Note, Possible, TypeArgs};
use smf::{ModuleBuilder, NoteSize, SymbolDef, SymbolType};

pub use manifest::{Manifest, ModuleInfo, PossibleEntry};

/// Why a build failed: which file, and what is wrong with it.
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
        /// The IR error.
        source: jit::Error,
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
/// # Errors
/// An unreadable file, a manifest or source with errors, a `possible`
/// instantiation that does not instantiate, or a module the SMF writer
/// refuses.
pub fn build_module(path: &Path) -> Result<Vec<u8>, BuildError> {
    let text = read(path)?;
    let manifest: Manifest = sdn::from_str(&text).map_err(|source| BuildError::Manifest {
        path: path.to_owned(),
        source,
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let library = load_sources(dir, &manifest.sources)?;
    let invalid = |message: String| BuildError::Invalid {
        path: path.to_owned(),
        message,
    };
    if let Some(f) = library.items().iter().find_map(|item| match item {
        Item::Function(f) if f.type_params.is_empty() => Some(f),
        _ => None,
    }) {
        return Err(invalid(format!(
            "function '{}' is not generic: concrete functions are compiled ahead of time, \
             which needs the x86-64 backend and is not supported by this version",
            f.name
        )));
    }
    if !manifest.compile.is_empty() {
        return Err(invalid(
            "'compile' lists ahead-of-time instantiations, which need the x86-64 backend \
             and are not supported by this version"
                .into(),
        ));
    }

    let mut builder = ModuleBuilder::new();
    builder
        .platform(manifest.module.platform().map_err(invalid)?)
        .arch(manifest.module.arch().map_err(invalid)?)
        .source_hash(source_hash(&text, &manifest, dir)?);
    let encoded = jit::binary::encode_library(&library);
    if !library.items().is_empty() {
        builder.set_template_code(&encoded.bytes)?;
    }
    for (item, offset) in library.items().iter().zip(&encoded.offsets) {
        builder.add_symbol(symbol_for(item, *offset as u64)?)?;
    }

    let mut note = Note::default();
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
        note.possible.push(Possible {
            id: u32::try_from(row + 1).unwrap_or(u32::MAX),
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

fn read(path: &Path) -> Result<String, BuildError> {
    std::fs::read_to_string(path).map_err(|source| BuildError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Parses every source and gathers their items into one verified library.
fn load_sources(dir: &Path, sources: &[String]) -> Result<Library, BuildError> {
    let mut items = Vec::new();
    for source in sources {
        let path = dir.join(source);
        let text = read(&path)?;
        let lib = jit::text::parse_library(&text).map_err(|source| BuildError::Source {
            path: path.clone(),
            source,
        })?;
        items.extend(lib.items().iter().cloned());
    }
    let whole = |source| BuildError::Source {
        path: dir.join(sources.join(", ")),
        source,
    };
    let library = Library::new(items).map_err(whole)?;
    jit::verify::verify_library(&library).map_err(whole)?;
    Ok(library)
}

/// The symbol an item of the template library gets.
fn symbol_for(item: &Item, offset: u64) -> Result<SymbolDef, BuildError> {
    Ok(match item {
        Item::Function(f) => SymbolDef::template(
            &item.name(),
            u8::try_from(f.type_params.len()).unwrap_or(u8::MAX),
            offset,
        ),
        Item::Struct(s) => SymbolDef {
            sym_type: SymbolType::Type,
            ..SymbolDef::template(
                &item.name(),
                u8::try_from(s.type_params.len()).unwrap_or(u8::MAX),
                offset,
            )
        },
        Item::Import(d) | Item::Extern(d) => SymbolDef::import(&d.name, SymbolType::Function),
    })
}

/// FNV-1a 64 over the manifest and every source, in order, so a module
/// records exactly which inputs it was built from.
fn source_hash(manifest: &str, m: &Manifest, dir: &Path) -> Result<u64, BuildError> {
    let mut all = manifest.as_bytes().to_vec();
    for source in &m.sources {
        all.extend_from_slice(read(&dir.join(source))?.as_bytes());
    }
    Ok(smf::fnv1a64(&all))
}
