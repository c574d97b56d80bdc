//! SMF open + validate + index (BRIEF §8: ≤ 2 ms for 10,000 symbols and
//! 10,000 note rows, the rows parsed into the typed `note.sdn` schema),
//! against only reading the file.

use std::fs::File;
use std::path::Path;

use smf::{Compression, Module, ModuleBuilder, NoteSize, SectionType, SymbolDef};

use crate::harness::{Report, Row, fmt_duration, measure};

const SYMBOLS: usize = 10_000;
const NOTE_ROWS: usize = 10_000;
const TYPES: [&str; 10] = [
    "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64",
];

/// A module shaped like a large generic library: one code section with
/// 10,000 exported instantiations and a `note.sdn` with `note_rows`
/// `possible` rows, stored or (with `compress`) compressed with zstd.
fn generate(record_hash: bool, note_rows: usize, compress: bool) -> Vec<u8> {
    let mut b = ModuleBuilder::new();
    b.record_module_hash(record_hash);
    if compress {
        b.compress(Compression::Zstd, None).expect("zstd");
    }
    let code = b
        .add_section(SectionType::Code, ".text", 5, 16, &vec![0xC3; SYMBOLS * 32])
        .expect("section");
    let mut note = String::from(
        "# Instantiation To/From Metadata\npossible |id, template, type_args, mangled_name, required_by, can_defer|\n",
    );
    for i in 0..note_rows {
        let t = TYPES[i % TYPES.len()];
        note.push_str(&format!(
            "  {i}, kernel{i}, {t}, \"kernel{i}${t}\", app.main, true\n"
        ));
    }
    note.push_str("# END_NOTE\n");
    b.set_note(&note, NoteSize::Recorded).expect("note");
    for i in 0..SYMBOLS {
        let name = format!("kernel{i}${}", TYPES[i % TYPES.len()]);
        b.add_symbol(SymbolDef::function(&name, code, (i * 32) as u64, 32))
            .expect("symbol");
    }
    b.build().expect("module builds")
}

/// What the §8 row measures: map the file, validate it, index its
/// symbols, and parse its `note.sdn` into typed rows.
fn open_and_index(path: &Path) -> usize {
    let file = File::open(path).expect("open");
    // SAFETY: the benchmark's own temporary file is not modified while mapped.
    let map = unsafe { memmap2::Mmap::map(&file) }.expect("map");
    let module = Module::parse(&map).expect("valid module");
    let rows = module.note_sdn().map_or(0, |text| {
        sdn::note::Note::parse(text)
            .expect("valid note")
            .possible
            .len()
    });
    module.symbol_count() as usize + rows
}

/// Runs the SMF benchmarks.
pub fn run(report: &mut Report) {
    let dir = std::env::temp_dir().join(format!("smfjit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (record_hash, note_rows, compress) in [
        (false, NOTE_ROWS, false),
        (true, NOTE_ROWS, false),
        (true, 0, false),
        (true, NOTE_ROWS, true),
    ] {
        let bytes = generate(record_hash, note_rows, compress);
        let path = dir.join(format!("lib-{record_hash}-{note_rows}-{compress}.smf"));
        std::fs::write(&path, &bytes).expect("write module");
        let hash = if record_hash {
            "with module_hash"
        } else {
            "module_hash 0"
        };
        let rows = match (note_rows, compress) {
            (0, _) => "no note",
            (_, false) => "10k rows",
            (_, true) => "10k rows, note zstd-compressed",
        };
        let label = format!("{hash}, {rows}");

        let read = measure(200, || std::fs::read(&path).expect("read").len());
        let read_parse = measure(200, || {
            let bytes = std::fs::read(&path).expect("read");
            let module = Module::parse(&bytes).expect("valid module");
            module.symbol_count()
        });
        let mapped = measure(200, || open_and_index(&path));
        let parse_only = measure(200, || Module::parse(&bytes).expect("valid").symbol_count());
        // Warm lookups through the index over every name.
        let module = Module::parse(&bytes).expect("valid");
        let names: Vec<String> = module.symbols().map(|s| s.name().to_owned()).collect();
        let lookup = measure(50, || {
            names
                .iter()
                .filter(|n| module.symbol_by_name(n).is_some())
                .count()
        });

        let size = format!("{} KiB", bytes.len() / 1024);
        let vs_read = |stats: &crate::harness::Stats| {
            format!("{:.2}× read", stats.median_ns() / read.median_ns())
        };
        report.row(
            Row::new(
                "smf",
                format!("mmap+validate+index 10k symbols, note parsed into typed rows, {label}"),
                fmt_duration(mapped.median),
            )
            .baseline(fmt_duration(read.median))
            .ratio(vs_read(&mapped))
            .target("≤ 2 ms", mapped.median.as_secs_f64() <= 0.002),
        );
        report.row(
            Row::new(
                "smf",
                format!("read+validate+index ({size}), {label}"),
                fmt_duration(read_parse.median),
            )
            .baseline(fmt_duration(read.median))
            .ratio(vs_read(&read_parse)),
        );
        report.row(
            Row::new(
                "smf",
                format!("validate+index in memory, {label}"),
                fmt_duration(parse_only.median),
            )
            .ratio(format!("p99 {}", fmt_duration(parse_only.p99))),
        );
        if record_hash && note_rows == NOTE_ROWS && !compress {
            let per_lookup = lookup.median / names.len() as u32;
            report.row(Row::new(
                "smf",
                "symbol_by_name, per lookup (10k names)",
                fmt_duration(per_lookup),
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
