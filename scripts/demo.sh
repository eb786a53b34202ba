#!/usr/bin/env bash
# DEMO: the whole openclaw-oauth-keeper loop in a temporary directory, for someone without
# OpenClaw. Nothing outside the temporary directory is read or written (HOME, the config file and
# the tools' state all point into it); with Docker, one throw-away Compose project is started and
# removed again.
set -euo pipefail

PROG=demo.sh
usage() {
  cat <<'EOF'
Usage: scripts/demo.sh [--bin-dir DIR] [--docker | --no-docker] [--image NAME] [--keep]

DEMO of the openclaw-oauth-keeper loop in a temporary directory, with the real tools and a
stand-in for the Claude Code CLI (tests/claude-stand-in: it refreshes in its last 5 minutes as
the real CLI does, but talks to no server). No OpenClaw, no Claude account and no network needed.

Steps:
  credentials   a Claude CLI credentials file with 3 minutes left
  token-expiry  shows it inside the CLI's 5-minute refresh window
  layout        cred-sync copies it into a JSON-era OpenClaw layout: credentials/oauth.json,
                two agents' auth-profiles.json, a compose .env
  watch         cred-sync --watch starts in the background
  cli-poke      pokes the CLI, which refreshes (the access token and the expiry change)
  sync          cred-sync --watch copies the new token within a moment
  check         cred-sync --check: every copy in sync
  not-due       cli-poke again: not due, runs nothing (exit 1)
  docker        (with Docker) a busybox "gateway" container beside cred-sync --watch |
                compose-recreate --stdin: the store delivered the token, so it is kept
  reauth        a dead refresh token: cli-poke exits 3 and raises the REAUTH_NEEDED flag
  no-stub       the CLI's logged-out stub is not copied: every target keeps the last good token

Options:
  --bin-dir DIR   take token-expiry, cred-sync, cli-poke, compose-recreate and the `claude`
                  stand-in from DIR instead of building them with cargo
  --docker        run the docker step (fails when `docker info` does not work); default: run it
                  when `docker info` works, skip it otherwise. DOCKER_HOST is honoured.
  --no-docker     skip the docker step
  --image NAME    image for the gateway container (default busybox:latest; it needs sh and
                  sleep; pulled when missing)
  --keep          keep the temporary directory (its path is printed)
  -h, --help      this text

Only fingerprints are printed (sk-ant-oat01-…(8 hex): the first 8 hex digits of the token's
SHA-256), never a token. The tokens are random strings made up for the demo.

Exit status:
  0   every step behaved as expected
  1   a step did not: the message names it
  2   the tools could not be built or found, or Docker was asked for and does not work
  64  usage error
EOF
}

