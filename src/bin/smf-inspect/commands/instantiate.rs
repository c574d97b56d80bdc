//! `smf-inspect instantiate FILE MANGLED [--call ARGS…]`: what the product
//! does on a miss, done once from the command line. The module is loaded by
//! a loader with the JIT instantiator installed, the name is resolved (which
//! instantiates, compiles and publishes it, callees included), and with
//! `--call` the function runs on typed arguments and its result is printed.

use std::path::Path;

use anyhow::{Context, anyhow};
use serde_json::json;
use smf::Module;

use super::call_args::{self, CallArgs};
use super::templates::read_templates;
use crate::output::{Out, Paint, Reported};

pub fn print(
    module: &Module<'_>,
    path: &Path,
    mangled: &str,
    call: Option<&[String]>,
    disasm: Option<jit::backend::Syntax>,
    out: &mut Out,
) -> anyhow::Result<()> {
    // The concrete function, for its signature (and early, clear errors).
    let decoded = read_templates(module)?;
    let instance = jit::instantiate::instantiate_symbol(&decoded.library, mangled)
        .map_err(|e| anyhow!("cannot instantiate '{mangled}': {e}"))?;
    let sig = instance.function.sig.clone();
    let args = call.map(|raw| call_args::parse(&sig, raw)).transpose()?;

    let loader = loader::Loader::with_jit(loader::LoaderConfig::default())
        .context("cannot start the loader")?;
    loader.load(path).context("cannot load the module")?;
    let precompiled = loader.lookup_export(mangled).is_some();
    let address = loader
        .resolve(mangled)
        .with_context(|| format!("cannot resolve '{mangled}'"))?;
    let stats = loader.stats().instances;

    let outcome = match &args {
        Some(args) => Some(run(address, &sig, args)?),
        None => None,
    };
    let signature = format!(
        "fn({}){}",
        sig.params
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        sig.ret
            .as_ref()
            .map(|t| format!(" -> {t}"))
            .unwrap_or_default()
    );
    let type_args: Vec<String> = instance.type_args.iter().map(ToString::to_string).collect();
    let trapped = matches!(outcome, Some(Outcome { trap: Some(_), .. }));
    // The JIT-made code as published, at its real address.
    let listing = match disasm {
        Some(syntax) if !precompiled => {
            let instance = loader
                .instance(mangled)
                .ok_or_else(|| anyhow!("'{mangled}' has no instantiated code to disassemble"))?;
            let bytes = instance
                .bytes()
                .ok_or_else(|| anyhow!("the code of '{mangled}' is not published"))?;
            Some(jit::backend::disassemble(
                bytes,
                address.get() as u64,
                syntax,
            ))
        }
        _ => None,
    };

    if out.json() {
        out.write_json(&json!({
            "symbol": mangled,
            "template": instance.template.to_string(),
            "type_args": type_args,
            "signature": signature,
            "address": address.get(),
            "precompiled": precompiled,
            "instantiations": stats.instantiations,
            "compile_nanos": stats.compile_nanos,
            "code_bytes": stats.code_bytes,
            "call": outcome.as_ref().zip(args.as_ref()).map(|(o, a)| o.to_json(a)),
            "disassembly": listing,
        }))?;
    } else {
        out.line(format!(
            "{} = {}<{}>",
            out.paint(Paint::Name, mangled),
            instance.template,
            type_args.join(", ")
        ))?;
        out.line(format!("  {signature}"))?;
        let entry = out.paint(Paint::Offset, format!("{:#x}", address.get()));
        if precompiled {
            out.line(format!(
                "  entry {entry}: compiled ahead of time, exported by the module"
            ))?;
        } else {
            out.line(format!(
                "  entry {entry}: JIT-compiled on the miss ({} instantiation(s) with its callees, {} bytes of code, {:.1} µs)",
                stats.instantiations,
                stats.code_bytes,
                stats.compile_nanos as f64 / 1e3
            ))?;
        }
        if let (Some(outcome), Some(args)) = (&outcome, &args) {
            let shown: Vec<String> = args
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| match args.buffers.iter().find(|b| b.param == i) {
                    Some(b) => list(&outcome.before[&b.param]),
                    None => call_args::show(v),
                })
                .collect();
            let result = match (&outcome.trap, &outcome.result) {
                (Some(trap), _) => format!("trap: {trap:?}"),
                (None, Some(v)) => call_args::show(v),
                (None, None) => "(no result)".to_owned(),
            };
            out.line(format!("  {mangled}({}) = {result}", shown.join(", ")))?;
            for b in &args.buffers {
                let after = b.elements();
                if list(&after) == list(&outcome.before[&b.param]) {
                    continue;
                }
                out.line(format!(
                    "  argument {} after the call: {}",
                    b.param + 1,
                    list(&after)
                ))?;
            }
        }
    }
    if !out.json() {
        match (disasm, &listing) {
            (_, Some(text)) => {
                out.line("")?;
                out.line(text.trim_end())?;
            }
            (Some(syntax), None) => {
                out.line("")?;
                super::disasm::print(module, mangled, syntax, out)?;
            }
            (None, None) => {}
        }
    }
    if trapped {
        out.flush()?;
        return Err(Reported.into());
    }
    Ok(())
}

/// What a call gave.
struct Outcome {
    result: Option<jit::interp::Value>,
    trap: Option<jit::backend::Trap>,
    /// Each buffer parameter's elements before the call, by parameter.
    before: std::collections::HashMap<usize, Vec<jit::interp::Value>>,
}

impl Outcome {
    fn to_json(&self, args: &CallArgs) -> serde_json::Value {
        json!({
            "args": args.values.iter().enumerate().map(|(i, v)| match self.before.get(&i) {
                Some(items) => json!(items.iter().map(call_args::show).collect::<Vec<_>>()),
                None => json!(call_args::show(v)),
            }).collect::<Vec<_>>(),
            "result": self.result.as_ref().map(call_args::show),
            "trap": self.trap.as_ref().map(|t| format!("{t:?}")),
            "after": args.buffers.iter().map(|b| json!({
                "argument": b.param + 1,
                "elements": b.elements().iter().map(call_args::show).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

fn run(
    address: loader::Address,
    sig: &jit::ir::Signature,
    args: &CallArgs,
) -> anyhow::Result<Outcome> {
    let runtime = loader::trap_runtime().context("no trap runtime")?;
    let before = args
        .buffers
        .iter()
        .map(|b| (b.param, b.elements()))
        .collect();
    // SAFETY: `address` is the entry of code the loader compiled for exactly
    // this signature and keeps mapped while `loader` lives (it outlives the
    // call); every pointer argument is null or the start of a live buffer in
    // `args` holding as many elements as the user wrote, which is what the
    // user claimed the function may touch.
    let called = unsafe { runtime.call(address.as_ptr(), sig, &args.values) };
    Ok(match called {
        Ok(result) => Outcome {
            result,
            trap: None,
            before,
        },
        Err(trap) => Outcome {
            result: None,
            trap: Some(trap),
            before,
        },
    })
}

fn list(items: &[jit::interp::Value]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(call_args::show)
            .collect::<Vec<_>>()
            .join(", ")
    )
}
