//! The crate's one error type: a kind and where it happened.

use std::fmt;

/// Where an error was found.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Location {
    /// No particular place.
    #[default]
    Nowhere,
    /// Byte offset inside a binary TemplateCode section.
    Offset(usize),
    /// One-based line and column in the text form.
    Text {
        /// Line, from 1.
        line: usize,
        /// Column in characters, from 1.
        column: usize,
    },
    /// An instruction of a function: `inst` is `None` for the terminator.
    Instruction {
        /// Template (or instantiation) name.
        function: String,
        /// Block index.
        block: u32,
        /// Instruction index inside the block, `None` for the terminator.
        inst: Option<u32>,
    },
    /// A function or struct as a whole (its signature or declaration).
    Item(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Nowhere => Ok(()),
            Location::Offset(o) => write!(f, " (at offset {o:#x})"),
            Location::Text { line, column } => write!(f, " (at line {line}, column {column})"),
            Location::Instruction {
                function,
                block,
                inst: Some(i),
            } => {
                write!(f, " (in `{function}`, block b{block}, instruction {i})")
            }
            Location::Instruction {
                function,
                block,
                inst: None,
            } => {
                write!(f, " (in `{function}`, terminator of block b{block})")
            }
            Location::Item(name) => write!(f, " (in `{name}`)"),
        }
    }
}

