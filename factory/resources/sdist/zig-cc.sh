#!/bin/sh
# factory: zig's C/C++ compiler and archiver for the build's target ($FACTORY_ZIG_TARGET,
# e.g. aarch64-linux-gnu.2.28 or x86_64-linux-musl). Installed as bin/cc, bin/c++, bin/ar,
# bin/ranlib and bin/ld: the name it is called by picks `zig cc`, `zig c++`, `zig ar`,
# `zig ranlib` or `zig ld.lld`.
# zig is the host's native binary (static), so it runs at native speed even inside an
# emulated aarch64 builder. /opt/factory/pyinc holds just <triplet>/python3.14, which
# Debian's multiarch pyconfig.h includes; zig does not search /usr/include when cross-targeting.
zig="${FACTORY_ZIG:-/opt/factory/zig/zig}"
case "${0##*/}" in
    ar|ranlib) exec "$zig" "${0##*/}" "$@" ;;
    ld) exec "$zig" ld.lld "$@" ;;
    c++) tool=c++ ;;
    *) tool=cc ;;
esac
# Build scripts probe the compiler as they would GCC: answer those probes on stdout with
# exit 0 (zig prints the version but exits 1, and rejects -dumpmachine on its own triple).
case "$*" in
    -dumpversion|-dumpfullversion)
        "$zig" "$tool" -dumpversion 2>/dev/null | head -n 1
        exit 0 ;;
    -print-prog-name=ld)
        # libtool's configure asks the compiler for its linker, then wants one it can run
        # (the builder has no binutils): lld, which says it is compatible with GNU ld
        echo "${0%/*}/ld"
        exit 0 ;;
    -dumpmachine)
        # the GNU triplet without zig's glibc suffix: x86_64-linux-gnu, aarch64-linux-musl
        echo "${FACTORY_ZIG_TARGET%%.*}"
        exit 0 ;;
esac
# The glibc system's own directories, which a musl build must not search.
system_dir() {
    case "$1" in
        /usr/include|/usr/local/include|/usr/lib|/usr/local/lib|/usr/lib64|/lib|/usr/lib/*-linux-gnu|/lib/*-linux-gnu) return 0 ;;
    esac
    return 1
}
case "$FACTORY_ZIG_TARGET" in
    *musl*)
        # The builder is a glibc system: a build script's own -I/usr/include or -L/usr/lib
        # (Pillow's setup.py adds both) would put glibc's headers and libraries before musl's.
        # Drop those system directories (their subdirectories, /usr/include/python3.14, stay).
        pending=
        for a do
            shift
            if [ -n "$pending" ]; then
                system_dir "$a" || set -- "$@" "$pending" "$a"
                pending=
                continue
            fi
            case "$a" in
                -I|-isystem|-L) pending=$a; continue ;;
                -isystem/*) system_dir "${a#-isystem}" && continue ;;
                -I/*|-L/*) system_dir "${a#-?}" && continue ;;
            esac
            set -- "$@" "$a"
        done
        [ -z "$pending" ] || set -- "$@" "$pending" ;;
esac
exec "$zig" "$tool" -target "$FACTORY_ZIG_TARGET" -isystem /opt/factory/pyinc "$@"
