//! The enumerated fields of SMF records, with their numeric codes and the
//! names tools print (and JSON carries next to the number).

/// Declares a `u8`-coded enum with `from_code`, `code` and `name`.
macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &[Self] = &[$(Self::$variant,)+];

            /// The value with numeric code `code`, if this version defines one.
            #[must_use]
            pub fn from_code(code: u8) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The numeric code stored in the file.
            #[must_use]
            pub fn code(self) -> u8 {
                match self {
                    $(Self::$variant => $code,)+
                }
            }

            /// The lower-case name tools print.
            #[must_use]
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

code_enum! {
    /// Operating system a module was built for.
    Platform {
        /// Runs anywhere.
        Any = 0 => "any",
        /// Linux.
        Linux = 1 => "linux",
        /// Windows.
        Windows = 2 => "windows",
        /// macOS.
        MacOs = 3 => "macos",
        /// FreeBSD.
        FreeBsd = 4 => "freebsd",
        /// No operating system (bare metal).
        None = 5 => "none",
    }
}

code_enum! {
    /// Instruction set a module's code is for.
    Arch {
        /// x86-64.
        X86_64 = 0 => "x86_64",
        /// AArch64.
        Aarch64 = 1 => "aarch64",
        /// 32-bit x86.
        X86 = 2 => "x86",
        /// 32-bit ARM.
        Arm = 3 => "arm",
        /// RISC-V 64.
        Riscv64 = 4 => "riscv64",
        /// RISC-V 32.
        Riscv32 = 5 => "riscv32",
        /// WebAssembly 32.
        Wasm32 = 6 => "wasm32",
        /// WebAssembly 64.
        Wasm64 = 7 => "wasm64",
    }
}

code_enum! {
    /// Compression of section contents.
    Compression {
        /// Not compressed.
        None = 0 => "none",
        /// zstd.
        Zstd = 1 => "zstd",
        /// LZ4.
        Lz4 = 2 => "lz4",
    }
}

code_enum! {
    /// What kind of application an executable module is.
    AppType {
        /// Command-line program.
        Cli = 0 => "cli",
        /// Terminal user interface.
        Tui = 1 => "tui",
        /// Graphical program.
        Gui = 2 => "gui",
        /// Long-running service.
        Service = 3 => "service",
        /// Interactive read-eval-print loop.
        Repl = 4 => "repl",
    }
}

code_enum! {
    /// Section types. Types this version does not define are kept and ignored.
    SectionType {
        /// Machine code.
        Code = 1 => "code",
        /// Initialised writable data.
        Data = 2 => "data",
        /// Read-only data.
        RoData = 3 => "rodata",
        /// Zero-initialised data with no bytes in the file.
        Bss = 4 => "bss",
        /// Relocation entries.
        Reloc = 5 => "reloc",
        /// A symbol table kept as a section.
        SymTab = 6 => "symtab",
        /// A string table kept as a section.
        StrTab = 7 => "strtab",
        /// Debug information.
        Debug = 8 => "debug",
        /// Type information.
        TypeInfo = 9 => "typeinfo",
        /// Version information.
        Version = 10 => "version",
        /// Source map.
        SrcMap = 11 => "srcmap",
        /// Template bodies (`GTPL`).
        TemplateCode = 12 => "template_code",
        /// Template metadata (`note.sdn`).
        TemplateMeta = 13 => "template_meta",
        /// Memories and tables the module defines or imports (`SHRD`).
        Shared = 14 => "shared",
    }
}

code_enum! {
    /// What a symbol names.
    SymbolType {
        /// Nothing, or an undefined (imported) symbol.
        None = 0 => "none",
        /// A function.
        Function = 1 => "function",
        /// A data object.
        Data = 2 => "data",
        /// A type.
        Type = 3 => "type",
        /// A trait.
        Trait = 4 => "trait",
        /// An actor.
        Actor = 5 => "actor",
        /// A constant.
        Constant = 6 => "constant",
    }
}

code_enum! {
    /// Symbol binding: who can see it and how it competes with others.
    Binding {
        /// Visible inside the module only.
        Local = 0 => "local",
        /// Exported; wins over weak definitions.
        Global = 1 => "global",
        /// Exported; yields to a global definition.
        Weak = 2 => "weak",
    }
}

code_enum! {
    /// Relocation types.
    RelocType {
        /// No relocation.
        None = 0 => "none",
        /// `S + A` stored as 64 bits.
        Abs64 = 1 => "abs64",
        /// `S + A - P` stored as a signed 32-bit value.
        Pc32 = 2 => "pc32",
        /// Like `pc32`; the target may be reached through a stub.
        Plt32 = 3 => "plt32",
        /// Address of a slot holding `S`, `+ A - P`, as a signed 32-bit value.
        GotPcRel = 4 => "gotpcrel",
    }
}

code_enum! {
    /// What a `Shared` section entry declares.
    SharedKind {
        /// A linear memory, sized in 64 KiB pages.
        Memory = 1 => "memory",
        /// A table of function pointers of one signature, sized in entries.
        Table = 2 => "table",
    }
}

code_enum! {
    /// Whether a module defines a memory or table or imports it by name.
    Linkage {
        /// Defined by another module; found by name.
        Import = 0 => "import",
        /// Defined here, with its sizes.
        Define = 1 => "define",
    }
}

impl RelocType {
    /// Number of bytes the relocation patches at its offset.
    #[must_use]
    pub fn width(self) -> u64 {
        match self {
            Self::None => 0,
            Self::Abs64 => 8,
            Self::Pc32 | Self::Plt32 | Self::GotPcRel => 4,
        }
    }
}

impl SectionType {
    /// Whether a section of this type has no bytes in the file, only memory.
    #[must_use]
    pub fn is_bss(self) -> bool {
        self == Self::Bss
    }
}

impl Default for SymbolType {
    /// The zero code: no type (an undefined symbol).
    fn default() -> Self {
        Self::None
    }
}

impl Default for Binding {
    /// The zero code: local.
    fn default() -> Self {
        Self::Local
    }
}
