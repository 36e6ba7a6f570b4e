#!/usr/bin/env bash
# Builds the server in release mode and runs it in the foreground under the supervisor:
# the built-in profile (hub, then ingest-rtmp with RTMP on 0.0.0.0:1935) unless a profile is
# given. Ctrl-C stops everything in order (a second Ctrl-C forces it).
#
#   scripts/run.sh                                   # rtmp://0.0.0.0:1935
#   scripts/run.sh --profile profiles/record.toml    # ... and record every stream
#   scripts/run.sh --profile profiles/dev.toml       # localhost only, debug logs
#   scripts/run.sh check my.toml                     # validate a profile
#
# A relative file given on the command line (a profile, `check FILE`, --runtime-dir,
# --bin-dir) is taken from the directory you run this in, else from the repository, so
# both `scripts/run.sh --profile my.toml` next to your file and
# `../mediaserver/scripts/run.sh --profile profiles/record.toml` work. The supervisor
# runs in the repository root: relative paths inside a profile (the recorder's
# `dir = "./recordings"`) are relative to it, and `recordings/` is git-ignored.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

# Absolute path for a relative argument that exists here or in the repository.
resolve() {
    case "$1" in
    /*) printf '%s\n' "$1" ;;
    *)
        if [ -e "$1" ]; then
            printf '%s/%s\n' "$(pwd)" "$1"
        elif [ -e "$repo/$1" ]; then
            printf '%s/%s\n' "$repo" "$1"
        else
            printf '%s\n' "$1"
        fi
        ;;
    esac
}

args=()
expect_path=0
for arg in "$@"; do
    if [ "$expect_path" = 1 ]; then
        args+=("$(resolve "$arg")")
        expect_path=0
        continue
    fi
    case "$arg" in
    --profile | --runtime-dir | --bin-dir | check)
        args+=("$arg")
        expect_path=1
        ;;
    --profile=* | --runtime-dir=* | --bin-dir=*)
        args+=("${arg%%=*}=$(resolve "${arg#*=}")")
        ;;
    *) args+=("$arg") ;;
    esac
done

cd "$repo"
cargo build --release --bins
exec target/release/supervisor "${args[@]+"${args[@]}"}"
