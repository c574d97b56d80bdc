//! The corpus of malformed files in `tests/fixtures/malformed/`: each file is
//! a named damage of the sample module, and `EXPECTED` lists the error kind
//! each must produce. This test regenerates the corpus in memory, checks the
//! committed files are identical, and checks every verdict.
//!
//! The undamaged sample itself is `tests/fixtures/sample.smf`, and the
//! sample with its note and template code compressed (zstd) is
//! `tests/fixtures/sample-zstd.smf`, which the compressed cases damage.
//!
//! After changing a case: `SMFJIT_BLESS=1 cargo test -p smf --test malformed_corpus`.

mod common;

use std::path::PathBuf;

use common::{
    Layout, NOTE, compressed_sample, layout, put_u16, put_u32, put_u64, rehash_at, sample,
    sample_builder, u64_at, verdict,
};
use smf::NoteSize;

type Damage = fn(&mut Vec<u8>, &Layout);

/// (file name, damage, whether to re-record the hash, expected error kind).
const CASES: &[(&str, Damage, bool, &str)] = &[
    (
        "truncated-header",
        |b, _| b.truncate(100),
        false,
        "truncated",
    ),
    (
        "truncated-tail",
        |b, _| {
            b.remove(0);
        },
        false,
        "bad-base",
    ),
    (
        "bad-magic",
        |b, l| b[l.header..l.header + 4].copy_from_slice(b"\x7fELF"),
        false,
        "bad-magic",
    ),
    (
        "wrong-version",
        |b, l| b[l.header + 4] = 2,
        false,
        "unsupported-version",
    ),
    (
        "unknown-arch",
        |b, l| b[l.header + 7] = 42,
        false,
        "invalid-value",
    ),
    (
        "section-table-past-end",
        |b, l| put_u64(b, l.header + 24, 1 << 40),
        true,
        "out-of-bounds",
    ),
    (
        "symbol-table-past-end",
        |b, l| put_u32(b, l.header + 40, 100_000),
        true,
        "out-of-bounds",
    ),
    (
        "section-past-end",
        |b, l| put_u64(b, l.section(0) + 16, 1 << 20),
        true,
        "out-of-bounds",
    ),
    (
        "section-offset-overflow",
        |b, l| put_u64(b, l.section(0) + 8, u64::MAX - 15),
        true,
        "out-of-bounds",
    ),
    (
        "overlapping-tables",
        |b, l| {
            let sto = common::u64_at(b, l.header + 24);
            put_u64(b, l.header + 32, sto + 64);
        },
        true,
        "overlap",
    ),
    (
        "overlapping-sections",
        |b, l| put_u64(b, l.section(0) + 16, 48),
        true,
        "overlap",
    ),
    (
        "misaligned-section-table",
        |b, l| {
            let sto = common::u64_at(b, l.header + 24);
            put_u64(b, l.header + 24, sto + 4);
        },
        true,
        "misaligned",
    ),
    (
        "misaligned-symbol-table",
        |b, l| {
            let syo = common::u64_at(b, l.header + 32);
            put_u64(b, l.header + 32, syo + 2);
        },
        true,
        "misaligned",
    ),
    (
        "name-outside-string-table",
        |b, l| put_u32(b, l.symbol(0), 0x7fff_0000),
        true,
        "bad-name",
    ),
    (
        "name-without-nul",
        |b, l| b[l.header - 1] = b'x',
        true,
        "bad-name",
    ),
    (
        "invalid-utf8-symbol-name",
        |b, l| b[l.symbol_table + 6 * 72 + 1] = 0xFF,
        true,
        "invalid-utf8",
    ),
    (
        "invalid-utf8-section-name",
        |b, l| b[l.section(1) + 41] = 0xC0,
        true,
        "invalid-utf8",
    ),
    (
        "name-hash-mismatch",
        |b, l| put_u32(b, l.symbol(1) + 4, 0x1234_5678),
        true,
        "name-hash-mismatch",
    ),
    (
        "module-hash-mismatch",
        |b, _| b[3] ^= 0x40,
        false,
        "module-hash-mismatch",
    ),
    (
        "section-count-overflow",
        |b, l| put_u32(b, l.header + 16, u32::MAX),
        true,
        "limit-exceeded",
    ),
    (
        "symbol-count-overflow",
        |b, l| put_u32(b, l.header + 40, 0xFFFF_FFF0),
        true,
        "limit-exceeded",
    ),
    (
        "alignment-not-power-of-two",
        |b, l| put_u64(b, l.section(0) + 32, 24),
        true,
        "bad-alignment",
    ),
    (
        "alignment-zero",
        |b, l| put_u64(b, l.section(2) + 32, 0),
        true,
        "bad-alignment",
    ),
    (
        "note-without-terminator",
        |b, l| {
            let at = l.section_data(b, 5) + NOTE.len() - 3;
            b[at] = b'?';
        },
        true,
        "bad-note",
    ),
    (
        "relocation-offset-out-of-range",
        |b, l| {
            let at = l.section_data(b, 7);
            put_u64(b, at, 38);
        },
        true,
        "bad-relocation",
    ),
    (
        "relocation-symbol-out-of-range",
        |b, l| {
            let at = l.section_data(b, 7);
            put_u32(b, at + 8, 6);
        },
        true,
        "bad-relocation",
    ),
    (
        "relocation-target-out-of-range",
        |b, l| {
            let at = l.section_data(b, 8);
            put_u16(b, at + 14, 100);
        },
        true,
        "bad-relocation",
    ),
    (
        "symbol-outside-section",
        |b, l| put_u64(b, l.symbol(1) + 24, 1000),
        true,
        "bad-symbol",
    ),
    (
        "template-offset-outside",
        |b, l| put_u64(b, l.symbol(5) + 48, 4096),
        true,
        "bad-symbol",
    ),
    (
        "nonzero-reserved-header",
        |b, l| b[l.header + 100] = 1,
        false,
        "nonzero-reserved",
    ),
    (
        "nonzero-reserved-section",
        |b, l| b[l.section(0) + 60] = 1,
        true,
        "nonzero-reserved",
    ),
    (
        "nonzero-reserved-symbol",
        |b, l| b[l.symbol(2) + 60] = 1,
        true,
        "nonzero-reserved",
    ),
    (
        "exported-count-mismatch",
        |b, l| put_u32(b, l.header + 44, 1),
        false,
        "exported-count-mismatch",
    ),
    (
        "smf-size-larger-than-file",
        |b, l| put_u64(b, l.header + 88, 1 << 32),
        false,
        "bad-base",
    ),
    (
        "bad-template-magic",
        |b, l| {
            let at = l.section_data(b, 6);
            b[at] = b'Z';
        },
        true,
        "bad-template-code",
    ),
    (
        "lz4-compressed",
        |b, l| b[l.header + 12] = 2,
        false,
        "unsupported",
    ),
    (
        "compressed-without-method",
        |b, _| *b = damaged_compressed(|b, l| b[l.header + 12] = 0),
        false,
        "bad-compressed-section",
    ),
    (
        "compressed-bad-stream",
        |b, _| {
            *b = damaged_compressed(|b, l| {
                let at = l.section_data(b, 6) + 12;
                b[at] ^= 0x5A;
            });
        },
        false,
        "bad-compressed-section",
    ),
    (
        "compressed-wrong-size",
        |b, _| {
            *b = damaged_compressed(|b, l| {
                let vsize = u64_at(b, l.section(6) + 24);
                put_u64(b, l.section(6) + 24, vsize + 1);
            });
        },
        false,
        "bad-compressed-section",
    ),
    (
        "decompression-bomb",
        |b, _| {
            *b = damaged_compressed(|b, l| {
                put_u64(b, l.section(5) + 24, smf::limits::MAX_DECOMPRESSED_SIZE);
            });
        },
        false,
        "limit-exceeded",
    ),
];

