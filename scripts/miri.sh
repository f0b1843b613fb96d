#!/usr/bin/env bash
# Runs the ring protocol's tests on a heap region (memlane::fuzzing's unit
# tests: the record decoder, joins at valid and misaligned positions, pads,
# the one-lap bound, the header and config decoders) under Miri, which
# reports undefined behaviour in that code: out-of-bounds or misaligned
# accesses, references into memory written through atomics, and the like.
#
#     bash scripts/miri.sh
#
# Miri needs the nightly toolchain. This kind of machine has one installed;
# the script adds the miri and rust-src components to it if missing. On a
# machine without a nightly toolchain it says so and exits 0: Miri is then
# not run, and nothing pretends it was.
#
# Weak-memory emulation is off: the heap image of a channel is written and
# read with atomics of different sizes on the same words (bytes set through
# 64-bit words, event words read as 32-bit), which Miri's store-buffer
# model does not support (it stops with an internal error). Data races,
# bounds, alignment and provenance are still checked.
set -euo pipefail

cd "$(dirname "$0")/.."

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "miri: skipped: no nightly toolchain on this machine (rustup toolchain list)"
    exit 0
fi
installed=$(rustup component list --toolchain nightly --installed 2>/dev/null || true)
for c in miri rust-src; do
    if ! grep -q "^$c" <<<"$installed"; then
        echo "miri: rustup component add $c --toolchain nightly"
        rustup component add "$c" --toolchain nightly
    fi
done

export MIRIFLAGS="-Zmiri-disable-isolation -Zmiri-disable-weak-memory-emulation"
export CARGO_TARGET_DIR=target/miri
exec cargo +nightly miri test -p memlane --lib -- fuzzing::tests latest::protocol latest::fuzz
