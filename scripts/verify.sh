#!/usr/bin/env bash
# The health check of an openclaw-oauth-keeper install, as a table: CHECK | STATUS | DETAIL.
# Never prints a token: tokens only travel through pipes into sha256sum; the tools it runs print
# fingerprints, and every detail is filtered for token-shaped text besides.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/verify.sh [--user|--system] [--config FILE] [--root DIR]

Checks an openclaw-oauth-keeper install and prints a table CHECK | STATUS | DETAIL, one row per
check; STATUS is ok, warn, FAIL or skip (the check does not apply to this install):
  config                  the config file setup wrote (keeper.env) is readable
  unit UNIT               every unit setup enabled (KEEPER_UNITS) is active; a timer is scheduled
                          (next elapse) and its service's last run did not fail
  token expiry            the Claude CLI's token (token-expiry --json); in setup-token mode the
                          long-lived token's KEEPER_SETUP_TOKEN_EXPIRES_MS (warn under 30 days)
  login end               when the Claude login ends (the CLI's refreshTokenExpiresAt, about 30
                          days after `claude auth login`; refreshes never move it): warn within
                          KEEPER_WARN_LOGIN_WITHIN (default 3d, as cli-poke), FAIL once it has
                          passed; skipped when the file records none (CLI before 2.1.203)
  copy KIND PATH          every target holds the current token (cred-sync --check --json)
  gateway token           the running gateway holds the current token's fingerprint: the
                          container's environment (docker inspect) or /proc/MainPID/environ of
                          the gateway user unit; skipped without a dotenv/systemd-dropin target
  openclaw models status  `openclaw models status --json` shows no expired or blocked Anthropic
                          profile; skipped when OpenClaw cannot be run from here
  REAUTH flag             absent (present: a human must run `claude auth login`)

Options:
  --user          the user install (~/.config/openclaw-oauth-keeper/keeper.env, systemctl --user)
  --system        the system install (/etc/openclaw-oauth-keeper/keeper.env) [default for root]
  --config FILE   the config file [default: the install's keeper.env]
  --root DIR      a staging root (setup.sh --root): check that the config and unit files exist
                  under DIR; the checks of a running install are skipped
  -h, --help      this text

Exit status:
  0   every check ok (warnings and skips allowed)
  1   at least one check FAILed
  64  usage error

Fingerprints are the first 8 hex digits of the token's SHA-256, as the tools print them.
USAGE
}

die_usage() {
    echo "verify.sh: $*" >&2
    echo "Try 'verify.sh --help'." >&2
    exit 64
}

