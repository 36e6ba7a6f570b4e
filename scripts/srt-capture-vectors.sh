#!/usr/bin/env bash
# Captures the SRT golden vectors in proto/tests/vectors/srt/: real libsrt handshakes, key
# material and data packets, recorded by a UDP relay between a libsrt caller (FFmpeg or
# srt-live-transmit) and a srt-live-transmit listener. Each line is "C <hex>" (caller to
# listener) or "L <hex>" (listener to caller). The passphrase is golden-passphrase-1.
set -euo pipefail
out=${1:-proto/tests/vectors/srt}
mkdir -p "$out"
FF=${FFMPEG:-$(python3 -c "import imageio_ffmpeg;print(imageio_ffmpeg.get_ffmpeg_exe())")}
relay=$(mktemp --suffix=.py)
trap 'rm -f "$relay"' EXIT
cat > "$relay" <<'PY'
import socket, sys, select, time
lp, tp, out, secs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", lp))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
client = None; end = time.time() + secs
with open(out, "w") as f:
    while time.time() < end:
        r, _, _ = select.select([s, u], [], [], 0.2)
        for sock in r:
            d, a = sock.recvfrom(65536)
            if sock is s:
                client = a; u.sendto(d, ("127.0.0.1", tp)); f.write("C " + d.hex() + "\n")
            elif client:
                s.sendto(d, client); f.write("L " + d.hex() + "\n")
PY
PASS=golden-passphrase-1
capture() { # name listener-options caller-options seconds
    srt-live-transmit "srt://127.0.0.1:9001?mode=listener$2" file://con >/dev/null 2>&1 &
    local slt=$!; sleep 0.5
    python3 "$relay" 9000 9001 "$out/$1.txt" "$4" & local r=$!; sleep 0.3
    timeout "$4" "$FF" -hide_banner -loglevel error -re -f lavfi -i testsrc=size=64x48:rate=25 \
        -t $(( $4 - 2 )) -c:v mpeg2video -f mpegts "srt://127.0.0.1:9000?mode=caller$3" || true
    wait $r; kill $slt 2>/dev/null || true; wait $slt 2>/dev/null || true
}
capture plain "" "&streamid=%23%21%3A%3Ar%3Dlive%2Fcam1%2Cm%3Dpublish&latency=120000" 4
capture aes16 "&passphrase=$PASS&pbkeylen=16" "&passphrase=$PASS&pbkeylen=16&streamid=live/cam1" 4
capture aes32 "&passphrase=$PASS&pbkeylen=32" "&passphrase=$PASS&pbkeylen=32&streamid=live/cam1" 4
capture badsecret "&passphrase=listener-secret-2" "&passphrase=$PASS&pbkeylen=16" 4
capture rotate24 "&passphrase=$PASS&pbkeylen=24" "&passphrase=$PASS&pbkeylen=24&kmrefreshrate=40&kmpreannounce=10" 5
# srt-live-transmit as the caller.
srt-live-transmit "srt://127.0.0.1:9001?mode=listener&passphrase=$PASS" file://con >/dev/null 2>&1 &
slt=$!; sleep 0.4
python3 "$relay" 9000 9001 "$out/slt_caller.txt" 3 & r=$!; sleep 0.3
"$FF" -hide_banner -loglevel error -f lavfi -i testsrc=size=64x48:rate=10 -t 1 -c:v mpeg2video -f mpegts - |
    timeout 2 srt-live-transmit file://con "srt://127.0.0.1:9000?passphrase=$PASS&streamid=live/slt" >/dev/null 2>&1 || true
wait $r; kill $slt 2>/dev/null || true; wait $slt 2>/dev/null || true
