# Shared by the bench/*.sh scripts (source it; bash only).
#
#   bench_git_state              sets BENCH_COMMIT, BENCH_TREE ("clean" or a
#                                "DIRTY: ..." description) and BENCH_DIRTY (0/1)
#   bench_monitor_start FILE [PID...]
#                                starts bench/loadmon.py sampling the machine's
#                                load every 5 s; this script's process tree
#                                (and the extra PIDs, e.g. a Redis server the
#                                benchmark drives) count as the benchmark
#   bench_monitor_stop           stops it and fills BENCH_META (an array of
#                                `--meta name=value` arguments: commit, tree,
#                                load before/during/after, other processes'
#                                CPU) and BENCH_BANNERS (lines to put at the
#                                top of the report)
#   bench_record_meta FILE.md FILE.json
#                                adds the BENCH_META lines a report does not
#                                have yet to its "## Machine" list and to the
#                                JSON's "meta" (for reports written before the
#                                load figures were known)
#   bench_mark_report FILE.md... puts BENCH_BANNERS under each report's title
#
# A dirty working tree is recorded in every report, loudly: figures measured
# on uncommitted changes do not describe the commit they name.

BENCH_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

bench_git_state() {
    BENCH_COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
    local changes
    changes=$(git status --porcelain 2>/dev/null || true)
    if [[ -z "$changes" ]]; then
        BENCH_DIRTY=0
        BENCH_TREE="clean"
    else
        BENCH_DIRTY=1
        local n files
        n=$(printf '%s\n' "$changes" | wc -l | tr -d ' ')
        files=$(printf '%s\n' "$changes" | head -n 8 | awk '{print $NF}' | tr '\n' ' ' | sed 's/ *$//')
        [[ "$n" -gt 8 ]] && files="$files …"
        BENCH_TREE="DIRTY: $n uncommitted change(s): $files"
    fi
}

BENCH_MON_PID=""
BENCH_MON_FILE=""
bench_monitor_start() {
    BENCH_MON_FILE=$1
    shift
    local also=()
    local p
    for p in "$@"; do
        [[ -n "$p" ]] && also+=(--also "$p")
    done
    python3 "$BENCH_LIB_DIR/loadmon.py" record --root $$ --interval "${BENCH_MON_INTERVAL:-5}" \
        --out "$BENCH_MON_FILE" "${also[@]}" &
    BENCH_MON_PID=$!
}

bench_monitor_stop() {
    [[ -n "${BENCH_COMMIT:-}" ]] || bench_git_state
    BENCH_META=(--meta "git commit=$BENCH_COMMIT" --meta "working tree=$BENCH_TREE")
    BENCH_BANNERS=()
    if [[ "$BENCH_DIRTY" == 1 ]]; then
        BENCH_BANNERS+=("⚠ **DIRTY WORKING TREE**: this run measured uncommitted changes on top of \`${BENCH_COMMIT:0:12}\` ($BENCH_TREE). These figures describe no commit; do not quote them.")
    fi
    if [[ -n "$BENCH_MON_PID" ]]; then
        kill -TERM "$BENCH_MON_PID" 2>/dev/null || true
        wait "$BENCH_MON_PID" 2>/dev/null || true
        BENCH_MON_PID=""
        local line
        if [[ -s "$BENCH_MON_FILE" ]]; then
            while IFS= read -r line; do
                case "$line" in
                    banner=*) BENCH_BANNERS+=("${line#banner=}") ;;
                    *=*) BENCH_META+=(--meta "$line") ;;
                esac
            done < <(python3 "$BENCH_LIB_DIR/loadmon.py" summary "$BENCH_MON_FILE")
        else
            BENCH_META+=(--meta "machine load=not recorded (the monitor wrote nothing)")
        fi
    fi
}

bench_mark_report() {
    [[ ${#BENCH_BANNERS[@]} -gt 0 ]] || return 0
    local f
    for f in "$@"; do
        [[ -f "$f" ]] || continue
        python3 - "$f" "${BENCH_BANNERS[@]}" <<'PY'
import sys
path, banners = sys.argv[1], sys.argv[2:]
lines = open(path, encoding="utf-8").read().split("\n")
at = 1 if lines and lines[0].startswith("#") else 0
# one quoted paragraph per banner, under the title
block = []
for b in banners:
    block += ["", f"> {b}"]
if not at:
    block = block[1:] + [""]
lines[at:at] = block
open(path, "w", encoding="utf-8").write("\n".join(lines))
PY
    done
}

bench_record_meta() {
    local md=$1 js=$2
    python3 - "$md" "$js" "${BENCH_META[@]}" <<'PY'
import json, sys
md, js, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
pairs = [rest[i + 1].split("=", 1) for i in range(0, len(rest) - 1, 2) if rest[i] == "--meta"]
try:
    d = json.load(open(js, encoding="utf-8"))
except (OSError, ValueError):
    d = None
if isinstance(d, dict):
    m = d.get("meta")
    if isinstance(m, list):
        have = {p[0] for p in m}
        m += [p for p in pairs if p[0] not in have]
    else:
        m = m if isinstance(m, dict) else {}
        for k, v in pairs:
            m.setdefault(k, v)
        d["meta"] = m
    json.dump(d, open(js, "w", encoding="utf-8"), indent=2)
try:
    lines = open(md, encoding="utf-8").read().split("\n")
except OSError:
    sys.exit(0)
heads = [i for i, ln in enumerate(lines) if ln.startswith("## Machine")]
if heads:
    at = heads[0] + 1
    while at < len(lines) and lines[at] == "":
        at += 1
    have, bold = set(), False
    while at < len(lines) and lines[at].startswith("- "):
        key = lines[at][2:].split(":", 1)[0]
        bold = bold or key.startswith("**")
        have.add(key.strip("*"))
        at += 1
    fmt = (lambda k, v: f"- **{k}**: {v}") if bold else (lambda k, v: f"- {k}: {v}")
    lines[at:at] = [fmt(k, v) for k, v in pairs if k not in have]
    open(md, "w", encoding="utf-8").write("\n".join(lines))
PY
}
