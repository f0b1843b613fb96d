#!/usr/bin/env bash
# Installs memlane's C API under PREFIX: the header (include/memlane.h),
# the static and the shared library (lib/libmemlane_c.{a,so}) and two
# pkg-config files (lib/pkgconfig/memlane.pc for the shared library,
# memlane-static.pc for the static one) and a CMake package file
# (lib/cmake/memlane/memlane-config.cmake: targets memlane::memlane and
# memlane::memlane_static). Linux.
#
#     bash crates/memlane-c/install.sh PREFIX            # builds in release mode first
#     bash crates/memlane-c/install.sh PREFIX LIB_DIR    # takes libmemlane_c.{a,so} from LIB_DIR
#
# Then: cc app.c $(PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs memlane)
set -euo pipefail

prefix=${1:?usage: install.sh PREFIX [LIB_DIR]}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ $# -ge 2 ]; then
    libs=$2
else
    cargo build --release -p memlane-c --manifest-path "$root/Cargo.toml"
    libs=${CARGO_TARGET_DIR:-$root/target}/release
fi
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)

install -d "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/lib/cmake/memlane"
install -m 644 "$here/include/memlane.h" "$prefix/include/memlane.h"
install -m 644 "$libs/libmemlane_c.a" "$prefix/lib/libmemlane_c.a"
install -m 755 "$libs/libmemlane_c.so" "$prefix/lib/libmemlane_c.so"
install -m 644 "$here/cmake/memlane-config.cmake" "$prefix/lib/cmake/memlane/memlane-config.cmake"
for pc in memlane memlane-static; do
    sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" \
        "$here/pkgconfig/$pc.pc.in" >"$prefix/lib/pkgconfig/$pc.pc"
done
echo "installed memlane $version (C API) under $prefix"
