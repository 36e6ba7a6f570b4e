#!/usr/bin/env bash
# Memory per stream, per process: N streams with no players (each holds only what
# joiners need), then one stream with P players. Starts hub + ingest-rtmp from BIN (a
# directory holding both; default target/release), publishes the bench source with
# loadgen and samples each process's VmRSS once a second; prints the growth over the idle
# servers, per stream, for the hub and ingest-rtmp apart.
#
#   scripts/bench-mem.sh                      # 10 idle streams, then 1 stream + 100 players
#   BIN=/tmp/old STREAMS=20 PLAYERS=200 scripts/bench-mem.sh
#
# Builds loadgen (BUILD=0: uses LOADGEN as it is) and encodes the bench source if
# scripts/bench.sh has not; BIN needs a release build of hub and ingest-rtmp.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${BIN:-target/release}"
STREAMS="${STREAMS:-10}"
PLAYERS="${PLAYERS:-100}"
DURATION="${DURATION:-20s}"
LOADGEN="${LOADGEN:-target/release/loadgen}"
source scripts/lib/bench-common.sh
bench_build -p tests --bin loadgen
bench_source
src="$BENCH_SRC"
bench_tmp mem

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# case NAME LOADGEN-ARGS...: one fresh hub + ingest-rtmp; prints the largest growth of
# each process's RSS while loadgen runs (KiB, and per stream).
case_() {
    local name="$1" streams="$2"
    shift 2
    local p
    p="$(free_port)"
    start_ours "$BIN" "$p"
    local hub=$HUB_PID ing=$INGEST_PID
    local h0 i0 hmax=0 imax=0
    h0="$(rss $hub)"
    i0="$(rss $ing)"
    "$LOADGEN" --addr "127.0.0.1:$p" --source "$src" --duration "$DURATION" \
        "$@" >"$tmp/loadgen.out" 2>&1 &
    local lg=$!
    while kill -0 $lg 2>/dev/null; do
        local h i
        h="$(rss $hub)"
        i="$(rss $ing)"
        [ "$h" -gt "$hmax" ] && hmax=$h
        [ "$i" -gt "$imax" ] && imax=$i
        sleep 1
    done
    wait $lg || echo "loadgen reported failures ($name)" >&2
    printf '| %s | %d | %d KiB | %d KiB | %d KiB | %d KiB | %d KiB |\n' "$name" "$streams" \
        "$h0" "$((hmax - h0))" "$(((hmax - h0) / streams))" "$((imax - i0))" "$(((imax - i0) / streams))"
    stop_pids "$hub" "$ing"
}

echo "| case | streams | hub RSS idle | hub growth | hub per stream | ingest-rtmp growth | ingest-rtmp per stream |"
echo "|---|---|---|---|---|---|---|"
case_ "$STREAMS streams, no players" "$STREAMS" --players 0 --no-publish --publishers "$STREAMS"
case_ "1 stream, $PLAYERS players" 1 --players "$PLAYERS" --settle 15s --ramp 250
