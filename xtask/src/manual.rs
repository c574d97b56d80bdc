//! Manual pages, section 1, made by clap_mangen from a tool's clap
//! definition: one for the tool and one for each of its subcommands
//! (`smf-inspect-header.1`, …), as git names its pages.

use clap_mangen::Man;

use crate::Package;

/// One page: its file name (`NAME.1`) and its roff text.
pub(crate) struct Page {
    pub(crate) file_name: String,
    pub(crate) roff: Vec<u8>,
}

/// The pages of `command` and of its subcommands at every depth, the
/// hidden ones and `help` left out. (`clap_mangen::generate_to` makes the
/// same set, but writes the files itself, where the installer writes and
/// reports each one.)
pub(crate) fn pages(command: clap::Command, package: &Package) -> Vec<Page> {
    let mut command = command.disable_help_subcommand(true);
    // Building gives each subcommand its display name (`smf-inspect-header`)
    // and the arguments it inherits (`--json`, `--color`).
    command.build();
    let mut pages = Vec::new();
    collect(command, package, &mut pages);
    pages
}

fn collect(command: clap::Command, package: &Package, pages: &mut Vec<Page>) {
    for subcommand in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(subcommand.clone(), package, pages);
    }
    // The footer names the package: a subcommand has no version of its own.
    let man = Man::new(command)
        .source(format!("{} {}", package.name, package.version))
        .manual("smfjit manual");
    let mut roff = Vec::new();
    man.render(&mut roff)
        .expect("rendering into memory does not fail");
    pages.push(Page {
        file_name: man.get_filename(),
        roff,
    });
}
