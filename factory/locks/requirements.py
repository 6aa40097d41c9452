"""Reading a hashed requirements lock: ``pip-compile --generate-hashes``, ``uv pip compile
--generate-hashes`` (also ``--universal``) and ``uv export --format requirements-txt``.

A valid lock pins every requirement with ``==`` to one exact version and gives at least
one ``--hash=sha256:<hex>`` for it (pip's hash-checking mode). Parsing uses
``pip-requirements-parser``, which reuses pip's own requirements-file grammar (pip's
"Requirements File Format" documentation).

Options lines: ``--index-url``/``-i`` is recorded on the lock; ``--require-hashes`` and
``--pre`` change nothing for exact hashed pins and are accepted; every other option
(``--extra-index-url``, ``--find-links``, ``--no-index``, ``--trusted-host``, ``-r``/``-c``,
``--no-binary``/``--only-binary``/``--prefer-binary``, …) is refused: each changes where
files come from or which files are used, and a lock must say that by itself.
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.utils import canonicalize_name
from pip_requirements_parser import InstallRequirement, OptionLine, RequirementsFile

from ..core.errors import LockError
from .pins import Lock, Pin, unmarked_duplicate

REGEN = "regenerate it with `factory lock` (pip-compile --generate-hashes)"
_SHA256_RE = re.compile(r"^sha256:([0-9a-f]{64})$")
_HARMLESS_OPTIONS = {"require_hashes", "pre"}
_ONE_INDEX = "regenerate with --no-emit-index-url --no-emit-find-links (uv: --no-emit-index-url), or serve every file from one index"
_PIN_TO_ONE_INDEX = (
    "pin each package to one index (uv: [[tool.uv.index]] explicit = true with [tool.uv.sources]) "
    "and give factory the uv.lock or its pylock.toml export, which name each package's index"
)
_OPTION_FIXES = {
    "extra_index_urls": _PIN_TO_ONE_INDEX,
    "find_links": _ONE_INDEX,
    "no_index": _ONE_INDEX,
    "trusted_hosts": "drop --trusted-host (regenerate with --no-emit-trusted-host) and trust the index's CA instead",
    "requirements": "a lock must be one file: compile the included files into it",
    "constraints": "a lock must be one file: compile the constraints into it",
}


def read_requirements(path: Path, sha256: str) -> Lock:
    """Parse and validate the requirements lock ``path`` (``sha256``: hex of its bytes).

    Returns a ``Lock`` with ``format="requirements"`` and ``index_url`` from ``--index-url``.
    Raises ``LockError`` naming ``file:line`` for: an unparsable line (an invalid marker
    included), an option other than ``--index-url``/``--require-hashes``/``--pre``, two
    ``--index-url`` lines, an editable, path or URL requirement (the project itself in
    ``uv export`` output), a requirement not pinned with a single ``==``, one without
    ``--hash``, a hash that is not sha256, a name pinned twice without markers on both,
    or a lock with no requirement at all.
    """
    parsed = RequirementsFile.from_file(str(path))
    problems: list[tuple[int, LockError]] = []
    for bad in parsed.invalid_lines:
        first = bad.error_message.strip().splitlines()[0] if bad.error_message else "invalid"
        problems.append((bad.line_number, LockError(f"{path}:{bad.line_number}: cannot parse {bad.line.strip()!r} ({first})", REGEN)))
    index_url: str | None = None
    for opt in parsed.options:
        err, url = _option(path, opt, index_url)
        if err:
            problems.append((opt.line_number, err))
        index_url = url or index_url
    pins: list[Pin] = []
    for req in parsed.requirements:
        where = f"{path}:{req.line_number}"
        try:
            pins.append(_pin(where, req))
        except LockError as e:
            problems.append((req.line_number, e))
    if problems:
        raise min(problems, key=lambda p: p[0])[1]
    dup = unmarked_duplicate(pins)
    if dup:
        pin, earlier = dup
        raise LockError(f"{path}:{pin.line}: {pin.name} is pinned twice (also line {earlier.line})", "keep one pin per project, or give each a marker")
    if not pins:
        raise LockError(f"lock {path} pins nothing", REGEN)
    return Lock(path=path, sha256=sha256, pins=tuple(pins), format="requirements", index_url=index_url)


def _option(path: Path, opt: OptionLine, index_url: str | None) -> tuple[LockError | None, str | None]:
    where = f"{path}:{opt.line_number}: option {opt.line.strip()!r}"
    for key, value in opt.options.items():
        if key == "index_url":
            if index_url is not None:
                return LockError(f"{where} names a second index (first: {index_url})", _ONE_INDEX), None
            return None, str(value)
        if key in _HARMLESS_OPTIONS:
            continue
        fix = _OPTION_FIXES.get(key, "remove it: the factory decides which files of a pin it uses")
        if key == "extra_index_urls":
            return LockError(f"{where} lets every package come from either index (dependency confusion)", fix), None
        return LockError(f"{where} is not accepted in a lock", fix), None
    return None, None


def _pin(where: str, req: InstallRequirement) -> Pin:
    if req.is_editable or req.link is not None or not req.name:
        raise LockError(
            f"{where}: {req.line.strip()!r} is not an index requirement (editable, path or URL)",
            f"leave the project itself out of the lock (uv export --no-emit-project; pip-compile without -e) and pin the rest as name==version; {REGEN}",
        )
    specs = list(req.specifier or [])
    if len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
        found = str(req.specifier) if req.specifier else "no version"
        raise LockError(f"{where}: {req.name} is not pinned with == ({found})", f"pin one exact version; {REGEN}")
    if not req.hash_options:
        raise LockError(f"{where}: {req.name}=={specs[0].version} has no --hash", f"add sha256 hashes; {REGEN}")
    hashes = set()
    for h in req.hash_options:
        m = _SHA256_RE.match(h)
        if not m:
            raise LockError(f"{where}: {req.name} has a non-sha256 or malformed hash {h!r}", f"use --hash=sha256:<64 hex>; {REGEN}")
        hashes.add(m[1])
    return Pin(
        name=canonicalize_name(req.name),
        version=specs[0].version,
        hashes=frozenset(hashes),
        marker=str(req.marker) if req.marker else None,
        line=req.line_number,
        extras=tuple(sorted({canonicalize_name(e) for e in req.extras or ()})),
    )