/// Why an interpreted function stopped abnormally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapKind {
    /// Integer division or remainder by zero.
    DivideByZero,
    /// A `trap` terminator with its code.
    Explicit(u32),
    /// A load or store through the null pointer.
    NullPointer,
    /// A shared memory or table accessed past its current length.
    OutOfBounds,
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrapKind::DivideByZero => f.write_str("integer division by zero"),
            TrapKind::Explicit(code) => write!(f, "explicit trap {code}"),
            TrapKind::NullPointer => f.write_str("memory access through a null pointer"),
            TrapKind::OutOfBounds => f.write_str("shared memory or table access out of bounds"),
        }
    }
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    // --- text ---
    /// The text does not match the grammar.
    #[error("syntax error: expected {0}")]
    Syntax(String),
    /// A name used in the text is not declared.
    #[error("unknown {what} `{name}`")]
    Unknown {
        /// Kind of thing (label, register, field, callee, type).
        what: &'static str,
        /// The name.
        name: String,
    },
    /// A name declared twice in one scope.
    #[error("{what} `{name}` is defined twice")]
    Redefined {
        /// Kind of thing.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// Two library items of one kind share a name.
    #[error("the library declares `{0}` twice")]
    DuplicateItem(String),

    // --- binary ---
    /// The section does not start with `GTPL`.
    #[error("bad TemplateCode magic {0:02x?}, expected \"GTPL\"")]
    BadMagic([u8; 4]),
    /// The encoding version is not one this decoder reads.
    #[error("unsupported TemplateCode version {0}")]
    UnsupportedVersion(u16),
    /// The data ends inside a value.
    #[error("unexpected end of data while reading {0}")]
    Truncated(&'static str),
    /// A tag byte has no meaning.
    #[error("invalid {what} tag {tag:#04x}")]
    BadTag {
        /// What the tag selects.
        what: &'static str,
        /// The byte found.
        tag: u8,
    },
    /// A variable-length integer is longer than its type allows.
    #[error("variable-length integer overflows {0}")]
    VarintOverflow(&'static str),
    /// A name is not valid UTF-8 or not a valid identifier.
    #[error("invalid name: {0}")]
    BadName(String),
    /// An entry's declared length does not match its content.
    #[error("entry length {declared} does not match the {used} bytes its content uses")]
    EntryLength {
        /// Length in the entry header.
        declared: u64,
        /// Bytes actually decoded.
        used: u64,
    },
    /// Bytes remain after the last entry.
    #[error("{0} bytes follow the last entry")]
    TrailingBytes(usize),

    // --- limits ---
    /// A count or size is beyond the crate's limits.
    #[error("{what} {found} exceeds the limit of {limit}")]
    Limit {
        /// What was counted.
        what: &'static str,
        /// The value found (saturated).
        found: u64,
        /// The limit.
        limit: u64,
    },

    // --- verifier ---
    /// An operand or result has the wrong type.
    #[error("type mismatch: {context} expects {expected}, found {found}")]
    TypeMismatch {
        /// Which operand.
        context: &'static str,
        /// Expected type or class.
        expected: String,
        /// Type found.
        found: String,
    },
    /// The operation is not defined on this type.
    #[error("`{op}` is not defined on {ty}")]
    BadOperandType {
        /// The operation.
        op: &'static str,
        /// The type.
        ty: String,
    },
    /// A register is used but never defined.
    #[error("register %{0} is not defined")]
    UndefinedRegister(u32),
    /// A register is used where its definition does not dominate.
    #[error("register %{0} is used where its definition does not dominate")]
    NotDominated(u32),
    /// Registers are not numbered in definition order.
    #[error("register %{found} is defined where %{expected} is next")]
    RegisterNumbering {
        /// The next number in definition order.
        expected: u32,
        /// The number found.
        found: u32,
    },
    /// An instruction defines a register when it produces no value, or the reverse.
    #[error("the instruction {0}")]
    ResultMismatch(&'static str),
    /// A branch names a block that does not exist.
    #[error("block b{0} does not exist")]
    NoSuchBlock(u32),
    /// The function has no blocks.
    #[error("the function has no blocks")]
    NoBlocks,
    /// The entry block declares parameters or is a branch target.
    #[error("the entry block {0}")]
    BadEntry(&'static str),
    /// A block cannot be reached from the entry.
    #[error("block b{0} is unreachable")]
    UnreachableBlock(u32),
    /// Argument count differs from the parameter count.
    #[error("{what} takes {expected} arguments, {found} given")]
    ArgCount {
        /// Callee or block.
        what: String,
        /// Parameters.
        expected: usize,
        /// Arguments.
        found: usize,
    },
    /// A signature needs stack-passed arguments, which calls do not support.
    #[error(
        "signature has {ints} integer/pointer and {floats} float parameters; at most {max_ints} and {max_floats} fit in argument registers"
    )]
    TooManyArgs {
        /// Integer-class parameters.
        ints: usize,
        /// Float parameters.
        floats: usize,
        /// Limit for integers.
        max_ints: usize,
        /// Limit for floats.
        max_floats: usize,
    },
    /// A type argument does not satisfy its parameter's constraint.
    #[error("type argument {ty} does not satisfy `{param}: {constraint}`")]
    Constraint {
        /// The argument.
        ty: String,
        /// Parameter name.
        param: String,
        /// Constraint name.
        constraint: &'static str,
    },
    /// The number of type arguments differs from the parameter count.
    #[error("`{name}` takes {expected} type arguments, {found} given")]
    TypeArgCount {
        /// Template or struct name.
        name: String,
        /// Type parameters.
        expected: usize,
        /// Type arguments.
        found: usize,
    },
    /// A struct type is used where only register types are allowed.
    #[error("{0} cannot be held in a register")]
    NotRegisterType(String),
    /// A constant does not fit its type.
    #[error("constant {value} does not fit {ty}")]
    LiteralRange {
        /// The literal as text.
        value: String,
        /// The type.
        ty: String,
    },
    /// A call's recorded signature differs from the callee's declaration.
    #[error("call signature {found} differs from `{callee}`'s declared {expected}")]
    SignatureMismatch {
        /// Callee name.
        callee: String,
        /// Declared (substituted) signature.
        expected: String,
        /// Signature at the call.
        found: String,
    },
    /// A name is not acceptable for the item (reserved word, method name
    /// that reads as a type in mangled form, …).
    #[error("`{name}` {reason}")]
    BadItemName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },

    // --- instantiation ---
    /// A type that is not concrete reached a place that needs one.
    #[error("type {0} is not concrete")]
    NotConcrete(String),
    /// Instantiation went deeper than the bound; the chain shows how.
    #[error("instantiation depth exceeds {limit}: {}", chain.join(" -> "))]
    InstantiationDepth {
        /// The limit.
        limit: usize,
        /// Mangled names from the root to where it stopped.
        chain: Vec<String>,
    },
    /// A struct contains itself by value.
    #[error("struct layout recursion: {}", chain.join(" -> "))]
    RecursiveStruct {
        /// Struct types from the outermost.
        chain: Vec<String>,
    },
    /// A mangled name does not follow the scheme.
    #[error("cannot demangle `{name}`: {reason}")]
    Demangle {
        /// The name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A function pointer type or type parameter cannot be mangled.
    #[error("type {0} cannot be a type argument")]
    NotTypeArgument(String),

    /// A block where no loop entry can start (`osr::loop_entry`).
    #[error("no loop entry at block b{block}: {reason}")]
    NoLoopEntry {
        /// The block asked for.
        block: u32,
        /// Why not.
        reason: &'static str,
    },

    /// A memory or table definition whose maximum is below its initial size.
    #[error("`{name}`: the maximum {maximum} is below the initial size {initial}")]
    MaximumBelowInitial {
        /// The memory or table.
        name: String,
        /// Its initial size.
        initial: u64,
        /// Its maximum.
        maximum: u64,
    },

    // --- interpreter ---
    /// Execution trapped.
    #[error("trap: {0}")]
    Trap(TrapKind),
    /// The fuel given to the interpreter ran out.
    #[error("the instruction budget ran out")]
    OutOfFuel,
    /// The interpreter's call stack is full.
    #[error("call depth exceeds {0}")]
    CallDepth(usize),
    /// The resolver knows no function by this name.
    #[error("unresolved symbol `{0}`")]
    Unresolved(String),
    /// An indirect call through an address the resolver does not know.
    #[error("indirect call through unknown function pointer {0:#x}")]
    UnknownFunctionPointer(u64),
    /// A function handed to the interpreter breaks a rule the verifier
    /// would have caught (the interpreter checks instead of panicking).
    #[error("the function is malformed: it {0}")]
    Malformed(&'static str),
    /// Native calls are only implemented for x86-64 System V.
    #[error("native calls are not supported on this target")]
    NativeUnsupported,
    /// Arguments given to the interpreter do not match the signature.
    #[error("argument {index} has type {found}, the signature wants {expected}")]
    ArgumentType {
        /// Argument index.
        index: usize,
        /// Declared type.
        expected: String,
        /// Given type.
        found: String,
    },
}

/// An error with the place it happened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}{location}")]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Where.
    pub location: Location,
}

impl Error {
    /// An error without a location.
    #[cold]
    pub fn new(kind: ErrorKind) -> Error {
        Error {
            kind,
            location: Location::Nowhere,
        }
    }

    /// An error at a byte offset of binary input.
    #[cold]
    pub fn at_offset(kind: ErrorKind, offset: usize) -> Error {
        Error {
            kind,
            location: Location::Offset(offset),
        }
    }

    /// The error of a binary decoded from `original_offset` of a larger
    /// input (a section inside a file): a byte offset becomes an offset in
    /// that input, and an error with no location is placed at
    /// `original_offset`.
    #[must_use]
    pub fn in_file_at(mut self, original_offset: u64) -> Error {
        let base = usize::try_from(original_offset).unwrap_or(usize::MAX);
        self.location = match self.location {
            Location::Offset(at) => Location::Offset(at.saturating_add(base)),
            Location::Nowhere => Location::Offset(base),
            other => other,
        };
        self
    }

    /// Sets the location unless one is already recorded.
    #[must_use]
    pub fn or_at(mut self, location: Location) -> Error {
        if self.location == Location::Nowhere {
            self.location = location;
        }
        self
    }
}

/// Checks `found` against `limit`.
///
/// # Errors
///
/// [`ErrorKind::Limit`] when `found > limit`.
pub fn check_limit(what: &'static str, found: usize, limit: usize) -> Result<(), Error> {
    if found > limit {
        Err(Error::new(ErrorKind::Limit {
            what,
            found: u64::try_from(found).unwrap_or(u64::MAX),
            limit: u64::try_from(limit).unwrap_or(u64::MAX),
        }))
    } else {
        Ok(())
    }
}
