"""Build-log classification: every failure gets a named cause, not an exit code."""

from __future__ import annotations

import pytest

from factory.sdist.failures import CauseKind, classify, headline, provider

PSYCOPG2 = """\
building 'psycopg2._psycopg' extension
gcc -pthread -fno-strict-overflow -Wsign-compare -DNDEBUG -g -O2 -Wall -fPIC -DPSYCOPG_VERSION=2.9.9 -I/usr/include/python3.14 -c psycopg/adapter_asis.c
In file included from psycopg/adapter_asis.c:28:
./psycopg/psycopg.h:36:10: fatal error: libpq-fe.h: No such file or directory
   36 | #include <libpq-fe.h>
      |          ^~~~~~~~~~~~
compilation terminated.
error: command '/usr/bin/gcc' failed with exit code 1
"""

ZIG_HEADER_THEN_FALLBACK = """\
src/_yaml.c:1234:10: fatal error: 'yaml.h' file not found
#include <yaml.h>
         ^~~~~~~~
1 error generated.
WARNING: The C extension could not be compiled, speedups are not enabled.
Building pure Python wheel.
cibuildwheel: Build failed because a pure Python wheel was generated.
"""

CASES = [
    (PSYCOPG2, CauseKind.MISSING_HEADER, "libpq-fe.h", "libpq-dev"),
    (ZIG_HEADER_THEN_FALLBACK, CauseKind.MISSING_HEADER, "yaml.h", "libyaml-dev"),
    ("/usr/bin/ld: cannot find -lpq: No such file or directory\ncollect2: error: ld returned 1 exit status", CauseKind.MISSING_LIBRARY, "-lpq", "libpq-dev"),
    ("error: unable to find dynamic system library 'git2' using strategy 'paths_first'", CauseKind.MISSING_LIBRARY, "-lgit2", "libgit2-dev"),
    ("ld.lld: error: unable to find library -lffi", CauseKind.MISSING_LIBRARY, "-lffi", "libffi-dev"),
    ("Package libxml-2.0 was not found in the pkg-config search path.\nPerhaps you should add the directory", CauseKind.MISSING_LIBRARY, "pkg-config module libxml-2.0", ""),
    ("/bin/sh: 1: pkg-config: not found\nTraceback (most recent call last):", CauseKind.MISSING_PROGRAM, "pkg-config", "pkgconf"),
    ("Error: pg_config executable not found.\n\npg_config is required to build psycopg2 from source.", CauseKind.MISSING_PROGRAM, "pg_config", "libpq-dev"),
    ("error: can't find Rust compiler\n\nIf you are using an outdated pip version", CauseKind.RUST, "", ""),
    ("error[E0463]: can't find crate for `std`\n  |\n  = note: the `x86_64-unknown-linux-musl` target may not be installed", CauseKind.RUST, "", ""),
    ("src/ext.c:40:5: error: implicit declaration of function '_PyLong_AsByteArray' [-Wimplicit-function-declaration]", CauseKind.CAPI_REMOVED, "_PyLong_AsByteArray", ""),
    ("src/foo.c:9:12: error: call to undeclared function '_PyUnicode_AsString'; ISO C99 and later do not support", CauseKind.CAPI_REMOVED, "_PyUnicode_AsString", ""),
    ("msgpack/_cmsgpack.c:3110:58: error: 'PyLongObject' {aka 'struct _longobject'} has no member named 'ob_digit'", CauseKind.CAPI_REMOVED, "ob_digit", ""),
    (
        "Error compiling Cython file:\nmsgpack/_unpacker.pyx:40:5: Cannot assign type 'int (void *) except? -1 nogil' to 'execute_fn'. "
        "Exception values are incompatible. Suggest adding 'noexcept' to the type of the value being assigned.",
        CauseKind.CYTHON3, "", "",
    ),
    (
        'auditwheel: cannot repair "x-1.0-cp314-cp314-linux_x86_64.whl" to "manylinux_2_28_x86_64" ABI because of the presence of too-recent versioned symbols.',
        CauseKind.ABOVE_FLOOR, "", "",
    ),
    (
        "Traceback (most recent call last):\n  File \".../pyproject_hooks/_in_process/_in_process.py\", line 389, in <module>\n"
        "ModuleNotFoundError: No module named 'pkg_resources'",
        CauseKind.BACKEND_IMPORT, "pkg_resources", "",
    ),
    ("cibuildwheel: Build failed because a pure Python wheel was generated.", CauseKind.PURE_FALLBACK, "", ""),
    (  # PyYAML 6.0.1: Cython 0.29's C against 3.14, then a cp314 wheel with no extension
        "yaml/_yaml.c:26325:70: error: too few arguments to function call, expected 6, have 5\n"
        " 26323 |                 int ret = _PyLong_AsByteArray((PyLongObject *)v,\n"
        "Error compiling module, falling back to pure Python\n"
        "INFO:auditwheel.main_repair:This does not look like a platform wheel, no ELF executable",
        CauseKind.CAPI_REMOVED, "_PyLong_AsByteArray", "",
    ),
    (  # Pillow 10.3.0's setup.py under 3.13+ (PEP 667: exec() no longer fills locals())
        "  File \"<string>\", line 27, in get_version\nKeyError: '__version__'\n\nTIP pass --env-dir and --sdist-extract-dir\n"
        "ERROR Backend subprocess exited when trying to invoke get_requires_for_build_wheel\n"
        "cibuildwheel: error: Command ['python', '-m', 'build'] failed with code 1.",
        CauseKind.BACKEND_HOOK, "get_requires_for_build_wheel: KeyError: '__version__'", "",
    ),
    (  # pydantic-core 2.27.2 (PyO3 0.22): pyo3-build-config refuses 3.14 before rustc compiles anything
        "  --- stderr\n  error: the configured Python interpreter version (3.14) is newer than PyO3's maximum supported version (3.13)\n"
        "  = help: please check if an updated version of PyO3 is available. Current version: 0.22.6\n"
        "  = help: set PYO3_USE_ABI3_FORWARD_COMPATIBILITY=1 to suppress this check and build anyway using the stable ABI",
        CauseKind.PYO3_TOO_OLD, "PyO3 supports up to 3.13", "",
    ),
    (  # newrelic 8.8.0: setup_requires asked for at build time, against build.txt's pin
        "< The conflict is caused by:\n<     The user requested setuptools_scm<7 and >=3.2\n"
        "<     The user requested (constraint) setuptools-scm==10.3.4\n< ERROR: ResolutionImpossible: for help visit",
        CauseKind.BUILD_REQUIRES, "setuptools_scm<7,>=3.2", "",
    ),
]


