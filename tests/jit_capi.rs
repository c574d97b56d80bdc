//! A C program compiled with the system `cc` against libsmfjit.so gets
//! instantiation on miss from `smfjit_loader_new`: it loads the
//! collections fixture, resolves instantiations no module precompiled and
//! calls them.

mod common;

use common::{c_double, command, compile_c, root, run_with};

fn joined<T: ToString>(what: &str, xs: &[T]) -> String {
    let items: Vec<String> = xs.iter().map(ToString::to_string).collect();
    format!("{what}: {}", items.join(" "))
}

/// The configurations the C programs run under: the default (compiled,
/// file writes), always interpreted, interpreted for two calls and then
/// compiled, so `sum$f64`'s third call crosses tiers through the pointer
/// the program already holds, and each other executable-memory strategy.
const CONFIGURATIONS: [&[(&str, &str)]; 5] = [
    &[],
    &[("SMFJIT_TIER", "interpreted")],
    &[("SMFJIT_TIER", "auto"), ("SMFJIT_TIER_CALLS", "2")],
    &[("SMFJIT_CODE_MEMORY", "mprotect")],
    &[("SMFJIT_CODE_MEMORY", "dual")],
];

#[test]
fn a_c_program_calls_instantiations_made_on_miss_in_every_tier() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("jit_on_miss", dir.path());
    for env in CONFIGURATIONS {
        check_jit_on_miss(&program, env);
    }
}

fn check_jit_on_miss(program: &std::path::Path, env: &[(&str, &str)]) {
    let stdout = run_with(program, &root().join("tests/fixtures/collections.smf"), env);
    let lines: Vec<&str> = stdout.lines().collect();

    let mut longs: Vec<i64> = (0..20).map(|k| (k * 7919 + 13) % 101 - 50).collect();
    longs[3] = i64::MIN;
    longs[11] = i64::MAX;
    longs.sort_unstable();
    let mut ints = [5i32, -3, i32::MAX, 0, i32::MIN, 5, 17];
    ints.sort_unstable();
    let expected = [
        "same pointer again: yes".to_owned(),
        format!("sum$f64 of 0: {}", c_double(0.0)),
        format!("sum$f64 of 3: {}", c_double(0.5 + 2.25 - 1.0)),
        format!("sum$f64 of 4: {}", c_double(9.75)),
        joined("sort$i64", &longs),
        joined("sort$i32", &ints),
        "sort$i32 of 1: 42".to_owned(),
    ];
    assert_eq!(lines[..expected.len()], expected, "{env:?}: {stdout}");
    assert_eq!(
        lines[expected.len()],
        "no_such_template$i64: NULL, symbol 'no_such_template$i64' is not defined by any \
         loaded module"
    );
    let refused = lines[expected.len() + 1];
    assert!(
        refused.starts_with("sum$bool: NULL, instantiating 'sum$bool' failed: "),
        "{env:?}: {refused}"
    );
    assert_eq!(lines.len(), expected.len() + 2, "{env:?}: {stdout}");
}

#[test]
fn an_invalid_tier_variable_makes_smfjit_loader_new_return_null_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("jit_on_miss", dir.path());
    for (env, message) in [
        (
            ("SMFJIT_TIER", "fast"),
            "SMFJIT_TIER: tier `fast` is none of compiled, interpreted, auto",
        ),
        (
            ("SMFJIT_TIER_CALLS", "0"),
            "SMFJIT_TIER_CALLS: `0` is not a whole number from 1 to 4294967295",
        ),
        (
            ("SMFJIT_TIER_BACKEDGES", "many"),
            "SMFJIT_TIER_BACKEDGES: `many` is not a whole number from 1 to 4294967295",
        ),
        (
            ("SMFJIT_CODE_MEMORY", "rwx"),
            "SMFJIT_CODE_MEMORY: strategy `rwx` is none of file, mprotect, dual",
        ),
    ] {
        let output = command(&program)
            .envs([env])
            .arg(root().join("tests/fixtures/collections.smf"))
            .output()
            .unwrap();
        // The program prints this line, and exits 1, only when
        // smfjit_loader_new returned NULL.
        assert_eq!(output.status.code(), Some(1), "{env:?}");
        assert!(output.stdout.is_empty(), "{env:?}");
        assert_eq!(
            String::from_utf8(output.stderr).unwrap(),
            format!("loader_new: {message}\n"),
            "{env:?}"
        );
    }
}

#[test]
fn a_c_program_runs_the_application_with_either_binding_in_every_tier() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("app_bindings", dir.path());
    let fixtures = root().join("tests/fixtures");
    let expected_squares: i64 = (0..100).map(|i| i * i).sum();
    let runs = CONFIGURATIONS
        .iter()
        .flat_map(|env| ["now", "lazy"].map(|binding| (*env, binding)));
    for (env, binding) in runs {
        let output = command(&program)
            .envs(env.iter().copied())
            .arg(binding)
            .arg(fixtures.join("collections.smf"))
            .arg(fixtures.join("app.smf"))
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(
            output.status.success(),
            "{binding} {env:?}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            stdout,
            format!(
                "mean_f32 = 4\n\
                 median_u16 = 12\n\
                 sorted = 0 7 12 300 65535\n\
                 sum_of_squares(100) = {expected_squares}\n\
                 bad binding: binding 7 is neither SMFJIT_BIND_NOW (0) nor SMFJIT_BIND_LAZY (1)\n"
            ),
            "{binding} {env:?}"
        );
    }
}
