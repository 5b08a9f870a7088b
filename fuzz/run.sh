#!/usr/bin/env bash
# Runs the fuzz targets for a bounded time each: fuzz/run.sh SECONDS [TARGET...]
# Exits non-zero when any target fails (a crash, a failed assertion, a timeout or running out
# of memory), after running them all. Installs cargo-fuzz (pinned) when it is missing. Works
# on the stable toolchain: sanitizers are off (`-s none`; the code is `forbid(unsafe_code)`),
# coverage instrumentation is on. Each target starts from fuzz/corpus/TARGET (kept between
# runs, not committed; new inputs land there) and fuzz/seeds/TARGET (committed, read only).
# Findings land in fuzz/artifacts/TARGET/; turn each into a regression test.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(authorization request unseal policy sts upstream audit_verify request_head)

cargo_fuzz_version=0.13.2
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $cargo_fuzz_version" ]; then
  cargo install --locked cargo-fuzz --version "$cargo_fuzz_version"
fi

export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none -O
failed=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t for ${seconds}s"
  log=$(mktemp)
  status=0
  cargo fuzz run -s none -O "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 >"$log" 2>&1 || status=$?
  grep -a -E "^(Done|#[0-9]+ +DONE)|Test unit written" "$log" || true
  if [ "$status" -ne 0 ]; then
    echo "!! $t failed (exit $status):"
    grep -a -m1 -A3 "panicked at" "$log" || tail -n 20 "$log"
    grep -a -m1 -A2 "^Reproduce with" "$log" || true
    failed+=("$t")
  fi
  rm -f "$log"
done
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed targets: ${failed[*]} (inputs in fuzz/artifacts/)"
  exit 1
fi
