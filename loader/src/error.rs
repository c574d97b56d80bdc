//! The crate's single error type, and the cause of a failed instantiation
//! that it carries.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use smf::RelocType;

/// Everything that can go wrong while caching, loading or resolving.
///
/// Errors that travel to other threads (a failed instantiation seen by every
/// thread that waited for it) are cloned, so the type is `Clone`: the errors
/// of the crates below are kept as their `#[source]` values, behind an `Arc`
/// where their type is not `Clone` itself, so a caller can match on their
/// kinds.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, inspected, read or mapped.
    #[error("cannot {action} '{path}': {source}")]
    Io {
        /// What was being done: "open", "read", "map", "inspect".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's kind of failure (that of `source`).
        kind: io::ErrorKind,
        /// The operating system's error.
        source: Arc<io::Error>,
    },
    /// The file changed on disk while it was being read (its identity
    /// differed before and after), so no consistent version could be taken.
    #[error("'{path}' changed on disk while it was being read; try again")]
    ChangedWhileReading {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a valid SMF module.
    #[error("'{path}' is not a valid SMF module: {source}")]
    InvalidModule {
        /// The file.
        path: PathBuf,
        /// The reader's error, with the file offset of the fault.
        source: smf::Error,
    },
    /// The module's `note.sdn` section does not hold a valid note.
    #[error("the note.sdn section of '{path}' is not a valid note: {source}")]
    InvalidNote {
        /// The file.
        path: PathBuf,
        /// The SDN reader's error, with its line and column.
        source: sdn::Error,
    },
    /// The module's note, as it stands in memory, cannot be written as SDN
    /// (see [`write_back_note`](crate::write_back_note)).
    #[error("cannot write the note of '{path}' back: it cannot be written as SDN: {source}")]
    UnwritableNote {
        /// The file.
        path: PathBuf,
        /// The SDN writer's error.
        source: sdn::Error,
    },
    /// The module cannot be loaded as it is: a section or symbol layout the
    /// loader does not support.
    #[error("cannot load '{path}': {reason}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The module's `TemplateCode` section cannot be decoded, or its
    /// templates do not verify, so nothing can be instantiated from it.
    #[error("cannot load '{path}': its templates cannot be used: {source}")]
    InvalidTemplates {
        /// The file.
        path: PathBuf,
        /// The decoder's or the verifier's error (boxed: it is large, and
        /// every resolution returns this type).
        source: Box<jit::Error>,
    },
    /// A symbol was asked for that nothing defines or can instantiate.
    #[error("symbol '{name}' is not defined by any loaded module{detail}")]
    Unresolved {
        /// The symbol.
        name: String,
        /// Extra context, starting with a separator (empty when there is none).
        detail: String,
    },
    /// A relocation's result does not fit its field.
    #[error(
        "relocation {index} ({kind}) of '{path}' against '{symbol}' does not fit: \
         value {value:#x} is out of range for its field at {place:#x}"
    )]
    RelocationOverflow {
        /// The module.
        path: PathBuf,
        /// Position of the relocation in the module's relocation order.
        index: u64,
        /// The relocation type.
        kind: RelocType,
        /// The symbol.
        symbol: String,
        /// The value that did not fit (as a wide signed number).
        value: i128,
        /// Address of the patched field.
        place: usize,
    },
    /// Instantiating a symbol needed a chain of nested instantiations deeper
    /// than the configured bound.
    #[error("instantiating '{name}' needs nesting deeper than {limit}: {}", path.join(" -> "))]
    DepthExceeded {
        /// The symbol that would have exceeded the bound.
        name: String,
        /// The bound.
        limit: usize,
        /// The chain of instantiations that led there, outermost first.
        path: Vec<String>,
    },
    /// Instantiations depend on each other in a cycle.
    #[error("instantiation cycle: {}", path.join(" -> "))]
    Cycle {
        /// The cycle, starting and ending with the same symbol.
        path: Vec<String>,
    },
    /// The instantiator failed for a symbol.
    #[error("instantiating '{name}' failed: {source}")]
    InstantiationFailed {
        /// The symbol.
        name: String,
        /// Why.
        source: InstantiationError,
    },
    /// Executable memory could not be reserved, written or published.
    #[error("executable memory: {source}")]
    Memory {
        /// The executable memory's error.
        source: Arc<execmem::Error>,
    },
    /// A configuration value (an environment variable) is not valid.
    #[error("{variable}: {reason}")]
    Config {
        /// The variable.
        variable: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// A module's code batch went missing between binding its imports and
    /// publishing it: a broken invariant of the loader, reported rather
    /// than panicking.
    #[error("executable memory: {what}")]
    LostBatch {
        /// What was found missing.
        what: &'static str,
    },
    /// The process-wide trap runtime could not be made (see
    /// [`trap_runtime`](crate::trap_runtime)).
    #[error("executable memory: the trap runtime could not be published: {source}")]
    TrapRuntime {
        /// The backend's error.
        source: Arc<jit::backend::Error>,
    },
    /// Read-write memory for data sections could not be mapped or protected.
    #[error("cannot map {len} bytes for the data sections of '{path}': {source}")]
    DataMemory {
        /// The module.
        path: PathBuf,
        /// Bytes asked for.
        len: usize,
        /// The operating system's error.
        source: Arc<io::Error>,
    },
    /// No loaded module has this identifier (it was unloaded).
    #[error("no module with id {0} is loaded")]
    NoSuchModule(u64),
    /// A module imports a memory or table no loaded module defines.
    #[error("cannot load '{path}': it imports the {kind} '{name}', which no loaded module defines")]
    SharedUnresolved {
        /// The module.
        path: String,
        /// `memory` or `table`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A module's memory or table does not fit what is loaded: a name
    /// defined twice, or an import of the wrong kind or signature.
    #[error("cannot load '{path}': the {kind} '{name}' {reason}")]
    SharedConflict {
        /// The module.
        path: String,
        /// `memory` or `table`.
        kind: &'static str,
        /// The name.
        name: String,
        /// What does not fit.
        reason: String,
    },
    /// A module's memory or table could not be created.
    #[error("cannot load '{path}': '{name}': {source}")]
    SharedMemory {
        /// The module.
        path: String,
        /// The memory or table.
        name: String,
        /// Why.
        source: Arc<jit::shared::Error>,
    },
    /// A module cannot be unloaded while another imports what it defines.
    #[error("cannot unload '{path}': its {kind} '{name}' is imported by '{importer}'")]
    InUse {
        /// The module asked to go.
        path: String,
        /// `memory` or `table`.
        kind: &'static str,
        /// The name.
        name: String,
        /// A loaded module importing it.
        importer: String,
    },
}

/// Why an instantiation failed: the `source` of
/// [`Error::InstantiationFailed`]. The JIT's own errors are kept as they
/// are, so a caller can tell a type argument the template refuses from a
/// function the backend cannot compile.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum InstantiationError {
    /// Substituting the type arguments or checking the instance failed
    /// (`jit::instantiate`): a type argument its constraint refuses, a
    /// constant that does not fit the argument type, ...
    /// (Boxed: it is large, and every resolution returns this type.)
    #[error(transparent)]
    Instantiate(Box<jit::Error>),
    /// Lowering, encoding or linking the machine code failed (the x86-64
    /// backend).
    #[error(transparent)]
    Compile(Arc<jit::backend::Error>),
    /// A call to a template reached code generation uninstantiated.
    #[error("a call to a template was left uninstantiated")]
    UninstantiatedCall,
    /// The resolution chain had no batch to place the code in.
    #[error("no batch to place the code in")]
    NoBatch,
    /// The instantiator returned code reserved in a batch other than the one
    /// of the module being loaded.
    #[error("the instance was reserved in a batch other than the one being loaded")]
    ForeignBatch,
    /// The instance waited in the batch of a module being loaded, and that
    /// load failed.
    #[error("the module whose load instantiated it failed to load")]
    LoadFailed,
    /// The instantiator panicked (the panic hook has reported the panic).
    #[error("the instantiator panicked")]
    Panicked,
    /// An instantiator's own reason (see [`InstantiationError::other`]).
    #[error(transparent)]
    Other(Arc<dyn std::error::Error + Send + Sync>),
}

