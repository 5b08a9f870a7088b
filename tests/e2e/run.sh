#!/usr/bin/env bash
# The end-to-end suite: builds swf-warden, installs moto, boto3, the AWS CLI and pytest in a
# virtualenv under target/, and runs tests/e2e against a moto_server on loopback.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The TLS tests make certificates with openssl and call curl.
if ! command -v openssl >/dev/null || ! command -v curl >/dev/null; then
  apt-get update -qq && apt-get install -y -qq openssl curl >/dev/null
fi

venv=target/e2e-venv
if [ ! -x "$venv/bin/pytest" ] || ! cmp -s tests/e2e/requirements.txt "$venv/requirements.txt"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
  cp tests/e2e/requirements.txt "$venv/requirements.txt"
fi
cargo build --locked --quiet
PATH="$PWD/$venv/bin:$PATH" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/e2e "$@"
