#!/usr/bin/env bash
# Runs the real Qdrant clients from PyPI, pinned, against a freshly started
# `strata serve` with its Qdrant-compatible listener (STRATA_QDRANT_LISTEN on a
# free loopback port): tests/qdrant/flow_*.py, each with its own bot key made
# through the admin API. Each flow checks its results (recall@10 against an
# exact search of the same data, counts, payloads) and exits non-zero on any
# difference. Exits non-zero when any flow fails.
#
#   bash scripts/qdrant-clients.sh          # from the repository root
#
# Virtual environments (made once, reused) under ~/.cache/strata/:
#   qdrant-clients-venv      qdrant-client (newest tested), langchain-qdrant,
#                            llama-index-vector-stores-qdrant, langchain-core
#   qdrant-client-112-venv   qdrant-client 1.12 for the legacy `search` path
#
# Environment:
#   STRATA_BIN   a built `strata` binary (default: cargo build -p strata-cli,
#                dev profile, in $CARGO_TARGET_DIR when set)
set -euo pipefail
cd "$(dirname "$0")/.."

QDRANT_CLIENT="1.20.0"
QDRANT_CLIENT_LEGACY="1.12.1"
LANGCHAIN_QDRANT="1.1.0"
LLAMA_INDEX_QDRANT="0.10.4"
NUMPY="2.4.6"
LANGCHAIN_CORE="1.8.3"
LLAMA_INDEX_CORE="0.14.25"

say() { echo "== $*" >&2; }

venv_with() { # venv_with DIR STAMP PACKAGES...
    local dir="$1" stamp="$2"
    shift 2
    if [[ "$(cat "$dir/.strata-stamp" 2>/dev/null || true)" != "$stamp" ]]; then
        say "installing $* into $dir"
        rm -rf "$dir"
        python3 -m venv "$dir"
        "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
        echo "$stamp" >"$dir/.strata-stamp"
    fi
}
new="$HOME/.cache/strata/qdrant-clients-venv"
old="$HOME/.cache/strata/qdrant-client-112-venv"
venv_with "$new" "$QDRANT_CLIENT/$LANGCHAIN_QDRANT/$LANGCHAIN_CORE/$LLAMA_INDEX_QDRANT/$LLAMA_INDEX_CORE/$NUMPY" \
    "qdrant-client==$QDRANT_CLIENT" "langchain-qdrant==$LANGCHAIN_QDRANT" "langchain-core==$LANGCHAIN_CORE" \
    "llama-index-vector-stores-qdrant==$LLAMA_INDEX_QDRANT" "llama-index-core==$LLAMA_INDEX_CORE" "numpy==$NUMPY"
venv_with "$old" "$QDRANT_CLIENT_LEGACY/$NUMPY" "qdrant-client==$QDRANT_CLIENT_LEGACY" "numpy==$NUMPY"

# --- the strata binary ---------------------------------------------------------
if [[ -n "${STRATA_BIN:-}" ]]; then
    bin="$STRATA_BIN"
else
    say "cargo build -p strata-cli"
    bin="$(cargo build --quiet -p strata-cli --bin strata --message-format=json \
        | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "strata":
        print(m["executable"])')"
fi
[[ -x "$bin" ]] || { echo "no strata binary at '$bin'" >&2; exit 1; }

# --- a server on a fresh data folder, two free loopback ports ------------------
work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
qport="$(free_port)"
admin="qdrant-clients-admin-key-0123456789"
STRATA_DATA_DIR="$work/data" STRATA_LISTEN="127.0.0.1:$port" STRATA_QDRANT_LISTEN="127.0.0.1:$qport" \
    STRATA_ADMIN_KEY="$admin" STRATA_LOG=warn STRATA_CONFIG=/dev/null \
    "$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$qport/healthz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$qport/healthz" >/dev/null || { cat "$work/server.log" >&2; exit 1; }

# A bot and an admin key per flow, through the admin API.
bot_key() { # bot_key BOT -> the key of a new admin key of a new bot
    curl -fsS -X POST "http://127.0.0.1:$port/v1/bots" -H "Authorization: Bearer $admin" \
        -H 'Content-Type: application/json' -d "{\"id\":\"$1\",\"name\":\"$1\"}" >/dev/null
    curl -fsS -X POST "http://127.0.0.1:$port/v1/bots/$1/keys" -H "Authorization: Bearer $admin" \
        -H 'Content-Type: application/json' -d '{"name":"qdrant-flow","role":"admin"}' |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])'
}

failed=()
run_flow() { # run_flow VENV FLOW
    local py="$1/bin/python" flow="$2" name key
    name="$(basename "$flow" .py)"
    key="$(bot_key "${name//_/-}")"
    say "$name ($("$py" -c 'import qdrant_client.version as v; print("qdrant-client", v.__version__)' 2>/dev/null || "$py" -c 'import importlib.metadata as m; print("qdrant-client", m.version("qdrant-client"))'))"
    if QDRANT_URL="http://127.0.0.1:$qport" QDRANT_PREFIX_URL="http://127.0.0.1:$port/qdrant" QDRANT_API_KEY="$key" \
        timeout 600 "$py" "$flow"; then
        say "$name: ok"
    else
        say "$name: FAILED"
        failed+=("$name")
    fi
}
run_flow "$new" tests/qdrant/flow_qdrant_client.py
run_flow "$old" tests/qdrant/flow_qdrant_client_legacy.py
run_flow "$new" tests/qdrant/flow_langchain.py
run_flow "$new" tests/qdrant/flow_llamaindex.py

if ((${#failed[@]})); then
    echo "scripts/qdrant-clients.sh: failed: ${failed[*]}" >&2
    tail -n 50 "$work/server.log" >&2
    exit 1
fi
say "all Qdrant client flows passed"