@pytest.mark.parametrize("log, kind, detail, debian", CASES, ids=[f"{c[1].name}-{i}" for i, c in enumerate(CASES)])
def test_real_build_log_signatures_are_classified(log, kind, detail, debian):
    cause = classify(log)
    assert cause.kind is kind, (cause, log)
    if detail:
        assert cause.detail == detail
    if debian:
        assert debian in cause.fix
    assert cause.evidence and cause.evidence in log
    assert str(cause).startswith(str(kind)) and "(fix: " in str(cause)


def test_missing_header_is_the_root_cause_of_a_pure_python_fallback():
    cause = classify(ZIG_HEADER_THEN_FALLBACK)
    assert cause.kind is CauseKind.MISSING_HEADER and cause.fell_back
    assert "fell back to pure Python" in str(cause)


def test_timeout_is_its_own_cause():
    assert classify("compiling …\n", timed_out=True).kind is CauseKind.TIMEOUT
    cause = classify("compiling …\n", timed_out=True, limit=900)
    assert str(cause).startswith("timeout: stopped at the 900 s build-timeout (fix: raise build-timeout, give each cell more cores")


def test_an_unknown_failure_names_its_last_error_line():
    cause = classify("step 1\nsomething odd happened: error: widget frobnication failed\nsome trailing output\n")
    assert cause.kind is CauseKind.UNKNOWN
    assert cause.detail == "something odd happened: error: widget frobnication failed"


def test_an_unknown_header_names_the_header_and_a_general_fix():
    cause = classify("x.c:1:10: fatal error: frobnicate/frob.h: No such file or directory")
    assert cause.kind is CauseKind.MISSING_HEADER and cause.detail == "frobnicate/frob.h"
    assert "frobnicate/frob.h" in cause.fix


@pytest.mark.parametrize("header", ["libpq-fe.h", "ffi.h", "zlib.h", "jpeglib.h", "png.h", "libxml/xmlversion.h", "libxslt/xslt.h", "openssl/ssl.h", "yaml.h", "mysql.h", "git2.h", "crc32c/crc32c.h"])
def test_the_issue_s_libraries_are_known(header):
    known = provider("headers", header)
    assert known is not None and known["recipe"]
    assert known.get("debian") or header == "crc32c/crc32c.h"


