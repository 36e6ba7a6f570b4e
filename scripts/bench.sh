#!/usr/bin/env bash
# Fan-out benchmark: one ~2.5 Mbit/s stream to N players, against this server (hub +
# ingest-rtmp), the null server (tests/src/bin/nullserver.rs: the same bytes written to
# every socket and nothing else) and nginx-rtmp from Debian, all in one run on this
# machine; then N publishers (ingest cost). Writes target/bench/*.json and prints the
# Markdown tables BENCHMARKS.md shows.
#
#   scripts/bench.sh                          # players 100 500 1000 2000, 10 s each
#   PLAYERS="100 500" DURATION=20s SETTLE=15s scripts/bench.sh
#   SERVERS="ours ours0 null" scripts/bench.sh   # skip nginx-rtmp
#   PLAYERS= PUBLISHERS="10 50" scripts/bench.sh # publishers only
#   BIN=target/debug BUILD=0 PLAYERS=100 PUBLISHERS= DURATION=3s SETTLE=3s scripts/bench.sh
#                                             # a quick check of the script itself
#
# PLAYERS and PUBLISHERS are lists of counts; unset gives the default, set but empty skips
# those runs.
#
# Servers: null (the floor), ours (hub + ingest-rtmp, default flags), ours0 (the same with
# --write-coalesce 0ms and ingest-rtmp's --read-coalesce 0ms, the zero-latency mode), ours-N (--write-coalesce Nms, to compare
# windows: SERVERS="ours0 ours-25 ours-50 ours ours-200" PUBLISHERS= ...), base (hub + ingest-rtmp
# from BASE_BIN, default flags: an earlier build measured in the same run, e.g.
# BASE_BIN=target/base SERVERS="ours base nginx"), nginx (nginx-rtmp). The 1-minute load
# average before each run is kept next to its report (the machine is shared).
#
# Needs: FFmpeg (imageio-ffmpeg) to make the source once; nginx + libnginx-mod-rtmp for
# the comparison (apt-get install nginx libnginx-mod-rtmp; skipped with a note if absent).
set -euo pipefail
cd "$(dirname "$0")/.."

# No colon: an empty value is kept (skip), only an unset one takes the default.
PLAYERS="${PLAYERS-100 500 1000 2000}"
PUBLISHERS="${PUBLISHERS-10 50}"
DURATION="${DURATION:-10s}"
SERVERS="${SERVERS:-null ours ours0 nginx}"
RAMP="${RAMP:-250}"
# How long the stream runs before players join: the servers' per-stream buffers (4 MiB
# of recent frames plus the GOP at 2.5 Mbit/s) fill in about 14 s, so the RSS growth
# measured after it is the players' own.
SETTLE="${SETTLE:-15s}"
# Where hub, ingest-rtmp, loadgen and nullserver are run from (the build, skipped with
# BUILD=0, writes target/release).
BIN="${BIN:-target/release}"
source scripts/lib/bench-common.sh
out="$(dirname "$BENCH_SRC")"
mkdir -p "$out"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

bench_build -p hub -p ingest-rtmp -p tests --bin hub --bin ingest-rtmp --bin loadgen --bin nullserver
bin="$BIN"
bench_source
src="$BENCH_SRC"
bench_tmp bench

# start_server NAME PORT: starts it, sets SERVER_PIDS (comma-separated) and pids.
start_server() {
    local name="$1" port="$2"
    case "$name" in
    null)
        "$bin/nullserver" --listen "127.0.0.1:$port" 2>"$tmp/null.log" &
        pids+=($!)
        SERVER_PIDS="$!"
        ;;
    ours | ours0 | ours-*)
        local args=()
        [ "$name" = ours0 ] && args=(--write-coalesce 0ms -- --read-coalesce 0ms)
        [[ "$name" = ours-* ]] && args=(--write-coalesce "${name#ours-}ms")
        start_ours "$bin" "$port" "${args[@]}"
        SERVER_PIDS="$HUB_PID,$INGEST_PID"
        return
        ;;
    base)
        start_ours "${BASE_BIN:?BASE_BIN: the directory of the build to compare}" "$port"
        SERVER_PIDS="$HUB_PID,$INGEST_PID"
        return
        ;;
    nginx)
        mkdir -p "$tmp/nginx/logs"
        cat >"$tmp/nginx/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
error_log $tmp/nginx/logs/error.log warn;
pid $tmp/nginx/nginx.pid;
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
events { worker_connections 16384; }
rtmp {
    server {
        listen 127.0.0.1:$port;
        chunk_size 4096;
        application live {
            live on;
            # Start players at a keyframe after the headers, as a GOP cache would.
            wait_key on;
            wait_video on;
        }
    }
}
CONF
        nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2>"$tmp/nginx.log" &
        pids+=($!)
        SERVER_PIDS="$!"
        ;;
    esac
    wait_port "$port"
}

stop_server() { stop_pids ${SERVER_PIDS//,/ }; }

have_nginx() { command -v nginx >/dev/null && [ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ]; }

run() { # run SERVER KIND N -> target/bench/SERVER-KIND-N.json
    local server="$1" kind="$2" n="$3" port
    port="$(free_port)"
    start_server "$server" "$port"
    local args=(--addr "127.0.0.1:$port" --source "$src" --duration "$DURATION" --ramp "$RAMP"
        --pids "$SERVER_PIDS" --json "$out/$server-$kind-$n.json")
    if [ "$kind" = players ]; then
        args+=(--players "$n" --settle "$SETTLE")
    else
        args+=(--players 0 --no-publish --publishers "$n")
    fi
    echo "== $server, $kind $n (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    cut -d' ' -f1 /proc/loadavg >"$out/$server-$kind-$n.load"
    "$bin/loadgen" "${args[@]}" || echo "loadgen reported failures ($server $kind $n)" >&2
    stop_server
}

echo "load: $(nproc) cores, $(uptime)" >&2
for n in $PLAYERS; do
    for s in $SERVERS; do
        if [ "$s" = nginx ] && ! have_nginx; then
            echo "nginx-rtmp not installed: skipped" >&2
            continue
        fi
        run "$s" players "$n"
    done
done
for n in $PUBLISHERS; do
    for s in $SERVERS; do
        [ "$s" = null ] && continue  # one stream only
        [[ "$s" = ours-* ]] && continue # write coalescing does not touch ingest
        if [ "$s" = nginx ] && ! have_nginx; then continue; fi
        run "$s" publishers "$n"
    done
done

python3 scripts/bench_table.py "$out" "$PLAYERS" "$PUBLISHERS" "$SERVERS"
