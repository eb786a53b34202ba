#!/usr/bin/env bash
# Benchmark: cred-sync --watch latency (source rename → 3 targets durably written), p50/p99,
# beside a minimal inotify + fsync'd-write floor and the first seed's inotifywait + bash +
# python3 + sed pipeline; and cred-sync's idle RSS. The sides are interleaved write by write
# (each write goes to every side in turn, the order rotating), so a machine or disk that gets
# busier during the run slows every side alike; it prints per-round figures and each ratio's
# median and spread (min–max) across the rounds.
#
# Usage (from anywhere): scripts/bench-cred-sync.sh
# Environment: BENCH_WRITES (default 500) writes per side, BENCH_ROUNDS (default 5) rounds they
# are split into. The seed side needs inotifywait (Debian: inotify-tools) and python3, and is
# skipped without them.
# Targets: p99 within 1.5x of the floor; p50 at least 20x faster than the seed; idle RSS <= 4 MiB.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo bench --quiet -p cred-sync --bench sync_latency