def test_a_library_debian_does_not_ship_is_not_given_a_debian_package():
    # Google's crc32c: no binary or source package in bookworm, trixie, forky or sid
    cause = classify("src/google_crc32c/_crc32c.c:3:10: fatal error: crc32c/crc32c.h: No such file or directory")
    assert cause.kind is CauseKind.MISSING_HEADER and cause.detail == "crc32c/crc32c.h"
    assert cause.fix == "make crc32c available to the build (Debian ships no package of it: build it from its source in a before-all step)"
    assert "libcrc32c-dev" not in str(cause)
    assert classify("x.c:1:10: fatal error: zlib.h: No such file or directory").fix == "make zlib available to the build (Debian: zlib1g-dev)"


def test_a_glibc_internal_header_names_the_host_s_include_directory():
    # Pillow 11.3.0 for musllinux, before the zig wrapper dropped the -I/usr/include its setup.py adds
    log = (
        "In file included from src/_imaging.c:75:\n"
        "/usr/include/stdlib.h:26:10: fatal error: 'bits/libc-header-start.h' file not found\n"
        "In file included from src/libImaging/Bands.c:18:\n"
        "/usr/include/x86_64-linux-gnu/sys/cdefs.h:1:10: fatal error: 'bits/wordsize.h' file not found\n"
    )
    cause = classify(log)
    assert cause.kind is CauseKind.MISSING_HEADER
    assert cause.detail.startswith("bits/libc-header-start.h, a header of the host's glibc")
    assert "remove the host's include and library directories" in cause.fix and "development package" not in cause.fix
    # a header of a library (not the C library's own) keeps the general advice
    assert "development package" in classify("x.c:1:10: fatal error: 'bitset/x.h' file not found").fix


def test_headline_is_a_reason_without_its_fix():
    cause = classify("error: the configured Python interpreter version (3.14) is newer than PyO3's maximum supported version (3.13)")
    reason = f"{cause} [python -m build (Rust) exited with 1]; pydantic-core 2.35.0 is the first later release with a wheel"
    assert headline(reason) == "PyO3 older than CPython 3.14: PyO3 supports up to 3.13"
    assert headline("cargo fetch --locked failed: x") == "cargo fetch --locked failed: x"


# built with PYO3_USE_ABI3_FORWARD_COMPATIBILITY=1: pydantic-core 2.33.2's jiter calls outside the
# stable ABI; orjson 3.10.15's vendored pyo3-ffi 0.23.3 does not compile so at all
JITER = (
    "   Compiling jiter v0.9.0\n"
    "error[E0425]: cannot find function, tuple struct or tuple variant `PyUnicode_New` in module `pyo3::ffi`\n"
    "error: could not compile `jiter` (lib) due to 4 previous errors\n"
    "ERROR Backend subprocess exited when trying to invoke build_wheel\n"
)
PYO3_FFI = (
    "   Compiling pyo3-ffi v0.23.3 (/tmp/src/orjson-3.10.15/include/pyo3/pyo3-ffi)\n"
    "error[E0425]: cannot find type `c_void` in this scope\n"
    "  --> include/pyo3/pyo3-ffi/src/pyhash.rs:19:38\n"
    "error[E0425]: cannot find type `Py_ssize_t` in this scope\n"
    "  --> include/pyo3/pyo3-ffi/src/pyhash.rs:19:51\n"
    "error: could not compile `pyo3-ffi` (lib) due to 3 previous errors\n"
    "ERROR Backend subprocess exited when trying to invoke build_wheel\n"
)


@pytest.mark.parametrize(
    ("log", "detail"),
    [
        (JITER, "jiter calls PyUnicode_New, outside the stable ABI that PYO3_USE_ABI3_FORWARD_COMPATIBILITY builds against"),
        (PYO3_FFI, "pyo3-ffi does not compile against the stable ABI that PYO3_USE_ABI3_FORWARD_COMPATIBILITY builds against (Py_ssize_t is outside it)"),
    ],
)
def test_what_is_outside_the_stable_abi_is_named_when_built_forward_compatible(log, detail):
    cause = classify(log)
    assert cause.kind is CauseKind.PYO3_TOO_OLD
    assert cause.detail == detail
    assert cause.fix == "use a release built with PyO3 0.25 or later"


def test_the_same_errors_in_another_crate_are_not_pyo3_s():
    assert classify(PYO3_FFI.replace("could not compile `pyo3-ffi`", "could not compile `mycrate`")).kind is not CauseKind.PYO3_TOO_OLD
