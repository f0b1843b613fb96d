#!/usr/bin/env bash
# One-time (idempotent) set-up for running memlane's tests for Windows
# (x86_64-pc-windows-gnu) under Wine on Debian; scripts/windows-test.sh
# calls it, so it rarely needs running by hand:
#
#     bash scripts/windows-setup.sh
#
# - installs wine, wine64 and gcc-mingw-w64-x86-64-win32 if missing
#   (apt-get, non-interactive; ~1 min the first time);
# - `rustup target add x86_64-pc-windows-gnu`;
# - builds scripts/windows/bcryptprimitives.c into
#   target/wine-dll/bcryptprimitives.dll (Wine 8.0 lacks that DLL, which
#   Rust's std needs: see the source);
# - initialises a private Wine prefix, $MEMLANE_WINEPREFIX
#   (default /tmp/memlane-wine-$UID), once, with Mono/Gecko installs skipped.
#
# Prints one line per step it actually does; silent when all is in place.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

prefix=${MEMLANE_WINEPREFIX:-/tmp/memlane-wine-$(id -u)}
dll_dir=$root/target/wine-dll
dll=$dll_dir/bcryptprimitives.dll
src=$root/scripts/windows/bcryptprimitives.c

sudo=
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi

# 1. Debian packages.
pkgs=(wine wine64 gcc-mingw-w64-x86-64-win32)
missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "windows-setup: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_install() {
        $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/memlane-apt.log 2>&1
    }
    if ! apt_install; then
        $sudo apt-get update -q >/tmp/memlane-apt.log 2>&1 || { cat /tmp/memlane-apt.log >&2; exit 1; }
        apt_install || { tail -n 30 /tmp/memlane-apt.log >&2; exit 1; }
    fi
fi

# 2. Rust target.
if ! rustup target list --installed | grep -qx x86_64-pc-windows-gnu; then
    echo "windows-setup: rustup target add x86_64-pc-windows-gnu"
    rustup target add x86_64-pc-windows-gnu >/dev/null 2>&1 \
        || rustup target add x86_64-pc-windows-gnu
fi

# 3. The bcryptprimitives.dll stand-in (rebuilt when its source changes).
if [ ! -f "$dll" ] || [ "$src" -nt "$dll" ]; then
    echo "windows-setup: building target/wine-dll/bcryptprimitives.dll"
    mkdir -p "$dll_dir"
    x86_64-w64-mingw32-gcc -O2 -Wall -shared -static-libgcc -s \
        -o "$dll.tmp" "$src" -ladvapi32
    mv "$dll.tmp" "$dll"
fi

# 4. The private Wine prefix.
if [ ! -f "$prefix/system.reg" ]; then
    echo "windows-setup: initialising Wine prefix $prefix"
    mkdir -p "$prefix"
    # No display: skip the Mono/Gecko install prompts; wait for the server
    # so the prefix is complete when we return.
    WINEPREFIX=$prefix WINEDEBUG=-all WINEDLLOVERRIDES='mscoree,mshtml=' \
        DISPLAY= wineboot -i >/dev/null 2>&1 </dev/null || {
        echo "windows-setup: wineboot -i failed" >&2
        exit 1
    }
    WINEPREFIX=$prefix wineserver -w
fi
