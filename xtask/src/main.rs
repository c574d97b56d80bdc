//! `cargo xtask install --prefix DIR [--profile debug|release] [--no-build]`
//! (the alias is in .cargo/config.toml): builds the release artifacts with
//! cargo, then installs them under DIR, one line per file and a summary.
//! Exit status 1 for a failed build or installation, 2 for a usage error.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use xtask::{Artifacts, Package, Profile};

/// The repository's tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Build libsmfjit.so and the tools, and install them, the header, a
    /// pkg-config file, manual pages and shell completions under a prefix.
    Install(InstallArgs),
}

#[derive(Debug, Args)]
struct InstallArgs {
    /// Where to install: DIR/lib, DIR/include, DIR/bin, DIR/share.
    #[arg(long, value_name = "DIR")]
    prefix: PathBuf,
    /// The cargo profile to build and install.
    #[arg(long, value_enum, default_value_t = Profile::Release)]
    profile: Profile,
    /// Install what the profile's last build left in the target directory,
    /// without running cargo build.
    #[arg(long)]
    no_build: bool,
}

fn main() -> ExitCode {
    let Task::Install(args) = Cli::parse().task;
    match install(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn install(args: &InstallArgs) -> anyhow::Result<()> {
    let workspace = Workspace::query()?;
    if !args.no_build {
        workspace.build(args.profile)?;
    }
    let artifacts = Artifacts::locate(&workspace.root, &workspace.target_dir, args.profile)?;
    // The pkg-config file names the prefix, which must not depend on the
    // folder a program is built in.
    let prefix = std::path::absolute(&args.prefix)
        .with_context(|| format!("the prefix '{}'", args.prefix.display()))?;
    let summary = xtask::install(&artifacts, &workspace.package, &prefix, &mut |installed| {
        println!("{installed}");
    })?;
    println!("{summary} under {}", prefix.display());
    Ok(())
}

/// The workspace as cargo sees it from here, with the caller's environment
/// and configuration (`CARGO_TARGET_DIR`, `build.target-dir`).
struct Workspace {
    cargo: OsString,
    manifest: PathBuf,
    root: PathBuf,
    target_dir: PathBuf,
    package: Package,
}

impl Workspace {
    /// Asks `cargo metadata`.
    fn query() -> anyhow::Result<Self> {
        // The cargo that runs this task (`cargo xtask` sets CARGO), so the
        // build uses the same toolchain as the caller's.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let output = Command::new(&cargo)
            .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
            .arg("--manifest-path")
            .arg(&manifest)
            .output()
            .context("cannot run cargo metadata")?;
        if !output.status.success() {
            bail!(
                "cargo metadata failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let metadata: serde_json::Value =
            serde_json::from_slice(&output.stdout).context("cargo metadata printed no JSON")?;
        let path = |key: &str| {
            metadata[key]
                .as_str()
                .map(PathBuf::from)
                .with_context(|| format!("cargo metadata gives no {key}"))
        };
        let root = path("workspace_root")?;
        let target_dir = path("target_directory")?;
        let smfjit = metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|package| package["name"] == "smfjit")
            .context("cargo metadata lists no package smfjit")?;
        let field = |key: &str| smfjit[key].as_str().unwrap_or_default().to_owned();
        let package = Package {
            name: field("name"),
            version: field("version"),
            description: field("description"),
        };
        Ok(Self {
            cargo,
            manifest,
            root,
            target_dir,
            package,
        })
    }

    /// Builds what `profile` installs.
    fn build(&self, profile: Profile) -> anyhow::Result<()> {
        let status = Command::new(&self.cargo)
            .args(profile.build_args())
            .arg("--manifest-path")
            .arg(&self.manifest)
            .status()
            .context("cannot run cargo build")?;
        if !status.success() {
            bail!(
                "`cargo {}` failed ({status})",
                profile.build_args().join(" ")
            );
        }
        Ok(())
    }
}
