"""Why an sdist build failed, read from its log: a classified cause, never a bare exit code.

``classify`` scans a build log (cibuildwheel's, with the compiler's, linker's and build
backend's output in it) for the signatures of the failures real sdists hit on CPython 3.14:
a missing header, library or program (named, with who provides it, from
``resources/knowledge/libraries.toml``), no Rust toolchain or std, a link above the glibc
floor, a C-API symbol removed in 3.14, a Cython 3 incompatibility, a build backend that does
not import, a build that fell back to pure Python, a timeout. The most specific root cause
wins: a missing header that made the build fall back to pure Python is reported as the
missing header, with the fallback noted.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from ..core.resources import path as resource_path

KNOWLEDGE = "knowledge/libraries.toml"


class CauseKind(StrEnum):
    """The classes of build failure the readiness matrix names."""

    MISSING_HEADER = "missing header"
    MISSING_LIBRARY = "missing library"
    MISSING_PROGRAM = "missing program"
    RUST = "Rust toolchain or std missing"
    PYO3_TOO_OLD = "PyO3 older than CPython 3.14"
    ABOVE_FLOOR = "link above the glibc floor"
    CAPI_REMOVED = "C-API removed in 3.14"
    CYTHON3 = "Cython 3 incompatibility"
    BACKEND_IMPORT = "build backend import error"
    BUILD_REQUIRES = "build requirement conflicts with build-constraints"
    BACKEND_HOOK = "build script failed"
    PURE_FALLBACK = "pure-Python fallback"
    TIMEOUT = "timeout"
    UNKNOWN = "unclassified"


@dataclass(frozen=True)
class Cause:
    """A classified build failure.

    ``detail`` names the thing (a header, ``-l`` library, program, symbol or module), ``fix``
    says what to do, ``evidence`` is the log line that shows it, and ``fell_back`` is True
    when the build also fell back to pure Python because of it.
    """

    kind: CauseKind
    detail: str
    fix: str
    evidence: str = ""
    fell_back: bool = False

    def __str__(self) -> str:
        what = f"{self.kind}: {self.detail}" if self.detail else str(self.kind)
        if self.fell_back and self.kind is not CauseKind.PURE_FALLBACK:
            what += " (the build fell back to pure Python)"
        return f"{what} (fix: {self.fix})"


def headline(reason: str) -> str:
    """What a reason that starts with a ``Cause``'s text says went wrong, without its fix:
    ``"PyO3 older than CPython 3.14: PyO3 supports up to 3.13"`` of ``"… (fix: …) […]"``
    (the whole ``reason`` when it has no fix)."""
    return reason.split(" (fix: ", 1)[0]


_HEADER = [
    re.compile(r"fatal error: [`'‘\"]?(?P<x>[\w./+-]+\.h(?:pp|h)?)[`'’\"]?: No such file or directory"),
    re.compile(r"fatal error: [`'‘\"](?P<x>[\w./+-]+\.h(?:pp|h)?)[`'’\"] file not found"),
]
# glibc's own headers (<stdlib.h> includes <bits/libc-header-start.h>): missing only when the
# host's /usr/include was searched for a target whose C library zig supplies (Pillow 11.3.0 on musl).
_GLIBC_INTERNAL = re.compile(r"(?:bits|gnu)/")
_LIBRARY = [
    re.compile(r"cannot find -l(?P<x>[\w.+-]+)"),
    re.compile(r"unable to find library -l(?P<x>[\w.+-]+)"),
    re.compile(r"unable to find (?:dynamic )?system library '(?P<x>[\w.+-]+)'"),
    re.compile(r"library not found for -l(?P<x>[\w.+-]+)"),
]
_PKG_CONFIG_MODULE = [
    re.compile(r"Package '(?P<x>[\w.+-]+)', required by '[^']*', not found"),  # pkgconf
    re.compile(r"Package '?(?P<x>[\w.+-]+)'?,? (?:was )?not found in the pkg-config search path"),
    re.compile(r"No package '(?P<x>[\w.+-]+)' found"),
]
_PROGRAM = [
    re.compile(r"(?P<x>pg_config|mysql_config|mariadb_config|xml2-config|xslt-config|pkg-config)(?: executable)?:? (?:command )?not found"),
    re.compile(r"(?P<x>pg_config|mysql_config|mariadb_config) executable not found"),
    re.compile(r"\b(?:sh|bash)(?:: line \d+)?: (?:\d+: )?(?P<x>[\w.+-]+): (?:command )?not found"),
]
_RUST = [
    re.compile(r"can't find Rust compiler"),
    re.compile(r"error\[E0463\]: can't find crate for `(?:std|core)`"),
    re.compile(r"can't find crate for `(?:std|core)`"),
    re.compile(r"the `(?P<x>[\w-]+)` target may not be installed"),
    re.compile(r"\b(?P<x>cargo|rustc): (?:command )?not found"),
    re.compile(r"Cargo, the Rust package manager, is not installed"),
    re.compile(r"No such file or directory: '(?P<x>cargo|rustc)'"),
]
# pyo3-build-config's refusal of an interpreter newer than the PyO3 release knows (PyO3 < 0.25
# for 3.14); ``x`` is that maximum version.
_PYO3 = [re.compile(r"is newer than PyO3's maximum supported version \((?P<x>[\d.]+)\)")]
PYO3_FORWARD = "PYO3_USE_ABI3_FORWARD_COMPATIBILITY"
# Built with PYO3_FORWARD (the stable ABI), a crate that calls CPython outside it fails so.
_OUTSIDE_ABI3 = [re.compile(r"cannot find (?:function|value|type|struct)[^`]*`(?P<x>_?Py\w+)` in module `pyo3::ffi`")]
# … or PyO3's own FFI crate does not build so (orjson 3.10.15 vendors pyo3-ffi 0.23.3, whose
# pyhash.rs uses Py_ssize_t where the limited API leaves it undeclared).
_FFI_OUTSIDE_ABI3 = [re.compile(r"cannot find (?:function|value|type|struct)[^`]*`(?P<x>_?Py\w+)` in this scope")]
_CRATE = [re.compile(r"could not compile `(?P<x>[\w-]+)`")]
_CAPI = [
    re.compile(r"implicit declaration of function [`'‘\"](?P<x>_?Py\w+)"),
    re.compile(r"call to undeclared function [`'‘\"](?P<x>_?Py\w+)"),
    re.compile(r"[`'‘\"](?P<x>_?Py\w+)[`'’\"] undeclared"),
    re.compile(r"use of undeclared identifier [`'‘\"](?P<x>_?Py\w+)"),
    re.compile(r"has no member named [`'‘\"](?P<x>ob_shash|ob_digit|ob_size|tp_print|wstr\w*|co_\w+)[`'’\"]"),
    re.compile(r"no member named [`'‘\"](?P<x>ob_shash|ob_digit|ob_size|tp_print|wstr\w*|co_\w+)[`'’\"]"),
    re.compile(r"undefined symbol: (?P<x>_Py\w+)"),
]
_CYTHON3 = [
    re.compile(r"Exception values are incompatible\. Suggest adding 'noexcept'"),
    re.compile(r"Cython\.Compiler\.Errors\.(?P<x>\w+)"),
    re.compile(r"Cannot assign type '(?P<x>[^']*(?:except|nogil)[^']*)'"),
]
_ABOVE_FLOOR = [
    re.compile(r"too-recent versioned symbols"),
    re.compile(r"does not fit \S+: it needs (?P<x>GLIBC_[\d.]+(?:, GLIBC_[\d.]+)*)"),
]
_BACKEND = [
    re.compile(r"BackendUnavailable"),
    re.compile(r"ModuleNotFoundError: No module named '(?P<x>[\w.]+)'"),
    re.compile(r"ImportError: cannot import name '(?P<x>\w+)' from '[\w.]+'"),
]
# pip's ResolutionImpossible for what a backend asked for at build time (get_requires_for_build_*,
# e.g. setup_requires): "The user requested setuptools_scm<7 and >=3.2" beside "(constraint) …".
_BUILD_REQUIRES = [re.compile(r"The user requested (?!\(constraint\))(?P<x>\S.*?)\s*$")]
# build's last word when the backend (setup.py) raised: the exception line above it is the cause
# (Pillow 10.3.0's setup.py under 3.13+: exec() no longer fills locals(), "KeyError: '__version__'").
_HOOK_EXITED = re.compile(r"Backend subprocess exited when trying to invoke (?P<x>\w+)")
_EXCEPTION_LINE = re.compile(r"^\s*(?:[\w.]*(?:Error|Exception|Warning)\b|Error:)")
_PURE = re.compile(
    r"pure[- ]Python wheel was generated|Build failed because a pure Python wheel|falling back to pure Python"
    r"|does not look like a platform wheel"  # auditwheel, on a cp314 wheel whose extension fell away
)
# clang's "too few arguments to function call" names no function; the source line under it does
# (PyYAML 6.0.1's Cython 0.29 C: _PyLong_AsByteArray gained a parameter in 3.13).
_ARGUMENTS = re.compile(r"error: too (?:few|many) arguments to function(?: call)?")
_CALLED = re.compile(r"\b(?P<x>_?Py[A-Z]\w+)\s*\(")
_ERROR_LINE = re.compile(r"\berror\b", re.IGNORECASE)


@cache
def _knowledge() -> dict[str, dict[str, dict[str, Any]]]:
    data: dict[str, dict[str, dict[str, Any]]] = tomllib.loads(resource_path(KNOWLEDGE).read_text())
    return data


def provider(section: str, key: str) -> dict[str, Any] | None:
    """Who provides ``key`` in ``section`` (``headers``, ``libraries``, ``programs``):
    ``{"library", "debian"?, "recipe"?}`` from ``resources/knowledge/libraries.toml``, or None."""
    return _knowledge().get(section, {}).get(key)


def _provide_fix(section: str, key: str, noun: str) -> str:
    known = provider(section, key)
    if known is None:
        return f"make the library that provides {noun} {key} available to the build (its development package, or a before-all step)"
    if "debian" not in known:
        return f"make {known['library']} available to the build (Debian ships no package of it: build it from its source in a before-all step)"
    return f"make {known['library']} available to the build (Debian: {known['debian']})"


def _first(patterns: list[re.Pattern[str]], lines: list[str]) -> tuple[str, str] | None:
    for line in lines:
        for pattern in patterns:
            m = pattern.search(line)
            if m:
                return (m.groupdict().get("x") or ""), line.strip()
    return None


def _changed_signature(lines: list[str]) -> tuple[str, str] | None:
    """A call of a ``Py``/``_Py`` function with the wrong argument count (its 3.13/3.14
    signature changed): the function, from the error line or the three lines after it."""
    for i, line in enumerate(lines):
        if _ARGUMENTS.search(line):
            for near in lines[i : i + 4]:
                if m := _CALLED.search(near):
                    return m["x"], line.strip()
    return None


def _outside_stable_abi(lines: list[str]) -> tuple[str, str] | None:
    """What of a build with ``PYO3_FORWARD`` is outside the stable ABI: a crate's call, or
    pyo3-ffi itself not compiling so; (the detail, the log line), or None."""
    crate = _first(_CRATE, lines)
    if (hit := _first(_OUTSIDE_ABI3, lines)) is not None:
        return f"{crate[0] if crate else 'a crate'} calls {hit[0]}, outside the stable ABI that {PYO3_FORWARD} builds against", hit[1]
    if crate is not None and crate[0] == "pyo3-ffi" and (hit := _first(_FFI_OUTSIDE_ABI3, lines)) is not None:
        return f"pyo3-ffi does not compile against the stable ABI that {PYO3_FORWARD} builds against ({hit[0]} is outside it)", hit[1]
    return None


def classify(log: str, timed_out: bool = False, limit: int | None = None) -> Cause:
    """The cause of a failed build from its ``log`` text (any size; read line by line).

    ``timed_out`` is True when the build was stopped at its time limit, ``limit`` (seconds,
    the build-timeout) then named in the cause. Never raises: a log with no known signature
    gives ``CauseKind.UNKNOWN`` with its last error line.
    """
    lines = log.splitlines()
    fell_back = any(_PURE.search(line) for line in lines)
    if timed_out:
        return Cause(
            CauseKind.TIMEOUT, "" if limit is None else f"stopped at the {limit} s build-timeout",
            "raise build-timeout, give each cell more cores (a lower build-jobs: a cell compiles with the cores left to it), "
            "or check the log for a hung step",
            fell_back=fell_back,
        )  # fmt: skip
    if (hit := _first(_PYO3, lines)) is not None:
        return Cause(
            CauseKind.PYO3_TOO_OLD, f"PyO3 supports up to {hit[0]}",
            f"use a release built with PyO3 0.25 or later, or set {PYO3_FORWARD}=1 in its [tool.factory.sdist.<project>] environment "
            "(builds against the stable ABI; not every crate compiles so)",
            hit[1], fell_back,
        )
    if (outside := _outside_stable_abi(lines)) is not None:
        return Cause(CauseKind.PYO3_TOO_OLD, outside[0], "use a release built with PyO3 0.25 or later", outside[1], fell_back)
    if (hit := _first(_RUST, lines)) is not None:
        detail = hit[0] if hit[0] and hit[0] not in ("cargo", "rustc") else "rustc/cargo or the target's std"
        return Cause(CauseKind.RUST, detail, "the Rust sdist route needs cargo and the target's std in the builder", hit[1], fell_back)
    if (hit := _first(_HEADER, lines)) is not None:
        if _GLIBC_INTERNAL.match(hit[0]):
            return Cause(
                CauseKind.MISSING_HEADER, f"{hit[0]}, a header of the host's glibc: the build put the host's /usr/include before the target's C library",
                "remove the host's include and library directories (/usr/include, /usr/lib) from the sdist's flags (CFLAGS, "
                "include_dirs) through its [tool.factory.sdist.<project>] environment; the target's C library comes with zig",
                hit[1], fell_back,
            )  # fmt: skip
        return Cause(CauseKind.MISSING_HEADER, hit[0], _provide_fix("headers", hit[0], "header"), hit[1], fell_back)
    if (hit := _first(_LIBRARY, lines)) is not None:
        return Cause(CauseKind.MISSING_LIBRARY, f"-l{hit[0]}", _provide_fix("libraries", hit[0], "library"), hit[1], fell_back)
    if (hit := _first(_PKG_CONFIG_MODULE, lines)) is not None:
        return Cause(CauseKind.MISSING_LIBRARY, f"pkg-config module {hit[0]}", f"make {hit[0]} and its .pc file available to the build", hit[1], fell_back)
    if (hit := _first(_PROGRAM, lines)) is not None:
        return Cause(CauseKind.MISSING_PROGRAM, hit[0], _provide_fix("programs", hit[0], "program"), hit[1], fell_back)
    if (hit := _first(_CAPI, lines) or _changed_signature(lines)) is not None:
        return Cause(
            CauseKind.CAPI_REMOVED, hit[0],
            "use a release of the package that supports CPython 3.14 (generated C from an old Cython? regenerate with Cython 3)",
            hit[1], fell_back,
        )
    if (hit := _first(_CYTHON3, lines)) is not None:
        return Cause(
            CauseKind.CYTHON3, hit[0],
            "give the sdist a build lock with the Cython it declares ([tool.factory.build-overrides]), or use a newer release",
            hit[1], fell_back,
        )
    if (hit := _first(_ABOVE_FLOOR, lines)) is not None:
        return Cause(CauseKind.ABOVE_FLOOR, hit[0], "build against the target's glibc floor (zig -target …-linux-gnu.2.28) or raise the floor", hit[1], fell_back)
    if (hit := _first(_BUILD_REQUIRES, lines)) is not None and any("(constraint)" in line for line in lines):
        requirement = ",".join(part.strip() for part in hit[0].split(" and "))
        return Cause(
            CauseKind.BUILD_REQUIRES, requirement,
            "give the sdist a build lock that satisfies it ([tool.factory.build-overrides]), or leave build-overrides-dir set so factory generates one",
            hit[1], fell_back,
        )
    if (hit := _first(_BACKEND, lines)) is not None:
        return Cause(
            CauseKind.BACKEND_IMPORT, hit[0],
            "add the missing build requirement to the build lock, or use a release whose backend imports under 3.14",
            hit[1], fell_back,
        )
    if exited := next(((i, m["x"]) for i, line in enumerate(lines) if (m := _HOOK_EXITED.search(line))), None):
        at, hook = exited
        raised = next((line.strip() for line in reversed(lines[:at]) if _EXCEPTION_LINE.search(line)), "")
        return Cause(
            CauseKind.BACKEND_HOOK, f"{hook}: {raised}" if raised else hook,
            "the sdist's build script fails under CPython 3.14: read the traceback in the log, or use a newer release",
            raised or lines[at].strip(), fell_back,
        )
    if fell_back:
        line = next(line.strip() for line in lines if _PURE.search(line))
        return Cause(
            CauseKind.PURE_FALLBACK, "", "the C extension did not compile and the sdist fell back to pure Python: read the log above that line",
            line, True,
        )
    errors = [line.strip() for line in lines if _ERROR_LINE.search(line)]
    last = errors[-1] if errors else next((line.strip() for line in reversed(lines) if line.strip()), "")
    return Cause(CauseKind.UNKNOWN, last[:200], "read the build log", last)
