"""Reading and validating a lock, in any format teams use, into one typed pin list.

Formats, detected from the content (the file name only settles how a broken file is
reported):

- **requirements**: ``pip-compile --generate-hashes``, ``uv pip compile --generate-hashes``
  (also ``--universal``) and ``uv export --format requirements-txt`` (``requirements``);
- **pylock**: PEP 751 ``pylock.toml`` lock-version 1.x, from ``uv pip compile -o
  pylock.toml``, ``uv export --format pylock.toml`` or ``pip lock`` (``pylock``);
- **project locks**: ``uv.lock``, ``poetry.lock`` and ``pdm.lock``, exported by the tool that
  owns each into one of the above (``export``).

A file is a pylock when it parses as TOML into a table with a ``lock-version`` key; a
``*.toml`` file that does not is refused (invalid TOML, or not a PEP 751 lock); anything
else is read as a requirements file. ``check_for`` then holds a lock to the configured
CPython and targets (pylock ``requires-python`` and ``environments``).
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import tomllib
from collections.abc import Iterable
from pathlib import Path

from packaging.markers import Marker
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from ..core.errors import LockError
from ..core.targets import Target
from .export import ExportOptions, export_project_lock, project_lock_kind
from .pins import Lock, LockedFile, LockFormat, Pin
from .pylock import read_pylock
from .requirements import REGEN, read_requirements

__all__ = ["ExportOptions", "Lock", "LockFormat", "LockedFile", "Pin", "check_for", "read_lock"]


def read_lock(path: Path | str, export: ExportOptions | None = None) -> Lock:
    """Read and validate the lock at ``path``, of any accepted format (module docstring).

    A project lock (uv.lock, poetry.lock, pdm.lock; ``export.project_lock_kind``) is exported
    by its own tool as ``export`` says (``export.export_project_lock``) and the result read;
    the returned ``Lock`` then has ``path`` the exported file and ``exported_from`` ``path``.

    Raises ``LockError`` (one line, naming the file and line or package, with the fix)
    for a missing or unreadable file, invalid TOML in a ``*.toml`` file or one that is
    TOML but not a PEP 751 lock, and every format's own errors (``requirements``, ``pylock``).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LockError(f"lock {path} not found", f"create it: {REGEN}") from None
    except OSError as e:
        raise LockError(f"lock {path} cannot be read: {e.strerror}", "check the path and its permissions") from None
    sha256 = hashlib.sha256(data).hexdigest()
    text = _text_of(path, data)
    named_toml = path.name.endswith(".toml")
    try:
        toml = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        if named_toml:
            raise LockError(f"{path}: invalid TOML: {e}", "fix the file or regenerate it") from None
        return read_requirements(path, sha256)
    if "lock-version" in toml:
        return read_pylock(path, text, toml, sha256)
    kind = project_lock_kind(toml)
    if kind is not None:
        if export is None:
            raise LockError(f"{path}: a {kind} lock, which factory reads only through its own commands", "give it as --lock to a factory command")
        out = export_project_lock(path, data, toml, kind, export)
        try:
            exported = read_lock(out)
        except LockError as e:
            if "locks no package" in e.problem:
                what = f"workspace member {export.package}" if export.package else "the root project"
                raise LockError(
                    f"{path}: {kind} exports no package for {what}", "name the workspace member to ship as [tool.factory] package"
                ) from None
            raise LockError(f"{path} (exported by {kind}): {e.problem}", e.fix) from None
        return dataclasses.replace(exported, exported_from=path, exported_by=kind)
    if named_toml:
        raise LockError(f"{path}: TOML without lock-version is not a PEP 751 lock", "give a pylock.toml (PEP 751) or a hashed requirements file")
    return read_requirements(path, sha256)


def _text_of(path: Path, data: bytes) -> str:
    """``data`` as text: UTF-8 (a BOM allowed), or UTF-16 with its BOM, as pip reads a
    requirements file. ``LockError`` for anything else (a binary file, another encoding)."""
    boms = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
    codec = next((name for bom, name in boms if data.startswith(bom)), "utf-8")
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as e:
        raise LockError(
            f"lock {path} is not a text file ({codec} cannot decode byte {data[e.start]:#04x} at offset {e.start})",
            "give a requirements file, pylock.toml, uv.lock, poetry.lock or pdm.lock, saved as UTF-8",
        ) from None
    if "\0" in text:
        raise LockError(f"lock {path} is not a text file (it holds a NUL byte at offset {text.index(chr(0))})",
                        "give a requirements file, pylock.toml, uv.lock, poetry.lock or pdm.lock, saved as UTF-8")
    return text


def check_for(lock: Lock, python: str, targets: Iterable[Target]) -> None:
    """Check that ``lock`` was made for CPython ``python`` (``"3.14.8"``) and ``targets``.

    Raises ``LockError`` when the lock's ``requires-python`` does not admit ``python``;
    when the lock has ``environments`` (PEP 751) and one of them matches no target's
    marker environment for ``python`` (``Target.marker_environment``) — that target was
    not resolved for, so its wheelhouse would not be what the lock promises; or when two
    pins of one name both apply to one target (overlapping markers). A pin whose marker
    holds on no target is fine (not needed there).
    """
    if lock.requires_python is not None and not SpecifierSet(lock.requires_python).contains(Version(python), prereleases=True):
        raise LockError(
            f"{lock.path}: requires-python {lock.requires_python} does not admit CPython {python} (the configured python)",
            "set `python` to a version the lock admits, or regenerate the lock for it (uv: --python-version)",
        )
    for target in targets:
        env = target.marker_environment(python)
        if lock.environments and not any(Marker(m).evaluate(dict(env), context="lock_file") for m in lock.environments):
            raise LockError(
                f"{lock.path}: environments {list(lock.environments)} match no environment of target {target.name} (CPython {python})",
                f"regenerate the lock with an environment covering {target.name} (uv: [tool.uv] environments), or drop the target",
            )
        seen: dict[str, Pin] = {}
        for pin in lock.pins_for(target, python):
            if pin.name in seen:
                raise LockError(
                    f"{lock.path}:{pin.line}: {pin.name} {pin.version} and {seen[pin.name].version} (line {seen[pin.name].line}) "
                    f"both apply to target {target.name} (CPython {python})",
                    "make their markers disjoint, or keep one pin",
                )
            seen[pin.name] = pin
