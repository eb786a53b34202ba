#!/usr/bin/env bash
# Benchmark: gateway downtime per token change, `compose-recreate --mode down-up` against
# `--mode recreate`, side by side, for every Compose installed (v1 and/or v2).
#
# Usage (from the repository root, as root: it starts a private Docker engine, as the tests do):
#   scripts/bench-compose-recreate.sh [ROUNDS]
# ROUNDS (default 5) recreations per mode and Compose, the modes alternating. Needs docker.io,
# containerd, runc, busybox-static and a Compose (see .ci/run). The probe is the engine's event
# stream: downtime runs from the stop signal to the old gateway container to the new one started
# ("running") and healthy; "wall" is the whole compose-recreate run, verification included.
set -euo pipefail

rounds="${1:-${BENCH_ROUNDS:-5}}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"

cargo build --quiet --release -p compose-recreate --bin compose-recreate --example bench_downtime
"$target/release/examples/bench_downtime" --bin "$target/release/compose-recreate" --rounds "$rounds"
