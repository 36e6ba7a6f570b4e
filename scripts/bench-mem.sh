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
# Needs target/bench/source-2500k.flv (scripts/bench.sh makes it) and a release build.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${BIN:-target/release}"
STREAMS="${STREAMS:-10}"
PLAYERS="${PLAYERS:-100}"
DURATION="${DURATION:-20s}"
src=target/bench/source-2500k.flv
[ -s "$src" ] || { echo "no $src: run scripts/bench.sh once" >&2; exit 1; }
cargo build --release -q -p tests --bin loadgen

tmp="$(mktemp -d -t mediaserver-mem-XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# case NAME LOADGEN-ARGS...: one fresh hub + ingest-rtmp; prints the largest growth of
# each process's RSS while loadgen runs (KiB, and per stream).
case_() {
    local name="$1" streams="$2"
    shift 2
    local p
    p="$(port)"
    "$BIN/hub" --socket "$tmp/hub.sock" --http off --log-level warn 2>"$tmp/hub.log" &
    local hub=$!
    pids+=($hub)
    for _ in $(seq 100); do [ -S "$tmp/hub.sock" ] && break; sleep 0.05; done
    "$BIN/ingest-rtmp" --listen "127.0.0.1:$p" --hub "$tmp/hub.sock" --log-level warn \
        --max-connections 10000 --max-connections-per-ip 10000 \
        --max-new-connections-per-ip 100000 2>"$tmp/ingest.log" &
    local ing=$!
    pids+=($ing)
    sleep 1
    local h0 i0 hmax=0 imax=0
    h0="$(rss $hub)"
    i0="$(rss $ing)"
    target/release/loadgen --addr "127.0.0.1:$p" --source "$src" --duration "$DURATION" \
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
    kill $hub $ing 2>/dev/null || true
    wait $hub $ing 2>/dev/null || true
    rm -f "$tmp/hub.sock"
}

echo "| case | streams | hub RSS idle | hub growth | hub per stream | ingest-rtmp growth | ingest-rtmp per stream |"
echo "|---|---|---|---|---|---|---|"
case_ "$STREAMS streams, no players" "$STREAMS" --players 0 --no-publish --publishers "$STREAMS"
case_ "1 stream, $PLAYERS players" 1 --players "$PLAYERS" --settle 15s --ramp 250
