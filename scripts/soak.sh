#!/usr/bin/env bash
# Soak: one FFmpeg publisher, PLAYERS players (loadgen) joining and leaving continuously,
# and a recorder, against hub + ingest-rtmp for a given time. Every INTERVAL seconds it
# samples the resident memory, open descriptors and threads of each server process, and
# the hub's connected players and subscribers (one task each), into a CSV; at the end it
# prints the first, lowest, highest and last value of each column.
#
#   scripts/soak.sh [SECONDS] [INTERVAL]          default: 3600 s, every 30 s
#   PLAYERS=200 CHURN=20s OUT=target/soak scripts/soak.sh 600 10
#   INGEST_ARGS="--threads 2" scripts/soak.sh 900        (extra ingest-rtmp flags)
#
# Uses the debug binaries (`cargo build --workspace --bins` first; BIN=DIR for others) and FFmpeg (imageio-ffmpeg
# or $FFMPEG). Exit status 1 if a server process died, or loadgen reported a protocol
# violation. Every process it starts is stopped on exit; the recordings are deleted, the
# CSV and the logs' warn/error lines are kept in OUT (target/soak).
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-3600}"
interval="${2:-30}"
players="${PLAYERS:-200}"
churn="${CHURN:-20s}"
out="${OUT:-target/soak}"
bin="${BIN:-target/debug}"
ffmpeg="${FFMPEG:-$(python3 -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')}"
for b in hub ingest-rtmp recorder loadgen; do
    [ -x "$bin/$b" ] || { echo "error: $bin/$b missing (cargo build --workspace --bins)" >&2; exit 2; }
done
mkdir -p "$out"
csv="$out/soak.csv"

tmp="$(mktemp -d -t mediaserver-soak-XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for l in hub ingest recorder publisher loadgen; do
        [ -f "$tmp/$l.log" ] && grep -E ' (WARN|ERROR) |error|panicked' "$tmp/$l.log" | tail -n 200 >"$out/$l.problems.log" || true
    done
    [ -f "$tmp/loadgen.log" ] && tail -n 30 "$tmp/loadgen.log" >"$out/loadgen.tail.log"
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_line FILE TEXT: up to 20 s for TEXT to appear in FILE.
wait_line() {
    for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "error: no \`$2\` in $1" >&2; tail -n 20 "$1" >&2; return 1
}

# A 30 s source, published in a loop without re-encoding: about 300 kbit/s.
src="$out/source.flv"
if [ ! -s "$src" ]; then
    "$ffmpeg" -hide_banner -loglevel error -y \
        -f lavfi -i testsrc2=size=426x240:rate=25 -f lavfi -i sine=frequency=440:sample_rate=44100 \
        -t 30 -pix_fmt yuv420p -c:v libx264 -preset veryfast -b:v 250k -maxrate 250k -bufsize 250k \
        -g 50 -c:a aac -b:a 48k -ac 1 -f flv "$src"
fi

http_port="$(free_port)"
rtmp_port="$(free_port)"
"$bin/hub" --socket "$tmp/hub.sock" --http "127.0.0.1:$http_port" 2>"$tmp/hub.log" &
hub=$!; pids+=("$hub")
wait_line "$tmp/hub.log" "listening on unix:"
"$bin/ingest-rtmp" --listen "127.0.0.1:$rtmp_port" --hub "$tmp/hub.sock" ${INGEST_ARGS:-} 2>"$tmp/ingest.log" &
ingest=$!; pids+=("$ingest")
wait_line "$tmp/ingest.log" "listening on rtmp://"
"$bin/recorder" --hub "$tmp/hub.sock" --dir "$tmp/rec" --segment 5m 2>"$tmp/recorder.log" &
recorder=$!; pids+=("$recorder")
wait_line "$tmp/recorder.log" "connected to the hub"
"$ffmpeg" -hide_banner -loglevel warning -nostdin -re -stream_loop -1 -i "$src" -c copy \
    -f flv "rtmp://127.0.0.1:$rtmp_port/live/soak" 2>"$tmp/publisher.log" &
publisher=$!; pids+=("$publisher")
wait_line "$tmp/hub.log" "publish started"
"$bin/loadgen" --addr "127.0.0.1:$rtmp_port" --name soak --no-publish --players "$players" \
    --churn "$churn" --ramp 50 --settle 0s --warmup 0s --duration "${secs}s" --threads 1 \
    >"$tmp/loadgen.log" 2>&1 &
loadgen=$!; pids+=("$loadgen")

# metric NAME: the hub's value of a series (labels included in NAME), or empty.
metric() {
    curl -s --max-time 5 "http://127.0.0.1:$http_port/metrics" | awk -v n="$1" '$1 == n { print $2; exit }'
}
# stats PID: rss_kib,fds,threads of a process (empty fields if it is gone).
stats() {
    local rss threads fds
    rss="$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)"
    threads="$(awk '/^Threads:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)"
    fds="$(ls "/proc/$1/fd" 2>/dev/null | wc -l)"
    echo "$rss,$fds,$threads"
}

echo "seconds,load1,hub_rss_kib,hub_fds,hub_threads,ingest_rss_kib,ingest_fds,ingest_threads,recorder_rss_kib,recorder_fds,recorder_threads,players,subscribers,recorded_kib" >"$csv"
start="$(date +%s)"
status=0
samples=$((secs / interval))
for ((i = 0; i <= samples; i++)); do
    now="$(date +%s)"
    rec_kib="$(du -sk "$tmp/rec" 2>/dev/null | cut -f1)"
    echo "$((now - start)),$(cut -d' ' -f1 /proc/loadavg),$(stats "$hub"),$(stats "$ingest"),$(stats "$recorder"),$(metric 'mediaserver_players{protocol="rtmp"}'),$(metric mediaserver_subscribers),${rec_kib:-0}" >>"$csv"
    for p in "$hub" "$ingest" "$recorder" "$publisher" "$loadgen"; do
        if ! kill -0 "$p" 2>/dev/null; then
            if [ "$p" = "$loadgen" ] && [ "$i" -ge "$samples" ]; then continue; fi
            echo "error: process $p ended early (sample $i)" >&2
            status=1
        fi
    done
    [ "$status" -eq 0 ] || break
    # Keep only the two newest recordings: the disk is shared.
    ls -t "$tmp/rec" 2>/dev/null | tail -n +3 | while read -r f; do rm -f "$tmp/rec/$f"; done
    next=$((start + (i + 1) * interval))
    now="$(date +%s)"
    if [ "$i" -lt "$samples" ] && [ "$next" -gt "$now" ]; then sleep "$((next - now))"; fi
done

# loadgen ends after its --duration; give it its reporting time.
for _ in $(seq 600); do kill -0 "$loadgen" 2>/dev/null || break; sleep 0.1; done
if wait "$loadgen"; then :; else
    echo "error: loadgen reported a failure" >&2
    status=1
fi
tail -n 12 "$tmp/loadgen.log"

echo "== $csv: first, min, max, last of each column"
awk -F, 'NR == 1 { for (c = 1; c <= NF; c++) h[c] = $c; next }
    { for (c = 1; c <= NF; c++) { if (NR == 2) { f[c] = $c; lo[c] = $c; hi[c] = $c }
        if ($c + 0 < lo[c] + 0) lo[c] = $c; if ($c + 0 > hi[c] + 0) hi[c] = $c; l[c] = $c } }
    END { for (c = 2; c <= length(h); c++) printf "%-18s %10s %10s %10s %10s\n", h[c], f[c], lo[c], hi[c], l[c] }' "$csv"
exit "$status"
