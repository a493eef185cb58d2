#!/usr/bin/env bash
# Single-threaded extraction speed: paperboy (release examples/extract_corpus) vs trafilatura, same
# pages, same run. Reports pages/s, MB/s, peak RSS (/usr/bin/time -v) and the speed ratio. Both
# sides are timed in CPU seconds of the extracting thread/process (extract_corpus: thread CPU time
# around extract(); trafilatura: time.process_time() around extract()), pages pre-read into memory,
# so the ratio holds on a loaded machine; extract_corpus also prints its wall-clock seconds.
# usage: scripts/bench-extract.sh [CORPUS_DIR]   (default: ../shared/corpus relative to the repo root)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
corpus="${1:-$root/../shared/corpus}"
if [[ ! -d "$corpus/aeb-dev/html" || ! -d "$corpus/wcxb-dev/html" ]]; then
  echo "no corpus at $corpus (expected aeb-dev/html and wcxb-dev/html)." >&2
  echo "Get the public benchmarks: github.com/scrapinghub/article-extraction-benchmark and" >&2
  echo "github.com/Murrough-Foley/web-content-extraction-benchmark (layout: ../shared/corpus/README.md)." >&2
  exit 2
fi
cd "$root"
cargo build --release --example extract_corpus >&2
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/extract_corpus"
venv="$root/.venv-bench"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet trafilatura lxml_html_clean
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/traf.py" <<'PY'
import gzip, sys, time, pathlib
import trafilatura
files = sorted(p for p in pathlib.Path(sys.argv[1]).iterdir() if p.name.endswith((".html", ".html.gz")))
pages = [(gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()) for p in files]
t = time.process_time()
for b in pages:
    trafilatura.extract(b, with_metadata=True)
el = time.process_time() - t
mb = sum(map(len, pages)) / 1e6
print(f"trafilatura: {len(pages)} pages, {mb:.1f} MB, {el:.3f} s, {len(pages)/el:.1f} pages/s, {mb/el:.1f} MB/s", file=sys.stderr)
print(len(pages) / el)
PY
for set in aeb-dev wcxb-dev; do
  echo "== $set"
  /usr/bin/time -v "$bin" --quiet "$corpus/$set/html" 2> "$tmp/pb.err"
  grep -E "extract_corpus:" "$tmp/pb.err"
  grep -E "Maximum resident" "$tmp/pb.err" | sed 's/^\s*/paperboy peak RSS: /'
  pb=$(sed -nE 's/.* ([0-9.]+) pages\/s.*/\1/p' "$tmp/pb.err" | head -1)
  tr=$(/usr/bin/time -v "$venv/bin/python" "$tmp/traf.py" "$corpus/$set/html" 2> "$tmp/tr.err")
  grep -E "trafilatura:" "$tmp/tr.err"
  grep -E "Maximum resident" "$tmp/tr.err" | sed 's/^\s*/trafilatura peak RSS: /'
  python3 -c "print(f'ratio paperboy/trafilatura: {float(\"$pb\")/float(\"$tr\"):.1f}x')"
done
