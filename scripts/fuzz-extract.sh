#!/usr/bin/env bash
# Fuzz the extractor (fuzz/fuzz_targets/extract.rs) for a bounded time. Not run in CI.
# usage: scripts/fuzz-extract.sh [SECONDS]   (default 300)
# Installs cargo-fuzz if missing. Only a stable toolchain is needed: RUSTC_BOOTSTRAP=1 unlocks the
# nightly flags cargo-fuzz passes. Uses AddressSanitizer when the toolchain can link it, else none
# (FUZZ_SANITIZER=none|address to force). Seeds: the HTML fixtures under tests/fixtures, copied into
# fuzz/corpus/extract (kept between runs, git-ignored). A crash or a unit slower than 10 s leaves
# its input in fuzz/artifacts/extract/ and makes the script fail; turn each into a regression test
# in tests/extract_robust.rs.
set -euo pipefail
secs="${1:-300}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
# Keep the fuzz build out of the main target dir (different flags, would evict its cache).
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$root/fuzz/target}"
mkdir -p corpus/extract
find "$root/tests/fixtures" -name '*.html' -exec cp -n {} corpus/extract/ \;
sanitizer="${FUZZ_SANITIZER:-}"
if [[ -z "$sanitizer" ]]; then
  if cargo fuzz build --sanitizer address extract >/dev/null 2>&1; then
    sanitizer=address
  else
    echo "AddressSanitizer build failed; fuzzing without a sanitizer" >&2
    sanitizer=none
  fi
fi
echo "fuzzing extract for ${secs}s (sanitizer: $sanitizer)" >&2
cargo fuzz run --sanitizer "$sanitizer" extract corpus/extract -- \
  -max_total_time="$secs" -timeout=10 -max_len=262144 -print_final_stats=1
