#!/usr/bin/env bash
# The end-to-end suite: builds swf-warden, installs moto, boto3, the AWS CLI, simpleflow and
# pytest in a virtualenv under target/ and the AWS SDK for JavaScript (npm ci, from
# tests/e2e/js/package-lock.json) under target/e2e-js, and runs tests/e2e against a
# moto_server on loopback. Both installs are kept and redone only when their pins change.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The TLS tests make certificates with openssl and call curl; the JS SDK runs on Debian's Node.
if ! command -v openssl >/dev/null || ! command -v curl >/dev/null || ! command -v node >/dev/null \
  || ! command -v npm >/dev/null; then
  apt-get update -qq && apt-get install -y -qq openssl curl nodejs npm >/dev/null
fi

venv=target/e2e-venv
if [ ! -x "$venv/bin/pytest" ] || ! cmp -s tests/e2e/requirements.txt "$venv/requirements.txt"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
  cp tests/e2e/requirements.txt "$venv/requirements.txt"
fi
js=target/e2e-js
mkdir -p "$js"
if [ ! -d "$js/node_modules/@aws-sdk/client-swf" ] || ! cmp -s tests/e2e/js/package-lock.json "$js/package-lock.json"; then
  cp tests/e2e/js/package.json tests/e2e/js/package-lock.json "$js/"
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
fi
cp tests/e2e/js/*.mjs "$js/"
cargo build --locked --quiet
PATH="$PWD/$venv/bin:$PATH" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/e2e "$@"
