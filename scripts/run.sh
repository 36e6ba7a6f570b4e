#!/usr/bin/env bash
# Builds the server in release mode and runs it in the foreground under the supervisor:
# the built-in profile (hub, then ingest-rtmp with RTMP on 0.0.0.0:1935) unless a profile is
# given. Ctrl-C stops everything in order (a second Ctrl-C forces it).
#
#   scripts/run.sh                                   # rtmp://0.0.0.0:1935
#   scripts/run.sh --profile profiles/record.toml    # ... and record every stream
#   scripts/run.sh --profile profiles/dev.toml       # localhost only, debug logs
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bins
exec target/release/supervisor "$@"
