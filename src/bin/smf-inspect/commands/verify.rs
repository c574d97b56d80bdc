//! `smf-inspect verify`: every check the tools know, with every problem
//! listed; exit status 0 when there is none, 1 otherwise.
//!
//! The SMF container rules run first (a module that fails them cannot be
//! looked into further and `run` reports that one error); among them, each
//! compressed section decompresses to exactly its `virtual_size`, counted
//! as one check per section. Then: the
//! templates decode and verify, function by function; each template symbol
//! points at the entry of its name with the right parameter count, and each
//! generic entry has a symbol; `note.sdn` parses; each `possible` row's
//! name demangles to its `template` and `type_args` and instantiates; each
//! `compiled` instantiation has a defined symbol.

use serde_json::json;
use smf::Module;

use super::notes::read_note;
use super::templates::read_templates;
use crate::output::{Out, Paint};

/// Problems found, and how many checks ran.
#[derive(Default)]
struct Findings {
    checks: usize,
    problems: Vec<String>,
}

impl Findings {
    fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        self.checks += 1;
        if !ok {
            self.problems.push(problem());
        }
    }

    fn result<T, E: std::fmt::Display>(&mut self, r: Result<T, E>) -> Option<T> {
        self.checks += 1;
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.push(format!("{e:#}"));
                None
            }
        }
    }
}

pub fn print(module: &Module<'_>, out: &mut Out) -> anyhow::Result<()> {
    let mut f = Findings {
        // The container rules, which passed to get here, and among them the
        // decompression of each compressed section to its recorded size.
        checks: 1 + module.sections().filter(|s| s.is_compressed()).count(),
        problems: Vec::new(),
    };
    let library = if module.template_code_section().is_some() {
        f.result(read_templates(module))
    } else {
        None
    };
    if let Some(decoded) = &library {
        check_templates(module, decoded, &mut f);
    }
    if module.note_section().is_some()
        && let Some(note) = f.result(read_note(module))
    {
        check_note(module, &note, library.as_ref().map(|d| &d.library), &mut f);
    }

    if out.json() {
        out.write_json(&json!({
            "ok": f.problems.is_empty(),
            "checks": f.checks,
            "problems": f.problems,
        }))?;
    } else {
        for problem in &f.problems {
            out.line(format!("{} {problem}", out.paint(Paint::Kind, "problem:")))?;
        }
        if f.problems.is_empty() {
            out.line(format!("ok: {} checks passed", f.checks))?;
        } else {
            out.line(format!(
                "{} problems in {} checks",
                f.problems.len(),
                f.checks
            ))?;
        }
    }
    if f.problems.is_empty() {
        Ok(())
    } else {
        out.flush()?;
        Err(crate::output::Reported.into())
    }
}

fn check_templates(module: &Module<'_>, decoded: &jit::binary::DecodedLibrary, f: &mut Findings) {
    let lib = &decoded.library;
    let mut function_errors = Vec::new();
    for item in lib.items() {
        if let jit::ir::Item::Function(func) = item {
            if let Err(e) = jit::verify::verify_function(func, lib) {
                function_errors.push(e.to_string());
            }
            f.checks += 1;
        }
    }
    // The library-wide rules (structs, declarations, limits) beyond functions.
    if let Err(e) = jit::verify::verify_library(lib)
        && !function_errors.contains(&e.to_string())
    {
        function_errors.push(e.to_string());
    }
    f.checks += 1;
    f.problems.extend(
        function_errors
            .into_iter()
            .map(|e| format!("template: {e}")),
    );

    for (item, offset) in lib.items().iter().zip(&decoded.offsets) {
        let params = match item {
            jit::ir::Item::Function(func) => func.type_params.len(),
            jit::ir::Item::Struct(s) => s.type_params.len(),
            _ => continue,
        };
        let name = item.name();
        let symbol = module.symbol_by_name(&name).filter(|s| s.is_template());
        f.check(symbol.is_some() || params == 0, || {
            format!("template '{name}' at template_offset {offset:#x} has no template symbol")
        });
        let Some(symbol) = symbol else { continue };
        f.check(symbol.template_offset() == *offset as u64, || {
            format!(
                "symbol '{name}' has template_offset {:#x}, but its entry is at {offset:#x}",
                symbol.template_offset()
            )
        });
        f.check(usize::from(symbol.template_param_count()) == params, || {
            format!(
                "symbol '{name}' says {} type parameters, its template has {params}",
                symbol.template_param_count()
            )
        });
    }
    for symbol in module.symbols().filter(|s| s.is_template()) {
        let known = decoded
            .offsets
            .iter()
            .any(|&o| o as u64 == symbol.template_offset());
        f.check(known, || {
            format!(
                "template symbol '{}' points at {:#x}, where no entry starts",
                symbol.name(),
                symbol.template_offset()
            )
        });
    }
}

fn check_note(
    module: &Module<'_>,
    note: &sdn::note::Note,
    lib: Option<&jit::ir::Library>,
    f: &mut Findings,
) {
    for row in &note.possible {
        let name = &row.mangled_name;
        let Some((template, args)) = f.result(
            jit::mangle::demangle(name)
                .map_err(|e| format!("note.sdn possible row {}: '{name}': {e}", row.id)),
        ) else {
            continue;
        };
        f.check(template.to_string() == row.template, || {
            format!(
                "note.sdn possible row {}: '{name}' is an instance of '{template}', the row says '{}'",
                row.id, row.template
            )
        });
        let arg_names: Vec<String> = args.iter().map(ToString::to_string).collect();
        f.check(arg_names == row.type_args.0, || {
            format!(
                "note.sdn possible row {}: '{name}' has type arguments {}, the row says {}",
                row.id,
                arg_names.join(","),
                row.type_args.0.join(",")
            )
        });
        match lib {
            Some(lib) => {
                f.result(
                    jit::instantiate::instantiate(lib, &template, &args)
                        .map_err(|e| format!("note.sdn possible row {}: {e}", row.id)),
                );
            }
            // A TemplateCode section that does not decode is reported already.
            None if module.template_code_section().is_some() => {}
            None => f.check(false, || {
                format!(
                    "note.sdn possible row {}: '{name}' cannot be instantiated: the module has no TemplateCode section",
                    row.id
                )
            }),
        }
    }
    for row in &note.instantiations {
        if row.status != sdn::note::Status::Compiled {
            continue;
        }
        let defined = module
            .symbol_by_name(&row.mangled_name)
            .is_some_and(|s| s.is_defined());
        f.check(defined, || {
            format!(
                "note.sdn instantiation {}: '{}' is compiled but the module defines no such symbol",
                row.id, row.mangled_name
            )
        });
    }
}
