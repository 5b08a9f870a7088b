#!/usr/bin/env bash
# Mutation testing of the security core (docs/testing.md, "Mutation testing"):
#
#   tests/mutants.sh unit    [FILE-GLOB…] [-- cargo-mutants options, e.g. --shard 1/4]
#   tests/mutants.sh handler [-- cargo-mutants options]
#   tests/mutants.sh server  [FILE-GLOB…] [-- cargo-mutants options, e.g. --iterate]
#
# `unit`: the mutants of the verifier, tokens, policy engine, SWF model and resolution
# (or of the FILE-GLOBs given), against the library's unit tests: one test binary to rebuild,
# about 30 s a mutant on two cores. `handler`: src/handler/, against the integration suites
# that drive the request path. `server`: the proxy's own HTTP/1.1 server and the calls of a
# connection (src/server/h1/, src/server/calls.rs, or the FILE-GLOBs given), against the unit
# tests and the suites that drive connections over sockets. Each run works on a copy of the
# tree and of target/.
#
# A mutant no test catches fails the run unless tests/mutants/survivors.txt justifies it: a
# line `FILE: MUTANT  # why`, as cargo-mutants names it but without its line and column.
# The outcome of the last run of each group is in target/mutants-GROUP/mutants.out/.
set -euo pipefail
cd "$(dirname "$0")/.."
version=27.1.0
if [ "$(cargo mutants --version 2>/dev/null)" != "cargo-mutants $version" ]; then
  cargo install --locked cargo-mutants --version "$version"
fi

group=${1:-unit}
shift || true
globs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  globs+=("$1")
  shift
done
[ "${1:-}" = "--" ] && shift
case $group in
  unit)
    [ ${#globs[@]} -gt 0 ] || globs=(src/sigv4/*.rs src/tokens.rs 'src/policy/**/*.rs' src/swf/*.rs src/resolve.rs 'src/sts/**/*.rs')
    tests=(--cargo-arg=--lib)
    ;;
  handler)
    globs=('src/handler/*.rs')
    tests=()
    for t in refusals proxy policy_enforcement isolation hostile operations operations_runtime cli quotas sts; do
      tests+=("--cargo-arg=--test=$t")
    done
    ;;
  server)
    [ ${#globs[@]} -gt 0 ] || globs=('src/server/h1/*.rs' src/server/calls.rs)
    tests=(--cargo-arg=--lib)
    for t in connections hostile refusals proxy; do
      tests+=("--cargo-arg=--test=$t")
    done
    ;;
  *)
    echo "unknown group $group (unit, handler or server)" >&2
    exit 64
    ;;
esac
files=()
for g in "${globs[@]}"; do files+=(--file "$g"); done

out=target/mutants-${MUTANTS_TAG:-$group}
status=0
cargo mutants --no-config --copy-target=true --baseline=skip --timeout=120 \
  --exclude 'src/**/tests.rs' --exclude 'src/**/tests/*.rs' \
  --output "$out" "${files[@]}" "${tests[@]}" "$@" || status=$?
# 0: all caught; 2: some missed; 3: some timed out (a timeout counts as caught).
case $status in 0 | 2 | 3) ;; *) exit "$status" ;; esac

results=$out/mutants.out
export LC_ALL=C
key() { sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /'; }
justified=$( (grep -v '^\s*\(#\|$\)' tests/mutants/survivors.txt || true) | sed -E 's/\s+#.*$//' | sort -u)
unjustified=$(key <"$results/missed.txt" | sort -u | comm -23 - <(echo "$justified"))
count() { if [ -s "$results/$1.txt" ]; then grep -c . "$results/$1.txt"; else echo 0; fi; }
caught=$(count caught)
timeout=$(count timeout)
missed=$(count missed)
unviable=$(count unviable)
echo "caught $caught, timed out $timeout, missed $missed ($(echo "$unjustified" | grep -c .) unjustified), unviable $unviable"
echo "score: $(( (caught + timeout) * 100 / (caught + timeout + missed > 0 ? caught + timeout + missed : 1) ))% caught"
if [ -n "$unjustified" ]; then
  echo "mutants no test catches and tests/mutants/survivors.txt does not justify:"
  echo "$unjustified"
  exit 1
fi