impl InstantiationError {
    /// An instantiator's own reason: an error value, or a message.
    #[cold]
    pub fn other(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Other(Arc::from(error.into()))
    }
}

impl From<jit::Error> for InstantiationError {
    #[cold]
    fn from(error: jit::Error) -> Self {
        Self::Instantiate(Box::new(error))
    }
}

impl From<jit::backend::Error> for InstantiationError {
    #[cold]
    fn from(error: jit::backend::Error) -> Self {
        Self::Compile(Arc::new(error))
    }
}

impl Error {
    /// An [`Error::Io`] from an operating system error.
    #[cold]
    pub(crate) fn io(action: &'static str, path: &std::path::Path, error: io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_path_buf(),
            kind: error.kind(),
            source: Arc::new(error),
        }
    }

    /// An [`Error::InstantiationFailed`] of `name`.
    #[cold]
    pub(crate) fn instantiation(name: &str, source: impl Into<InstantiationError>) -> Self {
        Self::InstantiationFailed {
            name: name.to_owned(),
            source: source.into(),
        }
    }

    /// A stable negative code for the C ABI (`smfjit_load`), one per kind.
    #[must_use]
    pub fn code(&self) -> i32 {
        match self {
            Self::Io { .. } | Self::ChangedWhileReading { .. } => -2,
            Self::InvalidModule { .. } | Self::InvalidNote { .. } => -3,
            Self::Unsupported { .. }
            | Self::InvalidTemplates { .. }
            | Self::UnwritableNote { .. } => -4,
            Self::Unresolved { .. } | Self::SharedUnresolved { .. } => -5,
            Self::SharedConflict { .. } => -4,
            Self::RelocationOverflow { .. } => -6,
            Self::DepthExceeded { .. } | Self::Cycle { .. } | Self::InstantiationFailed { .. } => {
                -7
            }
            Self::Memory { .. }
            | Self::LostBatch { .. }
            | Self::TrapRuntime { .. }
            | Self::DataMemory { .. }
            | Self::SharedMemory { .. } => -8,
            Self::NoSuchModule(_) => -9,
            Self::Config { .. } => -10,
            Self::InUse { .. } => -11,
        }
    }
}

impl From<execmem::Error> for Error {
    #[cold]
    fn from(error: execmem::Error) -> Self {
        Self::Memory {
            source: Arc::new(error),
        }
    }
}

impl Error {
    /// A memory or table of the module at `path` that does not fit.
    #[cold]
    pub(crate) fn shared(path: &Path, kind: &'static str, name: &str, reason: String) -> Self {
        Self::SharedConflict {
            path: path.display().to_string(),
            kind,
            name: name.to_owned(),
            reason,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
