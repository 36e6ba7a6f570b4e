#!/usr/bin/env bash
# SRT ingest benchmark: CPU seconds per received Mbit/s of ingest-srt against libsrt's
# srt-live-transmit receiving the same stream in the same run, with and without
# encryption, clean and at 5% random loss (both directions, through a Python UDP relay).
# The sender is FFmpeg (libsrt) copying one pre-encoded MPEG-TS file in real time.
# ingest-srt hands its frames to a hub (its production path; the hub's CPU is not counted),
# srt-live-transmit writes the payloads to /dev/null.
#
#   scripts/bench-srt.sh                  # 20 s at about 8 Mbit/s per case
#   SECS=10 scripts/bench-srt.sh
#   MBITS=2.5 SECS=30 scripts/bench-srt.sh  # a 2.5 Mbit/s stream
#   PERF=1 ...                            # also a perf profile of ingest-srt per case
#   PERF_FREQ=4999 ...                    # its sampling rate (default 999 Hz)
#   OUT=1 ...                             # ingest-srt writes --out /dev/null, no hub
#   INGEST_ARGS="--threads 2" ...         # extra ingest-srt flags
#
# Prints a Markdown table (BENCHMARKS.md); the ratio columns are ingest-srt / libsrt, over
# the stream and over the whole run (FFmpeg's idle close included).
# CPU is the receiver's threads' on-CPU time (schedstat): the threads alive at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${SECS:-20}"
MBITS="${MBITS:-8}"
FF=${FFMPEG:-$(python3 -c "import imageio_ffmpeg;print(imageio_ffmpeg.get_ffmpeg_exe())")}
cargo build --release -q -p ingest-srt -p hub
BIN=target/release/ingest-srt
HUB=target/release/hub
out=target/bench-srt
mkdir -p "$out"
TS="$out/source-${MBITS}M-${SECS}s.ts"
PASS=bench-srt-passphrase
if [ ! -s "$TS" ]; then
    "$FF" -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1280x720:rate=30" \
        -f lavfi -i "sine=frequency=440:sample_rate=48000" -t "$SECS" -pix_fmt yuv420p \
        -c:v libx264 -preset ultrafast -b:v "${MBITS}M" -maxrate "${MBITS}M" -bufsize "${MBITS}M" -g 60 -c:a aac \
        -f mpegts "$TS"
fi
relay="$out/lossy-relay.py"
cat > "$relay" <<'PY'
import random, select, socket, sys, time
lp, tp, loss = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
random.seed(5)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", lp))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
client = None
while True:
    r, _, _ = select.select([s, u], [], [], 1.0)
    for sock in r:
        d, a = sock.recvfrom(65536)
        if random.random() < loss:
            continue
        if sock is s:
            client = a; u.sendto(d, ("127.0.0.1", tp))
        elif client:
            s.sendto(d, client)
PY
cpu() { # CPU time of a pid's threads, seconds: the scheduler's nanosecond count
    # (/proc/PID/task/*/schedstat), not utime+stime, which count 10 ms ticks (a 10 s run
    # of a receiver using 0.1-0.2 s would be measured to +-10 %)
    cat /proc/"$1"/task/*/schedstat | awk '{ns += $1} END {printf "%.6f\n", ns / 1e9}'
}
run() { # name receiver(ours|libsrt) encrypted(0|1) loss
    local port=$((20000 + RANDOM % 20000)) rport=$((40000 + RANDOM % 20000)) pid rpid=""
    local lopt="" copt="&latency=200000"
    if [ "$3" = 1 ]; then lopt="&passphrase=$PASS"; copt="$copt&passphrase=$PASS&pbkeylen=16"; fi
    local hubpid=""
    if [ "$2" = ours ]; then
        local args=(--listen "127.0.0.1:$port" --latency 200ms)
        [ "$3" = 1 ] && args+=(--passphrase "$PASS")
        if [ -n "${OUT:-}" ]; then
            args+=(--out /dev/null)
        else
            local sock="$out/hub-$1.sock"
            rm -f "$sock"
            "$HUB" --socket "$sock" --http off --log-level warn 2>"$out/$1.hub.log" & hubpid=$!
            for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
            args+=(--hub "$sock")
        fi
        # shellcheck disable=SC2086
        "$BIN" "${args[@]}" ${INGEST_ARGS:-} 2>"$out/$1.log" &
    else
        srt-live-transmit "srt://127.0.0.1:$port?mode=listener&latency=200$lopt" file://con >/dev/null 2>"$out/$1.log" &
    fi
    pid=$!
    sleep 0.5
    local perfpid=""
    if [ "$2" = ours ] && [ -n "${PERF:-}" ]; then
        perf record -q -F "${PERF_FREQ:-999}" -g -p "$pid" -o "$out/$1.perf.data" 2>/dev/null & perfpid=$!
    fi
    local target=$port
    if [ "$4" != 0 ]; then
        python3 "$relay" "$rport" "$port" "$4" & rpid=$!
        target=$rport
        sleep 0.3
    fi
    local c0; c0=$(cpu "$pid")
    "$FF" -hide_banner -loglevel error -re -i "$TS" -c copy -f mpegts \
        "srt://127.0.0.1:$target?streamid=live/bench$copt&linger=5" & local ff=$!
    # The stream lasts SECS (-re); its last packets are released 200 ms (the latency)
    # after they arrive. FFmpeg then lingers before it closes (about 5 s with either
    # receiver), an idle tail that the whole-run figure includes.
    sleep "$SECS"; sleep 0.5
    local cs; cs=$(cpu "$pid")
    wait "$ff" || true
    local c1; c1=$(cpu "$pid")
    if [ -n "$perfpid" ]; then kill -INT "$perfpid" 2>/dev/null; wait "$perfpid" 2>/dev/null || true; fi
    kill "$pid" 2>/dev/null || true
    [ -n "$rpid" ] && kill "$rpid" 2>/dev/null || true
    [ -n "$hubpid" ] && kill "$hubpid" 2>/dev/null || true
    wait 2>/dev/null || true
    local mbits; mbits=$(awk -v b="$(stat -c %s "$TS")" -v s="$SECS" 'BEGIN{print b*8/1e6/s}')
    # "stream whole": CPU over the stream, and over the whole run (FFmpeg's close included),
    # both per second of stream per Mbit/s
    awk -v c0="$c0" -v cs="$cs" -v c1="$c1" -v m="$mbits" -v s="$SECS" \
        'BEGIN{printf "%.4f %.4f\n", (cs-c0)/s/m, (c1-c0)/s/m}'
}
echo "| case | ingest-srt CPU s per s per Mbit/s | srt-live-transmit | ratio | whole run: ingest-srt | srt-live-transmit | ratio |"
echo "|---|---|---|---|---|---|---|"
for enc in 0 1; do
    for loss in 0 0.05; do
        name="enc${enc}-loss${loss}"
        read -r ours ours_all < <(run "$name-ours" ours "$enc" "$loss")
        read -r theirs theirs_all < <(run "$name-libsrt" libsrt "$enc" "$loss")
        ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "n/a" }'; }
        label="$( [ "$enc" = 1 ] && echo "AES-128" || echo "plain" ), $( [ "$loss" = 0 ] && echo "clean" || echo "5% loss" )"
        echo "| $label | $ours | $theirs | $(ratio "$ours" "$theirs")x | $ours_all | $theirs_all | $(ratio "$ours_all" "$theirs_all")x |"
    done
done
