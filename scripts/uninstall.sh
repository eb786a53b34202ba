#!/usr/bin/env bash
# Removes what scripts/setup.sh installed (its installed.list) and nothing else; the credentials
# and OpenClaw's own files stay. Same as `scripts/setup.sh --uninstall`; `--help` there.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/setup.sh" --uninstall "$@"
