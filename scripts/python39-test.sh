#!/usr/bin/env bash
# Builds the Python package for CPython 3.9 (the version-specific build,
# `--no-default-features`: not abi3, see docs/BINDINGS.md, "Which
# Pythons") and runs the whole pytest suite on it. Run after
# scripts/python-test.sh (it uses that script's venv for maturin and pip
# and its `memlane` command):
#
#     bash scripts/python39-test.sh [PYTEST ARGS...]
#
# Debian 12 has no Python 3.9 or 3.10 package. This takes Debian 11's
# python3.9 (and the three libraries Debian 12 lacks for it: libssl1.1,
# libffi7, libmpdec3) with apt-get from a private package list, unpacks
# them under target/python39/root (dpkg -x: nothing is installed on the
# system) and runs that interpreter with PYTHONHOME and LD_LIBRARY_PATH;
# pytest, numpy and uvloop are the 3.9 wheels from PyPI (pip --target).
# Everything stays under target/python39 (reused by later runs); the
# extension builds in target/python39/cargo so that the abi3 build's
# artifacts in target/debug are not rebuilt.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
venv=$repo/target/python-venv
base=$repo/target/python39
root=$base/root
site=$base/site
py=$root/usr/bin/python3.9

if [ ! -x "$venv/bin/maturin" ]; then
    echo "no maturin in $venv: run scripts/python-test.sh first" >&2
    exit 1
fi

if [ ! -x "$py" ]; then
    echo "fetching Debian 11's python3.9 into $root"
    apt=$base/apt
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$root"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main" \
        >"$apt/sources.list"
    opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -q)
    apt-get "${opts[@]}" update >/dev/null
    (
        cd "$apt/cache/archives"
        apt-get "${opts[@]}" download python3.9 python3.9-minimal libpython3.9-minimal \
            libpython3.9-stdlib python3-distutils=3.9.2-1 python3-lib2to3=3.9.2-1 \
            libssl1.1 libffi7 libmpdec3 2>&1 | grep -v "unsandboxed" || true
        for deb in ./*.deb; do dpkg -x "$deb" "$root"; done
    )
    rm -rf "$apt"
fi
# What the unpacked interpreter needs to find its library and modules
# (only for the commands that run it: the venv's Python must not see it).
with39=(env "PYTHONHOME=$root/usr"
    "LD_LIBRARY_PATH=$root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
"${with39[@]}" "$py" --version

if [ ! -d "$site/pytest" ]; then
    # The host venv's pip, asked for 3.9 wheels (exceptiongroup and tomli
    # are pytest's dependencies on 3.9 that pip does not pick from here).
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --target "$site" \
        --python-version 3.9 --only-binary=:all: \
        "pytest>=7" numpy uvloop exceptiongroup tomli
fi

# The extension for this interpreter (maturin runs it to read its
# configuration), unpacked next to the test tools.
rm -rf "$base/wheel" "$site/memlane" "$site"/memlane-*.dist-info
(
    cd crates/memlane-py
    CARGO_TARGET_DIR=$base/cargo "${with39[@]}" "$venv/bin/maturin" build -q -i "$py" \
        --no-default-features -o "$base/wheel"
)
"${with39[@]}" "$py" -m zipfile -e "$base"/wheel/memlane-*-cp39-*.whl "$site"

target=$(cargo metadata --format-version 1 --no-deps |
    "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
MEMLANE_CLI="$target/debug/memlane" PYTHONPATH=$site \
    "${with39[@]}" "$py" -m pytest -q -p no:cacheprovider crates/memlane-py/tests "$@"
