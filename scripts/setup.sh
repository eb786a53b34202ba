#!/usr/bin/env bash
# Build and install the openclaw-oauth-keeper tools.
#
# Today this builds and installs the binaries that exist (see README's tool table). The full
# set-up wizard (config file, systemd units, OpenClaw detection) grows here as the tools land.
set -euo pipefail

usage() {
    cat <<USAGE
Usage: scripts/setup.sh [--prefix DIR] [--dry-run]

Builds the tools in release mode and installs them into PREFIX/bin.
  --prefix DIR   install root (default: /usr/local for root, ~/.local otherwise)
  --dry-run      print what would be done, change nothing
USAGE
}

repo=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -eq 0 ]; then prefix=/usr/local; else prefix="$HOME/.local"; fi
dry_run=false
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --dry-run) dry_run=true; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "setup.sh: unknown option: $1" >&2; usage >&2; exit 64 ;;
    esac
done

# The binary crates: every crate under crates/ that has a src/main.rs.
tools=()
for main in "$repo"/crates/*/src/main.rs; do
    tools+=("$(basename "$(dirname "$(dirname "$main")")")")
done

run() {
    echo "+ $*"
    if ! $dry_run; then "$@"; fi
}

command -v cargo >/dev/null || { echo "setup.sh: cargo not found: install Rust (https://rustup.rs) first" >&2; exit 69; }

echo "step 1/2: build and install ${tools[*]} into $prefix/bin"
for tool in "${tools[@]}"; do
    run cargo install --quiet --locked --force --path "$repo/crates/$tool" --root "$prefix"
done

echo "step 2/2: check the installed tools run"
for tool in "${tools[@]}"; do
    if $dry_run; then
        echo "+ $prefix/bin/$tool --version"
    else
        "$prefix/bin/$tool" --version
    fi
done

case ":$PATH:" in
    *":$prefix/bin:"*) ;;
    *) echo "note: $prefix/bin is not on your PATH" ;;
esac
echo "done: installed ${tools[*]}"
