#!/usr/bin/env bash
# Runs schemathesis (property-based API testing) with all its checks against
# a freshly started `strata serve`, driven by the server's own
# `/v1/openapi.json`: every operation must accept what its documented schema
# allows, reject what it does not, and answer with the documented statuses,
# content types, headers and bodies. Exits non-zero on any failure or error.
#
#   bash scripts/schemathesis.sh            # from the repository root
#
# Environment:
#   STRATA_BIN                 a built `strata` binary to test (default: cargo
#                              build -p strata-cli, dev profile, in
#                              $CARGO_TARGET_DIR when set)
#   SCHEMATHESIS_MAX_EXAMPLES  test cases per operation and phase (default 20)
#   SCHEMATHESIS_SEED          the run's seed (default 20240601: fixed, so a
#                              run is reproducible and CI does not flake on
#                              newly drawn inputs)
#   SCHEMATHESIS_REPORT_DIR    where the JUnit and NDJSON reports go (default:
#                              a temporary folder, printed at the end)
#
# Authentication: the run uses three keys, so that what schemathesis does with
# one operation cannot take away what the others need:
#   - bot-scoped operations (/v1/bots/{bot}/...) run on the bot `st` with a key
#     of that bot's admin role: the role that may call every one of them, and
#     a key no bot operation can delete (only the global admin deletes bots);
#   - the key operations (/v1/bots/{bot}/keys...) run on a bot of their own,
#     `st-keys`, with the global admin key, so revoking a listed key can never
#     revoke the key the rest of the run uses;
#   - the global operations (POST/GET /v1/bots) and DELETE /v1/bots/{bot} use
#     the global admin key; the delete runs on the bot `st-doomed`, which
#     exists to be deleted, never on `st`.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION="4.32.5"
venv="$HOME/.cache/strata/schemathesis-venv"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-20}"
seed="${SCHEMATHESIS_SEED:-20240601}"

# --- schemathesis, pinned, in a venv reused across runs ----------------------
if [[ "$("$venv/bin/st" --version 2>/dev/null || true)" != *"version $SCHEMATHESIS_VERSION"* ]]; then
    echo "== installing schemathesis $SCHEMATHESIS_VERSION into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# --- the strata binary -------------------------------------------------------
if [[ -n "${STRATA_BIN:-}" ]]; then
    bin="$STRATA_BIN"
else
    echo "== cargo build -p strata-cli"
    bin="$(cargo build --quiet -p strata-cli --bin strata --message-format=json \
        | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "strata":
        print(m["executable"])')"
fi
if [[ ! -x "$bin" ]]; then
    echo "no strata binary at '$bin'" >&2
    exit 1
fi

# --- a server on a fresh data folder and a free loopback port ---------------
work="$(mktemp -d)"
report_dir="${SCHEMATHESIS_REPORT_DIR:-$work/report}"
mkdir -p "$report_dir"
report_dir="$(cd "$report_dir" && pwd)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work/data"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
admin_key="$(python3 -c 'import secrets; print("st-admin-" + secrets.token_hex(24))')"
base="http://127.0.0.1:$port"

# The local embedder (all-MiniLM-L6-v2, as CI's tests use it): without one,
# dense and hybrid knowledge-base search and memory search answer
# `no_embedder` to every request, and schemathesis could test nothing there.
if ! model_dir="$(bash scripts/fetch-model.sh)"; then
    echo "scripts/fetch-model.sh failed; the run needs the embedding model" >&2
    exit 1
fi

# Rate limits far above what the run sends (requests per key, and failed
# authentications per address: schemathesis probes every operation without
# a key): it checks the API's answers, not its throttling (429 is covered by
# the server's own tests).
STRATA_DATA_DIR="$work/data" \
STRATA_LISTEN="127.0.0.1:$port" \
STRATA_ADMIN_KEY="$admin_key" \
STRATA_RATE_LIMIT=100000000 \
STRATA_AUTH_FAILURE_LIMIT=100000000 \
STRATA_EMBEDDER="local:$model_dir" \
RUST_LOG="${RUST_LOG:-warn}" \
    "$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!

up=""
for _ in $(seq 1 150); do
    if python3 -c "import urllib.request; urllib.request.urlopen('$base/health', timeout=1)" 2>/dev/null; then
        up=1
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        break
    fi
    sleep 0.2
done
if [[ -z "$up" ]]; then
    echo "strata serve did not come up on $base:" >&2
    cat "$work/server.log" >&2
    exit 1
fi
echo "== strata serve at $base (data in $work/data)"

