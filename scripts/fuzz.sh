#!/usr/bin/env bash
# Runs every cargo-fuzz target (proto/fuzz, recorder/fuzz and auth/fuzz) for a given time
# each, one after another, and records how many inputs each one executed.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default: 60 s, every target
#   scripts/fuzz.sh --totals                             what every run so far added up to
#
# FUZZ_RUNS=N stops a target after N executions if that comes before the time limit
# (e.g. FUZZ_RUNS=10000000 scripts/fuzz.sh 3600 for "10 million or an hour").
#
# Everything a run leaves is kept in FUZZ_DIR (default target/fuzz), so that runs
# accumulate and an early stop (Ctrl-C, a kill) loses nothing:
#   FUZZ_DIR/corpus/TARGET/   the corpus; every run of TARGET resumes from it
#   FUZZ_DIR/summary.tsv      one line per target per run, written as soon as the target
#                             stops, however it stops: start (UTC), crate, target, seconds,
#                             executions, coverage (cov, ft), corpus entries, result
#                             (clean, interrupted or crash)
#   FUZZ_DIR/logs/TARGET.log  libFuzzer's output of the last run of TARGET
# Executions and coverage are libFuzzer's final statistics, or its last progress line when
# it was stopped before printing them. `--totals` sums executions and seconds per target
# over every line of summary.tsv and shows the latest coverage.
#
# The targets are built optimized with debug assertions and overflow checks (an overflow
# is a finding) and without a sanitizer: every fuzzed crate forbids unsafe code, so
# AddressSanitizer finds nothing there and made executions 3-8 times dearer.
# FUZZ_SANITIZER=address builds with it (each sanitizer in its own fuzz/target/NAME).
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain; without nightly
# the stable compiler is used with RUSTC_BOOTSTRAP=1. The targets run at the production
# limits (see proto/fuzz/src/lib.rs). A crash stops the script with libFuzzer's report
# (with FUZZ_KEEP_GOING=1 it goes on with the next target and fails at the end);
# the input is saved under DIR/fuzz/artifacts/TARGET/: copy it to
# DIR/tests/fuzz_regressions/TARGET-what.bin, where fuzz_smoke runs it on every test run.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
state="${FUZZ_DIR:-target/fuzz}"
mkdir -p "$state/corpus" "$state/logs"
state="$(cd "$state" && pwd)"
summary="$state/summary.tsv"
[ -s "$summary" ] || printf 'start\tcrate\ttarget\tseconds\texecutions\tcov\tft\tcorpus\tresult\n' >"$summary"

totals() {
    awk -F'\t' 'NR > 1 {
            if (!($3 in runs)) order[n++] = $3
            runs[$3]++; secs[$3] += $4; execs[$3] += $5; cov[$3] = $6; ft[$3] = $7
            if ($9 != "clean" && $9 != "interrupted") bad[$3] = bad[$3] " " $9
        }
        END {
            print "target\truns\tseconds\texecutions\tlatest_cov\tlatest_ft\tfindings"
            for (i = 0; i < n; i++) {
                t = order[i]
                printf "%s\t%d\t%d\t%d\t%s\t%s\t%s\n", t, runs[t], secs[t], execs[t], cov[t], ft[t], (bad[t] == "" ? "none" : bad[t])
            }
        }' "$summary" | column -t -s $'\t'
}
if [ "${1:-}" = "--totals" ]; then
    totals
    exit 0
fi

secs="${1:-60}"
shift || true
wanted=("$@")

if cargo +nightly --version >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
sanitizer="${FUZZ_SANITIZER:-none}"
build_flags=(-O --debug-assertions --sanitizer "$sanitizer" --target-dir "target/$sanitizer")
if ! "${fuzz[@]}" --version >/dev/null 2>&1; then
    echo "error: cargo-fuzz is not installed (cargo install cargo-fuzz)" >&2
    exit 2
fi

# record DIR TARGET START LOG RESULT: appends the target's line to summary.tsv.
record() {
    local dir="$1" t="$2" start="$3" log="$4" result="$5" runs cov ft
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    # Progress lines: "#12345	pulse  cov: 1073 ft: 2014 corp: 98/12Kb exec/s: 160 ...".
    local last
    last="$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)"
    [ -n "$runs" ] || runs="$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last")"
    cov="$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")"
    ft="$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$(date -u -d "@$start" +%Y-%m-%dT%H:%M:%SZ)" "$dir" "$t" "$(($(date +%s) - start))" \
        "${runs:-0}" "${cov:--}" "${ft:--}" "$(find "$state/corpus/$t" -type f | wc -l)" \
        "$result" >>"$summary"
}

current=()
pgid=
# A stop from outside (Ctrl-C, kill) stops the fuzzer the way Ctrl-C would (it prints its
# statistics) and still records the target that was running.
on_signal() {
    trap - INT TERM
    if [ -n "$pgid" ]; then
        kill -INT -- "-$pgid" 2>/dev/null || true
        wait "$pgid" 2>/dev/null || true
    fi
    [ "${#current[@]}" -eq 0 ] || record "${current[@]}" interrupted
    echo "stopped; kept: $summary" >&2
    exit 130
}
trap on_signal INT TERM

ran=()
failed=()
for dir in proto/fuzz recorder/fuzz auth/fuzz; do
    cd "$root/$dir"
    mapfile -t targets < <(ls fuzz_targets | sed -n 's/\.rs$//p' | sort)
    if [ "${#wanted[@]}" -gt 0 ]; then
        mapfile -t targets < <(printf '%s\n' "${targets[@]}" | grep -Fx -f <(printf '%s\n' "${wanted[@]}") || true)
    fi
    [ "${#targets[@]}" -gt 0 ] || continue
    for t in "${targets[@]}"; do
        log="$state/logs/$t.log"
        echo "== $dir $t: ${secs}s, corpus $state/corpus/$t"
        mkdir -p "$state/corpus/$t"
        # Built here, only what runs, so that a build never counts as fuzzing time.
        "${fuzz[@]}" build "${build_flags[@]}" "$t"
        start="$(date +%s)"
        current=("$dir" "$t" "$start" "$log")
        # In its own process group, in the background, so that a signal reaches the trap
        # at once and the trap can stop the whole run.
        setsid "${fuzz[@]}" run "${build_flags[@]}" "$t" "$state/corpus/$t" -- -max_total_time="$secs" \
            ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} \
            -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 &
        pgid=$!
        if ! wait "$pgid"; then
            pgid=
            current=()
            artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
            record "$dir" "$t" "$start" "$log" "crash:${artifact:-?}"
            tail -n 60 "$log" >&2
            echo "error: fuzz target $t failed (input saved under $dir/artifacts/$t/)" >&2
            [ -n "${FUZZ_KEEP_GOING:-}" ] || exit 1
            failed+=("$t")
            continue
        fi
        pgid=
        current=()
        record "$dir" "$t" "$start" "$log" clean
        ran+=("$t")
    done
done
echo "== this run (summary.tsv: $summary)"
[ "${#ran[@]}" -eq 0 ] || grep -F -f <(printf '\t%s\t\n' "${ran[@]}") "$summary" |
    tail -n "${#ran[@]}" | cut -f3-9 | column -t
if [ "${#failed[@]}" -gt 0 ]; then
    echo "error: failed: ${failed[*]}" >&2
    exit 1
fi
