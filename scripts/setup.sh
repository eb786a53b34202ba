#!/usr/bin/env bash
# The openclaw-oauth-keeper set-up wizard: detects the OpenClaw install, installs the tools, the
# config file and the systemd units, and checks the result. `setup.sh --help` lists every flag.
#
# Tokens never pass through this script's arguments, its output or a program's argv: the
# setup-token is read without echo (or from stdin), held in a shell variable, written with the
# printf builtin into a 0600 file in a 0700 temp dir, and handed to cred-sync as that file.
set -Eeuo pipefail
umask 022

prog=setup.sh
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# This script's directory: scripts/ in a checkout, /usr/share/openclaw-oauth-keeper in the package.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tools=(token-expiry cred-sync cli-poke compose-recreate)
env_key=ANTHROPIC_OAUTH_TOKEN
default_model=anthropic/claude-opus-4-6
seed_units=(sync-oauth-token.service trigger-claude-refresh.timer trigger-claude-refresh.service)

usage() {
    cat <<'USAGE'
Usage: scripts/setup.sh [OPTIONS]
       scripts/setup.sh --uninstall [--user|--system] [--root DIR] [--yes] [--dry-run]

Sets up openclaw-oauth-keeper: detects the OpenClaw gateway (Docker Compose or the
openclaw-gateway user unit) and its generation (JSON or SQLite era), the Claude CLI and its
credentials; installs the tools, writes the config file, installs and enables the systemd units,
configures the Anthropic model, tests one CLI refresh, then runs scripts/verify.sh.
Every question has a flag; without a terminal pass --yes (defaults) and the flags you need.
With the Debian package installed (openclaw-oauth-keeper-setup, or a checkout of its version and
no --bin-dir/--prefix/--units-dir) its tools (/usr/bin) and units (/usr/lib/systemd) are used in
place: nothing is built or copied, no cargo needed.

General:
  --yes, -y               take the default answer to every question
  --dry-run               detect and print the plan; change nothing
  --root DIR              stage every file under DIR (like DESTDIR): no systemctl, no docker
                          changes, no CLI test; the config and manifest name the final paths
  --user | --system       which unit set: user (systemctl --user, ~/.local, ~/.config) or
                          system (root: /usr/local, /etc) [default: user for a gateway user unit,
                          system for Docker]
  --uninstall             remove exactly what setup installed (installed.list); same as
                          scripts/uninstall.sh
  -h, --help              this help

The gateway:
  --gateway docker|user-unit   how OpenClaw runs [default: detected]
  --compose-dir DIR       Docker: the directory with the compose file [default: the running
                          gateway container's project, else ~/openclaw, /opt/openclaw, /srv/openclaw]
  --service NAME          Docker: the gateway's compose service [default: openclaw-gateway]
  --gateway-unit NAME     user unit: the gateway's unit [default: detected openclaw-gateway*.service,
                          clawdbot-gateway*, moltbot-gateway*]
  --openclaw-dir DIR      OpenClaw's config/state directory [default: OPENCLAW_CONFIG_DIR from the
                          compose .env or the gateway volume; ~/.openclaw]
  --generation json|sqlite     OpenClaw's credential store [default: detected: the tools are
                          built first (or taken from --bin-dir) and `cred-sync --detect` asked]
  --openclaw-cmd CMD      how to run OpenClaw for paste-token (SQLite era) [default: `docker compose
                          ... exec -T SERVICE openclaw`, or the host's openclaw by absolute path]

The Claude CLI:
  --credentials FILE      the CLI's credentials file [default: $CLAUDE_CONFIG_DIR/.credentials.json,
                          ~/.claude/.credentials.json, or the CLI container's bind mount]
  --cli PATH              host mode: the claude program [default: detected]
  --cli-container NAME    container mode: the running container holding claude
  --base-url-override always|auto|never   [default: always when the CLI's ANTHROPIC_BASE_URL
                          points elsewhere, else auto]
  --cli-test | --skip-cli-test   run `cli-poke --force` once after installing (rotates the token
                          once: harmless, the CLI is the only refresher) [default: ask, yes]

What to install:
  --prefix DIR            binaries go to DIR/bin [default: /usr/local (system), ~/.local (user)];
                          the units' ExecStart= paths are rewritten to match
  --bin-dir DIR           copy pre-built tools from DIR instead of building them (cargo build
                          --release --locked, in the repository's target/ or $CARGO_TARGET_DIR)
  --units-dir DIR         unit sources [default: the repository's systemd/]
  --sync watch|once|path  sync by inotify (a long-running watcher), by a timer, or by a systemd
                          .path unit watching the credentials file [default: watch when inotify
                          is available]
  --refresh cli|direct    who refreshes the token: the Claude CLI, poked in its window by
                          openclaw-keeper-refresh.timer (cli-poke), or the fallback for when the
                          CLI cannot be run: openclaw-keeper-refresh-direct.timer (cli-poke
                          --direct: the keeper itself at the token endpoint, under the CLI's locks;
                          read README's terms-of-use note first) [default: cli]
  --notify-url URL        webhook told when a human must log in again (KEEPER_NOTIFY_URL)
  --notify-format slack|ntfy|json   what the webhook speaks (KEEPER_NOTIFY_FORMAT) [default: slack]
  --notify-every DURATION at most one post per failing unit per DURATION (KEEPER_NOTIFY_EVERY)
                          [default: cli-poke's, 1h]
  --no-enable             install the units but do not enable or start them (nor restart the
                          gateway in setup-token mode)
  --no-verify             do not run scripts/verify.sh at the end

OpenClaw's model config (openclaw.json):
  --model auto|set|skip   set agents.defaults.model.primary to anthropic/claude-opus-4-6 (and
                          aliases): auto = only when no primary model is set [default: auto]
  --fix-providers | --keep-providers   remove models.providers.anthropic (its /v1 base URL doubles
                          into /v1/v1/messages: 404), after a backup [default: ask, yes]

The first seed's bash units (sync-oauth-token.service, trigger-claude-refresh.timer/.service):
  --replace-old-units | --keep-old-units   stop, disable and move them aside [default: ask, yes]

Setup-token mode (the second seed: one long-lived token from `claude setup-token`, no refresh):
  --setup-token           use it: the token goes into the gateway's drop-in and ~/.openclaw-env
                          (user unit) or the compose .env (Docker), stale per-agent profiles are
                          cleared (SQLite era: pasted into OpenClaw's store); no refresh timer;
                          then the gateway is restarted (user unit) or recreated (Docker)
  --token-stdin           read the token from stdin instead of a hidden prompt

Exit status:
  0   installed (or uninstalled; --dry-run: the plan was printed)
  1   a step failed: its name is printed and everything this run installed was rolled back
  2   cannot proceed: OpenClaw, the credentials or the CLI not found, or an invalid answer or
      token; nothing was changed
  3   installed, but the CLI test or scripts/verify.sh reported a problem (the install stays)
  4   cancelled at the confirmation question; nothing was changed
  64  usage error
  69  a program setup needs is missing (cargo, python3, systemctl)
USAGE
}

say() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { # die CODE MESSAGE: before anything changed
    printf '%s: %s\n' "$prog" "$2" >&2
    exit "$1"
}
usage_error() {
    printf '%s: %s\n' "$prog" "$1" >&2
    printf "Try '%s --help'.\n" "$prog" >&2
    exit 64
}

# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------
yes=false dry_run=false root='' install_set='' uninstall=false
gateway='' compose_dir='' service=openclaw-gateway gateway_unit='' openclaw_dir='' generation=''
openclaw_cmd='' credentials='' cli_path='' cli_container='' base_url_override=''
cli_test='' prefix='' bin_dir='' units_src='' sync_kind='' notify_url='' notify_format='' notify_every='' enable=true
run_verify=true model_mode=auto fix_providers='' replace_old='' setup_token=false token_stdin=false

need_value() { if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi; }
while [ $# -gt 0 ]; do
    opt=$1
    case "$opt" in
        --*=*) set -- "${opt%%=*}" "${opt#*=}" "${@:2}"; continue ;;
    esac
    case "$opt" in
        -y|--yes) yes=true ;;
        --dry-run) dry_run=true ;;
        --root) need_value "$@"; root=${2%/}; shift ;;
        --user) install_set=user ;;
        --system) install_set=system ;;
        --uninstall) uninstall=true ;;
        --gateway) need_value "$@"; gateway=$2; shift ;;
        --compose-dir) need_value "$@"; compose_dir=${2%/}; shift ;;
        --service) need_value "$@"; service=$2; shift ;;
        --gateway-unit) need_value "$@"; gateway_unit=$2; shift ;;
        --openclaw-dir) need_value "$@"; openclaw_dir=${2%/}; shift ;;
        --generation) need_value "$@"; generation=$2; shift ;;
        --openclaw-cmd) need_value "$@"; openclaw_cmd=$2; shift ;;
        --credentials) need_value "$@"; credentials=$2; shift ;;
        --cli) need_value "$@"; cli_path=$2; shift ;;
        --cli-container) need_value "$@"; cli_container=$2; shift ;;
        --base-url-override) need_value "$@"; base_url_override=$2; shift ;;
        --cli-test) cli_test=yes ;;
        --skip-cli-test) cli_test=no ;;
        --prefix) need_value "$@"; prefix=${2%/}; shift ;;
        --bin-dir) need_value "$@"; bin_dir=$2; shift ;;
        --units-dir) need_value "$@"; units_src=${2%/}; shift ;;
        --sync) need_value "$@"; sync_kind=$2; shift ;;
        --refresh) need_value "$@"; refresh_kind=$2; shift ;;
        --notify-url) need_value "$@"; notify_url=$2; shift ;;
        --notify-format) need_value "$@"; notify_format=$2; shift ;;
        --notify-every) need_value "$@"; notify_every=$2; shift ;;
        --no-enable) enable=false ;;
        --no-verify) run_verify=false ;;
        --model) need_value "$@"; model_mode=$2; shift ;;
        --fix-providers) fix_providers=yes ;;
        --keep-providers) fix_providers=no ;;
        --replace-old-units) replace_old=yes ;;
        --keep-old-units) replace_old=no ;;
        --setup-token) setup_token=true ;;
        --token-stdin) token_stdin=true; setup_token=true ;;
        -h|--help) usage; exit 0 ;;
        *) usage_error "unknown option: $opt" ;;
    esac
    shift
