//! Structure-aware fuzzing of the SMF reader, validator and loader: the
//! input is decoded (`arbitrary`) into a model of a module — header
//! fields, sections with their types, flags, alignment and bytes, symbols,
//! relocations, memories and tables, the note, the template code — which
//! the writer (`smf::ModuleBuilder`) lays out. A few field or byte
//! mutations of the result then let invalid files reach the validator's
//! deep checks rather than fail at the trailer. Whatever parses must keep
//! every accessor inside the file; whatever also suits this host is loaded
//! by the loader from a temporary file (mapping, relocation, binding of
//! imports, instantiation of templates it imports) and unloaded again.
//! Loaded code is never called.
#![no_main]

use std::cell::Cell;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use smf::raw::section_flags;
use smf::{
    AppType, Arch, Binding, Compression, Linkage, ModuleBuilder, NoteSize, Platform, RelocType,
    SectionId, SectionType, SharedItem, SharedKind, SymbolDef, SymbolId, SymbolType,
};

/// Names worth colliding on: the reserved section names, symbols the
/// loader resolves from libc and from the collections library's templates.
const NAMES: &[&str] = &[
    ".text",
    ".data",
    ".rodata",
    ".bss",
    "note.sdn",
    "template.code",
    ".shared",
    "main",
    "malloc",
    "free",
    "memcpy",
    "vec_push",
    "vec_new$i64",
    "sum$f64",
    "heap",
    "fns",
];

/// Table signatures in IR text, one of them not IR.
const SIGNATURES: &[&str] = &["fn(i64) -> i64", "fn()", "fn(f64, ptr) -> bool", "fn(", ""];

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Other(String),
}

