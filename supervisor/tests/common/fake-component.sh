#!/bin/sh
# A stand-in for a component binary in supervisor tests. It parses flags the way a clap
# CLI would (rejecting unknown ones with clap's wording), exits 0 on --check, logs a line on
# stdout and its ready line on stderr, then becomes `sleep` so it has no children of its own.
name=$(basename "$0")
check=0 fail=0 never_ready=0 ignore_term=0 socket="" listen="127.0.0.1:1935" marker=""
for arg in "$@"; do
    flag="${arg%%=*}"
    value="${arg#*=}"
    case "$flag" in
    --socket) socket="$value" ;;
    --hub | --log-level) ;;
    --listen) listen="$value" ;;
    --check) check=1 ;;
    --fail) fail=1 ;;
    --never-ready) never_ready=1 ;;
    --ignore-term) ignore_term=1 ;;
    --cannot-start-marker) marker="$value" ;;
    --port)
        case "$value" in
        *[!0-9]* | '')
            echo "error: invalid value '$value' for '--port <PORT>': invalid digit found in string" >&2
            exit 2
            ;;
        esac
        ;;
    *)
        echo "error: unexpected argument '$flag' found" >&2
        echo >&2
        echo "Usage: $name [OPTIONS]" >&2
        exit 2
        ;;
    esac
done
[ "$check" = 1 ] && exit 0
echo "fake $name on stdout"
echo "fake $name starting: $*" >&2
if [ "$fail" = 1 ]; then
    echo "fake $name failing on purpose" >&2
    exit 3
fi
# With a marker: the first run creates it and runs; later runs exit with the
# cannot-start status (78), as a real component does when its port was taken meanwhile.
if [ -n "$marker" ]; then
    if [ -e "$marker" ]; then
        echo "fake $name cannot start" >&2
        exit 78
    fi
    : >"$marker"
fi
[ "$ignore_term" = 1 ] && trap '' TERM
if [ "$never_ready" = 0 ]; then
    case "$name" in
    hub) echo "INFO hub: listening on unix:$socket" >&2 ;;
    ingest-rtmp) echo "INFO ingest_rtmp: listening on rtmp://$listen" >&2 ;;
    ingest-srt) echo "INFO ingest_srt: listening on srt://$listen" >&2 ;;
    esac
fi
exec sleep 600
