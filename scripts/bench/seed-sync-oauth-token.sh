#!/usr/bin/env bash
# The first seed's token sync watcher, reproduced for comparison (benchmarks only; never install):
# inotifywait on the Claude CLI's credentials, then per change a python3 field mapping into
# OpenClaw's oauth.json and auth-profiles.json, and sed on the .env. Like the seed it writes in
# place without fsync, and passes the token to sed on its command line — two of the things
# cred-sync exists to avoid.
#
# Usage: seed-sync-oauth-token.sh CREDS_FILE OAUTH_JSON AUTH_PROFILES_JSON ENV_FILE
set -uo pipefail
creds="$1" oauth="$2" profiles="$3" env_file="$4"
py="$(python3 -c 'import sys; print(sys.executable)')"

inotifywait -m -q -e close_write,moved_to --format '%f' "$(dirname "$creds")" |
    while read -r name; do
        [ "$name" = "$(basename "$creds")" ] || continue
        "$py" - "$creds" "$oauth" "$profiles" <<'PY'
import json, sys
creds, oauth, profiles = sys.argv[1:4]
c = json.load(open(creds))["claudeAiOauth"]
try:
    o = json.load(open(oauth))
except Exception:
    o = {}
o["anthropic"] = {"access": c["accessToken"], "refresh": c["refreshToken"], "expires": c["expiresAt"]}
json.dump(o, open(oauth, "w"), indent=2)
try:
    p = json.load(open(profiles))
except Exception:
    p = {"version": 1, "profiles": {}}
p.setdefault("profiles", {})["anthropic:claude-code"] = {
    "type": "oauth", "provider": "anthropic",
    "access": c["accessToken"], "refresh": c["refreshToken"], "expires": c["expiresAt"]}
json.dump(p, open(profiles, "w"), indent=2)
PY
        token="$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["claudeAiOauth"]["accessToken"])' "$creds")"
        sed -i "s|^ANTHROPIC_OAUTH_TOKEN=.*|ANTHROPIC_OAUTH_TOKEN=$token|" "$env_file"
    done
