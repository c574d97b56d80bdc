#!/usr/bin/env bash
# Builds every fuzz target listed in fuzz/Cargo.toml, seeds each corpus
# (fuzz/seed.sh), runs each target for SECONDS with its dictionary
# (fuzz/dict/<target>.dict, when there is one) and prints a table: target,
# executions, edges covered, findings. A finding is a crash, leak, time-out
# or out-of-memory input libFuzzer wrote to fuzz/artifacts/<target>/; the
# exit status is 1 when any target has one.
#
# Usage: fuzz/run.sh [--empty] SECONDS [TARGET...]
#   --empty   start from an empty corpus and without a dictionary, to compare
#             the edges covered with a seeded run
#
# cargo-fuzz is not needed: the targets are built with the flags it uses
# (sanitizer coverage, `--cfg fuzzing`, debug assertions), for the host
# target so that build scripts are not instrumented. The toolchain's
# sanitizer-coverage pass is nightly-only, hence RUSTC_BOOTSTRAP.
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$fuzz")"

empty=false
if [ "${1:-}" = "--empty" ]; then
    empty=true
    shift
fi
if ! [[ "${1:-}" =~ ^[0-9]+$ ]]; then
    echo "usage: fuzz/run.sh [--empty] SECONDS [TARGET...]" >&2
    exit 2
fi
seconds="$1"
shift
if [ $# -eq 0 ]; then
    mapfile -t targets < <(sed -n '/^\[\[bin\]\]/,/^$/s/^name *= *"\(.*\)"/\1/p' "$fuzz/Cargo.toml")
else
    targets=("$@")
fi

host="$(rustc -vV | sed -n 's/^host: //p')"
target_dir="$fuzz/target"
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
cargo build --release --locked --manifest-path "$fuzz/Cargo.toml" \
    --target "$host" --target-dir "$target_dir" --bins
bin_dir="$target_dir/$host/release"

if ! $empty; then
    "$fuzz/seed.sh" "${targets[@]}"
fi

count_findings() {
    find "$1" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l
}

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
rows=()
any_finding=false
for t in "${targets[@]}"; do
    artifacts="$fuzz/artifacts/$t"
    mkdir -p "$artifacts"
    before="$(count_findings "$artifacts")"
    args=(-max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$artifacts/")
    # The differential target reads one byte per decision of its program
    # generator: let its inputs grow to a whole program from the start.
    if [ "$t" = differential ]; then
        args+=(-max_len=512 -len_control=0)
    fi
    if $empty; then
        corpus="$logs/corpus-$t"
        mkdir -p "$corpus"
    else
        corpus="$fuzz/corpus/$t"
        if [ -f "$fuzz/dict/$t.dict" ]; then
            args+=(-dict="$fuzz/dict/$t.dict")
        fi
    fi
    echo "running $t for ${seconds}s from ${corpus#"$root"/}" >&2
    # A crash makes libFuzzer exit non-zero and write an artifact; a
    # process that dies without one (a signal its handler could not catch)
    # is a finding too, with only the log to show for it.
    status=0
    "$bin_dir/$t" "${args[@]}" "$corpus" >"$logs/$t.log" 2>&1 || status=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -n 1)"
    cov="$(grep -o 'cov: [0-9]*' "$logs/$t.log" | tail -n 1 | cut -d' ' -f2)"
    findings=$(($(count_findings "$artifacts") - before))
    if [ "$status" -ne 0 ] && [ "$findings" -eq 0 ]; then
        echo "$t: exited with status $status and wrote no artifact" >&2
        findings=1
    fi
    if [ "$findings" -gt 0 ]; then
        any_finding=true
        cp "$logs/$t.log" "$artifacts/last-run.log"
        echo "$t: $findings finding(s) in ${artifacts#"$root"/} (log: last-run.log)" >&2
    fi
    rows+=("$t|${execs:-?}|${cov:-?}|$findings")
done

mode="seeded"
$empty && mode="empty"
printf '\n%-20s %14s %8s %9s   (%ss each, %s corpus)\n' target executions edges findings "$seconds" "$mode"
for row in "${rows[@]}"; do
    IFS='|' read -r t execs cov findings <<<"$row"
    printf '%-20s %14s %8s %9s\n' "$t" "$execs" "$cov" "$findings"
done
if $any_finding; then
    exit 1
fi
