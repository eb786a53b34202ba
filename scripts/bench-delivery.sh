#!/usr/bin/env bash
# Benchmark: what a token rotation costs the user of a real OpenClaw gateway, per design, side by
# side: a restart per rotation (today's default before issue 11, and the first seed's down/up
# without its container overhead, which scripts/bench-compose-recreate.sh measures) against the
# store delivery (the new default: cred-sync writes OpenClaw's store, 2026.9.6's paste-token tells
# the gateway, nothing restarts). Per rotation: restarts, seconds without a reply, requests still
# carrying the old token, failed requests; 2026.9.6 and 2026.6.1, 1 and 3 agents.
#
# Usage (repository root, as root: each run is in a network namespace of its own):
#   scripts/bench-delivery.sh [ROTATIONS] [extra flags: --agents 1,3 --generations sqlite,json]
# Needs the OpenClaw installs: scripts/install-openclaw-for-tests.sh DEST, then
# KEEPER_OPENCLAW_SQLITE=DEST/bin/openclaw-sqlite KEEPER_OPENCLAW_JSON=DEST/bin/openclaw-json.
# A restart of 2026.9.6 costs 10-40 s on 2 cores: 10 rotations of every combination take long.
set -euo pipefail

rotations="${1:-${BENCH_ROTATIONS:-10}}"
shift || true
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
: "${KEEPER_OPENCLAW_SQLITE:=/opt/keeper-test-openclaw/bin/openclaw-sqlite}"
: "${KEEPER_OPENCLAW_JSON:=/opt/keeper-test-openclaw/bin/openclaw-json}"
export KEEPER_OPENCLAW_SQLITE KEEPER_OPENCLAW_JSON

cargo build --quiet --release -p cred-sync --bin cred-sync
cargo build --quiet --release -p keeper-gateway-test --example bench_delivery
"$target/release/examples/bench_delivery" --cred-sync "$target/release/cred-sync" --rotations "$rotations" "$@"