scope=""
config=""
root=""
while [ $# -gt 0 ]; do
    case "$1" in
        --user) scope=user; shift ;;
        --system) scope=system; shift ;;
        --config) [ $# -ge 2 ] || die_usage "--config needs a file"; config=$2; shift 2 ;;
        --config=*) config=${1#--config=}; shift ;;
        --root) [ $# -ge 2 ] || die_usage "--root needs a directory"; root=$2; shift 2 ;;
        --root=*) root=${1#--root=}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die_usage "unknown argument: $1" ;;
    esac
done
if [ -z "$scope" ]; then
    if [ "$(id -u)" -eq 0 ]; then scope=system; else scope=user; fi
fi
if [ -n "$root" ] && [ ! -d "$root" ]; then die_usage "--root $root: not a directory"; fi

if [ "$scope" = system ]; then
    default_config=/etc/openclaw-oauth-keeper/keeper.env
    unit_dir=/etc/systemd/system
    bin_dir=/usr/local/bin
    systemctl=(systemctl)
    systemctl_hint="systemctl"
else
    # Where setup.sh writes them and the units read them (%h/.config/…), whatever XDG_CONFIG_HOME says.
    default_config="$HOME/.config/openclaw-oauth-keeper/keeper.env"
    unit_dir="$HOME/.config/systemd/user"
    bin_dir="$HOME/.local/bin"
    systemctl=(systemctl --user)
    systemctl_hint="systemctl --user"
fi
config=${config:-$root$default_config}

failed=0
redact() { sed -E 's/sk-ant-[a-z]{3}[0-9]{2}-[A-Za-z0-9_-]{20,}/sk-ant-…(hidden)/g'; }
row() { # CHECK STATUS DETAIL
    [ "$2" = FAIL ] && failed=1
    printf '%-44s | %-4s | %s\n' "$1" "$2" "$(printf '%s' "$3" | tr '\n' ' ' | redact)"
}

# The config: systemd EnvironmentFile syntax; read as data, never sourced.
declare -A cfg=()
read_config() {
    local line key value
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line#"${line%%[![:space:]]*}"}
        case "$line" in '' | '#'* | ';'*) continue ;; esac
        [[ "$line" == *=* ]] || continue
        key=${line%%=*}
        key=${key%"${key##*[![:space:]]}"}
        key=${key#export }
        value=${line#*=}
        value=${value#"${value%%[![:space:]]*}"}
        value=${value%"${value##*[![:space:]]}"}
        if [[ "$value" == \"*\" && ${#value} -ge 2 ]] || [[ "$value" == \'*\' && ${#value} -ge 2 ]]; then
            value=${value:1:${#value}-2}
        fi
        cfg[$key]=$value
    done <"$1"
}
get() { printf '%s' "${cfg[$1]:-${2:-}}"; }

printf '%-44s | %-4s | %s\n' CHECK STATUS DETAIL

if [ ! -r "$config" ]; then
    row config FAIL "$config is missing or unreadable: run scripts/setup.sh (or name the file with --config)"
    exit 1
fi
read_config "$config"
mode=$(get KEEPER_MODE refresh)
row config ok "$config (install: $(get KEEPER_INSTALL "$scope"), mode: $mode, gateway: $(get KEEPER_GATEWAY unknown))"

# Which units setup enabled.
units=$(get KEEPER_UNITS)
if [ -z "${cfg[KEEPER_UNITS]+set}" ]; then
    # Not recorded: what setup enables by default.
    [ "$mode" = setup-token ] || units="openclaw-keeper-refresh.timer"
    units="$units $(get KEEPER_SYNC_UNIT openclaw-keeper-sync.service)"
fi

if [ -n "$root" ]; then
    for unit in $units; do
        if [ -f "$root$unit_dir/$unit" ]; then
            row "unit $unit" ok "installed in $root$unit_dir"
        elif [ -f "/usr/lib/systemd/$scope/$unit" ]; then
            row "unit $unit" ok "the package's, in /usr/lib/systemd/$scope"
        else
            row "unit $unit" FAIL "$root$unit_dir/$unit is missing"
        fi
    done
    for check in "token expiry" "login end" "copies" "gateway token" "openclaw models status" "REAUTH flag"; do
        row "$check" skip "--root: a staging root, not a running install"
    done
    exit "$failed"
fi

# The tools: where setup installed them (KEEPER_BIN_DIR: --prefix), else the default, else PATH.
tool() {
    if [ -n "$(get KEEPER_BIN_DIR)" ] && [ -x "$(get KEEPER_BIN_DIR)/$1" ]; then printf '%s' "$(get KEEPER_BIN_DIR)/$1"
    elif [ -x "$bin_dir/$1" ]; then printf '%s' "$bin_dir/$1"; else command -v "$1" || printf '%s' "$1"; fi
}
token_expiry=$(tool token-expiry)
cred_sync=$(tool cred-sync)

# A field of a flat one-line JSON object (the tools' --json rows).
jstr() { sed -n "s/.*\"$2\":\"\\([^\"]*\\)\".*/\\1/p" <<<"$1"; }
jnum() { sed -n "s/.*\"$2\":\\(-\\{0,1\\}[0-9][0-9]*\\).*/\\1/p" <<<"$1"; }
# The 8-hex fingerprint inside a tool's "sk-ant-oat01-…(1a2b3c4d)" or a bare one.
fp_of() { grep -oE '[0-9a-f]{8}' <<<"$1" | tail -n 1 || true; }
human() { # seconds
    local s=$1 sign=""
    if [ "$s" -lt 0 ]; then sign="-"; s=$((-s)); fi
    if [ "$s" -ge 86400 ]; then printf '%s%dd %dh' "$sign" $((s / 86400)) $((s % 86400 / 3600))
    elif [ "$s" -ge 3600 ]; then printf '%s%dh %dm' "$sign" $((s / 3600)) $((s % 3600 / 60))
    else printf '%s%dm %ds' "$sign" $((s / 60)) $((s % 60)); fi
}
# A duration as the tools take it (humantime: 3d, 72h, 1d12h, "2days 4h", 0) in seconds; fails
# for anything else.
duration_seconds() {
    local rest=${1//[[:space:]]/} total=0 n unit
    [ -n "$rest" ] || return 1
    [ "$rest" = 0 ] && { printf '0'; return 0; }
    while [ -n "$rest" ]; do
        [[ "$rest" =~ ^([0-9]+)([a-z]+)(.*)$ ]] || return 1
        n=$((10#${BASH_REMATCH[1]})) unit=${BASH_REMATCH[2]} rest=${BASH_REMATCH[3]}
        case "$unit" in
            s | sec | secs | second | seconds) ;;
            m | min | mins | minute | minutes) n=$((n * 60)) ;;
            h | hr | hrs | hour | hours) n=$((n * 3600)) ;;
            d | day | days) n=$((n * 86400)) ;;
            w | week | weeks) n=$((n * 604800)) ;;
            *) return 1 ;;
        esac
        total=$((total + n))
    done
    printf '%s' "$total"
}

# --- units
unit_prop() { "${systemctl[@]}" show -p "$2" --value "$1" 2>/dev/null || true; }
journal_hint() {
    if [ "$scope" = user ]; then printf 'journalctl --user-unit %s' "$1"; else printf 'journalctl -u %s' "$1"; fi
}
manager_ok=1
"${systemctl[@]}" show -p Version --value >/dev/null 2>&1 || manager_ok=0
for unit in $units; do
    if [ "$manager_ok" -eq 0 ]; then
        row "unit $unit" FAIL "cannot reach the service manager ($systemctl_hint)"
        continue
    fi
    state=$(unit_prop "$unit" ActiveState)
    case "$unit" in
        *.path)
            # A waiting path unit is active: SubState waiting (running while its service runs).
            if [ "$state" = active ]; then
                row "unit $unit" ok "active ($(unit_prop "$unit" SubState)), watching: $(unit_prop "$unit" Paths)"
            else
                row "unit $unit" FAIL "${state:-unknown} ($(unit_prop "$unit" Result)): $systemctl_hint enable --now $unit; $(journal_hint "$unit")"
            fi
        ;;&
        *.timer)
            next=$(unit_prop "$unit" NextElapseUSecRealtime)
            if [ -z "$next" ] || [ "$next" = n/a ]; then
                # A monotonic timer (OnUnitActiveSec=…): time since boot.
                next=$(unit_prop "$unit" NextElapseUSecMonotonic)
                case "$next" in "" | 0 | infinity) next="" ;; *) next="$next after boot" ;; esac
            fi
            if [ "$state" = active ] && [ -n "$next" ] && [ "$next" != n/a ]; then
                row "unit $unit" ok "active, next: $next"
            else
                row "unit $unit" FAIL "${state:-unknown}, next: ${next:-none}: $systemctl_hint enable --now $unit"
            fi
        ;;&
        *.timer|*.path)
            service=$(unit_prop "$unit" Unit)
            service=${service:-${unit%.*}.service}
            sstate=$(unit_prop "$service" ActiveState)
            result=$(unit_prop "$service" Result)
            last=$(unit_prop "$service" ExecMainExitTimestamp)
            if [ "$sstate" = failed ]; then
                row "unit $service" FAIL "last run failed ($result): $(journal_hint "$service")"
            elif [ -z "$last" ]; then
                row "unit $service" ok "not run yet"
            else
                row "unit $service" ok "last run $last: ${result:-success}"
            fi
            ;;
        *)
            if [ "$state" = active ]; then
                row "unit $unit" ok "active since $(unit_prop "$unit" ActiveEnterTimestamp), pid $(unit_prop "$unit" MainPID)"
            else
                row "unit $unit" FAIL "${state:-unknown} ($(unit_prop "$unit" Result)): $(journal_hint "$unit")"
            fi
            ;;
    esac