done

case "$gateway" in ''|docker|user-unit) ;; *) usage_error "--gateway must be docker or user-unit" ;; esac
case "$generation" in ''|json|sqlite) ;; *) usage_error "--generation must be json or sqlite" ;; esac
case "$base_url_override" in ''|always|auto|never) ;; *) usage_error "--base-url-override must be always, auto or never" ;; esac
case "$notify_format" in ''|slack|ntfy|json) ;; *) usage_error "--notify-format must be slack, ntfy or json" ;; esac
case "$sync_kind" in ''|watch|once|path) ;; *) usage_error "--sync must be watch, once or path" ;; esac
refresh_kind=${refresh_kind:-cli}
case "$refresh_kind" in cli|direct) ;; *) usage_error "--refresh must be cli or direct" ;; esac
case "$model_mode" in auto|set|skip) ;; *) usage_error "--model must be auto, set or skip" ;; esac
[ -z "$cli_path" ] || [ -z "$cli_container" ] || usage_error "--cli and --cli-container exclude each other"
if [ -n "$root" ]; then
    case "$root" in /*) ;; *) root=$(pwd)/$root ;; esac
fi
R=$root # every path written is "$R$path"; $path is the final (real) path

interactive=false
if ! $yes && { : </dev/tty; } 2>/dev/null; then interactive=true; fi

# ask_yes_no VAR QUESTION DEFAULT(yes|no): keeps a value a flag set; --yes takes the default.
ask_yes_no() {
    local var=$1 question=$2 default=$3 answer hint
    if [ -n "${!var}" ]; then return 0; fi
    if ! $interactive; then
        printf -v "$var" '%s' "$default"
        say "  $question -> $default (default)"
        return 0
    fi
    if [ "$default" = yes ]; then hint='[Y/n]'; else hint='[y/N]'; fi
    while true; do
        read -r -p "$question $hint " answer </dev/tty || answer=''
        case "${answer,,}" in
            '') printf -v "$var" '%s' "$default"; return 0 ;;
            y|yes) printf -v "$var" yes; return 0 ;;
            n|no) printf -v "$var" no; return 0 ;;
            *) say "  please answer y or n" ;;
        esac
    done
}

# ask_value VAR QUESTION DEFAULT: keeps a value a flag set; --yes takes the default.
ask_value() {
    local var=$1 question=$2 default=$3 answer
    if [ -n "${!var}" ]; then return 0; fi
    if ! $interactive; then
        printf -v "$var" '%s' "$default"
        return 0
    fi
    read -r -p "$question [${default:-none}] " answer </dev/tty || answer=''
    printf -v "$var" '%s' "${answer:-$default}"
}

# ---------------------------------------------------------------------------------------------
# Changes, and how to undo them (rollback on failure)
# ---------------------------------------------------------------------------------------------
run_id=$(date +%Y%m%dT%H%M%S)
work=$(mktemp -d "${TMPDIR:-/tmp}/keeper-setup.XXXXXX") # 0700: backups for rollback, the token file
created_paths=()   # final paths of files and dirs this run created (for rollback and the manifest)
listed_paths=()    # what goes into installed.list (created + ours overwritten)
restore_pairs=()   # "staged-path|saved-copy": files this run overwrote or edited
moved_units=()     # "from|to" (final paths): the first seed's units moved aside
enabled_now=()     # units this run enabled
current_step=''
changing=false
root_created=false
systemctl_cmd=(systemctl)

# shellcheck disable=SC2317 # trap handlers: called through trap
cleanup() { rm -rf "$work"; }

# shellcheck disable=SC2317
rollback() {
    local i entry from to
    say "rolling back what this run changed"
    if ((${#enabled_now[@]})) && [ -z "$R" ]; then
        "${systemctl_cmd[@]}" disable --now "${enabled_now[@]}" >/dev/null 2>&1 || true
    fi
    for ((i = ${#restore_pairs[@]} - 1; i >= 0; i--)); do
        entry=${restore_pairs[i]}
        if cp -p "${entry#*|}" "${entry%%|*}" 2>/dev/null; then say "  restored ${entry%%|*}"; fi
    done
    for ((i = ${#moved_units[@]} - 1; i >= 0; i--)); do
        entry=${moved_units[i]}; from=${entry%%|*}; to=${entry#*|}
        if mv "$R$to" "$R$from" 2>/dev/null; then say "  moved back $from"; fi
    done
    for ((i = ${#created_paths[@]} - 1; i >= 0; i--)); do
        entry=$R${created_paths[i]}
        if [ -d "$entry" ] && [ ! -L "$entry" ]; then
            if rmdir "$entry" 2>/dev/null; then say "  removed $entry/"; fi
        elif [ -e "$entry" ] || [ -L "$entry" ]; then
            rm -f "$entry" && say "  removed $entry"
        fi
    done
    if $root_created; then rmdir "$R" 2>/dev/null || true; fi
    if [ -z "$R" ] && command -v systemctl >/dev/null 2>&1; then
        "${systemctl_cmd[@]}" daemon-reload >/dev/null 2>&1 || true
        for entry in "${moved_units[@]}"; do
            "${systemctl_cmd[@]}" enable --now "$(basename "${entry%%|*}")" >/dev/null 2>&1 || true
        done
    fi
}

# shellcheck disable=SC2317
on_error() {
    local status=$1 line=$2
    trap - ERR
    # In a subshell ($(...), set -E passes the trap on): leave the report and the rollback to the
    # main shell, which sees the failed substitution next.
    if [ "$BASHPID" != "$$" ]; then exit "$status"; fi
    if $changing; then
        printf '%s: step "%s" failed (status %s, line %s)\n' "$prog" "$current_step" "$status" "$line" >&2
        rollback
        printf '%s: nothing was installed\n' "$prog" >&2
        exit 1
    fi
    printf '%s: "%s" failed (status %s, line %s); nothing was changed\n' "$prog" "${current_step:-setup}" "$status" "$line" >&2
    exit 1
}
# shellcheck disable=SC2317
on_signal() {
    trap - ERR INT TERM
    printf '%s: interrupted\n' "$prog" >&2
    if $changing; then rollback; fi
    exit 130
}
trap 'on_error $? $LINENO' ERR
trap on_signal INT TERM
trap cleanup EXIT

step_no=0
step() {
    step_no=$((step_no + 1))
    current_step=$1
    say ""
    say "step $step_no: $1"
}

# The parent directories of PATH (final) that do not exist under $R, outermost first.
missing_dirs() {
    local dir=$1 out=()
    while [ -n "$dir" ] && [ "$dir" != / ] && [ ! -d "$R$dir" ]; do
        out=("$dir" "${out[@]}")
        dir=$(dirname "$dir")
    done
    printf '%s\n' "${out[@]}"
}

make_dir() { # make_dir FINAL_DIR [MODE] [unlisted]: "unlisted" for a directory of a user's file
    local d
    while IFS= read -r d; do
        [ -n "$d" ] || continue
        mkdir -m "${2:-755}" "$R$d"
        # A directory for a user's files (root setting up OpenClaw's): owned like its parent.
        if [ "${3:-}" = unlisted ] && [ "$(id -u)" -eq 0 ]; then chown --reference="$(dirname "$R$d")" "$R$d"; fi
        created_paths+=("$d")
        [ "${3:-}" = unlisted ] || listed_paths+=("$d")
        say "  created $R$d/"
    done < <(missing_dirs "$1")
}

# Remember FILE's current content (staged path) so a rollback can put it back.
save_for_rollback() {
    local staged=$1 copy
    copy=$work/saved.${#restore_pairs[@]}
    cp -p "$staged" "$copy"
    restore_pairs+=("$staged|$copy")
}

# install_file SRC FINAL MODE: our own file (listed in installed.list).
install_file() {
    local src=$1 dest=$2 mode=$3
    make_dir "$(dirname "$dest")"
    if [ -e "$R$dest" ]; then
        save_for_rollback "$R$dest"
    else
        created_paths+=("$dest")
    fi
    listed_paths+=("$dest")
    install -m "$mode" "$src" "$R$dest"
    say "  wrote $R$dest"
}

# backup_user_file STAGED: FILE.keeper-backup-<time> beside a user's file before editing it.
backup_user_file() {
    local staged=$1 backup
    backup=$staged.keeper-backup-$run_id
    cp -p "$staged" "$backup"
    created_paths+=("${backup#"$R"}")
    save_for_rollback "$staged"
    say "  backup: $backup"
}

# ---------------------------------------------------------------------------------------------
# Uninstall
# ---------------------------------------------------------------------------------------------
system_config_dir=/etc/openclaw-oauth-keeper
user_config_dir=$HOME/.config/openclaw-oauth-keeper

do_uninstall() {
    local manifest='' set=$install_set
    if [ -z "$set" ]; then
        if [ "$(id -u)" -eq 0 ] && [ -f "$R$system_config_dir/installed.list" ]; then set=system
        elif [ -f "$R$user_config_dir/installed.list" ]; then set=user
        elif [ -f "$R$system_config_dir/installed.list" ]; then set=system
        fi
    fi
    [ -n "$set" ] || die 2 "no installed.list in $R$system_config_dir or $R$user_config_dir: nothing to uninstall"
    if [ "$set" = system ]; then manifest=$system_config_dir/installed.list; else manifest=$user_config_dir/installed.list; fi
    [ -f "$R$manifest" ] || die 2 "no $R$manifest: nothing to uninstall"
    local sysctl=(systemctl)
    [ "$set" = user ] && sysctl=(systemctl --user)

    local entries=() units=() line
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in ''|'#'*) continue ;; /*) entries+=("$line") ;; *) warn "ignoring a line that is not an absolute path in $manifest: $line" ;; esac
    done <"$R$manifest"
    for line in "${entries[@]}"; do
        case "$line" in
            */systemd/system/*.d/*|*/systemd/user/*.d/*) ;;
            */systemd/system/*.service|*/systemd/system/*.timer|*/systemd/system/*.path|\
            */systemd/user/*.service|*/systemd/user/*.timer|*/systemd/user/*.path)
                units+=("$(basename "$line")") ;;
        esac
    done
    # Units enabled but not installed by setup (the Debian package's, in /usr/lib/systemd): the
    # config it wrote names every unit it enabled.
    local enabled
    enabled=$(sed -n 's/^KEEPER_UNITS=//p' "$R${manifest%/*}/keeper.env" 2>/dev/null | tail -n 1 | tr -d '"') || enabled=''
    for line in $enabled; do
        case " ${units[*]} " in *" $line "*) ;; *) units+=("$line") ;; esac
    done
    # A file the package manager owns (a package installed over a source install) is its to remove.
    local pkg_owned=$'\n'
    if [ -z "$R" ] && command -v dpkg-query >/dev/null 2>&1; then
        pkg_owned+=$(dpkg-query -S "${entries[@]}" 2>/dev/null | sed -n 's/^[^:]*: //p')$'\n' || true
    fi

    say "uninstall ($set set) from $R$manifest: ${#entries[@]} entries"
    if $dry_run; then
        ((${#units[@]})) && say "  would: ${sysctl[*]} disable --now ${units[*]}"
        printf '  would remove %s\n' "${entries[@]}"
        say "dry run: nothing changed"
        return 0
    fi
    if ! $yes && $interactive; then
        local go=''
        ask_yes_no go "Remove these ${#entries[@]} files and directories?" yes
        [ "$go" = yes ] || { say "cancelled; nothing changed"; exit 4; }
    fi
    if ((${#units[@]})); then
        if [ -n "$R" ]; then
            say "  --root: not running ${sysctl[*]} disable --now ${units[*]}"
        elif command -v systemctl >/dev/null 2>&1; then
            # Templates (notify@) cannot be disabled by name without an instance; skip them.
            local plain=()
            for line in "${units[@]}"; do case "$line" in *@.*) ;; *) plain+=("$line") ;; esac; done
            ((${#plain[@]})) && { "${sysctl[@]}" disable --now "${plain[@]}" || warn "disabling some units failed"; }
            say "  disabled and stopped ${plain[*]}"
        fi
    fi
    # Files first (the manifest last), then directories deepest first, only when empty.
    local i
    for line in "${entries[@]}"; do
        [ "$line" = "$manifest" ] && continue
        if [[ "$pkg_owned" == *$'\n'"$line"$'\n'* ]]; then say "  left to the package manager: $line"; continue; fi
        if [ -L "$R$line" ] || [ -f "$R$line" ]; then rm -f "$R$line" && say "  removed $R$line"; fi
    done
    rm -f "$R$manifest" && say "  removed $R$manifest"
    local dirs=()
    while IFS= read -r line; do dirs+=("$line"); done < <(printf '%s\n' "${entries[@]}" | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-)
    for line in "${dirs[@]}"; do
        [[ "$pkg_owned" == *$'\n'"$line"$'\n'* ]] && continue
        if [ -d "$R$line" ] && [ ! -L "$R$line" ]; then
            if rmdir "$R$line" 2>/dev/null; then say "  removed $R$line/"; else warn "$R$line/ is not empty: left in place"; fi
        fi
    done
    if [ -z "$R" ] && command -v systemctl >/dev/null 2>&1; then
        "${sysctl[@]}" daemon-reload || warn "daemon-reload failed"
        say "  ${sysctl[*]} daemon-reload"
    fi
    say "uninstalled. Left alone: the Claude credentials, OpenClaw's files (openclaw.json, .env, drop-ins"
    say "and their *.keeper-backup-* copies), the state directory and units setup moved aside (*.keeper-replaced-*)."
}

if $uninstall; then
    do_uninstall
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Detection (read-only)
# ---------------------------------------------------------------------------------------------
command -v python3 >/dev/null 2>&1 || die 69 "python3 not found: it edits openclaw.json and reads JSON during detection"
have_docker=false
command -v docker >/dev/null 2>&1 && have_docker=true

compose_file_in() {
    local f
    for f in compose.yaml compose.yml docker-compose.yaml docker-compose.yml; do
        [ -f "$1/$f" ] && { printf '%s\n' "$1/$f"; return 0; }
    done
    return 1
}

# The lines of SERVICE's block in a compose YAML text (stdin).
service_block() {
    awk -v svc="$1" '
        function indent(s) { match(s, /^ */); return RLENGTH }
        !inside && $0 ~ "^[ ]*\"?" svc "\"?:[ ]*$" { inside = 1; n = indent($0); next }
        inside && $0 ~ /[^ ]/ && indent($0) <= n { exit }
        inside { print }'
}

