//! `smf-inspect instantiate FILE MANGLED [--tier …] [--call ARGS… [--repeat
//! K]]`: what the product does on a miss, done once from the command line.
//! The module is loaded by a loader with the JIT instantiator installed, in
//! the tier the command line or the environment chooses, the name is
//! resolved (which instantiates it, callees included, and compiles it or
//! makes its interpreter thunk), and with `--call` the function runs on
//! typed arguments, K times through the one pointer, and its result and
//! the tier each call started in are printed. A module file that changed
//! on disk meanwhile is reported (`stale_modules`): the output is then of
//! the version loaded.

use std::path::Path;

use anyhow::{Context, anyhow};
use loader::{Loader, LoaderConfig, Tier, TierConfig, TierPolicy, TierStats};
use serde_json::json;
use smf::Module;

use super::call_args::{self, CallArgs};
use super::templates::read_templates;
use crate::output::{Out, Paint, Reported};

/// What the user asked for.
pub struct Request<'a> {
    /// The mangled name.
    pub symbol: &'a str,
    /// The call's arguments as written, when there is a call.
    pub call: Option<&'a [String]>,
    /// How many times to make the call.
    pub repeat: u32,
    /// The tier configuration of the command line; `None` leaves it to the
    /// environment, as a program's loader would.
    pub tier: Option<TierConfig>,
    /// Disassemble the resolved code in this syntax.
    pub disasm: Option<jit::backend::Syntax>,
    /// Modules to load before the module itself, in order.
    pub preload: &'a [std::path::PathBuf],
}

