#!/usr/bin/env bash
# Score the extractor on the extraction corpora (see ../shared/corpus/README.md).
# usage: scripts/extract-quality.sh [CORPUS_DIR]   (default: ../shared/corpus relative to the repo root)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
corpus="${1:-$root/../shared/corpus}"
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
cargo build --release --example extract_corpus >&2
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/extract_corpus"
for set in aeb-dev wcxb-dev; do
  "$bin" "$corpus/$set/html" > "$out/$set.jsonl"
done
echo "== aeb-dev (all)"
python3 "$scorer" "$corpus/aeb-dev" "$out/aeb-dev.jsonl"
echo "== wcxb-dev (all)"
python3 "$scorer" "$corpus/wcxb-dev" "$out/wcxb-dev.jsonl"
echo "== wcxb-dev (--page-type article)"
python3 "$scorer" "$corpus/wcxb-dev" "$out/wcxb-dev.jsonl" --page-type article
