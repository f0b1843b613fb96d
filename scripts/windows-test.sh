#!/usr/bin/env bash
# Builds and runs memlane's tests for Windows (x86_64-pc-windows-gnu) under
# Wine, on Debian, with no display:
#
#     bash scripts/windows-test.sh [CARGO TEST ARGS...]
#     bash scripts/windows-test.sh --clippy     (lints for Windows only)
#
# Arguments go to `cargo test --target x86_64-pc-windows-gnu`; without a
# `-p`, `-p memlane -p memlane-cli -p memlane-zenoh` is added (the library,
# the command and the Zenoh bridge). Exits with cargo's status.
#
# Runs scripts/windows-setup.sh first (installs wine, wine64 and mingw-w64
# if missing, the rustup target, the bcryptprimitives.dll stand-in, a private
# Wine prefix in /tmp/memlane-wine-$UID; silent once done). Cross builds go
# to $CARGO_TARGET_DIR (default target/)/x86_64-pc-windows-gnu. Starts the
# prefix's wineserver itself and always stops it (`wineserver -k`) on exit.
#
# WINE_RUN_ONLY=1 does the set-up, prints the exports it would use and
# exits, for running one .exe by hand: `eval "$(WINE_RUN_ONLY=1 bash
# scripts/windows-test.sh)"; wineserver -p`, then
# `scripts/windows/wine-run.sh X.exe`, and `wineserver -k` when done.
#
# Known Wine quirk: a Windows test that spawns a Linux program (e.g. `cargo`)
# gets an invalid process handle (wait/try_wait/output fail with OS error 6).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

bash scripts/windows-setup.sh

prefix=${MEMLANE_WINEPREFIX:-/tmp/memlane-wine-$(id -u)}
dll_dir=$root/target/wine-dll

export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=$root/scripts/windows/wine-run.sh
export WINEPREFIX=$prefix
# Windows path of the DLL directory (Z: is / in a fresh prefix); Wine puts
# WINEPATH in front of PATH, which the DLL loader searches.
export WINEPATH="Z:${dll_dir//\//\\}"
export WINEDEBUG=${WINEDEBUG:--all}
# No Mono/Gecko install prompts, no display.
export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-mscoree,mshtml=}
unset DISPLAY WAYLAND_DISPLAY

if [ "${WINE_RUN_ONLY:-0}" = 1 ]; then
    for v in CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER \
        CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER WINEPREFIX WINEPATH \
        WINEDEBUG WINEDLLOVERRIDES; do
        printf 'export %s=%q\n' "$v" "${!v}"
    done
    exit 0
fi

if [ "${1:-}" = --clippy ]; then
    # Lints only, for every crate that builds for Windows.
    shift
    exec cargo clippy --target x86_64-pc-windows-gnu -p memlane -p memlane-cli \
        -p memlane-benchkit -p memlane-c -p memlane-zenoh --all-targets "$@" -- -D warnings
fi

stop_wine() {
    status=$?
    wineserver -k >/dev/null 2>&1 || true
    exit "$status"
}
trap stop_wine EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Start the server ourselves, detached from our stdout/stderr: one started
# by the first test binary would inherit them and keep a pipe reading this
# script's output (`... | tee log`) open until it exits.
wineserver -p >/dev/null 2>&1 </dev/null || true  # fails if one already runs
# Likewise start Wine's own services (services.exe, rpcss, ...) now: the
# first Windows program of a session starts them and they inherit its
# stdout, so a doc-test started first would leave rustdoc waiting on a pipe
# that never closes.
"$root/scripts/windows/wine-run.sh" cmd.exe /c exit 0 >/dev/null 2>&1 </dev/null || true


if [ $# -eq 0 ] || [[ "${1:-}" == --* && "$*" != *"-p "* ]]; then
    set -- -p memlane -p memlane-cli -p memlane-zenoh "$@"
fi
# The example programs are run by memlane's tests from beside the test
# binaries (a Windows test binary cannot start the host's cargo).
cargo build --quiet --target x86_64-pc-windows-gnu -p memlane --features async --examples
# Every test binary must report its result: an early run of this suite once
# lost a binary's output after its first lines while cargo saw success, so
# a run that does not account for every binary fails instead of passing.
log=$(mktemp)
set +e
cargo test --target x86_64-pc-windows-gnu "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
ran=$(grep -cE '^ +(Running|Doc-tests) ' "$log" || true)
reported=$(grep -c '^test result: ' "$log" || true)
rm -f "$log"
if [ "$status" -eq 0 ] && [ "$reported" -lt "$ran" ]; then
    echo "error: $ran test binaries ran under Wine but $reported reported a result; not trusting this run" >&2
    status=1
fi
exit "$status"