bin_dir=
docker_mode=auto
image=busybox:latest
keep=0
while (($#)); do
  case $1 in
    --bin-dir) (($# >= 2)) || { echo "$PROG: --bin-dir needs a directory" >&2; exit 64; }; bin_dir=$2; shift 2 ;;
    --bin-dir=*) bin_dir=${1#*=}; shift ;;
    --docker) docker_mode=on; shift ;;
    --no-docker) docker_mode=off; shift ;;
    --image) (($# >= 2)) || { echo "$PROG: --image needs a name" >&2; exit 64; }; image=$2; shift 2 ;;
    --image=*) image=${1#*=}; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "$PROG: unknown argument: $1 (see --help)" >&2; exit 64 ;;
  esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# --- output ---------------------------------------------------------------------------------
step_no=0
current=
step() { # NAME TITLE
  step_no=$((step_no + 1))
  current=$1
  printf '\n[DEMO] step %d %s: %s\n' "$step_no" "$1" "$2"
}
say() { printf '       %s\n' "$*"; }
ok() { printf '[DEMO] ok %s: %s\n' "$current" "$*"; }
reported=0
fail() {
  printf '[DEMO] FAILED at step %s: %s\n' "$current" "$*"
  reported=1
  show_logs
  exit 1
}
# Shows a captured log, indented; the tools never print tokens, and the redact filter makes sure.
show() {
  if [[ -s $1 ]]; then redact <"$1" | sed 's/^/         | /'; fi
}
redact() { sed -E 's/sk-ant-([a-z]{3}[0-9]{2})-[A-Za-z0-9_-]{20,}/sk-ant-\1-<REDACTED>/g'; }

# --- the tools ------------------------------------------------------------------------------
if [[ -z $bin_dir ]]; then
  command -v cargo >/dev/null || { echo "$PROG: cargo not found: install Rust or pass --bin-dir" >&2; exit 2; }
  echo "[DEMO] building the tools and the claude stand-in (cargo build)…"
  (cd "$repo" && cargo build --quiet -p token-expiry -p cred-sync -p cli-poke -p compose-recreate -p claude-stand-in) ||
    { echo "$PROG: cargo build failed" >&2; exit 2; }
  target=$(cd "$repo" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  bin_dir=$target/debug
fi
bin_dir=$(cd "$bin_dir" 2>/dev/null && pwd) || { echo "$PROG: --bin-dir: no such directory" >&2; exit 2; }
for tool in token-expiry cred-sync cli-poke compose-recreate claude; do
  [[ -x $bin_dir/$tool ]] || { echo "$PROG: $bin_dir/$tool: not found or not executable" >&2; exit 2; }
done

# --- Docker ---------------------------------------------------------------------------------
use_docker=0
if [[ $docker_mode != off ]]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    use_docker=1
  elif [[ $docker_mode == on ]]; then
    echo "$PROG: --docker: \`docker info\` does not work (is the engine running? DOCKER_HOST=${DOCKER_HOST:-unset})" >&2
    exit 2
  fi
fi
compose=()
if ((use_docker)); then
  if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
  elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
  elif [[ $docker_mode == on ]]; then
    echo "$PROG: --docker: neither \`docker compose\` nor \`docker-compose\` works" >&2
    exit 2
  else
    use_docker=0
  fi
fi

# --- the temporary world --------------------------------------------------------------------
# Nothing of the caller's set-up may leak in: no KEEPER_* setting, no keeper.env, no real home.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^KEEPER_' || true)
unset CLAUDE_CODE_OAUTH_TOKEN ANTHROPIC_OAUTH_TOKEN ANTHROPIC_API_KEY ANTHROPIC_AUTH_TOKEN ANTHROPIC_BASE_URL
umask 077
demo=$(mktemp -d "${TMPDIR:-/tmp}/openclaw-keeper-demo.XXXXXX")
watch_pid=
recreate_pid=
project=keeper-demo-$$
compose_up=0

show_logs() {
  for f in "$demo"/logs/*; do
    [[ -s $f ]] || continue
    printf '       --- %s\n' "${f#"$demo"/}"
    show "$f"
  done
}
cleanup() {
  local rc=$?
  set +e
  if ((rc != 0 && !reported)) && [[ -n $current ]]; then
    printf '[DEMO] FAILED at step %s: a command failed unexpectedly (status %d)\n' "$current" "$rc"
    show_logs
    rc=1
  fi
  [[ -n $watch_pid ]] && kill "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null
  [[ -n $recreate_pid ]] && kill "$recreate_pid" 2>/dev/null && wait "$recreate_pid" 2>/dev/null
  if ((compose_up)); then
    "${compose[@]}" -p "$project" --project-directory "$demo/compose" -f "$demo/compose/docker-compose.yml" \
      down --timeout 1 >/dev/null 2>&1
  fi
  if ((keep)); then
    printf '[DEMO] kept %s\n' "$demo"
  else
    rm -rf "$demo"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export HOME=$demo/home
export CLAUDE_CONFIG_DIR=$HOME/.claude
export XDG_STATE_HOME=$demo/state XDG_CONFIG_HOME=$demo/config
# An empty config file: a real /etc/openclaw-oauth-keeper/keeper.env must not steer the demo.
export KEEPER_CONFIG=$demo/keeper.env
: >"$KEEPER_CONFIG"
creds=$CLAUDE_CONFIG_DIR/.credentials.json
openclaw=$demo/openclaw
mkdir -p "$CLAUDE_CONFIG_DIR" "$openclaw/credentials" "$openclaw/agents/main/agent" "$openclaw/agents/research/agent" \
  "$demo/compose" "$demo/logs" "$demo/state"

printf '[DEMO] openclaw-oauth-keeper demo in %s (tools from %s; docker: %s)\n' "$demo" "$bin_dir" \
  "$( ((use_docker)) && echo "yes, ${compose[*]}, image $image" || echo no)"

te() { "$bin_dir/token-expiry" "$@"; }
poke() { "$bin_dir/cli-poke" --cli "$bin_dir/claude" --creds "$creds" --openclaw-dir "$openclaw" "$@"; }
# The demo's OpenClaw is JSON-era; an `openclaw` installed on this host must not decide that
# (cred-sync reads its version to detect the SQLite era), hence a command that does not exist.
targets=(--to "openclaw-profiles:$openclaw/agents/*/agent/auth-profiles.json"
  --to "openclaw-oauth:$openclaw/credentials/oauth.json"
  --to "dotenv:$demo/compose/.env"
  --openclaw-cmd "$demo/no-openclaw-here")
# An array, not a function: a function run with `&` is a subshell, and $! would be its pid, not
# cred-sync's (killing it would leave cred-sync running).
cred_sync=("$bin_dir/cred-sync" --from "$creds" "${targets[@]}")
csync() { "${cred_sync[@]}" "$@"; }
# A random token of the real shape, made up here; it goes into files only, never into argv.
new_token() { printf 'sk-ant-%s01-%s' "$1" "$(head -c 96 /dev/urandom | base64 -w0 | tr '+/' '-_' | cut -c1-95)"; }
now_ms() { date +%s%3N; }
# token-expiry --json gives the bare 8 hex digits; shown as the tools show them.
fp_of() { sed -n 's/.*"fingerprint":"\([^"]*\)".*/\1/p'; }
fp() { printf 'sk-ant-oat01-…(%s)' "$1"; }
source_fp() { te --json "$creds" 2>/dev/null | fp_of; }
# Fingerprint of the token variable in a container's environment (docker inspect, in memory).
container_fp() {
  docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$1" |
    sed -n 's/^ANTHROPIC_OAUTH_TOKEN=//p' | tr -d '\n' | sha256sum | cut -c1-8
}
gateway_id() {
  "${compose[@]}" -p "$project" --project-directory "$demo/compose" -f "$demo/compose/docker-compose.yml" \
    ps -q openclaw-gateway | head -n1
}
check_rows() { csync --check 2>"$demo/logs/check.err"; }

# --- 1. credentials ----------------------------------------------------------------------------
step credentials "a Claude CLI credentials file whose access token has 3 minutes left"
expires=$(($(now_ms) + 180000))
cat >"$creds" <<EOF
{
  "claudeAiOauth": {
    "accessToken": "$(new_token oat)",
    "refreshToken": "$(new_token ort)",
    "expiresAt": $expires,
    "scopes": ["user:inference", "user:profile"],
    "subscriptionType": "max"
  },
  "mcpOAuth": {}
}
EOF
first_fp=$(source_fp)
[[ -n $first_fp ]] || fail "token-expiry cannot read the file it was given"
say "$creds (mode 0600), access token $(fp "$first_fp")"
ok "written"

# --- 2. token-expiry ---------------------------------------------------------------------------
step token-expiry "token-expiry --within 5m: inside the CLI's 5-minute refresh window?"
set +e
te --within 5m "$creds" >"$demo/logs/token-expiry.out" 2>&1
rc=$?
set -e
show "$demo/logs/token-expiry.out"
((rc == 1)) || fail "token-expiry --within 5m exited $rc, expected 1 (within the window)"
ok "exit 1: within 5 minutes, the CLI will refresh on its next request"

# --- 3. layout ---------------------------------------------------------------------------------
step layout "cred-sync once into a JSON-era OpenClaw layout and a compose .env"
# A stale profile as the first seed left it: an `oauth` profile carrying a refresh token, in
# cooldown after errors. cred-sync replaces it by a `token` profile and clears the cooldown.
past=$(($(now_ms) - 3600000))
cat >"$openclaw/agents/main/agent/auth-profiles.json" <<EOF
{
  "version": 1,
  "profiles": {
    "anthropic:claude-code": {"type": "oauth", "provider": "anthropic",
      "access": "$(new_token oat)", "refresh": "$(new_token ort)", "expires": $past}
  },
  "usageStats": {"anthropic:claude-code": {"lastUsed": $past, "errorCount": 3, "cooldownUntil": $(($(now_ms) + 3600000))}}
}
EOF
printf '%s\n' '{"openai-codex": {"note": "another provider: kept as it is"}}' >"$openclaw/credentials/oauth.json"
printf '%s\n' '{"meta": {"lastTouchedVersion": "2026.5.20"},' \
  ' "agents": {"defaults": {"model": {"primary": "anthropic/claude-opus-4-6"}}}}' >"$openclaw/openclaw.json"
printf '%s\n' "# compose project of the demo gateway" "OPENCLAW_CONFIG_DIR=$openclaw" >"$demo/compose/.env"
set +e
csync >"$demo/logs/layout.out" 2>"$demo/logs/layout.err"
rc=$?
set -e
show "$demo/logs/layout.err"
((rc == 0)) || fail "cred-sync exited $rc, expected 0 (targets written)"
written=$(grep -c '"fingerprint"' "$demo/logs/layout.out" || true)
((written == 4)) || fail "cred-sync printed $written change lines, expected 4"
grep -q '"type": *"token"' "$openclaw/agents/main/agent/auth-profiles.json" ||
  fail "the main agent's profile is not a token profile"
if grep -q '"refresh"\|cooldownUntil' "$openclaw/agents/main/agent/auth-profiles.json"; then
  fail "the main agent's profile still holds a refresh token or its cooldown"
fi
grep -q openai-codex "$openclaw/credentials/oauth.json" || fail "oauth.json lost the other provider's entry"
ok "4 targets written: 2 agents (a token profile, refresh token and cooldown gone), oauth.json, .env"

# --- 4. watch ----------------------------------------------------------------------------------
step watch "cred-sync --watch in the background (inotify on the credentials' directory)"
if ((use_docker)); then
  image_ok=1
  docker image inspect "$image" >/dev/null 2>&1 || docker pull -q "$image" >/dev/null 2>&1 || image_ok=0
  if ((!image_ok)); then
    [[ $docker_mode == on ]] && fail "image $image is not there and cannot be pulled (--image NAME)"
    say "image $image is not there and cannot be pulled: skipping the docker step"
    use_docker=0
  fi
fi
if ((use_docker)); then
  # The gateway stand-in: a container that gets ANTHROPIC_OAUTH_TOKEN from the .env (env_file)
  # and stops at once on SIGTERM.
  cat >"$demo/compose/docker-compose.yml" <<EOF
services:
  openclaw-gateway:
    image: $image
    env_file: .env
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait \$\$!; done"]
EOF
  say "starting the demo gateway: ${compose[*]} -p $project up -d openclaw-gateway"
  compose_up=1
  "${compose[@]}" -p "$project" --project-directory "$demo/compose" -f "$demo/compose/docker-compose.yml" \
    up -d openclaw-gateway >"$demo/logs/compose-up.log" 2>&1 || fail "docker compose up failed"
  old_id=$(gateway_id)
  [[ -n $old_id ]] || fail "no gateway container after docker compose up"
  say "gateway container ${old_id:0:12}: ANTHROPIC_OAUTH_TOKEN $(fp "$(container_fp "$old_id")")"
  # The chain the sync-compose unit runs: cred-sync --watch | compose-recreate --stdin, here
  # through a FIFO so that each side can be stopped by its own pid.
  mkfifo "$demo/changes.fifo"
  "$bin_dir/compose-recreate" --stdin --project-dir "$demo/compose" -f "$demo/compose/docker-compose.yml" \
    -p "$project" --compose-cmd "${compose[*]}" --quiet-period 300ms --min-interval 1s --stop-timeout 1 \
    <"$demo/changes.fifo" >"$demo/logs/recreate.out" 2>"$demo/logs/recreate.err" &
  recreate_pid=$!
  "${cred_sync[@]}" --watch >"$demo/changes.fifo" 2>"$demo/logs/watch.err" &
  watch_pid=$!
else
  "${cred_sync[@]}" --watch >"$demo/logs/watch.out" 2>"$demo/logs/watch.err" &
  watch_pid=$!
fi
for _ in $(seq 100); do grep -q watching "$demo/logs/watch.err" 2>/dev/null && break; sleep 0.05; done
grep -q watching "$demo/logs/watch.err" || fail "cred-sync --watch did not start"
kill -0 "$watch_pid" 2>/dev/null || fail "cred-sync --watch exited"
show "$demo/logs/watch.err"
ok "watching (pid $watch_pid)"

# --- 5. cli-poke -------------------------------------------------------------------------------
step cli-poke "cli-poke: the CLI is due, so it runs \`claude -p 'say ok'\` and checks the token changed"
set +e
poke >"$demo/logs/poke.out" 2>&1
rc=$?
set -e
poked_at=$(now_ms)
show "$demo/logs/poke.out"
((rc == 0)) || fail "cli-poke exited $rc, expected 0 (refreshed)"
new_fp=$(source_fp)
[[ -n $new_fp && $new_fp != "$first_fp" ]] || fail "the credentials file still holds $(fp "$first_fp")"
ok "exit 0: refreshed, access token $(fp "$first_fp") -> $(fp "$new_fp") (about 8 hours left)"

# --- 6. sync -----------------------------------------------------------------------------------
step sync "cred-sync --watch copies the new token"
synced=0
for _ in $(seq 200); do
  if check_rows >"$demo/logs/check.out"; then synced=1 && break; fi
  sleep 0.05
done
elapsed=$(($(now_ms) - poked_at))
((synced)) || { show "$demo/logs/check.out"; fail "the copies are not in sync 10 s after the refresh"; }
grep -c "wrote .*$new_fp" "$demo/logs/watch.err" >/dev/null || fail "cred-sync --watch logged no write of $(fp "$new_fp")"
grep "wrote .*$new_fp" "$demo/logs/watch.err" | redact | sed 's/^/         | /'
ok "every target holds $(fp "$new_fp"), ${elapsed} ms after cli-poke returned"

# --- 7. check ----------------------------------------------------------------------------------
step check "cred-sync --check: one row per copy"
set +e
check_rows >"$demo/logs/check.out"
rc=$?
set -e
show "$demo/logs/check.out"
((rc == 0)) || fail "cred-sync --check exited $rc, expected 0"
in_sync=$(grep -c "^in-sync .*$new_fp" "$demo/logs/check.out" || true)
((in_sync == 4)) || fail "$in_sync of 4 rows are in-sync with $(fp "$new_fp")"
ok "exit 0: 4 of 4 copies current"

# --- 8. not-due --------------------------------------------------------------------------------
step not-due "cli-poke again: about 8 hours left, the CLI would not refresh"
set +e
poke >"$demo/logs/not-due.out" 2>&1
rc=$?
set -e
show "$demo/logs/not-due.out"
((rc == 1)) || fail "cli-poke exited $rc, expected 1 (not due)"
[[ $(source_fp) == "$new_fp" ]] || fail "the token changed although the refresh was not due"
ok "exit 1: not due, nothing run (a timer unit uses --not-due-ok to make that 0)"

# --- 9. docker ---------------------------------------------------------------------------------
step docker "the gateway's store delivered the token: compose-recreate keeps the container (no restart)"
if ((use_docker)); then
  done_line=
  for _ in $(seq 600); do
    done_line=$(grep -m1 "took it live; no recreation" "$demo/logs/recreate.err" 2>/dev/null || true)
    [[ -n $done_line ]] && break
    kill -0 "$recreate_pid" 2>/dev/null || break
    sleep 0.1
  done
  show "$demo/logs/recreate.err"
  [[ -n $done_line ]] || fail "compose-recreate did not see cred-sync's change lines within 60 s"
  ! grep -q "recreated" "$demo/logs/recreate.out" 2>/dev/null || fail "compose-recreate recreated the gateway for a change its store delivered"
  id=$(gateway_id)
  [[ $id == "$old_id" ]] || fail "the gateway container ${old_id:0:12} was replaced by ${id:0:12}"
  say "gateway container ${old_id:0:12} kept: OpenClaw reads auth-profiles.json on every lookup; the .env copy ($(fp "$new_fp")) is for its next start"
  ok "no restart: the store delivered $(fp "$new_fp")"
else
  say "skipped: no working Docker (run with --docker, or set DOCKER_HOST)"
  ok "skipped"
fi

# --- 10. reauth --------------------------------------------------------------------------------
step reauth "a dead refresh token: cli-poke --force, and the token endpoint says invalid_grant"
set +e
CLAUDE_STAND_IN_DEAD=1 poke --force >"$demo/logs/reauth.out" 2>&1
rc=$?
set -e
show "$demo/logs/reauth.out"
((rc == 3)) || fail "cli-poke exited $rc, expected 3 (REAUTH)"
[[ -f $openclaw/REAUTH_NEEDED ]] || fail "no REAUTH_NEEDED flag in $openclaw"
say "$openclaw/REAUTH_NEEDED:"
show "$openclaw/REAUTH_NEEDED"
ok "exit 3 and the REAUTH_NEEDED flag: a human must run \`claude auth login\`"

# --- 11. no-stub -------------------------------------------------------------------------------
step no-stub "the CLI wrote its logged-out stub; cred-sync must not copy it"
set +e
te "$creds" >"$demo/logs/stub.out" 2>&1
te_rc=$?
check_rows >"$demo/logs/check.out"
rc=$?
set -e
show "$demo/logs/stub.out"
say "cred-sync --check:"
show "$demo/logs/check.err"
((te_rc == 3)) || fail "token-expiry exited $te_rc on the stub, expected 3"
((rc == 3)) || fail "cred-sync --check exited $rc on the stub, expected 3"
kept=0
for f in "$openclaw"/agents/*/agent/auth-profiles.json "$openclaw/credentials/oauth.json" "$demo/compose/.env"; do
  row=$(te --json "$f" 2>/dev/null | fp_of || true) # a .env records no expiry: exit 5
  [[ $row == "$new_fp" ]] && kept=$((kept + 1))
done
((kept == 4)) || fail "$kept of 4 targets still hold $(fp "$new_fp")"
kill -0 "$watch_pid" 2>/dev/null || fail "cred-sync --watch died on the stub"
stub_line=
for _ in $(seq 100); do
  stub_line=$(grep -m1 'logged-out stub' "$demo/logs/watch.err" || true)
  [[ -n $stub_line ]] && break
  sleep 0.05
done
[[ -n $stub_line ]] || fail "cred-sync --watch logged nothing about the stub"
say "cred-sync --watch:"
printf '%s\n' "$stub_line" | redact | sed 's/^/         | /'
ok "4 of 4 targets keep $(fp "$new_fp"); the watcher logged the stub and goes on"

printf '\n[DEMO] every step behaved as expected\n'
