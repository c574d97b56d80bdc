//! `cargo xtask install`: the tree it writes under a prefix, installed from
//! the debug artifacts cargo built for this run (no build of its own), is
//! one a C program builds against through pkg-config and runs from, with
//! the soname links, the tools, their manual pages and completions.

mod common;

use std::path::Path;
use std::process::Command;

use common::{command, compile_c, compile_c_installed, install, pkg_config, require_tool, root};

#[test]
fn installs_a_tree_a_c_program_builds_against_with_pkg_config() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("prefix");
    let report = install(&prefix);
    check_report(&report, &prefix);
    check_library(&prefix);
    check_pkg_config(&prefix);
    check_c_program(&prefix, dir.path());
    check_manual_pages(&prefix);
    check_completions(&prefix);
    check_tools(&prefix);
    // Again over the first: every file and link is replaced.
    assert_eq!(install(&prefix), report);
}

/// One line per file or link, in installation order.
fn check_report(report: &[String], prefix: &Path) {
    let version = env!("CARGO_PKG_VERSION");
    let p = prefix.display();
    assert_eq!(
        report[..6],
        [
            format!("installed {p}/lib/libsmfjit.so.{version}"),
            format!("linked    {p}/lib/libsmfjit.so.0 -> libsmfjit.so.{version}"),
            format!("linked    {p}/lib/libsmfjit.so -> libsmfjit.so.0"),
            format!("installed {p}/include/smfjit.h"),
            format!("installed {p}/lib/pkgconfig/smfjit.pc"),
            format!("installed {p}/bin/smf-inspect"),
        ]
    );
    // The header, the pkg-config file, and for each tool its executable,
    // its pages and three completions.
    let pages = subcommands(&smfjit::cli::inspect::command()).len() + 2;
    assert_eq!(report.len(), 3 + 2 + 2 * (1 + 3) + pages, "{report:#?}");
}

/// The library under its version, with the soname it was linked with, and
/// the links to it; the header as it is in the repository.
fn check_library(prefix: &Path) {
    let lib = prefix.join("lib");
    let file = format!("libsmfjit.so.{}", env!("CARGO_PKG_VERSION"));
    require_tool("readelf", "Debian package `binutils`, which comes with cc");
    let output = Command::new("readelf")
        .arg("-d")
        .arg(lib.join(&file))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let dynamic = String::from_utf8(output.stdout).unwrap();
    assert!(
        dynamic.contains("Library soname: [libsmfjit.so.0]"),
        "{dynamic}"
    );
    assert_eq!(smfjit::SONAME, "libsmfjit.so.0");
    assert_eq!(
        std::fs::read_link(lib.join("libsmfjit.so.0")).unwrap(),
        Path::new(&file)
    );
    assert_eq!(
        std::fs::read_link(lib.join("libsmfjit.so")).unwrap(),
        Path::new("libsmfjit.so.0")
    );
    assert_eq!(
        std::fs::read(prefix.join("include/smfjit.h")).unwrap(),
        std::fs::read(root().join("include/smfjit.h")).unwrap()
    );
}

/// The flags pkg-config gives name the prefix's folders, and its version
/// is the package's.
fn check_pkg_config(prefix: &Path) {
    let p = prefix.display();
    assert_eq!(
        pkg_config(prefix, &["--cflags", "--libs"]),
        format!("-I{p}/include -L{p}/lib -lsmfjit")
    );
    assert_eq!(
        pkg_config(prefix, &["--variable=libdir"]),
        format!("{p}/lib")
    );
    assert_eq!(
        pkg_config(prefix, &["--modversion"]),
        env!("CARGO_PKG_VERSION")
    );
}

/// A program built with the pkg-config flags runs from the installed
/// library, found through its soname link, and prints what the same
/// program built against the build tree prints.
fn check_c_program(prefix: &Path, dir: &Path) {
    let installed_dir = dir.join("installed");
    let built_dir = dir.join("built");
    std::fs::create_dir(&installed_dir).unwrap();
    std::fs::create_dir(&built_dir).unwrap();
    let installed = compile_c_installed("jit_on_miss", prefix, &installed_dir);
    let built = compile_c("jit_on_miss", &built_dir);
    let collections = root().join("tests/fixtures/collections.smf");
    let stdout = |program: &Path| {
        let output = command(program).arg(&collections).output().unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let printed = stdout(&installed);
    assert!(
        printed.starts_with("same pointer again: yes\n"),
        "{printed}"
    );
    assert_eq!(printed, stdout(&built));
}

/// The subcommands of a tool, `help` left out.
fn subcommands(tool: &clap::Command) -> Vec<String> {
    tool.get_subcommands()
        .map(|s| s.get_name().to_owned())
        .filter(|name| name != "help")
        .collect()
}

/// A page for each tool and each subcommand of smf-inspect, each a roff
/// document whose title line names it (what `man -l` renders).
fn check_manual_pages(prefix: &Path) {
    let man1 = prefix.join("share/man/man1");
    let inspect = smfjit::cli::inspect::command();
    let names = ["smf-inspect".to_owned(), "smf-build".to_owned()]
        .into_iter()
        .chain(
            subcommands(&inspect)
                .into_iter()
                .map(|s| format!("smf-inspect-{s}")),
        );
    for name in names {
        let page = std::fs::read_to_string(man1.join(format!("{name}.1"))).unwrap();
        // clap_mangen opens with two requests defining a quote string; the
        // title comes first after them.
        let title = page
            .lines()
            .find(|line| !line.starts_with(".ie") && !line.starts_with(".el"));
        assert_eq!(
            title.map(|line| line.split_whitespace().take(3).collect::<Vec<_>>()),
            Some(vec![".TH", name.as_str(), "1"]),
            "{name}.1"
        );
    }
    let top = std::fs::read_to_string(man1.join("smf-inspect.1")).unwrap();
    assert!(top.contains("smf\\-inspect\\-instantiate(1)"), "{top}");
    // Each tool's page opens with what the tool does, not the package's
    // description.
    for (tool, about) in [
        ("smf-inspect", "Look inside SMF module files"),
        ("smf-build", "Build an SMF module from an SDN manifest"),
    ] {
        let page = std::fs::read_to_string(man1.join(format!("{tool}.1"))).unwrap();
        let name = format!("{} \\- {about}", tool.replace('-', "\\-"));
        assert!(page.contains(&name), "{page}");
    }
}

/// The bash, zsh and fish completions of each tool, each naming every
/// subcommand and option.
fn check_completions(prefix: &Path) {
    for tool in [
        smfjit::cli::inspect::command(),
        smfjit::cli::build::command(),
    ] {
        let name = tool.get_name();
        // Long options by their bare names: fish writes `-l json`.
        let words: Vec<String> = subcommands(&tool)
            .into_iter()
            .chain(
                tool.get_arguments()
                    .filter_map(|a| a.get_long())
                    .map(str::to_owned),
            )
            .collect();
        for path in [
            format!("share/bash-completion/completions/{name}"),
            format!("share/zsh/site-functions/_{name}"),
            format!("share/fish/vendor_completions.d/{name}.fish"),
        ] {
            let script = std::fs::read_to_string(prefix.join(&path)).unwrap();
            for word in &words {
                assert!(script.contains(word), "{path} does not name {word}");
            }
        }
    }
}

/// The installed tools run.
fn check_tools(prefix: &Path) {
    for tool in ["smf-inspect", "smf-build"] {
        let output = Command::new(prefix.join("bin").join(tool))
            .arg("--version")
            .output()
            .unwrap();
        assert!(output.status.success(), "{tool}: {output:?}");
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            format!("{tool} {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}