/// The compressed sample damaged by `damage`, its hash re-recorded.
fn damaged_compressed(damage: Damage) -> Vec<u8> {
    let mut b = compressed_sample();
    let l = layout(&b);
    damage(&mut b, &l);
    rehash_at(&mut b, &l);
    b
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/malformed")
}

fn generate(damage: Damage, rehash: bool) -> Vec<u8> {
    // The note is terminator-scanned so that damaging the terminator is fatal.
    let mut b = sample_builder(NoteSize::Scanned).build().unwrap();
    let l = layout(&b);
    damage(&mut b, &l);
    if rehash {
        rehash_at(&mut b, &l);
    }
    b
}

fn expected_listing() -> String {
    let mut s = String::from("# file, the error kind smf::Module::parse must report\n");
    for (name, _, _, code) in CASES {
        s.push_str(&format!("{name}.smf {code}\n"));
    }
    s
}

#[test]
fn every_case_produces_its_error_kind() {
    for (name, damage, rehash, code) in CASES {
        assert_eq!(verdict(&generate(*damage, *rehash)), *code, "{name}");
    }
}

#[test]
fn committed_corpus_matches_a_fresh_generation() {
    let dir = corpus_dir();
    if std::env::var_os("SMFJIT_BLESS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, damage, rehash, _) in CASES {
            std::fs::write(dir.join(format!("{name}.smf")), generate(*damage, *rehash)).unwrap();
        }
        std::fs::write(dir.join("EXPECTED"), expected_listing()).unwrap();
        std::fs::write(dir.join("../sample.smf"), sample()).unwrap();
        std::fs::write(dir.join("../sample-zstd.smf"), compressed_sample()).unwrap();
    }
    for (name, damage, rehash, _) in CASES {
        let path = dir.join(format!("{name}.smf"));
        let committed = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with SMFJIT_BLESS=1)", path.display()));
        assert!(
            committed == generate(*damage, *rehash),
            "{name}.smf is stale: run with SMFJIT_BLESS=1"
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("EXPECTED")).unwrap(),
        expected_listing()
    );
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        files,
        CASES.len() + 1,
        "only the listed cases and EXPECTED live here"
    );
    for (file, fresh) in [
        ("sample.smf", sample()),
        ("sample-zstd.smf", compressed_sample()),
    ] {
        let committed = std::fs::read(dir.join("..").join(file)).unwrap_or_default();
        assert!(
            committed == fresh,
            "tests/fixtures/{file} is stale: run with SMFJIT_BLESS=1"
        );
    }
}
