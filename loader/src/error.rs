//! The crate's single error type.

use std::io;
use std::path::PathBuf;

use smf::RelocType;

/// Everything that can go wrong while caching, loading or resolving.
///
/// Errors that travel to other threads (a failed instantiation seen by every
/// thread that waited for it) are cloned, so the type is `Clone`; operating
/// system errors are kept as their kind and text.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, inspected, read or mapped.
    #[error("cannot {action} '{path}': {message}")]
    Io {
        /// What was being done: "open", "read", "map", "inspect".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's kind of failure.
        kind: io::ErrorKind,
        /// The operating system's text.
        message: String,
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
    #[error("the note.sdn section of '{path}' is not a valid note: {message}")]
    InvalidNote {
        /// The file.
        path: PathBuf,
        /// The SDN reader's error, with its line and column.
        message: String,
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
    #[error("instantiating '{name}' failed: {message}")]
    InstantiationFailed {
        /// The symbol.
        name: String,
        /// What the instantiator reported.
        message: String,
    },
    /// Executable memory could not be reserved, written or published.
    #[error("executable memory: {0}")]
    Memory(String),
    /// Read-write memory for data sections could not be mapped or protected.
    #[error("cannot map {len} bytes for the data sections of '{path}': {message}")]
    DataMemory {
        /// The module.
        path: PathBuf,
        /// Bytes asked for.
        len: usize,
        /// The operating system's text.
        message: String,
    },
    /// No loaded module has this identifier (it was unloaded).
    #[error("no module with id {0} is loaded")]
    NoSuchModule(u64),
}

impl Error {
    /// An [`Error::Io`] from an operating system error.
    #[cold]
    pub(crate) fn io(action: &'static str, path: &std::path::Path, error: &io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_path_buf(),
            kind: error.kind(),
            message: error.to_string(),
        }
    }

    /// A stable negative code for the C ABI (`smfjit_load`), one per kind.
    #[must_use]
    pub fn code(&self) -> i32 {
        match self {
            Self::Io { .. } | Self::ChangedWhileReading { .. } => -2,
            Self::InvalidModule { .. } | Self::InvalidNote { .. } => -3,
            Self::Unsupported { .. } => -4,
            Self::Unresolved { .. } => -5,
            Self::RelocationOverflow { .. } => -6,
            Self::DepthExceeded { .. } | Self::Cycle { .. } | Self::InstantiationFailed { .. } => {
                -7
            }
            Self::Memory(_) | Self::DataMemory { .. } => -8,
            Self::NoSuchModule(_) => -9,
        }
    }
}

impl From<execmem::Error> for Error {
    #[cold]
    fn from(error: execmem::Error) -> Self {
        Self::Memory(error.to_string())
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
