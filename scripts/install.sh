#!/usr/bin/env bash
# Builds every server binary in release mode and installs it into one directory, so that
# they can be run by name and the supervisor finds its components next to itself.
#
#   scripts/install.sh                    # into ${CARGO_HOME:-~/.cargo}/bin (on PATH with rustup)
#   scripts/install.sh /usr/local/bin     # anywhere else
#
# The binaries are the workspace crates with a src/main.rs (hub, ingest-rtmp, recorder,
# supervisor, ...); the test tools are not installed.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
prefix="${1:-${CARGO_HOME:-$HOME/.cargo}/bin}"

cd "$repo"
cargo build --release --bins
mkdir -p "$prefix"
for main in */src/main.rs; do
    name="${main%%/*}"
    [ "$name" = tests ] && continue
    install -m 0755 "target/release/$name" "$prefix/$name"
    echo "installed $prefix/$name"
done