done

# --- token expiry
expected_fp=""
if [ "$mode" = setup-token ]; then
    expires_ms=$(get KEEPER_SETUP_TOKEN_EXPIRES_MS)
    if [[ "$expires_ms" =~ ^[0-9]+$ ]]; then
        left=$((expires_ms / 1000 - $(date +%s)))
        when=$(date -u -d "@$((expires_ms / 1000))" +%Y-%m-%dT%H:%M:%SZ)
        if [ "$left" -le 0 ]; then
            row "token expiry" FAIL "the setup-token expired $when: run \`claude setup-token\` and scripts/setup.sh --setup-token again"
        elif [ "$left" -lt $((30 * 86400)) ]; then
            row "token expiry" warn "the setup-token expires $when (in $(human "$left")): renew it with \`claude setup-token\` soon"
        else
            row "token expiry" ok "the setup-token expires $when (in $(human "$left"))"
        fi
    else
        row "token expiry" warn "KEEPER_SETUP_TOKEN_EXPIRES_MS is not set: the setup-token's age is unknown"
    fi
else
    creds=$(get KEEPER_CREDENTIALS "${CLAUDE_CONFIG_DIR:-$HOME/.claude}/.credentials.json")
    set +e
    line=$("$token_expiry" --config "$config" --json "$creds" 2>/dev/null | head -n 1)
    set -e
    status=$(jstr "$line" status)
    left=$(jnum "$line" remaining_seconds)
    expected_fp=$(jstr "$line" fingerprint)
    source_expires_ms=$(jnum "$line" expires_at_ms)
    case "$status" in
        # login-ending (a config's KEEPER_LOGIN_WITHIN): the token itself is fine; the login row says the rest.
        ok | login-ending) row "token expiry" ok "$creds: $expected_fp expires $(jstr "$line" expires_at) (in $(human "${left:-0}"))" ;;
        expired)
            if [ "${left:-0}" -gt -600 ]; then
                row "token expiry" warn "$creds: expired $(human "$((-left))") ago: the refresh timer should renew it within minutes"
            else
                # The refresh unit setup enabled: the CLI's, or the direct fallback's (--refresh direct).
                refresh_unit=openclaw-keeper-refresh.service
                case " $units " in *" openclaw-keeper-refresh-direct.timer "*) refresh_unit=openclaw-keeper-refresh-direct.service ;; esac
                row "token expiry" FAIL "$creds: expired $(human "$((-left))") ago: is the refresh timer running? see $(journal_hint "$refresh_unit")"
            fi
            ;;
        logged-out) row "token expiry" FAIL "$creds: the CLI is logged out (its refresh failed): run \`claude auth login\`" ;;
        "") row "token expiry" FAIL "$creds: token-expiry gave no answer ($token_expiry)" ;;
        *) row "token expiry" FAIL "$creds: $status $(jstr "$line" error)" ;;
    esac
    # The login's hard end (refreshTokenExpiresAt, CLI 2.1.203 and later): about 30 days after
    # `claude auth login`, never moved by a refresh. Warned about as cli-poke does
    # (KEEPER_WARN_LOGIN_WITHIN, default 3d; 0 turns the warning off).
    login_left=$(jnum "$line" login_remaining_seconds)
    login_at=$(jstr "$line" login_expires_at)
    warn_within=$(get KEEPER_WARN_LOGIN_WITHIN 3d)
    warn_s=$(duration_seconds "$warn_within") || warn_s=""
    warn_note=""
    if [ -z "$warn_s" ]; then warn_s=$((3 * 86400)); warn_note=" (KEEPER_WARN_LOGIN_WITHIN=$warn_within is not a duration: 3d used)"; fi
    if [ "$status" = logged-out ] || [ -z "$status" ]; then
        :  # the token row already says it
    elif [ -z "$login_left" ]; then
        row "login end" skip "$creds records no login end (refreshTokenExpiresAt: CLI 2.1.203 and later)"
    elif [ "$login_left" -le 0 ]; then
        row "login end" FAIL "the Claude login ended $login_at: run \`claude auth login\` (or move to \`claude setup-token\` for unattended use)"
    elif [ "$warn_s" -gt 0 ] && [ "$login_left" -le "$warn_s" ]; then
        row "login end" warn "the Claude login ends $login_at (in $(human "$login_left")); refreshes do not move it: run \`claude auth login\` before then (or move to \`claude setup-token\` for unattended use)$warn_note"
    else
        row "login end" ok "the Claude login ends $login_at (in $(human "$login_left")); a warning from $(human "$warn_s") before$warn_note"
    fi
