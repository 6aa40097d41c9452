#!/bin/sh
# factory: zig's C/C++ compiler and archiver for the build's target ($FACTORY_ZIG_TARGET,
# e.g. aarch64-linux-gnu.2.28 or x86_64-linux-musl). Installed as bin/cc, bin/c++, bin/ar
# and bin/ranlib: the name it is called by picks `zig cc`, `zig c++`, `zig ar` or `zig ranlib`.
# zig is the host's native binary (static), so it runs at native speed even inside an
# emulated aarch64 builder. /opt/factory/pyinc holds just <triplet>/python3.14, which
# Debian's multiarch pyconfig.h includes; zig does not search /usr/include when cross-targeting.
zig="${FACTORY_ZIG:-/opt/factory/zig/zig}"
case "${0##*/}" in
    ar|ranlib) exec "$zig" "${0##*/}" "$@" ;;
    c++) tool=c++ ;;
    *) tool=cc ;;
esac
# Build scripts probe the compiler as they would GCC: answer those probes on stdout with
# exit 0 (zig prints the version but exits 1, and rejects -dumpmachine on its own triple).
case "$*" in
    -dumpversion|-dumpfullversion)
        "$zig" "$tool" -dumpversion 2>/dev/null | head -n 1
        exit 0 ;;
    -dumpmachine)
        # the GNU triplet without zig's glibc suffix: x86_64-linux-gnu, aarch64-linux-musl
        echo "${FACTORY_ZIG_TARGET%%.*}"
        exit 0 ;;
esac
exec "$zig" "$tool" -target "$FACTORY_ZIG_TARGET" -isystem /opt/factory/pyinc "$@"
