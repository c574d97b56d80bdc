//! The whole C interface from C: `tests/c/full_api.c`, built as a user
//! builds it — against an installed prefix (`cargo xtask install`'s tree)
//! through pkg-config — configures a loader, loads two modules (and one
//! importing the second's memory), reloads, reads statistics, asks
//! `smfjit_addr_info` about JIT-compiled code, unloads, and provokes every
//! error code of `enum smfjit_error`.

mod common;

use std::path::Path;

use common::{command, compile_c_installed, install, root, succeed};
use smfjit::smf::{Binding, ModuleBuilder, RelocType, SectionType, SymbolDef, SymbolType, raw};

/// A module whose `f` calls the weak import `absent` through a `pc32`
/// relocation: unresolved, `absent` is 0, out of a 32-bit displacement's
/// reach from any code, so loading fails with a relocation overflow.
fn relocation_overflow(dir: &Path) -> std::path::PathBuf {
    let code: &[u8] = &[0xE8, 0, 0, 0, 0, 0xC3]; // call absent; ret
    let mut b = ModuleBuilder::new();
    let flags = raw::section_flags::READ | raw::section_flags::EXEC;
    let text = b
        .add_section(SectionType::Code, ".text", flags, 16, code)
        .unwrap();
    b.add_symbol(SymbolDef::function("f", text, 0, code.len() as u64))
        .unwrap();
    let mut absent = SymbolDef::import("absent", SymbolType::Function);
    absent.binding = Binding::Weak;
    let absent = b.add_symbol(absent).unwrap();
    b.add_relocation(text, 1, absent, RelocType::Pc32, -4);
    let path = dir.join("overflow.smf");
    std::fs::write(&path, b.build().unwrap()).unwrap();
    path
}

#[test]
fn a_c_program_uses_every_function_of_the_header_and_meets_every_error_code() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("prefix");
    install(&prefix);
    let program = compile_c_installed("full_api", &prefix, dir.path());
    let fixtures = root().join("tests/fixtures");
    let stdout = succeed(
        command(&program)
            .arg(fixtures.join("collections.smf"))
            .arg(fixtures.join("heap.smf"))
            .arg(fixtures.join("heapuser.smf"))
            .arg(fixtures.join("malformed/bad-magic.smf"))
            .arg(relocation_overflow(dir.path())),
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        stdout.starts_with(&format!("version {version} (")),
        "{stdout}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    for code in -12..=-1 {
        assert!(
            stdout.contains(&format!("-> {code}: ok")),
            "error code {code} is not provoked: {stdout}"
        );
    }
    assert!(stdout.ends_with("all checks passed\n"), "{stdout}");
}

/// The header's version macros and error codes are the library's.
#[test]
fn the_header_states_the_package_version_and_the_error_codes_of_the_library() {
    use smfjit::loader::capi;
    let header = std::fs::read_to_string(root().join("include/smfjit.h")).unwrap();
    let define = |name: &str| {
        header
            .lines()
            .find_map(|line| line.strip_prefix(&format!("#define {name} ")))
            .unwrap_or_else(|| panic!("{name} is not defined"))
            .trim()
            .to_owned()
    };
    assert_eq!(
        define("SMFJIT_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MAJOR")
    );
    assert_eq!(
        define("SMFJIT_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_MINOR")
    );
    assert_eq!(
        define("SMFJIT_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION_PATCH")
    );
    assert_eq!(
        define("SMFJIT_VERSION_STRING"),
        format!("\"{}\"", env!("CARGO_PKG_VERSION"))
    );
    let enumerator = |name: &str| -> i32 {
        let at = header
            .find(&format!("    {name} = "))
            .unwrap_or_else(|| panic!("{name} is not in enum smfjit_error"));
        let rest = &header[at + name.len() + 7..];
        let end = rest.find([',', ' ', '\n']).unwrap();
        rest[..end].parse().unwrap()
    };
    for (name, code) in [
        ("SMFJIT_OK", capi::SMFJIT_OK),
        ("SMFJIT_EINVAL", capi::SMFJIT_EINVAL),
        ("SMFJIT_EIO", capi::SMFJIT_EIO),
        ("SMFJIT_EFORMAT", capi::SMFJIT_EFORMAT),
        ("SMFJIT_EUNSUPPORTED", capi::SMFJIT_EUNSUPPORTED),
        ("SMFJIT_EUNDEFINED", capi::SMFJIT_EUNDEFINED),
        ("SMFJIT_ERELOC", capi::SMFJIT_ERELOC),
        ("SMFJIT_EINSTANTIATE", capi::SMFJIT_EINSTANTIATE),
        ("SMFJIT_ENOMEM", capi::SMFJIT_ENOMEM),
        ("SMFJIT_ENOMODULE", capi::SMFJIT_ENOMODULE),
        ("SMFJIT_ECONFIG", capi::SMFJIT_ECONFIG),
        ("SMFJIT_EINUSE", capi::SMFJIT_EINUSE),
        ("SMFJIT_ENOTFOUND", capi::SMFJIT_ENOTFOUND),
    ] {
        assert_eq!(enumerator(name), code, "{name}");
    }
}
