# Sourced (not run) by scripts/bench.sh and scripts/bench-mem.sh from the repository root,
# under `set -euo pipefail`: the bench source, a scratch directory whose processes are
# stopped on exit, and starting this server (hub + ingest-rtmp) with the bench's limits.

BENCH_SRC=target/bench/source-2500k.flv

# bench_build CARGO-ARGS...: the release build the bench needs; BUILD=0 uses the release
# binaries as they are (to measure a build made earlier).
bench_build() {
    [ "${BUILD:-1}" = 0 ] || cargo build --release -q "$@"
}

# bench_source: encodes $BENCH_SRC once (FFMPEG, else imageio-ffmpeg's): 720p30 H.264 at
# 2.3 Mbit/s CBR, 2 s GOPs, AAC 128 kbit/s, about 2.5 Mbit/s in all, 30 s (loadgen loops it).
bench_source() {
    [ -s "$BENCH_SRC" ] && return 0
    mkdir -p "$(dirname "$BENCH_SRC")"
    local ffmpeg="${FFMPEG:-$(python3 -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')}"
    "$ffmpeg" -hide_banner -loglevel error -y \
        -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
        -t 30 -pix_fmt yuv420p -c:v libx264 -preset veryfast -b:v 2300k -maxrate 2300k \
        -bufsize 2300k -x264-params nal-hrd=cbr -g 60 -c:a aac -b:a 128k -ac 2 -f flv "$BENCH_SRC"
}

# bench_tmp NAME: sets tmp to a fresh scratch directory and pids to an empty list; on exit
# every process in pids is killed and tmp removed.
bench_tmp() {
    tmp="$(mktemp -d -t "mediaserver-$1-XXXXXX")"
    pids=()
    trap bench_cleanup EXIT INT TERM
}

bench_cleanup() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT: returns once something accepts on 127.0.0.1:PORT (fails after 5 s).
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on $1" >&2
    return 1
}

# start_ours BIN PORT [HUB-ARGS...] [-- INGEST-ARGS...]: starts BIN/hub on $tmp/hub.sock
# and BIN/ingest-rtmp on 127.0.0.1:PORT (limits high enough for thousands of loopback
# connections), sets HUB_PID and INGEST_PID, adds both to pids and returns once ingest
# listens.
start_ours() {
    local bin="$1" port="$2" hub_args=()
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        hub_args+=("$1")
        shift
    done
    [ $# -gt 0 ] && shift
    "$bin/hub" --socket "$tmp/hub.sock" --http off --log-level warn "${hub_args[@]}" 2>"$tmp/hub.log" &
    HUB_PID=$!
    pids+=("$HUB_PID")
    for _ in $(seq 100); do [ -S "$tmp/hub.sock" ] && break; sleep 0.05; done
    "$bin/ingest-rtmp" --listen "127.0.0.1:$port" --hub "$tmp/hub.sock" \
        --log-level warn --max-connections 10000 --max-connections-per-ip 10000 \
        --max-new-connections-per-ip 100000 "$@" 2>"$tmp/ingest.log" &
    INGEST_PID=$!
    pids+=("$INGEST_PID")
    wait_port "$port"
}

# stop_pids PID...: TERM, up to 5 s to exit, then KILL; removes the hub's socket.
stop_pids() {
    for p in "$@"; do kill "$p" 2>/dev/null || true; done
    for p in "$@"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$p" 2>/dev/null || true
    done
    rm -f "$tmp/hub.sock"
}
