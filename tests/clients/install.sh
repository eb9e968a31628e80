#!/usr/bin/env bash
# The client matrix's environments (tests/clients/), built from the registries into a cache outside the
# work tree, keyed by the pinned files (and the interpreter / node version), and linked into the tree:
#   .venv-clients/main, .venv-clients/llm   python venvs from requirements-{main,llm}.txt
#   tests/clients/node/node_modules          `npm ci` from node/package.json + package-lock.json
# A second run, a fresh clone on the same machine, or CI after a session reuses them (a few hashes).
# A failed install warns (the tests then skip); under CI=true it fails.
set -uo pipefail
cd "$(dirname "$0")"
ROOT="$(cd ../.. && pwd)"
PYTHON="${PYTHON:-python3}"
CACHE="${TIERWISE_CLIENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tierwise-clients}"
status=0

fail() {
  echo "client matrix: $1 (the client tests will skip; under CI=true they fail)" >&2
  if [ -n "${CI:-}" ]; then status=1; fi
}
key() { cat "$@" | sha256sum | cut -c1-16; }

mkdir -p "$CACHE" "$ROOT/.venv-clients" || { fail "cannot create $CACHE"; exit "$status"; }
exec 9>"$CACHE/.lock"
flock 9  # two runs (a developer and CI) never build the same environment at once

pyver="$("$PYTHON" -c 'import sys; print(sys.version)')"
for name in main llm; do
  req="requirements-$name.txt"
  dir="$CACHE/py-$name-$(key "$req" <(echo "$pyver"))"
  if [ ! -e "$dir/.installed" ]; then
    echo "client matrix: building $dir from tests/clients/$req"
    rm -rf "$dir"
    if "$PYTHON" -m venv "$dir" && "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$req"; then
      touch "$dir/.installed"
      find "$CACHE" -maxdepth 1 -name "py-$name-*" ! -path "$dir" -exec rm -rf {} +  # older pins
    else
      rm -rf "$dir"; fail "pip could not install tests/clients/$req"; continue
    fi
  fi
  ln -sfn "$dir" "$ROOT/.venv-clients/$name"
done

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  fail "node/npm not found"
else
  dir="$CACHE/node-$(key node/package.json node/package-lock.json <(node --version))"
  if [ ! -e "$dir/node_modules/.installed" ]; then
    echo "client matrix: building $dir (npm ci)"
    rm -rf "$dir" && mkdir -p "$dir" && cp node/package.json node/package-lock.json "$dir/"
    if (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error); then
      touch "$dir/node_modules/.installed"
      find "$CACHE" -maxdepth 1 -name "node-*" ! -path "$dir" -exec rm -rf {} +
    else
      rm -rf "$dir"; fail "npm ci failed in tests/clients/node"
    fi
  fi
  if [ -e "$dir/node_modules/.installed" ]; then
    [ -L node/node_modules ] || rm -rf node/node_modules
    ln -sfn "$dir/node_modules" node/node_modules
  fi
fi
exit "$status"
