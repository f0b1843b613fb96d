#!/usr/bin/env bash
# Builds the Python package (crates/memlane-py) into a virtual environment
# under target/ and runs its tests (pytest), including the ones against the
# `memlane` command. Run from anywhere:
#
#     bash scripts/python-test.sh [PYTEST ARGS...]
#
# Needs Python >= 3.11 with venv (installs Debian's python3-venv if
# missing) and PyPI for maturin, pytest, numpy and uvloop (the asyncio
# tests also run on uvloop's loop). $PYTHON picks the
# interpreter (default python3).
set -euo pipefail

cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
venv=target/python-venv

if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1 && command -v apt-get >/dev/null; then
    echo "installing python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends python3-venv >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 &&
            apt-get install -y -q --no-install-recommends python3-venv >/dev/null 2>&1; } ||
        echo "note: could not install python3-venv"
fi
"$python" --version

# A venv left half-made (a full disk, an interrupted run) lacks its
# pyvenv.cfg or pip: made again from scratch.
if [ -e "$venv" ] && ! { [ -f "$venv/pyvenv.cfg" ] && "$venv/bin/python" -m pip --version >/dev/null 2>&1; }; then
    echo "the virtual environment in $venv is broken (no pyvenv.cfg or no pip): making it again"
    rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.5,<2" "pytest>=7" numpy uvloop

# The Rust command the cross-language tests talk to.
cargo build -q -p memlane-cli

# Build the extension and install it into the venv (editable: the
# Python sources stay in crates/memlane-py/python).
(
    cd crates/memlane-py
    VIRTUAL_ENV="$PWD/../../$venv" PATH="$PWD/../../$venv/bin:$PATH" \
        maturin develop -q
)

target=$(cargo metadata --format-version 1 --no-deps |
    "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
MEMLANE_CLI="$target/debug/memlane" "$venv/bin/python" -m pytest -q crates/memlane-py/tests "$@"
