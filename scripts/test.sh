#!/usr/bin/env bash
# The README's test command: sets up every backend the test suite needs, then
# runs `cargo test --workspace` (extra arguments are passed on to it).
#
#   - an S3-compatible server: moto (PyPI `moto[server]`, in a virtualenv
#     under ~/.cache/strata) on a free loopback port, stopped at exit
#     -> STRATA_TEST_S3_ENDPOINT (an endpoint already set is used as it is);
#   - the embedding model all-MiniLM-L6-v2 (scripts/fetch-model.sh)
#     -> STRATA_TEST_MODEL_DIR (a folder already set is used as it is);
#   - Redis must answer at STRATA_TEST_REDIS_URL
#     (default redis://127.0.0.1:6379/15);
#   - PostgreSQL must answer at STRATA_TEST_POSTGRES_URL
#     (default postgres://postgres@127.0.0.1:5432/postgres).
#
# It exports STRATA_REQUIRE_BACKENDS=1, so a test that cannot reach its
# backend fails instead of skipping (strata-testkit holds that policy).
# Anything missing stops the script with a message saying what.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "== $*" >&2; }
die() {
    echo "scripts/test.sh: $*" >&2
    exit 1
}

# A target folder outside the clone, so a fresh clone reuses the compiled
# dependencies.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata/target}"
mkdir -p "$CARGO_TARGET_DIR"
export STRATA_REQUIRE_BACKENDS="${STRATA_REQUIRE_BACKENDS:-1}"

# --- Redis ------------------------------------------------------------------
export STRATA_TEST_REDIS_URL="${STRATA_TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"
redis_ping() {
    if command -v redis-cli >/dev/null; then
        [[ "$(redis-cli -u "$STRATA_TEST_REDIS_URL" ping 2>/dev/null)" == PONG ]]
        return
    fi
    # No redis-cli: speak the protocol over bash's /dev/tcp (no password).
    local hostport host port reply
    hostport="${STRATA_TEST_REDIS_URL#*://}"
    hostport="${hostport##*@}"
    hostport="${hostport%%/*}"
    host="${hostport%%:*}"
    port="${hostport##*:}"
    [[ "$port" == "$hostport" ]] && port=6379
    {
        exec 3<>"/dev/tcp/$host/$port" &&
            printf 'PING\r\n' >&3 &&
            IFS= read -r -t 5 reply <&3 &&
            [[ "$reply" == +PONG* ]]
    } 2>/dev/null
    local ok=$?
    exec 3>&- 3<&- 2>/dev/null || true
    return $ok
}
redis_shown="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p._replace(netloc=p.hostname + (":%d" % p.port if p.port else "")).geturl())' "$STRATA_TEST_REDIS_URL" 2>/dev/null || echo "the Redis URL")"
redis_ping || die "Redis does not answer PING at $redis_shown (STRATA_TEST_REDIS_URL); the cache, session and rate-limit tests need it. Start redis-server, or point the variable at one."
say "Redis answers at $redis_shown"

# --- PostgreSQL ---------------------------------------------------------------
export STRATA_TEST_POSTGRES_URL="${STRATA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
postgres_answers() {
    if command -v psql >/dev/null; then
        [[ "$(psql "$STRATA_TEST_POSTGRES_URL" -XAtqc 'SELECT 1' 2>/dev/null)" == 1 ]]
        return
    fi
    # No psql: a server answers an SSLRequest with one byte, 'S' or 'N'.
    python3 - "$STRATA_TEST_POSTGRES_URL" <<'PY'
import socket, struct, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
with socket.create_connection((u.hostname or "127.0.0.1", u.port or 5432), timeout=5) as s:
    s.sendall(struct.pack("!ii", 8, 80877103))
    sys.exit(0 if s.recv(1) in (b"S", b"N") else 1)
PY
}
postgres_shown="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p._replace(netloc=p.hostname + (":%d" % p.port if p.port else "")).geturl())' "$STRATA_TEST_POSTGRES_URL" 2>/dev/null || echo "the PostgreSQL URL")"
postgres_answers || die "PostgreSQL does not answer at $postgres_shown (STRATA_TEST_POSTGRES_URL). Start it, or point the variable at one."
say "PostgreSQL answers at $postgres_shown"

# --- S3 (moto) ----------------------------------------------------------------
# moto[server] is pure Python, installs in seconds from PyPI, needs no
# credentials or data folder, and implements the multipart upload, ranged GET
# and listing calls object_store makes.
if [[ -z "${STRATA_TEST_S3_ENDPOINT:-}" ]]; then
    venv="$HOME/.cache/strata/ci-venv"
    if [[ ! -x "$venv/bin/moto_server" ]]; then
        say "installing moto[server] into $venv"
        python3 -m venv "$venv" || die "python3 -m venv failed; the S3 tests need moto from PyPI"
        "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]' ||
            die "pip could not install moto[server]; the S3 tests need it"
    fi
    moto_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    moto_log="$(mktemp)"
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$moto_log" 2>&1 &
    moto_pid=$!
    trap 'kill "$moto_pid" 2>/dev/null || true; rm -f "$moto_log"' EXIT
    moto_up=""
    for _ in $(seq 1 100); do
        if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$moto_port/', timeout=1)" 2>/dev/null; then
            moto_up=1
            break
        fi
        kill -0 "$moto_pid" 2>/dev/null || break
        sleep 0.2
    done
    if [[ -z "$moto_up" ]]; then
        cat "$moto_log" >&2
        die "moto_server did not come up on 127.0.0.1:$moto_port; the S3 tests need it"
    fi
    export STRATA_TEST_S3_ENDPOINT="http://127.0.0.1:$moto_port"
    say "moto (S3) at $STRATA_TEST_S3_ENDPOINT"
else
    say "S3 at $STRATA_TEST_S3_ENDPOINT (STRATA_TEST_S3_ENDPOINT was set)"
fi
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" AWS_REGION="${AWS_REGION:-us-east-1}"

# --- The embedding model ------------------------------------------------------
if [[ -z "${STRATA_TEST_MODEL_DIR:-}" ]]; then
    STRATA_TEST_MODEL_DIR="$(bash scripts/fetch-model.sh)" ||
        die "scripts/fetch-model.sh failed; the local embedder's tests need the model"
fi
export STRATA_TEST_MODEL_DIR
say "embedding model in $STRATA_TEST_MODEL_DIR"

# --- The tests ------------------------------------------------------------------
say "cargo test --workspace --no-fail-fast $*"
cargo test --workspace --no-fail-fast "$@"

if [[ -f scripts/schemathesis.sh ]]; then
    say "bash scripts/schemathesis.sh"
    bash scripts/schemathesis.sh
fi

if [[ -f scripts/qdrant-clients.sh ]]; then
    say "bash scripts/qdrant-clients.sh"
    bash scripts/qdrant-clients.sh
fi