has_service() { [ -n "$(service_block "$service" <"$1")" ]; }

compose_cmd=()
if $have_docker && docker compose version >/dev/null 2>&1; then compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then compose_cmd=(docker-compose)
fi

dotenv_value() { # dotenv_value FILE KEY: one non-secret value (never the token's key)
    [ -f "$1" ] || return 0
    sed -n "s/^[[:space:]]*\(export[[:space:]]\+\)\?$2=//p" "$1" | tail -n 1 | sed "s/^[\"']//; s/[\"'][[:space:]]*\$//"
}

abs_from() { # abs_from BASE PATH: expand ~ and make PATH absolute relative to BASE
    local p=$2
    # shellcheck disable=SC2088 # a literal ~ from a config file, expanded here
    case "$p" in '~') p=$HOME ;; '~/'*) p=$HOME/${p#'~/'} ;; esac
    case "$p" in /*) ;; *) p=$1/${p#./} ;; esac
    printf '%s\n' "${p%/}"
}

detect_user_unit() {
    local d f
    for d in "$HOME/.config/systemd/user" /etc/systemd/user; do
        for f in "$d"/openclaw-gateway*.service "$d"/clawdbot-gateway*.service "$d"/moltbot-gateway*.service; do
            [ -f "$f" ] && { basename "$f"; return 0; }
        done
    done
    return 1
}

gateway_container=''
detect_compose_dir() {
    local c d
    if $have_docker; then
        c=$(docker ps --filter "label=com.docker.compose.service=$service" --format '{{.Names}}' 2>/dev/null | sed -n 1p) || c=''
        if [ -n "$c" ]; then
            d=$(docker inspect -f '{{index .Config.Labels "com.docker.compose.project.working_dir"}}' "$c" 2>/dev/null) || d=''
            if [ -n "$d" ] && compose_file_in "$d" >/dev/null; then printf '%s\n' "$d"; return 0; fi
        fi
    fi
    for d in "$HOME/openclaw" "$HOME/openclaw-docker" /opt/openclaw /srv/openclaw "$PWD"; do
        c=$(compose_file_in "$d") || continue
        has_service "$c" && { printf '%s\n' "$d"; return 0; }
    done
    return 1
}

say "openclaw-oauth-keeper set-up${R:+ (staging into $R)}"
$dry_run && say "dry run: nothing will be changed"
say ""
say "detecting"
current_step=detection

detected_unit=''
detected_compose=''
if [ -z "$gateway" ] || [ "$gateway" = user-unit ]; then detected_unit=$(detect_user_unit) || detected_unit=''; fi
if [ -n "$compose_dir" ]; then detected_compose=$compose_dir
elif [ -z "$gateway" ] || [ "$gateway" = docker ]; then detected_compose=$(detect_compose_dir) || detected_compose=''; fi
if [ -z "$gateway" ]; then
    if [ -n "$detected_compose" ] && [ -n "$detected_unit" ]; then
        default_gw=docker
        [ "$(id -u)" -ne 0 ] && default_gw=user-unit
        ask_value gateway "Found both a compose project ($detected_compose) and the user unit $detected_unit: which runs the gateway, docker or user-unit?" "$default_gw"
    elif [ -n "$detected_compose" ]; then gateway=docker
    elif [ -n "$detected_unit" ]; then gateway=user-unit
    else
        die 2 "no OpenClaw gateway found: no compose project with an $service service (--compose-dir DIR) and no openclaw-gateway*.service user unit (--gateway-unit NAME)"
    fi
fi
case "$gateway" in docker|user-unit) ;; *) die 2 "invalid answer for the gateway: $gateway (docker or user-unit)" ;; esac

compose_file='' compose_env='' compose_passes=unknown compose_check=''
if [ "$gateway" = docker ]; then
    compose_dir=${detected_compose:-$compose_dir}
    [ -n "$compose_dir" ] || die 2 "no compose project with an $service service found: pass --compose-dir DIR"
    compose_dir=$(cd "$compose_dir" 2>/dev/null && pwd) || die 2 "--compose-dir: no such directory: $compose_dir"
    compose_file=$(compose_file_in "$compose_dir") || die 2 "no compose.yaml/docker-compose.yml in $compose_dir"
    has_service "$compose_file" || die 2 "$compose_file has no service named $service (--service NAME)"
    compose_env=$compose_dir/.env
    say "  gateway: Docker Compose service $service in $compose_file"
    if $have_docker; then
        gateway_container=$(docker ps --filter "label=com.docker.compose.service=$service" \
            --filter "label=com.docker.compose.project.working_dir=$compose_dir" --format '{{.Names}}' 2>/dev/null | sed -n 1p) || gateway_container=''
        [ -n "$gateway_container" ] && say "  gateway container: $gateway_container (running)"
    fi
    if [ -z "$openclaw_dir" ]; then
        openclaw_dir=$(dotenv_value "$compose_env" OPENCLAW_CONFIG_DIR)
        [ -n "$openclaw_dir" ] && openclaw_dir=$(abs_from "$compose_dir" "$openclaw_dir") && say "  OpenClaw directory: $openclaw_dir (OPENCLAW_CONFIG_DIR in $compose_env)"
    fi
    if [ -z "$openclaw_dir" ]; then
        volume=$(service_block "$service" <"$compose_file" | sed -n 's/^[[:space:]]*-[[:space:]]*["'\'']\?\([^:"'\'' ]*\):\/home\/node\/\.openclaw\(:[a-z,]*\)\?["'\'']\?[[:space:]]*$/\1/p' | sed -n 1p)
        case "$volume" in ''|*'$'*) ;; *) openclaw_dir=$(abs_from "$compose_dir" "$volume"); say "  OpenClaw directory: $openclaw_dir (the gateway's volume)" ;; esac
    fi
    if [ -z "$openclaw_dir" ] && [ -n "$gateway_container" ]; then
        openclaw_dir=$(docker inspect -f '{{range .Mounts}}{{if eq .Destination "/home/node/.openclaw"}}{{.Source}}{{end}}{{end}}' "$gateway_container" 2>/dev/null) || openclaw_dir=''
        [ -n "$openclaw_dir" ] && say "  OpenClaw directory: $openclaw_dir (the container's mount)"
    fi
    [ -n "$openclaw_dir" ] || { openclaw_dir=$HOME/.openclaw; say "  OpenClaw directory: $openclaw_dir (default)"; }

    # Does the gateway get ANTHROPIC_OAUTH_TOKEN from the .env? The text of its service block
    # (env_file: .env, or the variable named), else the rendered config, which inlines env_file
    # and interpolation but shows the key only once the .env holds it. The rendered config may
    # hold the token, so it is only grepped, never printed.
    block=$(service_block "$service" <"$compose_file")
    if grep -q "$env_key" <<<"$block" ||
        grep -Eq '^[[:space:]]*env_file:[[:space:]]*["'\'']?\.?/?\.env["'\'']?[[:space:]]*$|^[[:space:]]*-[[:space:]]*["'\'']?\.?/?\.env["'\'']?[[:space:]]*$|^[[:space:]]*(-[[:space:]]*)?path:[[:space:]]*["'\'']?\.?/?\.env' <<<"$block"; then
        compose_passes=yes
        compose_check="the $service service in $compose_file"
    elif ((${#compose_cmd[@]})) && rendered=$("${compose_cmd[@]}" --project-directory "$compose_dir" -f "$compose_file" config 2>/dev/null); then
        compose_check="${compose_cmd[*]} config"
        if grep -q "$env_key" <<<"$(service_block "$service" <<<"$rendered")"; then compose_passes=yes; else compose_passes=no; fi
    else
        compose_passes=no
        compose_check="the $service service in $compose_file"
    fi
    unset rendered
    if [ "$compose_passes" = yes ]; then
        say "  the compose file passes $env_key to $service ($compose_check)"
    else
        warn "the compose file does not pass $env_key to $service ($compose_check): a token in $compose_env only feeds \${VAR} interpolation."
        warn "  Fix: add 'env_file: .env' (or 'environment: [$env_key]') to the $service service, then re-run setup."
        warn "  Until then the gateway gets the token from OpenClaw's own files only."
    fi
else
    gateway_unit=${gateway_unit:-$detected_unit}
    [ -n "$gateway_unit" ] || die 2 "no openclaw-gateway*.service user unit found: pass --gateway-unit NAME"
    case "$gateway_unit" in *.service) ;; *) gateway_unit=$gateway_unit.service ;; esac
    say "  gateway: user unit $gateway_unit"
    if [ -z "$openclaw_dir" ]; then
        unit_file=''
        for d in "$HOME/.config/systemd/user" /etc/systemd/user; do [ -f "$d/$gateway_unit" ] && { unit_file=$d/$gateway_unit; break; }; done
        if [ -n "$unit_file" ]; then
            openclaw_dir=$(sed -n 's/^Environment=["]\?OPENCLAW_STATE_DIR=\([^" ]*\).*/\1/p' "$unit_file" | tail -n 1)
        fi
        [ -n "$openclaw_dir" ] || openclaw_dir=$HOME/.openclaw
        say "  OpenClaw directory: $openclaw_dir"
    fi
fi
openclaw_dir=$(abs_from "$PWD" "$openclaw_dir")
[ -d "$openclaw_dir" ] || warn "$openclaw_dir does not exist (yet)"

# The installed OpenClaw, for the generation below: the host's openclaw program (cred-sync reads
# its npm package.json), or the gateway container's /app/package.json.
openclaw_version=''
host_openclaw=''
if [ "$gateway" = user-unit ]; then
    if [ -n "$openclaw_cmd" ]; then host_openclaw=${openclaw_cmd%% *}
    else host_openclaw=$(command -v openclaw 2>/dev/null) || host_openclaw=''
    fi
elif [ -n "$gateway_container" ]; then
    openclaw_version=$(docker exec "$gateway_container" cat /app/package.json 2>/dev/null |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["version"] if d.get("name")=="openclaw" else "")' 2>/dev/null) || openclaw_version=''
fi

# The Claude CLI: host binary or a running container holding claude.
cli_mode=''
if [ -n "$cli_container" ]; then cli_mode=container
elif [ -n "$cli_path" ]; then cli_mode=host
else
    for c in "$(command -v claude 2>/dev/null || true)" "$HOME/.local/bin/claude" "$HOME/.claude/local/claude"; do
        [ -n "$c" ] && [ -x "$c" ] && { cli_path=$c; cli_mode=host; break; }
    done
    if [ -z "$cli_mode" ] && $have_docker; then
        while IFS= read -r c; do
            [ -n "$c" ] || continue
            if docker exec "$c" sh -c 'command -v claude' >/dev/null 2>&1; then cli_container=$c; cli_mode=container; break; fi
        done < <(docker ps --format '{{.Names}}' 2>/dev/null || true)
    fi
fi
if [ "$cli_mode" = container ]; then
    say "  Claude CLI: in container $cli_container"
    if [ -z "$credentials" ] && $have_docker; then
        mount=$(docker inspect -f '{{range .Mounts}}{{.Source}}|{{.Destination}}{{println}}{{end}}' "$cli_container" 2>/dev/null | grep -E '\|[^|]*/\.claude/?$' | sed -n 1p) || mount=''
        [ -n "$mount" ] && credentials=${mount%%|*}/.credentials.json && say "  credentials: $credentials (the container's bind mount ${mount#*|})"
    fi
    if [ -z "$base_url_override" ] && $have_docker; then
        url=$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$cli_container" 2>/dev/null | sed -n 's/^ANTHROPIC_BASE_URL=//p' | sed -n 1p) || url=''
        if [ -n "$url" ] && [ "${url%/}" != https://api.anthropic.com ]; then
            base_url_override=always
            say "  the container sets ANTHROPIC_BASE_URL to a proxy: the poke overrides it (always)"
        fi
    fi
elif [ "$cli_mode" = host ]; then
    say "  Claude CLI: $cli_path (host)"
    if [ -z "$base_url_override" ] && [ -n "${ANTHROPIC_BASE_URL:-}" ] && [ "${ANTHROPIC_BASE_URL%/}" != https://api.anthropic.com ]; then
        base_url_override=always
        say "  ANTHROPIC_BASE_URL points to a proxy: the poke overrides it (always)"
    fi
else
    if $setup_token; then say "  Claude CLI: not found (not needed in setup-token mode)"
    elif [ "$refresh_kind" = direct ]; then say "  Claude CLI: not found (--refresh direct refreshes without it)"
    else die 2 "no Claude CLI found: pass --cli PATH or --cli-container NAME"; fi
fi
base_url_override=${base_url_override:-auto}
# CLI 2.1.332 keeps its credentials file and its locks in CLAUDE_SECURESTORAGE_CONFIG_DIR when set.
secure_dir=''
[ -z "${CLAUDE_SECURESTORAGE_CONFIG_DIR:-}" ] || secure_dir=$(abs_from "$PWD" "$CLAUDE_SECURESTORAGE_CONFIG_DIR")
if [ -z "$credentials" ]; then
    if [ -n "$secure_dir" ]; then credentials=$secure_dir/.credentials.json
    elif [ -n "${CLAUDE_CONFIG_DIR:-}" ]; then credentials=$CLAUDE_CONFIG_DIR/.credentials.json
    else credentials=$HOME/.claude/.credentials.json; fi
    say "  credentials: $credentials"
fi
credentials=$(abs_from "$PWD" "$credentials")
if [ ! -f "$credentials" ] && ! $setup_token; then
    die 2 "the Claude credentials file $credentials does not exist: run \`claude auth login\` (or pass --credentials FILE)"
fi

# The Debian package (scripts/package.sh): its tools in /usr/bin and its units in
# /usr/lib/systemd/{system,user} are used as they are (nothing built, copied or overridden) by the
# package's own wizard, and by a checkout of the same version that names no tools or units of its
# own (--bin-dir, --prefix, --units-dir); a checkout without them builds from source.
pkg_bin=/usr/bin pkg_units=/usr/lib/systemd pkg_share=/usr/share/openclaw-oauth-keeper
packaged=false pkg_version=''
pkg_installed() {
    local t
    for t in "${tools[@]}"; do [ -x "$pkg_bin/$t" ] || return 1; done
    [ -f "$pkg_units/system/openclaw-keeper-refresh.service" ] && [ -f "$pkg_units/user/openclaw-keeper-refresh.service" ]
}
if [ "$here" = "$pkg_share" ]; then
    [ -z "$bin_dir$prefix$units_src" ] || usage_error "--bin-dir, --prefix and --units-dir are for a source checkout: the package's tools are in $pkg_bin, its units in $pkg_units"
    pkg_installed || die 69 "the package's tools or units are missing from $pkg_bin or $pkg_units: reinstall openclaw-oauth-keeper"
    packaged=true
elif [ -z "$bin_dir$prefix$units_src" ] && pkg_installed; then
    want=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" 2>/dev/null) || want=''
    have=$("$pkg_bin/cred-sync" --version 2>/dev/null | awk '{ print $2 }') || have=''
    [ -n "$want" ] && [ "$want" = "$have" ] && packaged=true
fi
if $packaged; then
    pkg_version=$("$pkg_bin/cred-sync" --version 2>/dev/null | cut -d' ' -f2-) || pkg_version=''
    say "  tools: the openclaw-oauth-keeper package's, in $pkg_bin ($pkg_version)"
fi

# The set, prefix and paths.
if [ -z "$install_set" ]; then
    if [ "$gateway" = docker ]; then install_set=system; else install_set=user; fi
fi
if [ "$install_set" = system ]; then
    prefix=${prefix:-/usr/local}
    default_bin=/usr/local/bin
    config_dir=$system_config_dir
    unit_dir=/etc/systemd/system
else
    prefix=${prefix:-$HOME/.local}
    default_bin=$HOME/.local/bin
    config_dir=$user_config_dir
    unit_dir=$HOME/.config/systemd/user
    systemctl_cmd=(systemctl --user)
fi
bin=$prefix/bin
config=$config_dir/keeper.env
manifest=$config_dir/installed.list
units_src=${units_src:-$repo/systemd}
if $packaged; then prefix=/usr bin=$pkg_bin units_src=$pkg_units; fi
# Where this run starts the tools from (setup-token mode): the staged copies, or the package's.
if $packaged; then run_bin=$bin; else run_bin=$R$bin; fi

# find_cargo: the cargo to build with, checked before anything changes (and before the tools are
# asked anything). Under sudo, root's PATH rarely holds the rustup toolchain of the user who ran
# sudo: build as that user with theirs.
cargo_cmd=()
find_cargo() {
    ((${#cargo_cmd[@]})) && return 0
    local sudo_home=''
    if [ -n "${SUDO_USER:-}" ] && [ "$(id -u)" -eq 0 ]; then
        sudo_home=$(getent passwd "$SUDO_USER" | cut -d: -f6) || sudo_home=''
    fi
    if command -v cargo >/dev/null 2>&1; then
        cargo_cmd=(cargo)
    elif [ -n "$sudo_home" ] && [ -x "$sudo_home/.cargo/bin/cargo" ]; then
        cargo_cmd=(runuser -u "$SUDO_USER" -- env "HOME=$sudo_home" "PATH=$sudo_home/.cargo/bin:$PATH" cargo)
    else
        die 69 "cargo not found: install Rust (https://rustup.rs), or pass --bin-dir DIR with the built tools"
    fi
}
# build_tools: one release build of the four tools (shared dependencies, incremental on a re-run)
# in the repository's target directory (or $CARGO_TARGET_DIR), owned by whoever builds; once a run.
target_dir=${CARGO_TARGET_DIR:-$repo/target}
tools_built=false
build_tools() {
    $tools_built && return 0
    find_cargo
    local build=(build --release --locked --quiet --manifest-path "$repo/Cargo.toml" --target-dir "$target_dir") t
    for t in "${tools[@]}"; do build+=(-p "$t"); done
    say "  cargo build --release --locked (${tools[*]}) in $target_dir"
    "${cargo_cmd[@]}" "${build[@]}"
    tools_built=true
}

# OpenClaw's generation (JSON or SQLite era), as cred-sync judges it: `cred-sync --detect`, the
# rules its refusal of JSON targets uses, which live there only. So the tools are built first
# (or taken from the package or --bin-dir), then asked.
if [ -z "$generation" ]; then
    if $packaged; then detector=$pkg_bin/cred-sync
    elif [ -n "$bin_dir" ]; then detector=$bin_dir/cred-sync
    else build_tools; detector=$target_dir/release/cred-sync; fi
    [ -x "$detector" ] || die 2 "$detector is not executable: cannot ask cred-sync --detect for OpenClaw's generation (pass --generation json|sqlite)"
    detect_args=(--config /dev/null --detect "$openclaw_dir" --openclaw-cmd "$host_openclaw")
    [[ "$openclaw_version" =~ ^v?[0-9]+\.[0-9]+ ]] && detect_args+=(--openclaw-version "$openclaw_version")
    detected=$("$detector" "${detect_args[@]}")
    detected=$(python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["generation"]); print("; ".join(d["evidence"]))' <<<"$detected")
    generation=${detected%%$'\n'*}
    say "  generation: $generation era (${detected#*$'\n'})"
else
    say "  generation: $generation era (--generation)"
fi
[ "$install_set" = system ] && [ -z "$R" ] && ! $dry_run && [ "$(id -u)" -ne 0 ] && die 69 "the system set needs root (or pass --user)"

# Sync: inotify watcher or a timer.
if [ -z "$sync_kind" ]; then
    if [ -d /proc/sys/fs/inotify ]; then sync_kind=watch; else sync_kind=once; say "  inotify is not available: sync by timer"; fi
fi

# Targets, the sync unit, the restart hook.
# How the running gateway is told (docs/ARCHITECTURE.md, "Delivery"): cred-sync runs the nudge
# when a store write may go unseen (the copy it replaced had expired), the restart only when the
# environment is all that reaches the gateway or a paste could not be announced. A rotation that
# the store delivers restarts nothing.
targets=() restart_cmd='' nudge_cmd='' sync_unit='' keeper_openclaw_cmd=''
profiles_glob="$openclaw_dir/agents/*/agent/auth-profiles.json"
dropin_dir='' dropin=''
if [ "$gateway" = user-unit ]; then
    dropin_dir=$HOME/.config/systemd/user/$gateway_unit.d
    dropin=$dropin_dir/anthropic.conf
fi
if [ "$generation" = sqlite ]; then
    if [ -n "$openclaw_cmd" ]; then keeper_openclaw_cmd=$openclaw_cmd
    elif [ "$gateway" = docker ]; then
        if ((${#compose_cmd[@]})); then keeper_openclaw_cmd="${compose_cmd[*]} --project-directory $compose_dir exec -T $service openclaw"
        elif [ -n "$gateway_container" ]; then keeper_openclaw_cmd="docker exec -i $gateway_container openclaw"
        else keeper_openclaw_cmd="docker compose --project-directory $compose_dir exec -T $service openclaw"; fi
    else
        [ -n "$host_openclaw" ] || die 2 "SQLite-era OpenClaw needs the openclaw program for paste-token: not on PATH; pass --openclaw-cmd /path/to/openclaw"
        keeper_openclaw_cmd=$(command -v "$host_openclaw" 2>/dev/null || printf '%s' "$host_openclaw")
    fi
    [[ "$compose_dir" == *' '* ]] && warn "the compose directory has a space: KEEPER_OPENCLAW_CMD is split on spaces; pass --openclaw-cmd"
fi

if $setup_token; then
    mode=setup-token
else
    mode=refresh
fi

if [ "$mode" = refresh ]; then
    if [ "$gateway" = docker ]; then
        if [ "$generation" = json ]; then
            targets+=("openclaw-oauth:$openclaw_dir/credentials/oauth.json" "openclaw-profiles:$profiles_glob")
        else
            targets+=(openclaw-paste)
        fi
        compose_words="${compose_cmd[*]:-docker compose} --project-directory $compose_dir"
        # 2026.6.x: SIGUSR1 is an in-process restart (~2 s); paste-token tells 2026.9.6 itself.
        [ "$generation" = json ] && nudge_cmd="$compose_words kill -s SIGUSR1 $service"
        if [ "$compose_passes" = yes ]; then
            # The .env copy is the fallback for the next start; compose-recreate (downstream of
            # the watcher) recreates only for change lines that say "restart": true.
            targets+=("dotenv:$compose_env")
            sync_unit=openclaw-keeper-sync-compose.service
        else
            # The store is read at start too: a plain restart reaches it.
            restart_cmd="$compose_words restart $service"
            sync_unit=openclaw-keeper-sync.service
        fi
    else
        if [ "$generation" = json ]; then targets+=("openclaw-profiles:$profiles_glob"); else targets+=(openclaw-paste); fi
        targets+=("systemd-dropin:$dropin")
        [ -f "$HOME/.openclaw-env" ] && targets+=("dotenv:$HOME/.openclaw-env")
        restart_cmd="systemctl --user daemon-reload && systemctl --user try-restart $gateway_unit"
        [ "$generation" = json ] && nudge_cmd="systemctl --user kill -s USR1 --kill-whom=main $gateway_unit"
        sync_unit=openclaw-keeper-sync.service
    fi
    [ "$sync_kind" = once ] && sync_unit=openclaw-keeper-sync-once.timer
    [ "$sync_kind" = path ] && sync_unit=openclaw-keeper-sync.path
else
    # setup-token: the one long-lived token in the gateway's environment; stale profiles cleared.
    if [ "$gateway" = user-unit ]; then
        targets+=("systemd-dropin:$dropin" "dotenv:$HOME/.openclaw-env")
    else
        [ "$compose_passes" = yes ] || die 2 "setup-token mode for Docker needs the compose file to pass $env_key (see the warning above)"
        targets+=("dotenv:$compose_env")
    fi
    if [ "$generation" = sqlite ]; then targets+=(openclaw-paste)
    else targets+=("clear-stale:$profiles_glob"); fi
fi

# Recreation (system sync-once, KEEPER_RECREATE) and a paste-token run on the host (its state
# directory must be writable for the sync services and named in the config).
recreate=no
[ "$mode" = refresh ] && [ "$gateway" = docker ] && [ "$compose_passes" = yes ] && recreate=yes
paste_on_host=no
for t in "${targets[@]}"; do
    case "$t" in
        openclaw-paste*)
            case "$(basename "${keeper_openclaw_cmd%% *}")" in docker|docker-compose|podman) ;; *) paste_on_host=yes ;; esac ;;
    esac
done

# OpenClaw's own Claude-CLI backend (`openclaw models auth login --provider anthropic --method
# cli`: models `claude-cli/…` or `agentRuntime.id: "claude-cli"`): OpenClaw runs the host's
# `claude`, which reads and refreshes its own login, so there is nothing to copy. The keeper
# keeps only what still helps: the refresh timer (the CLI refreshed in its window even while no
# turn runs, the REAUTH flag and the webhook when the login dies).
cli_backend=no
if [ "$mode" = refresh ] && [ -f "$openclaw_dir/openclaw.json" ] && python3 - "$openclaw_dir/openclaw.json" <<'PY' 2>/dev/null
import json, sys
def walk(v):
    if isinstance(v, dict):
        if isinstance(v.get("agentRuntime"), dict) and v["agentRuntime"].get("id") == "claude-cli":
            return True
        return any(walk(x) for x in v.values())
    if isinstance(v, list):
        return any(walk(x) for x in v)
    return isinstance(v, str) and v.startswith("claude-cli/")
cfg = json.load(open(sys.argv[1]))
sys.exit(0 if walk((cfg.get("agents") or {}).get("defaults") or {}) or walk((cfg.get("agents") or {}).get("list") or []) or walk((cfg.get("agents") or {}).get("entries") or {}) else 1)
PY
then
    cli_backend=yes
    targets=() restart_cmd='' nudge_cmd='' sync_unit=''
    say "  OpenClaw runs the Claude CLI itself (its claude-cli backend): the CLI refreshes its own"
    say "  token when OpenClaw runs it, and nothing needs copying. Installed: the refresh timer only"
    say "  (a refresh in the CLI's window even while no turn runs, the REAUTH flag and the webhook)."
fi

units_to_enable=()
if [ "$mode" = refresh ]; then
    units_to_enable=(openclaw-keeper-refresh.timer)
    [ "$refresh_kind" = direct ] && units_to_enable=(openclaw-keeper-refresh-direct.timer)
    [ -n "$sync_unit" ] && units_to_enable+=("$sync_unit")
fi

# The unit files of the set (whatever the units source ships).
unit_files=()
if [ "$mode" = refresh ]; then
    unit_glob='*'
    $packaged && unit_glob='openclaw-keeper-*' # /usr/lib/systemd/*/ holds every package's units
    for f in "$units_src/$install_set"/$unit_glob; do
        [ -f "$f" ] || continue
        case "$f" in *.service|*.timer|*.path|*.socket|*.target) unit_files+=("$f") ;; esac
    done
    ((${#unit_files[@]})) || warn "no unit files in $units_src/$install_set: the units are not installed (ship them first, or --units-dir DIR)"
fi

# The first seed's units.
old_units=()
for u in "${seed_units[@]}"; do [ -e "$R$unit_dir/$u" ] && old_units+=("$u"); done

# openclaw.json: is a primary model set? is models.providers.anthropic there?
openclaw_json=$openclaw_dir/openclaw.json
model_state=''
model_py() { python3 - "$@" <<'PY'
import json, os, sys, tempfile
action, path = sys.argv[1], sys.argv[2]
MODEL = "anthropic/claude-opus-4-6"
ALIASES = {"anthropic/claude-opus-4-6": {"alias": "Claude Opus 4.6 (Max)"},
           "anthropic/claude-sonnet-4-6": {"alias": "Claude Sonnet 4.6 (Max)"}}
if not os.path.exists(path):
    print("missing"); sys.exit(0)
try:
    with open(path) as f:
        doc = json.load(f)
    if not isinstance(doc, dict):
        raise ValueError("not an object")
except Exception:
    print("not-strict"); sys.exit(0)
defaults = doc.get("agents", {}).get("defaults", {}) if isinstance(doc.get("agents"), dict) else {}
model = defaults.get("model") if isinstance(defaults, dict) else None
primary = model.get("primary") if isinstance(model, dict) else (model if isinstance(model, str) else None)
providers = doc.get("models", {}).get("providers", {}) if isinstance(doc.get("models"), dict) else {}
has_provider = isinstance(providers, dict) and "anthropic" in providers
if action == "check":
    print(f"ok primary={primary or ''} provider={'yes' if has_provider else 'no'}"); sys.exit(0)
set_model, remove_provider = sys.argv[3] == "yes", sys.argv[4] == "yes"
if set_model:
    agents = doc.setdefault("agents", {})
    d = agents.setdefault("defaults", {})
    m = d.get("model")
    if isinstance(m, dict):
        m["primary"] = MODEL
    else:
        d["model"] = {"primary": MODEL}
    models = d.setdefault("models", {})
    for k, v in ALIASES.items():
        models.setdefault(k, v)
if remove_provider and has_provider:
    del doc["models"]["providers"]["anthropic"]
st = os.stat(path)
fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".openclaw.json.keeper-")
with os.fdopen(fd, "w") as f:
    json.dump(doc, f, indent=2, ensure_ascii=False)
    f.write("\n")
    f.flush(); os.fsync(f.fileno())
os.chmod(tmp, st.st_mode & 0o7777)
try:
    os.chown(tmp, st.st_uid, st.st_gid)
except PermissionError:
    pass
os.replace(tmp, path)
print("written")
PY
}
model_snippet() {
    cat <<'SNIPPET'
    {
      "agents": {
        "defaults": {
          "model": { "primary": "anthropic/claude-opus-4-6" },
          "models": {
            "anthropic/claude-opus-4-6": { "alias": "Claude Opus 4.6 (Max)" },
            "anthropic/claude-sonnet-4-6": { "alias": "Claude Sonnet 4.6 (Max)" }
          }
        }
      }
    }
SNIPPET
}
set_model=no
model_state=$(model_py check "$openclaw_json")
case "$model_state" in
    missing) say "  $openclaw_json: not there (the model is left to OpenClaw's defaults)" ;;
    not-strict) say "  $openclaw_json: not strict JSON (JSON5?): setup will print the model snippet instead of editing it" ;;
    ok*)
        primary=${model_state#ok primary=}; primary=${primary% provider=*}
        provider=${model_state##*provider=}
        if [ -n "$primary" ]; then say "  default model: $primary"; else say "  default model: none set"; fi
        if [ "$model_mode" = set ] || { [ "$model_mode" = auto ] && [ -z "$primary" ]; }; then set_model=yes; fi
        if [ "$provider" = yes ]; then
            warn "$openclaw_json has models.providers.anthropic: OpenClaw's built-in Anthropic provider then gets a"
            warn "  base URL ending in /v1 and calls /v1/v1/messages (HTTP 404). Remove it and use the built-in one."
            ask_yes_no fix_providers "Remove models.providers.anthropic from openclaw.json (a backup is kept)?" yes
        else
            fix_providers=no
        fi
        ;;
esac
[ -n "$fix_providers" ] || fix_providers=no

# The CLI test and the first seed's units: asked now, so every answer is known before changes.
if [ "$mode" = refresh ]; then
    if [ -n "$R" ]; then cli_test=no
    else ask_yes_no cli_test "After installing, test one CLI refresh (cli-poke --force: rotates the token once)?" yes
    fi
else
    cli_test=no
fi
if ((${#old_units[@]})); then
    say "  the first seed's units are installed: ${old_units[*]} (in $R$unit_dir)"
    ask_yes_no replace_old "Replace them (stop, disable, move aside as *.keeper-replaced-$run_id)?" yes
fi
[ -n "$notify_url" ] || ask_value notify_url "Webhook URL to tell when a human must log in again (Enter: none)?" ''

# The setup-token, read without echo (or from stdin), validated, held only in this shell.
token=''
if [ "$mode" = setup-token ]; then
    if $token_stdin; then
        IFS= read -r token || true
    elif $interactive || { : </dev/tty; } 2>/dev/null; then
        read -rs -p "Paste the token from \`claude setup-token\` (input hidden): " token </dev/tty || true
        printf '\n' >/dev/tty
    else
        die 2 "setup-token mode without a terminal: pass --token-stdin and the token on stdin"
    fi
    token=${token//[$'\r\n\t ']/}
    if [[ ! "$token" =~ ^sk-ant-oat01-[A-Za-z0-9_-]+$ ]] || [ "${#token}" -lt 80 ]; then
        token=''
        die 2 "that is not a setup-token: it must start with sk-ant-oat01- and be at least 80 characters of [A-Za-z0-9_-]"
    fi
    token_fp=$(printf '%s' "$token" | sha256sum | cut -c1-8)
    say "  setup-token: sk-ant-oat01-…($token_fp)"
fi

# ---------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------
say ""
say "plan"
say "  install set:  $install_set (units in $R$unit_dir, config $R$config)"
if $packaged; then say "  binaries:     the package's in $bin ($pkg_version): nothing to build or copy"
elif [ -n "$bin_dir" ]; then say "  binaries:     copy ${tools[*]} from $bin_dir into $R$bin"
else say "  binaries:     build ${tools[*]} (cargo build --release --locked) and copy them into $R$bin"; fi
say "  mode:         $mode"
[ "$mode" = refresh ] && say "  refresh:      $refresh_kind ($([ "$refresh_kind" = direct ] && echo "cli-poke --direct at the token endpoint, the fallback" || echo "the Claude CLI, poked by cli-poke"))"
say "  targets:      ${targets[*]}"
[ -n "$keeper_openclaw_cmd" ] && say "  paste with:   $keeper_openclaw_cmd"
[ -n "$nudge_cmd" ] && say "  nudge:        $nudge_cmd (only when a store write may go unseen)"
[ -n "$restart_cmd" ] && say "  restart:      $restart_cmd (only when nothing else reaches the gateway)"
if ((${#unit_files[@]})); then say "  units:        ${unit_files[*]##*/}"; fi
if ((${#units_to_enable[@]})); then
    if $enable && [ -z "$R" ]; then say "  enable --now: ${units_to_enable[*]}"; else say "  enable:       none now (${units_to_enable[*]} on a real install)"; fi
fi
((${#old_units[@]})) && say "  first seed:   ${old_units[*]}: $([ "$replace_old" = yes ] && echo "stop, disable, move aside" || echo keep)"
case "$model_state" in
    ok*) say "  openclaw.json: set primary model: $set_model; remove models.providers.anthropic: $fix_providers" ;;
    not-strict) say "  openclaw.json: print the model snippet (not strict JSON)" ;;
esac
[ "$mode" = refresh ] && say "  CLI test:     $cli_test"
if $dry_run; then
    say ""
    say "dry run: nothing changed"
    exit 0
fi
[ -z "$R" ] && ((${#units_to_enable[@]})) && $enable && ! command -v systemctl >/dev/null 2>&1 &&
    die 69 "systemctl not found (pass --no-enable to install the units without enabling them)"

[ -z "$bin_dir" ] && ! $packaged && find_cargo
if $interactive; then
    go=''
    ask_yes_no go "Apply this plan?" yes
    [ "$go" = yes ] || { say "cancelled; nothing changed"; exit 4; }
fi

# ---------------------------------------------------------------------------------------------
# Changes (a failure from here on rolls back)
# ---------------------------------------------------------------------------------------------
changing=true
if [ -n "$R" ] && [ ! -d "$R" ]; then
    mkdir -p "$R"
    root_created=true
    say "created the staging root $R"
fi

if $packaged; then step "the tools: the package's, in $bin (nothing to build or copy)"
else step "install the tools into $R$bin"; fi
if $packaged; then
    for t in "${tools[@]}"; do say "  $bin/$t"; done
elif [ -n "$bin_dir" ]; then
    for t in "${tools[@]}"; do
        [ -x "$bin_dir/$t" ] || { printf '%s: %s is not an executable in --bin-dir\n' "$prog" "$t" >&2; false; }
        install_file "$bin_dir/$t" "$bin/$t" 755
    done
else
    build_tools
    for t in "${tools[@]}"; do install_file "$target_dir/release/$t" "$bin/$t" 755; done
fi
if [ -z "$R" ]; then
    for t in "${tools[@]}"; do "$bin/$t" --version >/dev/null; done
    say "  each tool runs (--version)"
fi

step "write the config $R$config"
quote_env() { # a value in EnvironmentFile syntax: double-quoted when it has blanks or quotes
    case "$1" in
        *[[:space:]\"\'\\\$\#]*) local v=${1//\\/\\\\}; v=${v//\"/\\\"}; v=${v//\$/\\\$}; printf '"%s"' "$v" ;;
        *) printf '%s' "$1" ;;
    esac
}
{
    say "# openclaw-oauth-keeper configuration, written by scripts/setup.sh ($run_id)."
    say "# systemd EnvironmentFile syntax; every tool reads the keys it knows (flags and the"
    say "# environment override them). This file never holds a token."
    say "KEEPER_INSTALL=$install_set"
    say "KEEPER_MODE=$mode"
    say "KEEPER_GATEWAY=$gateway"
    if [ "$gateway" = docker ]; then
        say "KEEPER_PROJECT_DIR=$(quote_env "$compose_dir")"
        say "KEEPER_COMPOSE_FILES=$(quote_env "$compose_file")"
        say "KEEPER_ENV_FILE=$(quote_env "$compose_env")"
        say "KEEPER_SERVICES=$service"
        [ -n "$gateway_container" ] && say "KEEPER_GATEWAY_CONTAINER=$gateway_container"
    else
        say "KEEPER_GATEWAY_UNIT=$gateway_unit"
    fi
    say "KEEPER_OPENCLAW_GENERATION=$generation"
    say "KEEPER_OPENCLAW_DIR=$(quote_env "$openclaw_dir")"
    say "KEEPER_CREDENTIALS=$(quote_env "$credentials")"
    if [ "$cli_mode" = container ]; then say "KEEPER_CONTAINER=$cli_container"
    elif [ "$cli_mode" = host ]; then say "KEEPER_CLI=$(quote_env "$cli_path")"; fi
    # The units' CLI (and the tools' defaults) must look where the user's CLI does.
    if [ -n "$secure_dir" ] && [ "$cli_mode" != container ]; then
        say "CLAUDE_SECURESTORAGE_CONFIG_DIR=$(quote_env "$secure_dir")"
    fi
    say "KEEPER_BASE_URL_OVERRIDE=$base_url_override"
    say "KEEPER_ENV_KEY=$env_key"
    say "KEEPER_TO=$(quote_env "${targets[*]}")"
    [ -n "$keeper_openclaw_cmd" ] && say "KEEPER_OPENCLAW_CMD=$(quote_env "$keeper_openclaw_cmd")"
    [ -n "$restart_cmd" ] && say "KEEPER_RESTART_CMD=$(quote_env "$restart_cmd")"
    [ -n "$nudge_cmd" ] && say "KEEPER_NUDGE_CMD=$(quote_env "$nudge_cmd")"
    [ -n "$notify_url" ] && say "KEEPER_NOTIFY_URL=$(quote_env "$notify_url")"
    [ -n "$notify_url" ] && [ -n "$notify_format" ] && say "KEEPER_NOTIFY_FORMAT=$notify_format"
    [ -n "$notify_every" ] && say "KEEPER_NOTIFY_EVERY=$(quote_env "$notify_every")"
    # No KEEPER_STATE_DIR: the units set it to their StateDirectory= (%S/openclaw-oauth-keeper),
    # the one writable state path under ProtectSystem=strict, and an EnvironmentFile= value would
    # override theirs; the tools' own default is the same directory when run by hand.
    # Where the tools are (verify.sh looks there first: --prefix puts them off PATH).
    say "KEEPER_BIN_DIR=$(quote_env "$bin")"
    # The system sync-once service recreates the gateway container only when this says so: the
    # same condition that picks openclaw-keeper-sync-compose.service.
    [ "$recreate" = yes ] && say "KEEPER_RECREATE=yes"
    # A user service's HOME comes from the password database, not from this shell: a host
    # openclaw (paste-token) is told its state directory explicitly.
    [ "$paste_on_host" = yes ] && say "OPENCLAW_STATE_DIR=$(quote_env "$openclaw_dir")"
    if [ "$mode" = setup-token ]; then
        say "KEEPER_SETUP_TOKEN_EXPIRES_MS=$(( ($(date +%s) + 365 * 86400) * 1000 ))"
        say "KEEPER_SYNC_UNIT="
    else
        say "KEEPER_SYNC_UNIT=$sync_unit"
    fi
    [ "$cli_backend" = yes ] && say "KEEPER_CLI_BACKEND=yes"
    if $enable && ((${#units_to_enable[@]})); then say "KEEPER_UNITS=$(quote_env "${units_to_enable[*]}")"; else say "KEEPER_UNITS="; fi
} >"$work/keeper.env"
make_dir "$config_dir" 755
install_file "$work/keeper.env" "$config" 600

if ((${#unit_files[@]})); then
    if $packaged; then
        # Used in place (a copy in $unit_dir would hide the package's next version); the drop-ins
        # below go to $unit_dir, where they apply to them.
        step "the $install_set units: the package's, in $units_src/$install_set (not copied)"
        say "  ${unit_files[*]##*/}"
    else
        step "install the $install_set units into $R$unit_dir"
        for f in "${unit_files[@]}"; do
            name=${f##*/}
            cp "$f" "$work/$name"
            if [ "$bin" != "$default_bin" ]; then
                if [ "$install_set" = system ]; then
                    sed -i "/^Exec/ s#/usr/local/bin/#$bin/#g" "$work/$name"
                else
                    sed -i "/^Exec/ { s#%h/\.local/bin/#$bin/#g; s#$HOME/\.local/bin/#$bin/#g }" "$work/$name"
                fi
            fi
            install_file "$work/$name" "$unit_dir/$name" 644
        done
        [ "$bin" != "$default_bin" ] && say "  ExecStart= paths rewritten from $default_bin to $bin"
    fi

    step "write the units' writable paths (50-keeper-paths.conf)"
    # glob_dir PATH: the longest fixed prefix directory of a path that may hold a glob.
    glob_dir() {
        local p=$1 fixed=''
        IFS=/ read -ra parts <<<"${p#/}"
        for part in "${parts[@]}"; do
            case "$part" in *[*?[]*) break ;; esac
            fixed=$fixed/$part
        done
        if [ "$fixed" = "$p" ]; then dirname "$p"; else printf '%s\n' "$fixed"; fi
    }
    # systemd/README.md's rules. refresh: the directory holding the CLI's config directory
    # (host mode: the CLI writes ~/.claude/, ~/.claude.json and ~/.claude.lock; --force takes the
    # lock beside the config directory in either mode) and the REAUTH flag's directory.
    refresh_paths=("$(dirname "$(dirname "$credentials")")" "$openclaw_dir")
    # CLAUDE_SECURESTORAGE_CONFIG_DIR: the CLI writes its file and two locks in that directory and
    # its <dir>.lock beside it (its parent, then), and still ~/.claude/ and ~/.claude.json.
    if [ -n "$secure_dir" ] && [ "$cli_mode" != container ]; then
        refresh_paths+=("$(dirname "$secure_dir")" "$(dirname "$(abs_from "$PWD" "${CLAUDE_CONFIG_DIR:-$HOME/.claude}")")")
    fi
    # sync*: each target's directory (a glob's longest fixed prefix), OpenClaw's state directory
    # for a paste-token run on the host; with recreation also the compose project and .env dirs.
    sync_paths=()
    for t in "${targets[@]}"; do
        case "$t" in
            openclaw-paste*) [ "$paste_on_host" = yes ] && sync_paths+=("$openclaw_dir") ;;
            *:*) sync_paths+=("$(glob_dir "${t#*:}")") ;;
        esac
    done
    recreate_paths=()
    if [ "$recreate" = yes ]; then recreate_paths=("$compose_dir" "$(dirname "$compose_env")"); fi
    # The system set runs as root, but a host CLI must run as the user who owns its credentials
    # (cli-poke refuses another user's file: root's refresh would leave root-owned files in that
    # user's ~/.claude). The refresh service then runs as that user.
    refresh_user=''
    if [ "$install_set" = system ] && { [ "$cli_mode" = host ] || [ "$refresh_kind" = direct ]; }; then
        owner_uid=$(stat -c %u "$R$credentials" 2>/dev/null || stat -c %u "$credentials" 2>/dev/null || echo 0)
        if [ "$owner_uid" != 0 ]; then
            refresh_user=$(getent passwd "$owner_uid" | cut -d: -f1) || refresh_user=''
            [ -n "$refresh_user" ] || refresh_user=$owner_uid
        fi
    fi
    write_paths_dropin() { # UNIT PATH...
        local unit=$1 p seen=' '
        shift
        [ -e "$R$unit_dir/$unit" ] || { $packaged && [ -e "$units_src/$install_set/$unit" ]; } || return 0
        {
            say "# Written by scripts/setup.sh: the directories $unit writes (ProtectSystem=strict)."
            say "[Service]"
            if [[ "$unit" == openclaw-keeper-refresh*.service ]] && [ -n "$refresh_user" ]; then
                say "# The host CLI's credentials belong to $refresh_user: the CLI runs as its owner."
                say "User=$refresh_user"
            fi
            for p in "$@"; do
                case "$seen" in *" $p "*) continue ;; esac
                seen="$seen$p "
                say "ReadWritePaths=-$p"
            done
        } >"$work/paths.conf"
        install_file "$work/paths.conf" "$unit_dir/$unit.d/50-keeper-paths.conf" 644
    }
    write_paths_dropin openclaw-keeper-refresh.service "${refresh_paths[@]}"
    write_paths_dropin openclaw-keeper-refresh-direct.service "${refresh_paths[@]}"
    write_paths_dropin openclaw-keeper-sync.service "${sync_paths[@]}"
    write_paths_dropin openclaw-keeper-sync-compose.service "${sync_paths[@]}" "${recreate_paths[@]}"
    write_paths_dropin openclaw-keeper-sync-once.service "${sync_paths[@]}" "${recreate_paths[@]}"
    # The path unit watches this install's credentials file (the shipped unit holds the default).
    # The empty assignment drops the default, so only this file triggers a sync.
    if [ -e "$R$unit_dir/openclaw-keeper-sync.path" ] || { $packaged && [ -e "$units_src/$install_set/openclaw-keeper-sync.path" ]; }; then
        {
            say "# Written by scripts/setup.sh: the file whose changes start openclaw-keeper-sync-once.service."
            say "[Path]"
            say "PathChanged="
            say "PathChanged=${credentials//%/%%}"
        } >"$work/paths.conf"
        install_file "$work/paths.conf" "$unit_dir/openclaw-keeper-sync.path.d/50-keeper-paths.conf" 644
    fi

    # A ReadWritePaths=- entry for a missing directory is dropped, so the first write into it
    # would fail on a read-only file system: create them now. They hold the user's credentials
    # once the services write there, so they are not in installed.list (uninstall leaves them).
    missing_rw=()
    for d in "${refresh_paths[@]}" "${sync_paths[@]}" "${recreate_paths[@]}"; do
        [ -d "$d" ] || [ -d "$R$d" ] || case " ${missing_rw[*]} " in *" $d "*) ;; *) missing_rw+=("$d") ;; esac
    done
    if ((${#missing_rw[@]})); then
        step "create the directories the services write"
        for d in "${missing_rw[@]}"; do make_dir "$d" 700 unlisted; done
    fi
elif [ -n "$dropin_dir" ] && [ ! -d "$R$dropin_dir" ]; then
    step "create the gateway's drop-in directory"
    make_dir "$dropin_dir" 700 unlisted
fi

if ((${#old_units[@]})) && [ "$replace_old" = yes ]; then
    step "replace the first seed's units"
    if [ -z "$R" ]; then
        "${systemctl_cmd[@]}" disable --now "${old_units[@]}" || warn "disabling ${old_units[*]} reported an error"
        say "  stopped and disabled ${old_units[*]}"
    fi
    : >"$work/replaced.list"
    for u in "${old_units[@]}"; do
        mv "$R$unit_dir/$u" "$R$unit_dir/$u.keeper-replaced-$run_id"
        moved_units+=("$unit_dir/$u|$unit_dir/$u.keeper-replaced-$run_id")
        printf '%s -> %s\n' "$unit_dir/$u" "$unit_dir/$u.keeper-replaced-$run_id" >>"$work/replaced.list"
        say "  moved $R$unit_dir/$u aside to $u.keeper-replaced-$run_id"
    done
    install_file "$work/replaced.list" "$config_dir/replaced-seed-units.list" 644
fi

case "$model_state" in
    ok*)
        if [ "$set_model" = yes ] || [ "$fix_providers" = yes ]; then
            step "configure the Anthropic model in openclaw.json"
            staged_json=$R$openclaw_json
            if [ -n "$R" ] && [ ! -e "$staged_json" ]; then
                make_dir "$(dirname "$openclaw_json")" 755 unlisted
                cp -p "$openclaw_json" "$staged_json"
                created_paths+=("$openclaw_json")
                say "  --root: staged a copy of $openclaw_json"
            fi
            backup_user_file "$staged_json"
            model_py apply "$staged_json" "$set_model" "$fix_providers" >/dev/null
            [ "$set_model" = yes ] && say "  set agents.defaults.model.primary = $default_model (+ aliases); models.providers untouched"
            [ "$fix_providers" = yes ] && say "  removed models.providers.anthropic"
        fi
        ;;
    not-strict)
        if [ "$model_mode" != skip ]; then
            say ""
            say "note: $openclaw_json is not strict JSON, so setup does not edit it. Unless a primary model is"
            say "set already, add this by hand (and no \"anthropic\" entry under models.providers):"
            model_snippet
        fi
        ;;
esac

if [ "$mode" = setup-token ]; then
    step "write the setup-token into the gateway's environment"
    # A credentials file cred-sync reads: 0600 in the 0700 work dir, written by printf (a builtin:
    # the token is in no argv). The refresh token is a placeholder: cred-sync copies only the
    # access token, and a setup-token has none.
    token_file=$work/setup-token.credentials.json
    expires_ms=$(( ($(date +%s) + 365 * 86400) * 1000 ))
    (umask 077 && printf '{"claudeAiOauth":{"accessToken":"%s","refreshToken":"none (a setup-token)","expiresAt":%s,"scopes":["user:inference"]}}\n' "$token" "$expires_ms" >"$token_file")
    staged_targets=()
    for t in "${targets[@]}"; do
        kind=${t%%:*}
        case "$t" in
            openclaw-paste*)
                if [ -n "$R" ]; then say "  --root: not pasting into OpenClaw's store ($keeper_openclaw_cmd)"; continue; fi
                staged_targets+=("$t") ;;
            clear-stale:*)
                pattern=${t#*:}
                matches=()
                for f in $pattern; do [ -f "$f" ] && matches+=("$f"); done
                ((${#matches[@]})) || { say "  no auth-profiles.json to clear"; continue; }
                if [ -n "$R" ]; then
                    for f in "${matches[@]}"; do
                        if [ ! -e "$R$f" ]; then make_dir "$(dirname "$f")" 755 unlisted; cp -p "$f" "$R$f"; created_paths+=("$f"); fi
                    done
                fi
                for f in "${matches[@]}"; do backup_user_file "$R$f"; done
                staged_targets+=("clear-stale:$R$pattern") ;;
            *)
                p=${t#*:}
                make_dir "$(dirname "$p")" 755 unlisted
                if [ -e "$R$p" ]; then backup_user_file "$R$p"; else created_paths+=("$p"); fi
                staged_targets+=("$kind:$R$p") ;;
        esac
    done
    sync_args=(--config "$R$config" --from "$token_file" --state-dir "$work/state")
    [ -n "$keeper_openclaw_cmd" ] && sync_args+=(--openclaw-cmd "$keeper_openclaw_cmd")
    for t in "${staged_targets[@]}"; do sync_args+=(--to "$t"); done
    status=0
    "$run_bin/cred-sync" "${sync_args[@]}" >"$work/sync.out" || status=$?
    sed 's/^/  /' "$work/sync.out"
    case "$status" in
        0|1) say "  the setup-token ($token_fp) is in: ${targets[*]}" ;;
        *) printf '%s: cred-sync exited %s\n' "$prog" "$status" >&2; false ;;
    esac
    rm -f "$token_file"
    token=''
fi

step "write the install manifest $R$manifest"
{
    if [ -f "$R$manifest" ]; then grep '^/' "$R$manifest" || true; fi
    printf '%s\n' "${listed_paths[@]}" "$manifest"
} | awk '!seen[$0]++' >"$work/installed.list"
install_file "$work/installed.list" "$manifest" 644
say "  $(grep -c . "$R$manifest") entries"

if ((${#units_to_enable[@]})) && $enable && ((${#unit_files[@]})); then
    step "enable and start ${units_to_enable[*]}"
    if [ -n "$R" ]; then
        say "  --root: not running ${systemctl_cmd[*]} daemon-reload / enable --now ${units_to_enable[*]}"
    else
        "${systemctl_cmd[@]}" daemon-reload
        say "  ${systemctl_cmd[*]} daemon-reload"
        for u in "${units_to_enable[@]}"; do
            "${systemctl_cmd[@]}" enable --now "$u"
            enabled_now+=("$u")
            say "  ${systemctl_cmd[*]} enable --now $u"
            # The path unit starts the sync only when the file changes: the first sync runs now
            # (else the targets stay empty until the CLI's next refresh, hours away).
            if [ "$u" = openclaw-keeper-sync.path ]; then
                if "${systemctl_cmd[@]}" start openclaw-keeper-sync-once.service; then
                    say "  ${systemctl_cmd[*]} start openclaw-keeper-sync-once.service (the first sync)"
                else
                    warn "the first sync (openclaw-keeper-sync-once.service) failed: see the verify step below"
                fi
            fi
        done
    fi
fi
changing=false

# ---------------------------------------------------------------------------------------------
# Checks (the install stays even when they fail)
# ---------------------------------------------------------------------------------------------
final=0
if [ "$mode" = setup-token ] && [ -z "$R" ]; then
    # The gateway reads its environment only when it starts (a compose restart keeps the old one).
    if ! $enable; then
        say ""
        say "--no-enable: restart the gateway yourself so it reads the token"
    elif [ "$gateway" = user-unit ]; then
        step "restart the gateway ($gateway_unit)"
        if systemctl --user daemon-reload && systemctl --user try-restart "$gateway_unit"; then
            say "  systemctl --user daemon-reload; systemctl --user try-restart $gateway_unit"
        else
            final=3; warn "restarting $gateway_unit failed: run systemctl --user daemon-reload && systemctl --user restart $gateway_unit"
        fi
    else
        step "recreate the gateway container (compose-recreate)"
        if "$bin/compose-recreate" --config "$config"; then :; else
            final=3; warn "compose-recreate failed (above): run $bin/compose-recreate --config $config"
        fi
    fi
fi
if [ "$cli_test" = yes ]; then
    direct_flag=() refreshed_by='the CLI refreshed its token'
    [ "$refresh_kind" = direct ] && direct_flag=(--direct) refreshed_by='the token endpoint refreshed it (cli-poke --direct)'
    if [ "$refresh_kind" = direct ]; then step "test one direct refresh (cli-poke --direct --force)"
    else step "test one CLI refresh (cli-poke --force)"; fi
    if "$bin/cli-poke" --config "$config" "${direct_flag[@]}" --force; then say "  $refreshed_by"
    else final=3; warn "cli-poke --force failed (status above): see its log lines"; fi
elif [ "$mode" = refresh ]; then
    say ""
    say "CLI test skipped${R:+ (--root)}"
fi
if $run_verify && [ -z "$R" ]; then
    if [ -x "$here/verify.sh" ]; then
        step "verify (scripts/verify.sh)"
        # The units just started (and the CLI test just rotated the token): the sync service may
        # still be copying it or restarting the gateway, which takes as long as the gateway needs
        # to stop. Give it up to a minute to settle; only the last table is shown.
        deadline=$SECONDS
        if ((${#enabled_now[@]})); then
            deadline=$((SECONDS + 60))
            say "  (waiting up to 60 s for the services to settle)"
        fi
        while true; do
            verify_status=0
            "$here/verify.sh" "--$install_set" --config "$config" >"$work/verify.out" 2>&1 || verify_status=$?
            if [ "$verify_status" -eq 0 ] || [ "$SECONDS" -ge "$deadline" ]; then break; fi
            sleep 1
        done
        cat "$work/verify.out"
        [ "$verify_status" -eq 0 ] || final=3
    else
        say "scripts/verify.sh is not there: verify skipped"
    fi
fi
say ""
if [ "$final" -eq 0 ]; then say "done: openclaw-oauth-keeper is installed ($mode mode, $install_set set)"
else say "installed, but a check failed (above): openclaw-oauth-keeper is installed ($mode mode, $install_set set)"; fi
say "uninstall: $([ "$here" = "$pkg_share" ] && echo "$pkg_share/uninstall.sh" || echo scripts/uninstall.sh)${R:+ --root $R}$([ "$install_set" = user ] && echo ' --user' || echo ' --system')"
exit "$final"