pub fn print(
    module: &Module<'_>,
    path: &Path,
    request: &Request<'_>,
    out: &mut Out,
) -> anyhow::Result<()> {
    let mangled = request.symbol;
    // The concrete function, for its signature (and early, clear errors).
    let decoded = read_templates(module)?;
    let instance = jit::instantiate::instantiate_symbol(&decoded.library, mangled)
        .map_err(|e| anyhow!("cannot instantiate '{mangled}': {e}"))?;
    let sig = instance.function.sig.clone();
    let first_args = request
        .call
        .map(|raw| call_args::parse(&sig, raw))
        .transpose()?;

    let config = match request.tier {
        Some(tier) => LoaderConfig {
            tier,
            ..LoaderConfig::default()
        },
        None => LoaderConfig::from_env().context("cannot configure the loader")?,
    };
    let tier_config = config.tier;
    let loader = Loader::with_jit(config).context("cannot start the loader")?;
    for module in request.preload {
        loader
            .load(module)
            .with_context(|| format!("cannot load '{}'", module.display()))?;
    }
    loader.load(path).context("cannot load the module")?;
    let precompiled = loader.lookup_export(mangled).is_some();
    let address = loader
        .resolve(mangled)
        .with_context(|| format!("cannot resolve '{mangled}'"))?;
    let stats = loader.stats().instances;

    let calls = match (request.call, first_args) {
        (Some(raw), Some(first)) => {
            let target = Target {
                loader: &loader,
                mangled,
                address,
                sig: &sig,
            };
            target.call(first, raw, request.repeat)?
        }
        _ => Vec::new(),
    };
    let last = calls.last();
    // Files replaced or truncated while the command ran: what it printed is
    // of the versions it loaded, no longer of what is on disk.
    let stale_modules = loader.stats().stale_modules;
    let tier_stats = loader.tier_stats(mangled);
    let signature = signature_text(&sig);
    let type_args = type_args_text(&instance);
    let trapped = last.is_some_and(|c| c.outcome.trapped());
    // The code the name resolved to as published, at its real address:
    // the JIT-made function, or the interpreter thunk of a tiered one.
    let listing = match request.disasm {
        Some(syntax) if !precompiled => {
            let instance = loader
                .instance(mangled)
                .ok_or_else(|| anyhow!("'{mangled}' has no instantiated code to disassemble"))?;
            let bytes = instance
                .bytes()
                .ok_or_else(|| anyhow!("the code of '{mangled}' is not published"))?;
            // Instructions up to where the backend said they stop; the
            // constant pool and call slots after them are listed as data.
            let instructions = instance.instruction_len().unwrap_or(bytes.len());
            Some(jit::backend::disassemble_function(
                bytes,
                instructions,
                address.get() as u64,
                syntax,
            ))
        }
        _ => None,
    };

    if out.json() {
        out.write_json(&json!({
            "symbol": mangled,
            "target": "x86-64",
            "template": instance.template.to_string(),
            "type_args": type_args,
            "signature": signature,
            "address": address.get(),
            "precompiled": precompiled,
            "instantiations": stats.instantiations,
            "compile_nanos": stats.compile_nanos,
            "code_bytes": stats.code_bytes,
            "stale_modules": stale_modules,
            "tier_config": {
                "policy": tier_config.policy.name(),
                "calls": tier_config.calls,
                "back_edges": tier_config.back_edges,
                "background": tier_config.background,
            },
            "tiers": calls.iter().map(|c| c.tier.name()).collect::<Vec<_>>(),
            "tier_stats": tier_stats.as_ref().map(tier_stats_json),
            "call": last.map(|c| c.outcome.to_json(&c.args)),
            "disassembly": listing,
        }))?;
    } else {
        print_heading(mangled, &instance, out)?;
        let entry = out.paint(Paint::Offset, format!("{:#x}", address.get()));
        let made = format!(
            "({} instantiation(s) with its callees, {} bytes of code, {:.1} µs)",
            stats.instantiations,
            stats.code_bytes,
            stats.compile_nanos as f64 / 1e3
        );
        match tier_config.policy {
            _ if precompiled => out.line(format!(
                "  entry {entry}: compiled ahead of time, exported by the module"
            ))?,
            TierPolicy::Compiled => {
                out.line(format!("  entry {entry}: JIT-compiled on the miss {made}"))?;
            }
            TierPolicy::Interpreted => out.line(format!(
                "  entry {entry}: interpreter thunk made on the miss {made}; tier interpreted, never compiled"
            ))?,
            TierPolicy::Auto => out.line(format!(
                "  entry {entry}: interpreter thunk made on the miss {made}; tier auto, compiled after {} call(s) or {} back-edge(s) in one call",
                tier_config.calls, tier_config.back_edges
            ))?,
        }
        if let Some(call) = last {
            print_call(mangled, &call.args, &call.outcome, out)?;
        }
        if calls.len() > 1 || tier_stats.is_some() {
            out.line(format!(
                "  tier each call started in: {}",
                calls
                    .iter()
                    .map(|c| c.tier.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))?;
        }
        if let Some(s) = &tier_stats {
            out.line(format!(
                "  tier now: {} (calls {}, interpreted calls {}, back-edges {}, tier-ups {}, OSR entries {}, compile failures {})",
                s.tier.name(),
                s.calls,
                s.interpreted_calls,
                s.back_edges,
                s.tier_ups,
                s.osr_entries,
                s.compile_failures
            ))?;
            if let Some(why) = &s.last_failure {
                out.line(format!("  last compile failure: {why}"))?;
            }
        }
        if stale_modules > 0 {
            out.line(format!(
                "  note: {stale_modules} loaded module file(s) changed on disk during the run; \
                 the output is of the version(s) loaded"
            ))?;
        }
    }
    if !out.json() {
        match (request.disasm, &listing) {
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

/// `fn(ptr<f64>, i64) -> f64`: a signature as the user reads it.
pub(super) fn signature_text(sig: &jit::ir::Signature) -> String {
    format!(
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
    )
}

/// The type arguments of an instance as written.
pub(super) fn type_args_text(instance: &jit::instantiate::Instance) -> Vec<String> {
    instance.type_args.iter().map(ToString::to_string).collect()
}

/// The first two lines of the text output: what the name denotes and its
/// signature.
pub(super) fn print_heading(
    mangled: &str,
    instance: &jit::instantiate::Instance,
    out: &mut Out,
) -> anyhow::Result<()> {
    out.line(format!(
        "{} = {}<{}>",
        out.paint(Paint::Name, mangled),
        instance.template,
        type_args_text(instance).join(", ")
    ))?;
    out.line(format!("  {}", signature_text(&instance.function.sig)))?;
    Ok(())
}

/// The line of a call and its arguments, and the buffers it changed.
pub(super) fn print_call(
    mangled: &str,
    args: &CallArgs,
    outcome: &Outcome,
    out: &mut Out,
) -> anyhow::Result<()> {
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
    Ok(())
}

fn tier_stats_json(s: &TierStats) -> serde_json::Value {
    json!({
        "tier": s.tier.name(),
        "calls": s.calls,
        "interpreted_calls": s.interpreted_calls,
        "back_edges": s.back_edges,
        "tier_ups": s.tier_ups,
        "osr_entries": s.osr_entries,
        "compile_failures": s.compile_failures,
        "last_failure": s.last_failure,
    })
}

/// The resolved function the calls go to.
struct Target<'a> {
    loader: &'a Loader,
    mangled: &'a str,
    address: loader::Address,
    sig: &'a jit::ir::Signature,
}

impl Target<'_> {
    /// Makes the call `repeat` times through the one resolved pointer, the
    /// first with `first`, each later one with arguments parsed afresh from
    /// `raw` (so a call that sorts its buffer does not hand the next call a
    /// sorted one); stops after a call that traps.
    fn call(&self, first: CallArgs, raw: &[String], repeat: u32) -> anyhow::Result<Vec<Call>> {
        let again = std::iter::repeat_with(|| call_args::parse(self.sig, raw));
        let mut calls = Vec::new();
        for args in std::iter::once(Ok(first))
            .chain(again)
            .take(usize::try_from(repeat)?)
        {
            let args = args?;
            let before = self.interpreted_calls();
            let outcome = run(self.address, self.sig, &args)?;
            // A call that entered the interpreter counted itself there (and
            // still did if it finished in a compiled loop entry); compiled
            // code, and code the module compiled ahead of time, count
            // nothing.
            let tier = if self.interpreted_calls() > before {
                Tier::Interpreted
            } else {
                Tier::Compiled
            };
            let trapped = outcome.trapped();
            calls.push(Call {
                args,
                outcome,
                tier,
            });
            if trapped {
                break;
            }
        }
        Ok(calls)
    }

    fn interpreted_calls(&self) -> u64 {
        self.loader
            .tier_stats(self.mangled)
            .map_or(0, |s| s.interpreted_calls)
    }
}

/// One call made: its arguments, what it gave, and the tier it started in.
struct Call {
    args: CallArgs,
    outcome: Outcome,
    tier: Tier,
}

/// What a call gave.
pub(super) struct Outcome {
    result: Option<jit::interp::Value>,
    trap: Option<jit::backend::Trap>,
    /// Each buffer parameter's elements before the call, by parameter.
    before: std::collections::HashMap<usize, Vec<jit::interp::Value>>,
}

impl Outcome {
    /// Each buffer's elements before a call with `args`, to show next to
    /// what the call left in them.
    pub(super) fn before(
        args: &CallArgs,
    ) -> std::collections::HashMap<usize, Vec<jit::interp::Value>> {
        args.buffers
            .iter()
            .map(|b| (b.param, b.elements()))
            .collect()
    }

    /// The outcome of a call that returned or trapped, given what its
    /// buffers held [`before`](Outcome::before) it.
    pub(super) fn new(
        before: std::collections::HashMap<usize, Vec<jit::interp::Value>>,
        called: Result<Option<jit::interp::Value>, jit::backend::Trap>,
    ) -> Outcome {
        let (result, trap) = match called {
            Ok(result) => (result, None),
            Err(trap) => (None, Some(trap)),
        };
        Outcome {
            result,
            trap,
            before,
        }
    }

    /// Whether the call trapped.
    pub(super) fn trapped(&self) -> bool {
        self.trap.is_some()
    }

    /// The `call` object of the JSON output.
    pub(super) fn to_json(&self, args: &CallArgs) -> serde_json::Value {
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
    let before = Outcome::before(args);
    // SAFETY: `address` is the entry of code the loader compiled for exactly
    // this signature and keeps mapped while `loader` lives (it outlives the
    // call); every pointer argument is null or the start of a live buffer in
    // `args` holding as many elements as the user wrote, which is what the
    // user claimed the function may touch.
    let called = unsafe { runtime.call(address.as_ptr(), sig, &args.values) };
    Ok(Outcome::new(before, called))
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
