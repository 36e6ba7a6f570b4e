#!/usr/bin/env bash
# Runs every cargo-fuzz target (proto/fuzz, recorder/fuzz and auth/fuzz) for a given time
# each, one after another, and prints how many inputs each one executed.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default: 60 s, every target
#
# FUZZ_RUNS=N stops a target after N executions if that comes before the time limit
# (e.g. FUZZ_RUNS=10000000 scripts/fuzz.sh 3600 for "10 million or an hour").
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain; without nightly
# the stable compiler is used with RUSTC_BOOTSTRAP=1. The targets run at the production
# limits (see proto/fuzz/src/lib.rs). A crash stops the script with libFuzzer's report;
# the input is saved under DIR/fuzz/artifacts/TARGET/: copy it to
# DIR/tests/fuzz_regressions/TARGET-what.bin, where fuzz_smoke runs it on every test run.
# The corpus grows in DIR/fuzz/corpus/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

secs="${1:-60}"
shift || true
wanted=("$@")

if cargo +nightly --version >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
if ! "${fuzz[@]}" --version >/dev/null 2>&1; then
    echo "error: cargo-fuzz is not installed (cargo install cargo-fuzz)" >&2
    exit 2
fi

summary=()
for dir in proto/fuzz recorder/fuzz auth/fuzz; do
    cd "$root/$dir"
    mapfile -t targets < <(ls fuzz_targets | sed -n 's/\.rs$//p' | sort)
    if [ "${#wanted[@]}" -gt 0 ]; then
        mapfile -t targets < <(printf '%s\n' "${targets[@]}" | grep -Fx -f <(printf '%s\n' "${wanted[@]}") || true)
    fi
    [ "${#targets[@]}" -gt 0 ] || continue
    "${fuzz[@]}" build -O
    for t in "${targets[@]}"; do
        log="$(mktemp)"
        echo "== $dir $t: ${secs}s"
        mkdir -p "corpus/$t"
        start="$(date +%s)"
        if ! "${fuzz[@]}" run -O "$t" "corpus/$t" -- -max_total_time="$secs" \
            ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} \
            -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
            tail -n 60 "$log" >&2
            echo "error: fuzz target $t failed (input saved under $dir/artifacts/$t/)" >&2
            exit 1
        fi
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | awk '{s+=$1} END {print s+0}')"
        summary+=("$t $runs $(($(date +%s) - start))s")
        rm -f "$log"
    done
done
echo "== executions and time per target (at most ${secs}s${FUZZ_RUNS:+ or $FUZZ_RUNS executions} each)"
printf '%s\n' "${summary[@]}" | column -t
