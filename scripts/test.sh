#!/usr/bin/env bash
# Runs every check and every test of the workspace: formatting, lints, the binaries the
# end-to-end tests drive, then all unit, property and end-to-end tests.
#
# Needs FFmpeg 9 (`pip install imageio-ffmpeg`, or FFMPEG=/path/to/ffmpeg), and for the
# interop tests rtmpdump and GStreamer (see README.md; `.ci/run` installs all of it).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --bins
# The end-to-end tests start real servers and FFmpeg processes; each test binary runs
# them one at a time (a lock in the harness), and test binaries run one after another.
cargo test --workspace -- --test-threads=2
# Every fuzz target for a few seconds at production limits (longer runs: scripts/fuzz.sh;
# the counts reached are in docs/reliability.md). Skipped where cargo-fuzz is missing.
if cargo fuzz --version >/dev/null 2>&1; then
    scripts/fuzz.sh "${FUZZ_SECONDS:-3}"
else
    echo "cargo-fuzz not installed: fuzz targets not run (.ci/run installs it)"
fi