impl Name {
    fn text(&self) -> String {
        match self {
            Name::Known(k) => NAMES[usize::from(*k) % NAMES.len()].to_owned(),
            Name::Other(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Header {
    platform: u8,
    arch: u8,
    app_type: u8,
    flags: u32,
    minor: u8,
    entry: Option<(u8, u16)>,
    source_hash: u64,
    prefetch: (u8, u8),
    window: (u16, u16),
    record_module_hash: bool,
    record_smf_size: bool,
    /// Compress with zstd at this level (modulo the valid range).
    compress: Option<u8>,
    stub: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
enum SectionData {
    Bytes(Vec<u8>),
    /// Zero-initialised, this many bytes.
    Bss(u16),
}

#[derive(Arbitrary, Debug)]
struct Section {
    /// A defined type (modulo their number) or, when odd, a raw code.
    type_code: u8,
    raw_code: bool,
    name: Name,
    flags: u8,
    align_log2: u8,
    data: SectionData,
    compress: Option<bool>,
}

#[derive(Arbitrary, Debug)]
struct Symbol {
    name: Name,
    sym_type: u8,
    binding: u8,
    visibility: u8,
    flags: u8,
    section: Option<u8>,
    value: u16,
    size: u16,
    type_id: u32,
    version: u32,
    template_param_count: u8,
    template_offset: u16,
}

#[derive(Arbitrary, Debug)]
struct Relocation {
    target: u8,
    offset: u16,
    symbol: u8,
    reloc_type: u8,
    addend: i32,
}

#[derive(Arbitrary, Debug)]
struct Shared {
    table: bool,
    import: bool,
    name: Name,
    initial: u16,
    maximum: Option<u16>,
    signature: u8,
}

#[derive(Arbitrary, Debug)]
struct Note {
    text: NoteText,
    scanned: bool,
}

/// A note's text: arbitrary, or the six tables written by the note's own
/// writer, so that the loader's note checks (names against templates and
/// symbols, dependency ids, cycles) see well-formed tables.
#[derive(Arbitrary, Debug)]
enum NoteText {
    Raw(String),
    Rows(NoteRows),
}

/// Type arguments worth naming: scalars the templates take, a struct, an
/// argument list and text that is no type.
const TYPE_ARGS: &[&str] = &[
    "i64",
    "f64",
    "i32,u8",
    "Pair<i32,u8>",
    "u16",
    "bool",
    "",
    "?",
];

#[derive(Arbitrary, Debug)]
struct Row {
    id: u8,
    template: Name,
    type_args: u8,
    mangled_name: Name,
    text: Name,
    flag: u8,
}

#[derive(Arbitrary, Debug)]
struct NoteRows {
    instantiations: Vec<Row>,
    possible: Vec<Row>,
    type_inferences: Vec<Row>,
    dependencies: Vec<(u8, u8, u8)>,
    warnings: Vec<Row>,
    errors: Vec<Row>,
}

impl NoteRows {
    /// The rows as a note, written as SDN (with its terminator line); `None`
    /// when the writer refuses them (type arguments that do not read back).
    fn text(&self) -> Option<String> {
        use sdn::note::{
            CircularError, CircularWarning, DepKind, Dependency, Instantiation, Possible, Status,
            TypeArgs, TypeInference,
        };
        let args =
            |row: &Row| TypeArgs::split(TYPE_ARGS[usize::from(row.type_args) % TYPE_ARGS.len()]);
        let note = sdn::note::Note {
            instantiations: (self.instantiations.iter())
                .map(|r| Instantiation {
                    id: r.id.into(),
                    template: r.template.text(),
                    type_args: args(r),
                    mangled_name: r.mangled_name.text(),
                    from_file: r.text.text(),
                    from_loc: "1:1".to_owned(),
                    to_obj: r.text.text(),
                    status: [Status::Compiled, Status::Deferred, Status::JitCompiled]
                        [usize::from(r.flag) % 3],
                })
                .collect(),
            possible: (self.possible.iter())
                .map(|r| Possible {
                    id: r.id.into(),
                    template: r.template.text(),
                    type_args: args(r),
                    mangled_name: r.mangled_name.text(),
                    required_by: r.text.text(),
                    can_defer: r.flag % 2 == 0,
                })
                .collect(),
            type_inferences: (self.type_inferences.iter())
                .map(|r| TypeInference {
                    id: r.id.into(),
                    inferred_type: r.mangled_name.text(),
                    expr: r.template.text(),
                    context: r.text.text(),
                    from_file: r.text.text(),
                    from_loc: "2:3".to_owned(),
                })
                .collect(),
            dependencies: (self.dependencies.iter())
                .map(|&(from, to, kind)| Dependency {
                    from_inst: from.into(),
                    to_inst: to.into(),
                    dep_kind: [
                        DepKind::TypeParam,
                        DepKind::FieldType,
                        DepKind::InnerType,
                        DepKind::MethodDep,
                    ][usize::from(kind) % 4],
                })
                .collect(),
            circular_warnings: (self.warnings.iter())
                .map(|r| CircularWarning {
                    id: r.id.into(),
                    cycle_path: r.mangled_name.text(),
                    severity: r.text.text(),
                })
                .collect(),
            circular_errors: (self.errors.iter())
                .map(|r| CircularError {
                    id: r.id.into(),
                    cycle_path: r.mangled_name.text(),
                    error_code: r.text.text(),
                })
                .collect(),
        };
        note.to_sdn_string().ok()
    }
}

#[derive(Arbitrary, Debug)]
enum Templates {
    /// The collections library, encoded: valid templates the loader can
    /// instantiate for imports that name them.
    Collections,
    /// `GTPL` and these bytes.
    Raw(Vec<u8>),
}

/// A change to the built file.
#[derive(Arbitrary, Debug)]
enum Mutation {
    SetByte {
        at: u32,
        value: u8,
    },
    /// A little-endian word, where header and table fields are.
    SetWord {
        at: u32,
        value: u32,
    },
    /// Counting from the end, where the trailer header is.
    SetByteFromEnd {
        back: u16,
        value: u8,
    },
    Truncate {
        keep: u32,
    },
    Append(Vec<u8>),
}

/// The committed fixture modules, valid for this host: a base the model
/// can start from (through `ModuleBuilder::from_module`), so that loads
/// reach real code, relocations, imports and notes.
const FIXTURES: &[&[u8]] = &[
    include_bytes!("../../tests/fixtures/app.smf"),
    include_bytes!("../../tests/fixtures/collections.smf"),
    include_bytes!("../../tests/fixtures/cycle.smf"),
    include_bytes!("../../tests/fixtures/heap.smf"),
    include_bytes!("../../tests/fixtures/heapuser.smf"),
    include_bytes!("../../tests/fixtures/sample-zstd.smf"),
    include_bytes!("../../tests/fixtures/sample.smf"),
    include_bytes!("../../tests/fixtures/stats.smf"),
    include_bytes!("../../tests/fixtures/trig.smf"),
];

#[derive(Arbitrary, Debug)]
struct Model {
    /// Start from this fixture (modulo their number) instead of nothing.
    base: Option<u8>,
    /// Header fields; a fixture keeps its own when there are none.
    header: Option<Header>,
    sections: Vec<Section>,
    symbols: Vec<Symbol>,
    relocations: Vec<Relocation>,
    shared: Vec<Shared>,
    note: Option<Note>,
    templates: Option<Templates>,
    mutations: Vec<Mutation>,
}

fn pick<T: Copy>(all: &[T], k: u8) -> T {
    all[usize::from(k) % all.len()]
}

/// The collections library in the binary format, made once.
fn collections_code() -> &'static [u8] {
    static CODE: OnceLock<Vec<u8>> = OnceLock::new();
    CODE.get_or_init(|| {
        let lib = jit_ir::library::collections().expect("the collections library verifies");
        jit_ir::binary::encode_library(&lib).bytes
    })
}

/// Sets the header fields the model gives.
fn header(b: &mut ModuleBuilder, h: &Header) {
    b.platform(pick(Platform::ALL, h.platform))
        .arch(pick(Arch::ALL, h.arch))
        .app_type(pick(AppType::ALL, h.app_type))
        .flags(h.flags)
        .version_minor(h.minor)
        .source_hash(h.source_hash)
        .prefetch(h.prefetch.0, h.prefetch.1)
        .window(h.window.0, h.window.1)
        .record_module_hash(h.record_module_hash)
        .record_smf_size(h.record_smf_size)
        .stub(&h.stub);
}

/// Lays the model out with the writer; items the writer refuses are left
/// out, so most inputs still make a module.
fn build(model: &Model) -> Option<Vec<u8>> {
    let mut sections: Vec<SectionId> = Vec::new();
    let mut b = match model.base {
        Some(k) => {
            let fixture = FIXTURES[usize::from(k) % FIXTURES.len()];
            let module = smf::Module::parse(fixture).expect("the fixtures are valid");
            let count = module.sections().count();
            sections.extend(
                (0..count)
                    .filter_map(|i| u16::try_from(i).ok())
                    .map(SectionId),
            );
            ModuleBuilder::from_module(&module).expect("the writer takes in a fixture")
        }
        None => ModuleBuilder::new(),
    };
    if let Some(h) = &model.header {
        header(&mut b, h);
    }
    for s in &model.sections {
        let name = s.name.text();
        let alignment = 1u64 << (s.align_log2 % 13);
        let id = match &s.data {
            SectionData::Bss(size) => b.add_bss(&name, u64::from(*size), alignment),
            SectionData::Bytes(data) => {
                let code = if s.raw_code {
                    s.type_code
                } else {
                    pick(SectionType::ALL, s.type_code).code()
                };
                let flags = u32::from(s.flags) & (section_flags::KNOWN | 0x30);
                b.add_section_code(code, &name, flags, alignment, data)
            }
        };
        if let Ok(id) = id {
            if let Some(compress) = s.compress {
                let _ = b.compress_section(id, compress);
            }
            sections.push(id);
        }
    }
    let note_text = model.note.as_ref().and_then(|note| match &note.text {
        NoteText::Raw(raw) => {
            let mut text = raw.replace('\0', "");
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(smf::NOTE_TERMINATOR);
            text.push('\n');
            Some((text, note.scanned))
        }
        NoteText::Rows(rows) => rows.text().map(|text| (text, note.scanned)),
    });
    if let Some((text, scanned)) = note_text {
        let size = if scanned {
            NoteSize::Scanned
        } else {
            NoteSize::Recorded
        };
        if let Ok(id) = b.set_note(&text, size) {
            sections.push(id);
        }
    }
    if let Some(templates) = &model.templates {
        let bytes = match templates {
            Templates::Collections => collections_code().to_vec(),
            Templates::Raw(rest) => [&smf::TEMPLATE_CODE_MAGIC[..], rest].concat(),
        };
        if let Ok(id) = b.set_template_code(&bytes) {
            sections.push(id);
        }
    }
    for s in &model.shared {
        let name = s.name.text();
        let signature = pick(SIGNATURES, s.signature);
        let item = match (s.table, s.import) {
            (false, false) => {
                SharedItem::memory(&name, u64::from(s.initial), s.maximum.map(u64::from))
            }
            (true, false) => SharedItem::table(
                &name,
                signature,
                u64::from(s.initial),
                s.maximum.map(u64::from),
            ),
            (false, true) => SharedItem::import_memory(&name),
            (true, true) => SharedItem::import_table(&name, signature),
        };
        debug_assert_eq!(item.linkage == Linkage::Import, s.import);
        debug_assert_eq!(item.kind == SharedKind::Table, s.table);
        let _ = b.add_shared_item(item);
    }
    let section = |k: u8| -> Option<SectionId> {
        (!sections.is_empty()).then(|| sections[usize::from(k) % sections.len()])
    };
    let mut symbols: Vec<SymbolId> = Vec::new();
    for s in &model.symbols {
        let def = SymbolDef {
            name: s.name.text(),
            sym_type: pick(SymbolType::ALL, s.sym_type),
            binding: pick(Binding::ALL, s.binding),
            visibility: s.visibility,
            flags: s.flags,
            section: s.section.and_then(section),
            value: u64::from(s.value),
            size: u64::from(s.size),
            type_id: s.type_id,
            version: s.version,
            template_param_count: s.template_param_count,
            template_offset: u64::from(s.template_offset),
        };
        if let Ok(id) = b.add_symbol(def) {
            symbols.push(id);
        }
    }
    if !symbols.is_empty() {
        for r in &model.relocations {
            let Some(target) = section(r.target) else {
                break;
            };
            b.add_relocation(
                target,
                u64::from(r.offset),
                symbols[usize::from(r.symbol) % symbols.len()],
                pick(RelocType::ALL, r.reloc_type),
                i64::from(r.addend),
            );
        }
    }
    if let Some((k, offset)) = model.header.as_ref().and_then(|h| h.entry)
        && let Some(id) = section(k)
    {
        b.entry_point(id, u64::from(offset));
    }
    if let Some(level) = model.header.as_ref().and_then(|h| h.compress) {
        let levels = smf::ZSTD_LEVELS;
        let span = levels.end() - levels.start() + 1;
        let level = levels.start() + level % span;
        let _ = b.compress(Compression::Zstd, Some(level));
    }
    b.build().ok()
}

fn mutate(file: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations.iter().take(4) {
        let len = file.len();
        if len == 0 {
            return;
        }
        match m {
            Mutation::SetByte { at, value } => {
                let at = *at as usize % len;
                file[at] = *value;
            }
            Mutation::SetWord { at, value } => {
                let at = *at as usize % len;
                for (i, byte) in value.to_le_bytes().into_iter().enumerate() {
                    if let Some(slot) = file.get_mut(at + i) {
                        *slot = byte;
                    }
                }
            }
            Mutation::SetByteFromEnd { back, value } => {
                let at = len - 1 - usize::from(*back) % len;
                file[at] = *value;
            }
            Mutation::Truncate { keep } => file.truncate(*keep as usize % len),
            Mutation::Append(bytes) => file.extend_from_slice(bytes),
        }
    }
}

/// What the byte-level target checks of a parsed module, in short: every
/// view stays inside the file and the tables agree with each other.
fn check(module: &smf::Module<'_>) {
    for section in module.sections() {
        let _ = section.data().len();
        if let Some(relocations) = section.relocations() {
            for r in relocations {
                assert!(module.symbol(r.symbol_index).is_some());
                assert!(module.section(u32::from(r.target_section)).is_some());
            }
        }
    }
    for symbol in module.symbols() {
        let found = module
            .symbol_by_name(symbol.name())
            .expect("every name is indexed");
        assert_eq!(found.name(), symbol.name());
    }
    let _ = module.note_sdn().map(str::len);
    let _ = module.template_code().map(<[u8]>::len);
    let _ = module.shared_items();
}

thread_local! {
    static LOADER: loader::Loader = loader::Loader::new(loader::LoaderConfig::default())
        .expect("a loader with the default configuration");
    static DIR: tempfile::TempDir = tempfile::tempdir().expect("a temporary directory");
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

/// Loads `file` and unloads it again. Errors are expected (unresolved
/// imports, layouts the loader does not support); panics are findings.
fn load(file: &[u8]) {
    let n = COUNT.get();
    COUNT.set(n + 1);
    // A new name each time: the loader's cache keys files by path.
    let path = DIR.with(|dir| dir.path().join(format!("m{n}.smf")));
    std::fs::write(&path, file).expect("writes the module");
    LOADER.with(|loader| {
        if let Ok(module) = loader.load(&path) {
            loader.unload(module.id()).expect("unloads what it loaded");
        }
        loader.clear_instances();
    });
    let _ = std::fs::remove_file(&path);
}

fuzz_target!(|data: &[u8]| {
    let Ok(model) = arbitrary::Unstructured::new(data).arbitrary::<Model>() else {
        return;
    };
    let Some(mut file) = build(&model) else {
        return;
    };
    let built = file.clone();
    mutate(&mut file, &model.mutations);
    let parsed = smf::Module::parse(&file);
    if model.mutations.is_empty() {
        assert!(
            parsed.is_ok(),
            "the writer made a module the reader rejects: {:?}\n{model:#?}",
            parsed.err()
        );
    }
    let Ok(module) = parsed else {
        return;
    };
    check(&module);
    if module.check_host().is_ok() {
        load(&file);
    }
    drop(built);
});
