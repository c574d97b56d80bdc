//! Shell completions, made by clap_complete from a tool's clap definition,
//! under the folders where bash-completion, zsh and fish look below a
//! prefix.

use clap_complete::Shell;

/// One completion script: its path under the prefix, and its text.
pub(crate) struct Script {
    pub(crate) path: String,
    pub(crate) text: Vec<u8>,
}

/// The bash, zsh and fish completions of the tool `command` defines.
pub(crate) fn scripts(mut command: clap::Command) -> Vec<Script> {
    let name = command.get_name().to_owned();
    [
        // bash-completion loads a command's file by the command's name.
        (
            Shell::Bash,
            format!("share/bash-completion/completions/{name}"),
        ),
        (Shell::Zsh, format!("share/zsh/site-functions/_{name}")),
        (
            Shell::Fish,
            format!("share/fish/vendor_completions.d/{name}.fish"),
        ),
    ]
    .into_iter()
    .map(|(shell, path)| {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut command, &name, &mut text);
        Script { path, text }
    })
    .collect()
}
