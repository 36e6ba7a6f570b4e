#!/usr/bin/env bash
# Builds the server in release mode and runs it in the foreground: the hub on a private
# socket, then ingest-rtmp (RTMP on :1935 unless --listen says otherwise). Ctrl-C stops both.
#
#   scripts/run.sh                                 # rtmp://0.0.0.0:1935
#   scripts/run.sh --listen 127.0.0.1:1935         # extra flags go to ingest-rtmp
#   HUB_ARGS="--on-duplicate reject" scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bins
runtime="$(mktemp -d -t mediaserver-XXXXXX)"
chmod 700 "$runtime"
socket="$runtime/hub.sock"

# shellcheck disable=SC2086 # HUB_ARGS is a list of flags
target/release/hub --socket "$socket" ${HUB_ARGS:-} &
hub_pid=$!
trap 'kill "$hub_pid" 2>/dev/null; wait "$hub_pid" 2>/dev/null; rm -rf "$runtime"' EXIT INT TERM

for _ in $(seq 100); do
    [ -S "$socket" ] && break
    kill -0 "$hub_pid" 2>/dev/null || { echo "hub exited" >&2; exit 1; }
    sleep 0.1
done
[ -S "$socket" ] || { echo "hub did not create $socket" >&2; exit 1; }

target/release/ingest-rtmp --hub "$socket" "$@"