fi

# --- copies
env_targets=()  # dotenv / systemd-dropin paths: what a gateway's environment comes from
store_stale=no  # a copy is not current (cred-sync --check)
store_delivers=no  # a store target: the running gateway takes the token from it, not from its environment
for target in $(get KEEPER_TO); do
    case "$target" in
        dotenv:* | dotenv,*:* | systemd-dropin:* | systemd-dropin,*:*) env_targets+=("${target#*:}") ;;
        openclaw-paste* | openclaw-profiles:* | openclaw-profiles,*:* | openclaw-oauth:* | openclaw-oauth,*:*) store_delivers=yes ;;
    esac
done
if [ "$(get KEEPER_CLI_BACKEND no)" = yes ]; then
    row copies skip "OpenClaw runs the Claude CLI itself (claude-cli backend): nothing is copied"
elif [ "$mode" = setup-token ]; then
    # No source file: the copies must agree with each other.
    if [ ${#env_targets[@]} -eq 0 ]; then
        row copies skip "no dotenv or systemd-dropin target in KEEPER_TO"
    fi
    for path in "${env_targets[@]}"; do
        path=${path/#\~/$HOME}
        line=$("$token_expiry" --config "$config" --json "$path" 2>/dev/null | head -n 1 || true)
        fp=$(jstr "$line" fingerprint)
        if [ -z "$fp" ]; then
            row "copy $path" FAIL "no token found in $path"
        elif [ -z "$expected_fp" ] || [ "$fp" = "$expected_fp" ]; then
            expected_fp=$fp
            row "copy $path" ok "holds $fp"
        else
            row "copy $path" FAIL "holds $fp, another copy holds $expected_fp: run scripts/setup.sh --setup-token again"
        fi
    done
else
    set +e
    errfile=$(mktemp)
    rows=$("$cred_sync" --config "$config" --check --json 2>"$errfile")
    rc=$?
    set -e
    err=$(grep -v '^$' "$errfile" | tail -n 1 || true)
    rm -f "$errfile"
    any=0
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        kind=$(jstr "$line" kind)
        [ "$kind" = source ] && continue
        any=1
        state=$(jstr "$line" state)
        target=$(jstr "$line" target)
        detail=$(jstr "$line" detail)
        case "$state" in
            in-sync) row "copy $kind $target" ok "holds $(jstr "$line" fingerprint)" ;;
            *) store_stale=yes; row "copy $kind $target" FAIL "$state${detail:+: $detail} (the sync service should fix this; see $(journal_hint "$(get KEEPER_SYNC_UNIT openclaw-keeper-sync.service)"))" ;;
        esac
    done <<<"$rows"
    if [ "$any" -eq 0 ]; then
        if [ "$rc" -eq 0 ]; then row copies skip "no targets configured (KEEPER_TO)"
        else row copies FAIL "cred-sync --check exited $rc: $err"; fi
    fi
fi

# --- the running gateway's token
key=$(get KEEPER_ENV_KEY ANTHROPIC_OAUTH_TOKEN)
# The token goes from the environment list through the pipe into sha256sum; only 8 hex come out.
fingerprint_env() { sed -n "s/^$key=//p" | head -n 1 | tr -d '\n' | sha256sum | cut -c1-8; }
gateway=$(get KEEPER_GATEWAY)
empty_fp=$(printf '' | sha256sum | cut -c1-8)
if [ ${#env_targets[@]} -eq 0 ]; then
    row "gateway token" skip "no dotenv or systemd-dropin target: the gateway does not take the token from its environment"
else
    # The expected token: the source's (refresh mode); in setup-token mode the environment file's.
    want=$(fp_of "$expected_fp")
    if [ -z "$want" ]; then
        for path in "${env_targets[@]}"; do
            path=${path/#\~/$HOME}
            line=$("$token_expiry" --config "$config" --json "$path" 2>/dev/null | head -n 1 || true)
            want=$(fp_of "$(jstr "$line" fingerprint)")
            [ -n "$want" ] && break
        done
    fi
    have=""
    where=""
    case "$gateway" in
        user-unit)
            gunit=$(get KEEPER_GATEWAY_UNIT openclaw-gateway.service)
            pid=$(unit_prop "$gunit" MainPID)
            where="$gunit (pid ${pid:-?})"
            if [ -n "$pid" ] && [ "$pid" != 0 ] && [ -r "/proc/$pid/environ" ]; then
                have=$(tr '\0' '\n' <"/proc/$pid/environ" | fingerprint_env)
            fi
            ;;
        docker)
            container=$(get KEEPER_GATEWAY_CONTAINER)
            if [ -z "$container" ] && [ -n "$(get KEEPER_PROJECT_DIR)" ]; then
                service=$(get KEEPER_SERVICES openclaw-gateway)
                if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
                # The project as compose-recreate names it: -p, -f files (colon-separated).
                [ -z "$(get KEEPER_COMPOSE_PROJECT)" ] || compose+=(-p "$(get KEEPER_COMPOSE_PROJECT)")
                IFS=: read -r -a compose_files <<<"$(get KEEPER_COMPOSE_FILES)"
                for file in "${compose_files[@]}"; do compose+=(-f "$file"); done
                container=$(cd "$(get KEEPER_PROJECT_DIR)" 2>/dev/null && "${compose[@]}" ps -q "${service%% *}" 2>/dev/null | head -n 1) || container=""
            fi
            where="container ${container:-?}"
            if [ -n "$container" ]; then
                have=$(docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$container" 2>/dev/null | fingerprint_env || true)
            fi
            ;;
    esac
    if [ -z "$gateway" ]; then
        row "gateway token" skip "KEEPER_GATEWAY is not set"
    elif [ -z "$have" ]; then
        row "gateway token" FAIL "$where: not running or not readable"
    elif [ "$have" = "$empty_fp" ] && [ "$store_delivers" = yes ] && [ "$store_stale" = no ]; then
        row "gateway token" ok "$where has no $key in its environment; the store delivers the current ${want:-token}"
    elif [ "$have" = "$empty_fp" ]; then
        row "gateway token" FAIL "$where: $key is not in its environment"
    elif [ -z "$want" ]; then
        row "gateway token" warn "$where holds $have; no current token to compare with"
    elif [ "$have" = "$want" ]; then
        row "gateway token" ok "$where holds $have"
    elif [ "$store_delivers" = yes ] && [ "$store_stale" = yes ]; then
        row "gateway token" warn "$where started with $have; the store should deliver $want, but a copy is stale (above)"
    elif [ "$store_delivers" = yes ]; then
        # docs/ARCHITECTURE.md, "Delivery": a usable store profile wins over the variable, and
        # the store is re-read on every lookup, so no restart follows a rotation.
        row "gateway token" ok "$where started with $have; the store delivers the current $want (its environment is the fallback for the next start)"
    else
        row "gateway token" FAIL "$where holds $have, the current token is $want: the restart hook did not run (see $(journal_hint "$(get KEEPER_SYNC_UNIT openclaw-keeper-sync.service)"))"
    fi
fi

# --- OpenClaw's own view
read -r -a openclaw <<<"$(get KEEPER_OPENCLAW_CMD openclaw)"
if ! command -v "${openclaw[0]}" >/dev/null 2>&1; then
    row "openclaw models status" skip "${openclaw[0]} cannot be run from here"
else
    set +e
    # The state directory the config names for a host openclaw (as the sync service runs it).
    state_env=()
    [ -z "$(get OPENCLAW_STATE_DIR)" ] || state_env=(env "OPENCLAW_STATE_DIR=$(get OPENCLAW_STATE_DIR)")
    status_json=$(timeout 60 "${state_env[@]}" "${openclaw[@]}" models status --json 2>&1 </dev/null)
    rc=$?
    set -e
    if grep -q AUTH_PROFILE_MIGRATION_REQUIRED <<<"$status_json"; then
        row "openclaw models status" FAIL "AUTH_PROFILE_MIGRATION_REQUIRED: retired credential files beside the SQLite store (run \`openclaw doctor --fix --non-interactive\`)"
    elif [ "$rc" -ne 0 ]; then
        row "openclaw models status" warn "exited $rc: $(grep -v '^$' <<<"$status_json" | tail -n 1)"
    else
        # What the gateway will use, in OpenClaw's words: the effective source of the Anthropic
        # credential and, for a stored profile, its expiry beside the source's.
        view=$(STATUS_JSON=$status_json WANT_MS="${source_expires_ms:-}" python3 - 2>/dev/null <<'PY' || true
import json, os
d = json.loads(os.environ["STATUS_JSON"])
auth = d.get("auth") or {}
prov = next((p for p in auth.get("providers") or [] if p.get("provider") == "anthropic"), {})
eff = (prov.get("effective") or {}).get("kind") or "none"
profiles = [p for p in (auth.get("oauth") or {}).get("profiles") or [] if p.get("provider") == "anthropic"]
expired = any(p.get("status") == "expired" for p in profiles)
want = int(os.environ["WANT_MS"]) if os.environ.get("WANT_MS", "").isdigit() else None
held = max((p.get("expiresAt") or 0 for p in profiles), default=0)
current = "unknown" if want is None or not held else ("current" if abs(held - want) <= 180000 else "stale")
print(eff, "expired" if expired else "fine", current, ",".join(p.get("profileId", "?") for p in profiles) or "-")
PY
)
        read -r effective health current ids <<<"${view:-unknown fine unknown -}"
        if [ "$health" = expired ]; then
            row "openclaw models status" FAIL "a profile is expired ($ids)"
        elif [ "$effective" = profiles ] && [ "$current" = stale ]; then
            row "openclaw models status" FAIL "the gateway uses stored profile(s) $ids, whose expiry is not the current token's: the last sync did not reach the store (see $(journal_hint "$(get KEEPER_SYNC_UNIT openclaw-keeper-sync.service)"))"
        elif [ "$effective" = profiles ]; then
            row "openclaw models status" ok "the gateway uses stored profile(s) $ids ($current token; read on every request, no restart needed)"
        elif [ "$effective" = env ]; then
            row "openclaw models status" ok "the gateway uses $key from its environment (read at start)"
        else
            row "openclaw models status" ok "no Anthropic credential source reported ($effective)"
        fi
    fi
fi

# --- REAUTH
flag=$(get KEEPER_REAUTH_FLAG)
flag=${flag:-$(get KEEPER_OPENCLAW_DIR "${OPENCLAW_STATE_DIR:-$HOME/.openclaw}")/REAUTH_NEEDED}
if [ -e "$flag" ]; then
    reason=$(sed -n 's/^reason=//p' "$flag" 2>/dev/null | head -n 1 || true)
    since=$(sed -n 's/^since=//p' "$flag" 2>/dev/null | head -n 1 || true)
    row "REAUTH flag" FAIL "$flag since ${since:-?}: ${reason:-see the file}; run \`claude auth login\`, then cli-poke --force"
else
    row "REAUTH flag" ok "absent ($flag)"
fi

exit "$failed"
