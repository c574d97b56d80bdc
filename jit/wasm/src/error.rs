//! The backend's one error type.

/// Why a set of instances did not become a module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The function uses something the backend cannot express (an
    /// operation instantiation should have lowered, a callee that is still
    /// a template).
    #[error("`{function}`: {what}")]
    Unsupported {
        /// The function being compiled.
        function: String,
        /// What is not supported.
        what: String,
    },
    /// Two instances of the set have the same symbol.
    #[error("the symbol `{0}` is defined twice")]
    DuplicateSymbol(String),
    /// One import name is used with two different signatures.
    #[error("`{name}` is imported with two signatures: {first} and {second}")]
    ImportSignature {
        /// The imported name.
        name: String,
        /// The signature seen first.
        first: String,
        /// The other one.
        second: String,
    },
    /// The emitted module does not validate: a bug of the backend, reported
    /// instead of handing out the module.
    #[error("the emitted module is invalid at byte {offset:#x}: {message}")]
    Invalid {
        /// Offset in the module's bytes.
        offset: usize,
        /// The validator's message.
        message: String,
        /// The validator's error.
        #[source]
        source: wasmparser::BinaryReaderError,
    },
    /// Execution stopped with a trap the IR defines.
    #[error("trap: {0}")]
    Trap(jit_ir::TrapKind),
    /// A call named no export or passed arguments that do not fit its
    /// signature, or a memory range lies outside the memory.
    #[error("{0}")]
    Arguments(String),
    /// The module imports a function the host does not provide.
    #[error("the import `{0}` is not provided")]
    Unresolved(String),
    /// The engine refused the module or its imports, or stopped with a
    /// trap the IR does not define (an access outside the memory, a
    /// function pointer of the wrong signature).
    #[cfg(feature = "run")]
    #[error("{what}: {source}")]
    Engine {
        /// What was being done.
        what: String,
        /// The engine's error.
        #[source]
        source: Box<wasmi::Error>,
    },
}

impl Error {
    #[cold]
    pub(crate) fn unsupported(function: &str, what: impl Into<String>) -> Error {
        Error::Unsupported {
            function: function.to_owned(),
            what: what.into(),
        }
    }
}
