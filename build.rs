//! Gives `libsmfjit.so` its soname, so a C program linked against it
//! records `libsmfjit.so.MAJOR` and keeps working across compatible
//! updates of an installed copy (`cargo xtask install` makes the links).

/// The soname, the same expression the library exports as `smfjit::SONAME`.
const SONAME: &str = include!("src/soname.in");

fn main() {
    // Without this, cargo reruns the script whenever any file of the
    // package changes.
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/soname.in");
    // `-soname` is the ELF linkers' flag; the loader and its C ABI are for
    // x86-64 Linux, and other targets' linkers would refuse the flag.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo::rustc-cdylib-link-arg=-Wl,-soname,{SONAME}");
    }
}
