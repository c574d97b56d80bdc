//! `smf-inspect instantiate FILE MANGLED --target wasm32 [-o OUT.wasm]
//! [--call ARGS…] [--disasm]`: the WebAssembly backend on the module's
//! templates. The library is laid out for wasm32 (4-byte pointers), the
//! symbol and the instantiations it calls become one validated module
//! (`doc/formats/wasm-abi.md`), which `-o` writes, `--call` runs in
//! process with the `wasmi` runner — buffer arguments copied into the
//! module's memory before the call and back after it, so the output is
//! that of the x86-64 call — and `--disasm` prints in the text format.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, anyhow};
use jit::instantiate::{Instance, instantiate_all, instantiate_symbol};
use jit::interp::Value;
use jit::target::Target;
use jit::wasm::run::{Config, Definition, Runner};
use serde_json::json;
use smf::Module;

use super::call_args::{self, CallArgs};
use super::instantiate::{Outcome, print_call, print_heading, signature_text, type_args_text};
use super::templates::read_templates;
use crate::output::{Out, Reported};

/// What the user asked for.
pub struct Request<'a> {
    /// The mangled name.
    pub symbol: &'a str,
    /// The call's arguments as written, when there is a call.
    pub call: Option<&'a [String]>,
    /// Where to write the module.
    pub output: Option<&'a Path>,
    /// Print the module in the text format.
    pub disasm: bool,
    /// Modules whose memories and tables the module may import, which the
    /// runner then defines too.
    pub preload: &'a [std::path::PathBuf],
}

pub fn print(module: &Module<'_>, request: &Request<'_>, out: &mut Out) -> anyhow::Result<()> {
    let mangled = request.symbol;
    let library = read_templates(module)?.library.with_target(Target::WASM32);
    let started = Instant::now();
    let set = instantiate_symbol(&library, mangled)
        .and_then(|root| instantiate_all(&library, &root.template, &root.type_args))
        .map_err(|e| anyhow!("cannot instantiate '{mangled}' for wasm32: {e}"))?;
    let refs: Vec<&Instance> = set.iter().collect();
    let wasm = jit::wasm::compile(&refs)
        .with_context(|| format!("cannot compile '{mangled}' to WebAssembly"))?;
    let compile_nanos = started.elapsed().as_nanos();
    let root = set
        .first()
        .ok_or_else(|| anyhow!("'{mangled}' instantiated to nothing"))?;
    if let Some(path) = request.output {
        std::fs::write(path, wasm.bytes())
            .with_context(|| format!("cannot write the module to '{}'", path.display()))?;
    }
    let call = match request.call {
        Some(raw) => {
            let definitions = definitions(module, request.preload)?;
            Some(run(&wasm, root, raw, &definitions)?)
        }
        None => None,
    };
    let text = request
        .disasm
        .then(|| wasmprinter::print_bytes(wasm.bytes()))
        .transpose()
        .context("cannot print the module as text")?;
    let imports: Vec<String> = wasm
        .imports()
        .iter()
        .map(|i| format!("env.{}", i.name))
        .collect();

    if out.json() {
        out.write_json(&json!({
            "symbol": mangled,
            "target": "wasm32",
            "template": root.template.to_string(),
            "type_args": type_args_text(root),
            "signature": signature_text(&root.function.sig),
            "instantiations": set.len(),
            "compile_nanos": compile_nanos,
            "module_bytes": wasm.bytes().len(),
            "exports": wasm.exports().iter().map(|e| &e.symbol).collect::<Vec<_>>(),
            "imports": imports,
            "table": wasm.table(),
            "output": request.output.map(|p| p.display().to_string()),
            "call": call.as_ref().map(|(args, outcome)| outcome.to_json(args)),
            "disassembly": text,
        }))?;
    } else {
        print_heading(mangled, root, out)?;
        out.line(format!(
            "  wasm32 module: {} instantiation(s) with its callees, {} bytes, validated ({:.1} µs); imports the memory, the table, the base globals{}",
            set.len(),
            wasm.bytes().len(),
            compile_nanos as f64 / 1e3,
            if imports.is_empty() {
                String::new()
            } else {
                format!(" and {}", imports.join(", "))
            }
        ))?;
        if let Some(path) = request.output {
            out.line(format!("  written to {}", path.display()))?;
        }
        if let Some((args, outcome)) = &call {
            print_call(mangled, args, outcome, out)?;
        }
        if let Some(text) = &text {
            out.line("")?;
            out.line(text.trim_end())?;
        }
    }
    if call.as_ref().is_some_and(|(_, outcome)| outcome.trapped()) {
        out.flush()?;
        return Err(Reported.into());
    }
    Ok(())
}

/// The memories and tables `module` and the modules of `preload` define,
/// for the runner to define in the module's memory at their sizes. A
/// definition without a maximum gets the most a 32-bit memory holds
/// beside the program (65 535 pages), or the limit of entries.
fn definitions(
    module: &Module<'_>,
    preload: &[std::path::PathBuf],
) -> anyhow::Result<Vec<Definition>> {
    let mut items: Vec<smf::SharedItem> = module.shared_items().to_vec();
    for path in preload {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?;
        let other = Module::parse(&bytes).with_context(|| format!("'{}'", path.display()))?;
        items.extend(other.shared_items().iter().cloned());
    }
    let fit = |n: u64| u32::try_from(n).context("a size beyond what wasm32 holds");
    items
        .iter()
        .filter(|i| i.linkage == smf::Linkage::Define)
        .map(|i| {
            Ok(match i.kind {
                smf::SharedKind::Memory => Definition::memory(
                    &i.name,
                    fit(i.initial)?,
                    fit(i.maximum.unwrap_or(65_535).min(65_535))?,
                ),
                _ => Definition::table(
                    &i.name,
                    fit(i.initial)?,
                    fit(i.maximum.unwrap_or(smf::limits::MAX_TABLE_ENTRIES))?,
                ),
            })
        })
        .collect()
}

/// Calls the module's export `root` with the arguments `raw` in a fresh
/// runner: each buffer is copied into the module's memory, its address in
/// the memory is the argument, and its bytes are copied back after the
/// call (trap or not).
fn run(
    wasm: &jit::wasm::Module,
    root: &Instance,
    raw: &[String],
    definitions: &[Definition],
) -> anyhow::Result<(CallArgs, Outcome)> {
    let mut args = call_args::parse(&root.function.sig, raw)?;
    let before = Outcome::before(&args);
    let mut runner = Runner::with_definitions(wasm, Config::default(), definitions)
        .context("cannot instantiate the module")?;
    let mut values = args.values.clone();
    let mut placed = Vec::with_capacity(args.buffers.len());
    for b in &args.buffers {
        let bytes = b.bytes();
        let at = runner
            .alloc(u32::try_from(bytes.len()).context("the buffer does not fit a wasm32 memory")?)
            .and_then(|at| runner.write(at, &bytes).map(|()| at))
            .context("cannot copy a buffer into the module's memory")?;
        if let Some(v) = values.get_mut(b.param) {
            *v = Value::Ptr(u64::from(at));
        }
        placed.push(at);
    }
    let called = match runner.call(&root.symbol, &values) {
        Ok(result) => Ok(result),
        Err(jit::wasm::Error::Trap(trap)) => Err(trap),
        Err(e) => return Err(e).context("the call failed in the engine"),
    };
    for (b, at) in args.buffers.iter_mut().zip(placed) {
        let bytes = runner
            .read(at, b.bytes().len())
            .context("cannot copy a buffer back from the module's memory")?
            .to_vec();
        b.set_bytes(&bytes);
    }
    Ok((args, Outcome::new(before, called)))
}
