#!/usr/bin/env bash
# Runs the fuzz targets for a bounded time each: fuzz/run.sh SECONDS [TARGET...]
# Needs cargo-fuzz (`cargo install cargo-fuzz`). Works on the stable toolchain: sanitizers are
# off (`-s none`; the code is `forbid(unsafe_code)`), coverage instrumentation is on.
# Findings land in fuzz/artifacts/TARGET/; turn each into a regression test.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(authorization request unseal policy)
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none -O
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t for ${seconds}s"
  cargo fuzz run -s none -O "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 2>&1 | grep -a -E "^(Done|#[0-9]+ +DONE)|panicked|SUMMARY|Test unit written|ERROR" || true
done
