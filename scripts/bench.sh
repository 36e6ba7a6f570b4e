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
#
# Servers: null (the floor), ours (hub + ingest-rtmp, default flags), ours0 (the same with
# --write-coalesce 0ms and ingest-rtmp's --read-coalesce 0ms, the zero-latency mode), ours-N (--write-coalesce Nms, to compare
# windows: SERVERS="ours0 ours-25 ours-50 ours ours-200" PUBLISHERS= ...), nginx (nginx-rtmp). The 1-minute load
# average before each run is kept next to its report (the machine is shared).
#
# Needs: FFmpeg (imageio-ffmpeg) to make the source once; nginx + libnginx-mod-rtmp for
# the comparison (apt-get install nginx libnginx-mod-rtmp; skipped with a note if absent).
set -euo pipefail
cd "$(dirname "$0")/.."

PLAYERS="${PLAYERS:-100 500 1000 2000}"
PUBLISHERS="${PUBLISHERS:-10 50}"
DURATION="${DURATION:-10s}"
SERVERS="${SERVERS:-null ours ours0 nginx}"
RAMP="${RAMP:-250}"
# How long the stream runs before players join: the servers' per-stream buffers (4 MiB
# of recent frames plus the GOP at 2.5 Mbit/s) fill in about 14 s, so the RSS growth
# measured after it is the players' own.
SETTLE="${SETTLE:-15s}"
out=target/bench
mkdir -p "$out"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# BUILD=0 uses the release binaries as they are (to measure a build made earlier).
[ "${BUILD:-1}" = 0 ] || cargo build --release -q -p hub -p ingest-rtmp -p tests \
    --bin hub --bin ingest-rtmp --bin loadgen --bin nullserver
bin=target/release

src="$out/source-2500k.flv"
if [ ! -s "$src" ]; then
    ffmpeg="${FFMPEG:-$(python3 -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')}"
    # 720p30 H.264 at 2.3 Mbit/s CBR, 2 s GOPs, AAC 128 kbit/s: about 2.5 Mbit/s in all.
    "$ffmpeg" -hide_banner -loglevel error -y \
        -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
        -t 30 -pix_fmt yuv420p -c:v libx264 -preset veryfast -b:v 2300k -maxrate 2300k \
        -bufsize 2300k -x264-params nal-hrd=cbr -g 60 -c:a aac -b:a 128k -ac 2 -f flv "$src"
fi

tmp="$(mktemp -d -t mediaserver-bench-XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on $1" >&2
    return 1
}

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
        local hub_args=() ingest_args=()
        [ "$name" = ours0 ] && hub_args=(--write-coalesce 0ms) && ingest_args=(--read-coalesce 0ms)
        [[ "$name" = ours-* ]] && hub_args=(--write-coalesce "${name#ours-}ms")
        "$bin/hub" --socket "$tmp/hub.sock" --http off --log-level warn "${hub_args[@]}" 2>"$tmp/hub.log" &
        local hub=$!
        pids+=($hub)
        for _ in $(seq 100); do [ -S "$tmp/hub.sock" ] && break; sleep 0.05; done
        "$bin/ingest-rtmp" --listen "127.0.0.1:$port" --hub "$tmp/hub.sock" \
            --log-level warn --max-connections 10000 --max-connections-per-ip 10000 \
            --max-new-connections-per-ip 100000 "${ingest_args[@]}" 2>"$tmp/ingest.log" &
        pids+=($!)
        SERVER_PIDS="$hub,$!"
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

stop_server() {
    for p in ${SERVER_PIDS//,/ }; do kill "$p" 2>/dev/null || true; done
    for p in ${SERVER_PIDS//,/ }; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$p" 2>/dev/null || true
    done
    rm -f "$tmp/hub.sock"
}

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
