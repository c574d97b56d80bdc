//! The backend's error type: what failed and in which function.

/// Why a function could not be compiled, linked or published.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The function uses an operation or type the backend cannot lower
    /// (a template that was not instantiated, a struct held in a register).
    #[error("`{function}` cannot be compiled: {what}")]
    Unsupported {
        /// The function being compiled.
        function: String,
        /// What is not supported.
        what: String,
    },
    /// A callee could not be resolved to an address.
    #[error("`{function}` calls `{callee}`, which could not be resolved: {source}")]
    Unresolved {
        /// The function being compiled.
        function: String,
        /// The callee's symbol or import name.
        callee: String,
        /// The resolver's error.
        #[source]
        source: Box<jit_ir::Error>,
    },
    /// A shared memory or table could not be resolved to its descriptor.
    #[error("`{function}` uses the shared {space} `{name}`, which could not be resolved: {source}")]
    UnresolvedShared {
        /// The function being compiled.
        function: String,
        /// Memory or table.
        space: jit_shared::Space,
        /// The memory's or table's name.
        name: String,
        /// The resolver's error.
        #[source]
        source: Box<jit_ir::Error>,
    },
    /// iced-x86 refused an instruction the lowering produced (a backend bug).
    #[error("`{function}`: the encoder rejected an instruction: {message}")]
    Encode {
        /// The function being compiled.
        function: String,
        /// The encoder's message.
        message: String,
    },
    /// The function has more code than one reservation may hold, or a
    /// register count past the backend's limits.
    #[error("`{function}` is too large to compile: {what}")]
    TooLarge {
        /// The function being compiled.
        function: String,
        /// Which bound was exceeded.
        what: &'static str,
    },
    /// Executable memory refused a reservation, write or publication.
    #[error("executable memory: {0}")]
    Memory(#[from] execmem::Error),
    /// A batch names the same symbol twice.
    #[error("the batch compiles `{0}` twice")]
    DuplicateSymbol(String),
}

impl Error {
    #[cold]
    pub(super) fn unsupported(function: &str, what: impl Into<String>) -> Self {
        Error::Unsupported {
            function: function.to_owned(),
            what: what.into(),
        }
    }

    #[cold]
    pub(super) fn encode(function: &str, e: &iced_x86::IcedError) -> Self {
        Error::Encode {
            function: function.to_owned(),
            message: e.to_string(),
        }
    }
}
