#!/bin/sh
# factory: zig's C or C++ compiler for the build's target ($FACTORY_ZIG_TARGET, e.g.
# aarch64-linux-gnu.2.28 or x86_64-linux-musl). Installed twice, as bin/cc and bin/c++:
# the name it is called by picks `zig cc` or `zig c++`.
# zig is the host's native binary (static), so it runs at native speed even inside an
# emulated aarch64 builder. /opt/factory/pyinc holds just <triplet>/python3.14, which
# Debian's multiarch pyconfig.h includes; zig does not search /usr/include when cross-targeting.
case "${0##*/}" in
    c++) tool=c++ ;;
    *) tool=cc ;;
esac
exec /opt/factory/zig/zig "$tool" -target "$FACTORY_ZIG_TARGET" -isystem /opt/factory/pyinc "$@"
