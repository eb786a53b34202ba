#!/usr/bin/env bash
# Installs three real builds of the Claude Code CLI into DEST for cli-poke's real-CLI tests
# (crates/cli-poke/tests/real_cli.rs), which then run them offline behind tests/anthropic-mock:
#
#   DEST/bin/claude-2.1.112   the last release with a plain cli.js, run on the machine's node
#                             (writes the credentials file in place)
#   DEST/bin/claude-2.1.197   native binary (temp file + rename, the logged-out stub, one lock)
#   DEST/bin/claude-2.1.332   native binary (three locks with an owner record,
#                             refreshTokenExpiresAt, loginEnded)
#
# Usage: scripts/install-claude-for-tests.sh DEST
#   then: KEEPER_CLAUDE_DIR=DEST/bin cargo test -p cli-poke --test real_cli
#
# Needs npm and node (NODE, default: node in PATH; >= 18 for cli.js) and network access to the
# npm registry. The native builds come from the per-platform optional package
# (@anthropic-ai/claude-code-linux-x64 and friends), which npm picks by itself. About 600 MB and
# a minute cold.
#
# Versions are pinned: the tests assert what these releases do. Idempotent: a build already at
# its version is kept, so a re-run takes seconds and a CI cache of DEST works. Quiet: one line per
# step on stdout, everything else in DEST/install.log, whose tail goes to stderr on failure.
# Each wrapper is checked with `--version` inside a network namespace with nothing but loopback
# (when `unshare` works, i.e. as root), so "runs offline" is tested, not assumed.
set -euo pipefail

readonly VERSIONS=(2.1.112 2.1.197 2.1.332)
NODE=${NODE:-$(command -v node || true)}
NPM=${NPM:-$(command -v npm || true)}

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DEST" >&2
    exit 64
fi
mkdir -p "$1/bin"
DEST=$(cd "$1" && pwd)
LOG="$DEST/install.log"
: >"$LOG"
START=$SECONDS

say() { echo "install-claude: [$((SECONDS - START))s] $*"; }

fail() {
    {
        echo "install-claude: FAILED: $*"
        echo "---- last 40 lines of $LOG ----"
        tail -n 40 "$LOG"
    } >&2
    exit 1
}

[ -n "$NODE" ] && [ -x "$NODE" ] || fail "node not found (set NODE=/path/to/node)"
[ -n "$NPM" ] || fail "npm not found (set NPM=/path/to/npm)"
NODE=$(readlink -f "$NODE")

# Runs "$@" offline when a private network namespace can be made; else as is (with a note).
offline() {
    if unshare --net true 2>/dev/null; then
        unshare --net "$@"
    else
        "$@"
    fi
}

# The CLI's version as `--version` prints it ("2.1.332 (Claude Code)" → 2.1.332).
cli_version() {
    local home
    home=$(mktemp -d)
    # A throwaway home and config dir: the CLI may write its state there. Nothing the caller set
    # that would make it log in or phone home.
    HOME=$home CLAUDE_CONFIG_DIR=$home/.claude DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
        offline "$@" --version 2>>"$LOG" </dev/null | awk 'NR == 1 { print $1 }'
    rm -rf "$home"
}

# The native executable npm installed for this platform (the package's bin/claude.exe is a
# placeholder that its postinstall replaces; the platform package holds the real one).
native_binary() {
    local prefix=$1 candidate
    for candidate in "$prefix"/node_modules/@anthropic-ai/claude-code-linux-*/claude \
        "$prefix"/node_modules/@anthropic-ai/claude-code-linux-*/bin/claude \
        "$prefix/node_modules/@anthropic-ai/claude-code/bin/claude.exe"; do
        if [ -f "$candidate" ] && head -c 4 "$candidate" | grep -q $'\x7fELF'; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

install_claude() { # VERSION: DEST/bin/claude-VERSION runs @anthropic-ai/claude-code@VERSION
    local version=$1 prefix="$DEST/claude-code-$1" wrapper="$DEST/bin/claude-$1" have="" target
    local package="$prefix/node_modules/@anthropic-ai/claude-code/package.json"
    if [ -f "$prefix/.install-complete" ]; then
        have=$("$NODE" -p 'require(process.argv[1]).version' "$package" 2>>"$LOG" || true)
    fi
    if [ "$have" = "$version" ]; then
        say "$version: already installed"
    else
        say "$version: installing @anthropic-ai/claude-code@$version (npm)"
        rm -rf "$prefix"
        mkdir -p "$prefix"
        printf '{"private":true,"dependencies":{"@anthropic-ai/claude-code":"%s"}}\n' "$version" >"$prefix/package.json"
        local home
        home=$(mktemp -d)
        # A throwaway HOME: an install script must not touch the installing user's ~/.claude.
        # npm's cache stays the real user's, so a re-install is fast.
        local cache
        cache=$("$NPM" config get cache 2>>"$LOG") || fail "npm config get cache"
        (
            cd "$prefix"
            export HOME="$home" npm_config_cache="$cache" npm_config_update_notifier=false
            "$NPM" install --no-audit --no-fund --loglevel=warn
        ) >>"$LOG" 2>&1 || {
            rm -rf "$home"
            fail "npm install @anthropic-ai/claude-code@$version"
        }
        rm -rf "$home"
        have=$("$NODE" -p 'require(process.argv[1]).version' "$package" 2>>"$LOG" || true)
        [ "$have" = "$version" ] || fail "npm installed @anthropic-ai/claude-code '$have', not $version"
        touch "$prefix/.install-complete"
    fi
    if [ -f "$prefix/node_modules/@anthropic-ai/claude-code/cli.js" ]; then
        target="$prefix/node_modules/@anthropic-ai/claude-code/cli.js"
        cat >"$wrapper" <<EOF
#!/bin/sh
# Claude Code $version (cli.js on $("$NODE" --version)), installed by scripts/install-claude-for-tests.sh
exec "$NODE" "$target" "\$@"
EOF
    else
        target=$(native_binary "$prefix") || fail "$version: no native claude binary for this platform in $prefix"
        cat >"$wrapper" <<EOF
#!/bin/sh
# Claude Code $version (native), installed by scripts/install-claude-for-tests.sh
exec "$target" "\$@"
EOF
    fi
    chmod 0755 "$wrapper"
    have=$(cli_version "$wrapper") || true
    [ "$have" = "$version" ] || fail "$wrapper --version printed '$have', not $version (offline)"
    say "$version: $wrapper runs offline: $have"
}

unshare --net true 2>/dev/null || say "note: cannot make a network namespace (not root?): --version checked online"
for v in "${VERSIONS[@]}"; do
    install_claude "$v"
done
say "done: $(du -sh "$DEST" | cut -f1) in $DEST"
