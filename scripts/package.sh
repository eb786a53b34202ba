#!/usr/bin/env bash
# Builds the Debian package in one command: the four tools (release), their man pages and shell
# completions (generated from the same clap definitions as --help, by crates/keeper-dist), the
# units with ExecStart= in /usr/bin, then `cargo deb` (configured in crates/keeper-dist/Cargo.toml).
# Prints the .deb's path on the last line. Installs cargo-deb (cargo install --locked) if missing.
#
#   scripts/package.sh            # -> target/debian/openclaw-oauth-keeper_VERSION-1_ARCH.deb
#   sudo apt install ./target/debian/openclaw-oauth-keeper_*.deb
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
tools=(token-expiry cred-sync cli-poke compose-recreate)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
# cargo-deb's asset paths (crates/keeper-dist/Cargo.toml) name this directory target/release/deb-staging.
staging=$target_dir/release/deb-staging

step() { printf '==> %s\n' "$*" >&2; }

if ! cargo deb --version >/dev/null 2>&1; then
    step "cargo install cargo-deb --locked"
    cargo install cargo-deb --locked
fi
command -v dpkg-deb >/dev/null || { echo "package.sh: dpkg-deb not found (apt-get install dpkg)" >&2; exit 69; }

# One release build: the tools and the generator share it (the generator links the tools' libs).
# The commit --version shows comes from crates/keeper-core/build.rs (git, else KEEPER_BUILD_COMMIT,
# else "unknown").
step "cargo build --release --locked (${tools[*]}, keeper-dist)"
build=(build --release --locked --target-dir "$target_dir" -p keeper-dist)
for t in "${tools[@]}"; do build+=(-p "$t"); done
cargo "${build[@]}" >&2

step "man pages, completions and units in $staging"
rm -rf "$staging"
mkdir -p "$staging"
"$target_dir/release/keeper-dist" "$staging" >/dev/null
gzip -9n "$staging"/man/*.1
# The units as the package installs them: the tools are in /usr/bin (the checkout's units name
# /usr/local/bin and ~/.local/bin, where setup.sh copies them from a source build).
for set in system user; do
    mkdir -p "$staging/units/$set"
    for f in "$repo/systemd/$set"/*; do
        case "$f" in *.service|*.timer|*.path|*.socket|*.target) ;; *) continue ;; esac
        sed -e '/^Exec/ { s#/usr/local/bin/#/usr/bin/#g; s#%h/\.local/bin/#/usr/bin/#g }' "$f" >"$staging/units/$set/${f##*/}"
    done
done
if grep -l '^Exec.*\(/usr/local/bin/\|%h/\.local/bin/\)' "$staging"/units/*/* >&2; then
    echo "package.sh: a unit above still runs a tool outside /usr/bin" >&2
    exit 1
fi

step "cargo deb --no-build -p keeper-dist"
mkdir -p "$target_dir/debian"
deb=$(cargo deb --no-build --locked -p keeper-dist --output "$target_dir/debian" | tail -n 1)
[ -f "$deb" ] || { echo "package.sh: cargo deb did not report a .deb (got: $deb)" >&2; exit 1; }
printf '%s\n' "$deb"
