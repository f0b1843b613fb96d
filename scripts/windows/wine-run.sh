#!/usr/bin/env bash
# Cargo runner for x86_64-pc-windows-gnu under Wine (set by
# scripts/windows-test.sh): `wine-run.sh PROGRAM.exe ARGS...`.
#
# Runs Wine's 64-bit loader directly: Debian's /usr/bin/wine wrapper looks
# for wine32 (not installed) first and nags about it unless WINEDEBUG has
# -all. The program's exit status comes back as Wine's own: the Windows exit
# code's low 8 bits, or 1 where those are 0 for a non-zero code (256 -> 1,
# 0xC0000005 -> 5, abort's 0xC0000409 -> 9, a failed test harness -> 101).
set -u

wine=${MEMLANE_WINE:-}
if [ -z "$wine" ]; then
    if [ -x /usr/lib/wine/wine64 ]; then
        wine=/usr/lib/wine/wine64
    else
        wine=$(command -v wine64 || command -v wine)
    fi
fi
export WINELOADER=${WINELOADER:-$wine}
exec "$wine" "$@"
