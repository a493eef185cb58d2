#!/usr/bin/env bash
# Score the extractor on the extraction corpora (see ../shared/corpus/README.md).
# usage: scripts/extract-quality.sh [--folds K [--tune F,F] [--base DIR]] [CORPUS_DIR]
#   (corpus default: ../shared/corpus relative to the repo root)
#   --folds K: also score out of fold: pages split into K folds by site (scripts/folds.py); --tune names the
#   folds a change was developed on, --base a bench-out directory of the build before it (deltas per fold).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
folds=0
fold_args=()
pos=()
while (($#)); do
  case "$1" in
    --folds) folds="$2"; shift 2 ;;
    --tune|--base|--worst) fold_args+=("$1" "$2"); shift 2 ;;
    *) pos+=("$1"); shift ;;
  esac
done
corpus="${pos[0]:-$root/../shared/corpus}"
scorer="${SCORER:-$corpus/../bench/score_extraction.py}"
out="${OUT_DIR:-$root/bench-out}"
if [[ ! -d "$corpus/aeb-dev" || ! -d "$corpus/wcxb-dev" ]]; then
  echo "no corpus at $corpus (expected aeb-dev/ and wcxb-dev/)." >&2
  echo "Public benchmarks: github.com/scrapinghub/article-extraction-benchmark and" >&2
  echo "github.com/Murrough-Foley/web-content-extraction-benchmark (see ../shared/corpus/README.md for the layout)." >&2
  exit 2
fi
if [[ ! -f "$scorer" ]]; then
  echo "no scorer at $scorer (set SCORER=path/to/score_extraction.py)" >&2
  exit 2
fi
mkdir -p "$out"
cd "$root"
# PROFILE=quality: incremental optimised build for iterating (same output as release, faster to rebuild).
profile="${PROFILE:-release}"
cargo build --profile "$profile" --example extract_corpus >&2
bin="${CARGO_TARGET_DIR:-$root/target}/$profile/examples/extract_corpus"
for set in aeb-dev wcxb-dev; do
  "$bin" "$corpus/$set/html" > "$out/$set.jsonl"
done
echo "== aeb-dev (all)"
python3 "$scorer" "$corpus/aeb-dev" "$out/aeb-dev.jsonl"
echo "== wcxb-dev (all)"
python3 "$scorer" "$corpus/wcxb-dev" "$out/wcxb-dev.jsonl"
echo "== wcxb-dev (--page-type article)"
python3 "$scorer" "$corpus/wcxb-dev" "$out/wcxb-dev.jsonl" --page-type article
if ((folds > 0)); then
  echo "== out of fold: $folds folds by site (scripts/folds.py)"
  SCORER="$scorer" python3 "$root/scripts/folds.py" "$corpus" "$out" --folds "$folds" "${fold_args[@]}"
fi