# --- what the run needs: its bots and the bot admin key ---------------------
dimension=4
bot_key="$(STRATA_URL="$base" ADMIN="$admin_key" DIMENSION="$dimension" python3 - <<'PY'
import json, os, urllib.request

base, admin = os.environ["STRATA_URL"], os.environ["ADMIN"]

def call(method, path, body):
    req = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + admin, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)

for bot in ("st", "st-keys", "st-doomed"):
    call("POST", "/v1/bots", {"id": bot, "name": "schemathesis " + bot})
dim = int(os.environ["DIMENSION"])
for name in ("st-vec", "st-vec-doomed"):
    call("POST", "/v1/bots/st/collections", {"name": name, "dimension": dim, "metric": "cosine"})
call("PUT", "/v1/bots/st/collections/st-vec/points",
     {"points": [{"id": i, "vector": [float(i + 1)] * dim, "payload": {"n": i}} for i in range(3)]})
print(call("POST", "/v1/bots/st/keys", {"name": "schemathesis", "role": "admin"})["key"])
PY
)"

# Two runs on the one server, each with its own configuration:
#   1. everything inside the bot `st`, with the bot's admin key;
#   2. then the global and destructive operations, with the global admin key:
#      bots (create, list, delete), keys (create, list, revoke) and dropping a
#      collection. Schemathesis feeds ids it has seen into later requests, so
#      run 1 must not hold an operation that could delete the bot, revoke the
#      key or drop the fixture collection the rest of it works on.
hooks="$PWD/scripts/schemathesis-hooks.py"
global_ops='^(create_bot|list_bots|delete_bot|create_key|list_keys|revoke_key|drop_collection)$'

write_config() { # file, bearer key, the path's bot ("" to let schemathesis choose)
    cat >"$1" <<TOML
# Generated by scripts/schemathesis.sh.
seed = $seed
# A generation health check, not a check of the API: the drawn path ids of a
# few operations are often ones schemathesis itself filters out.
suppress-health-check = ["filter_too_much"]
headers = { Authorization = "Bearer $2" }
${3:+parameters = { \"path.bot\" = \"$3\" \}}

[generation]
max-examples = $max_examples
# No example database: with the fixed seed every run draws the same inputs,
# so CI does not flake on newly drawn ones.
database = "none"

[checks]
enabled = true

# Vector operations work on the fixture collection st-vec (see the hooks).
[[operations]]
include-path-regex = "^/v1/bots/\\\\{bot\\\\}/collections/\\\\{name\\\\}"
parameters = { "path.name" = "st-vec" }
TOML
}
# Run 1 stays in the bot st; run 2 follows the bots it creates and lists.
write_config "$work/bot.toml" "$bot_key" st
write_config "$work/global.toml" "$admin_key" ""

run_st() { # name, config, filter flag, log
    echo "== schemathesis $SCHEMATHESIS_VERSION ($1): all checks, max-examples $max_examples, seed $seed"
    # From the run's own folder: schemathesis keeps a cache of past crashes
    # (.schemathesis/) in its working directory and would replay them.
    (cd "$work" && SCHEMATHESIS_HOOKS="$hooks" STRATA_ST_DIMENSION="$dimension" \
        "$venv/bin/st" --config-file "$2" --no-color run "$base/v1/openapi.json" \
        --checks all \
        --workers 1 \
        "$3" "$global_ops" \
        --report junit,ndjson --report-dir "$report_dir/$1") \
        2>&1 | tee "$4"
    return "${PIPESTATUS[0]}"
}

set +e
run_st bot "$work/bot.toml" --exclude-operation-id-regex "$work/bot.log"
status_bot=$?
run_st global "$work/global.toml" --include-operation-id-regex "$work/global.log"
status_global=$?
set -e
status=0
[[ "$status_bot" -ne 0 || "$status_global" -ne 0 ]] && status=1

if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "strata serve died during the run:" >&2
    tail -50 "$work/server.log" >&2
    status=1
fi

echo
echo "== schemathesis summary"
for part in bot global; do
    printf '%-7s %s\n' "$part:" "$(grep -E '^=+ .* in [0-9.]+s =+$' "$work/$part.log" | tail -n 1 | tr -d '=' | sed 's/^ *//; s/ *$//')"
    grep -E '^  (Selected|Tested):|^  [0-9,]+ generated' "$work/$part.log" | sed 's/^ */    /'
done
echo "reports: $report_dir; logs: $work/{bot,global,server}.log"
if [[ "$status" -ne 0 ]]; then
    echo "schemathesis.sh: FAILED (bot run exit $status_bot, global run exit $status_global)" >&2
    exit "$status"
fi
echo "schemathesis.sh: ok"
