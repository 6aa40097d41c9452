"""The readers of outside input, as fuzz targets, and the mutations that feed them.

Each ``Target`` takes the bytes of one input file, writes them where its reader looks, calls
the reader and returns; the property both fuzzers check (``check``) is that the reader
succeeds or raises the error its docstring promises, with a one-line message: never another
exception, never more than ``TIME_LIMIT_S`` seconds, nothing written outside its directory.
``tests/unit/test_fuzz.py`` runs them under hypothesis with a bounded example count;
``tests/fuzz/atheris_main.py`` (``make fuzz``) runs them coverage-guided.

Seeds: ``tests/fixtures/fuzz`` (the artifacts) and ``tests/fixtures/locks`` (the locks),
with the minimised inputs that once crashed a reader under ``tests/fixtures/fuzz/crashes``.
"""

from __future__ import annotations

import io
import json
import random
import tarfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paths import FIXTURES

from factory.bases.imagelock import BaseImagesLock, BuilderImagesLock, ImagesLock
from factory.core.config import load_config
from factory.core.errors import FactoryError
from factory.index.client import only_version
from factory.locks.lockfile import read_lock
from factory.release.rollout import read_history
from factory.sdist.archive import inspect_sdist
from factory.wheelhouse.manifest import InstallLock, Manifest
from factory.wheelhouse.readiness import Readiness

TIME_LIMIT_S = 5.0
SEEDS = FIXTURES / "fuzz"
LOCK_SEEDS = FIXTURES / "locks"


@dataclass(frozen=True)
class Target:
    """One reader: ``name``, the file name it reads, ``read(path)``, the exception types its
    contract allows (``raises``), and the seed files (``seeds``, bytes)."""

    name: str
    filename: str
    read: Callable[[Path], object]
    raises: tuple[type[BaseException], ...]
    seeds: tuple[Path, ...]


class OneLineViolation(AssertionError):
    pass


def _config(path: Path) -> object:
    return load_config(path, env={})


def _environment(path: Path) -> object:
    """``FACTORY_*`` variables, one ``NAME=VALUE`` per line, over the config seed's table
    (a process environment cannot hold NUL, so a NUL ends its value as it would there)."""
    env = {}
    for line in path.read_bytes().decode("utf-8", errors="surrogateescape").splitlines():
        name, _, value = line.partition("=")
        if name.startswith("FACTORY_") and "\0" not in name:
            env[name] = value.split("\0")[0]
    return load_config(SEEDS / "pyproject.toml", env=env)


def _index_page(path: Path) -> object:
    return only_version(path.read_bytes().decode("utf-8", errors="replace"), "1.0")


def _sdist(path: Path) -> object:
    return inspect_sdist(path)


def _seeds(*names: str, root: Path = SEEDS) -> tuple[Path, ...]:
    found = [root / n for n in names]
    found += sorted((SEEDS / "crashes").glob(f"{names[0].split('.')[0]}*")) if (SEEDS / "crashes").exists() else []
    return tuple(found)


TARGETS: Mapping[str, Target] = {
    t.name: t
    for t in (
        Target("requirements", "requirements.lock", read_lock, (FactoryError,),
               _seeds("uv-export.requirements.txt", "uv-export-project.requirements.txt", root=LOCK_SEEDS)),
        Target("pylock", "pylock.toml", read_lock, (FactoryError,), _seeds("pylock.uv-export.toml", "pylock.pip.toml", root=LOCK_SEEDS)),
        Target("project-lock", "uv.lock", read_lock, (FactoryError,), _seeds("uv.lock", "poetry.lock")),
        Target("config", "pyproject.toml", _config, (FactoryError,), _seeds("pyproject.toml")),
        Target("environment", "factory.env", _environment, (FactoryError,), _seeds("factory.env")),
        Target("manifest", "manifest.json", Manifest.load, (ValueError,), _seeds("manifest.json")),
        Target("readiness", "readiness.json", Readiness.load, (ValueError,), _seeds("readiness.json")),
        Target("install-lock", "install.lock", InstallLock.load, (ValueError,), _seeds("install.lock")),
        Target("images-lock", "images.lock", ImagesLock.load, (FactoryError,), _seeds("images.lock")),
        Target("bases-lock", "bases.lock", BaseImagesLock.load, (FactoryError,), _seeds("bases.lock")),
        Target("builders-lock", "builders.lock", BuilderImagesLock.load, (FactoryError,), _seeds("builders.lock")),
        Target("releases", "releases.json", read_history, (FactoryError,), _seeds("releases.json")),
        Target("index-page", "index.html", _index_page, (), _seeds("index.html")),
        Target("sdist", "pkg-1.0.tar.gz", _sdist, (FactoryError,), _seeds("sdist.tar.gz")),
    )
}


def check(target: Target, data: bytes, directory: Path) -> None:
    """Write ``data`` as ``target``'s file in the empty ``directory``, read it, and raise
    ``AssertionError`` when the property does not hold (an exception outside the contract
    passes through, with its traceback, for the fuzzer to report)."""
    path = directory / target.filename
    path.write_bytes(data)
    start = time.monotonic()
    try:
        target.read(path)
    except target.raises as e:
        text = str(e)
        if "\n" in text.strip() or not text.strip():
            raise OneLineViolation(f"{target.name}: {type(e).__name__} is not one line: {text!r}") from e
    finally:
        elapsed = time.monotonic() - start
        left = sorted(p.name for p in directory.iterdir() if p != path)
    if elapsed > TIME_LIMIT_S:
        raise AssertionError(f"{target.name}: {elapsed:.1f} s for one input of {len(data)} bytes")
    if left:
        raise AssertionError(f"{target.name}: wrote {left} beside its input")


# Mutations: a valid input changed one field (JSON/TOML value) or one line at a time, so the
# reader gets past its first check. ``rng`` is a random.Random the fuzzer seeds.

JSON_ODDITIES: tuple[Any, ...] = (None, True, False, 0, -1, 2**63, 1.5, "", "x", "\n", "sha256:", "a" * 64, [], {}, [None], {"": None})


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def mutate_value(value: Any, rng: random.Random) -> Any:
    """``value`` (JSON-like) with one node replaced by an odd value, deleted, or given an
    unknown key."""
    value = json.loads(json.dumps(value))
    where = rng.choice(_paths(value))
    if not where:
        return rng.choice(JSON_ODDITIES)
    parent = value
    for step in where[:-1]:
        parent = parent[step]
    last = where[-1]
    action = rng.randrange(3)
    if action == 0:
        parent[last] = rng.choice(JSON_ODDITIES)
    elif action == 1:
        del parent[last]
    elif isinstance(parent, dict):
        parent[rng.choice(["unknown", "", "__proto__"])] = rng.choice(JSON_ODDITIES)
    else:
        parent.append(rng.choice(JSON_ODDITIES))
    return value


def toml_text(table: Mapping[str, Any], prefix: str = "") -> str:
    """``table`` as TOML: scalars and arrays as ``key = value`` (JSON's string escapes are
    TOML's), sub-tables as ``[prefix.key]``; None values are left out."""
    lines, subs = [], []
    for k, v in table.items():
        if isinstance(v, dict) and v:
            subs.append((k, v))
        elif v is not None:
            lines.append(f"{json.dumps(str(k))} = {_toml_value(v)}")
    out = ""
    if prefix and (lines or not subs):
        out += f"[{prefix}]\n"
    out += "".join(line + "\n" for line in lines)
    for k, v in subs:
        out += toml_text(v, f"{prefix}.{json.dumps(str(k))}" if prefix else json.dumps(str(k)))
    return out


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(max(min(v, 2**63 - 1), -(2**63)))
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items() if x is not None) + "}"
    return '""'


LINE_ODDITIES = ("", "\\", "--hash=sha256:", "-r other.txt", "-e .", "x @ file:///x", "a==1 ; python_version >", "A==1 --hash=SHA256:" + "F" * 64,
                 "[[packages]]", 'lock-version = "2.0"', "version = 1", "\ufeff", "\x00", "a[b,==1", "ä==1")


def mutate_lines(text: str, rng: random.Random) -> str:
    """``text`` with one line deleted, duplicated, cut, case-flipped or replaced by an odd line."""
    lines = text.splitlines(keepends=True) or [""]
    i = rng.randrange(len(lines))
    action = rng.randrange(5)
    if action == 0:
        del lines[i]
    elif action == 1:
        lines.insert(i, lines[i])
    elif action == 2:
        lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)] + "\n"
    elif action == 3:
        lines[i] = lines[i].swapcase()
    else:
        lines[i] = rng.choice(LINE_ODDITIES) + "\n"
    return "".join(lines)


def mutate(target: Target, seed: bytes, rng: random.Random, rounds: int = 1) -> bytes:
    """``seed`` mutated ``rounds`` times, structurally when it parses as JSON or (for the
    TOML readers) as TOML, else line by line; sdists get their members mutated."""
    if target.name == "sdist":
        return _mutate_sdist(seed, rng)
    text = seed.decode("utf-8", errors="replace")
    for _ in range(rounds):
        try:
            if target.filename.endswith((".json", ".lock")) and text.lstrip().startswith("{"):
                text = json.dumps(mutate_value(json.loads(text), rng))
                continue
            if target.filename.endswith(".toml") and target.name == "config":
                import tomllib

                table = mutate_value(tomllib.loads(text), rng)
                text = toml_text(table if isinstance(table, dict) else {"tool": {"factory": {"python": table}}})
                continue
        except ValueError:
            pass
        text = mutate_lines(text, rng)
    return text.encode("utf-8", errors="surrogatepass")


def sdist_bytes(members: Mapping[str, bytes | str], kinds: Mapping[str, bytes] | None = None) -> bytes:
    """A gzip tar of ``members`` (name → file content; a ``str`` is a symlink target;
    ``kinds`` name → tar type byte overrides)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
                continue
            if kinds and name in kinds:
                info.type = kinds[name]
            info.size = len(content) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(content) if info.isfile() else None)
    return buf.getvalue()


SDIST_MEMBERS: Mapping[str, bytes | str] = {
    "pkg-1.0/pyproject.toml": b'[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n',
    "pkg-1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n",
    "pkg-1.0/src/pkg/__init__.py": b"",
    "pkg-1.0/src/pkg/_speed.c": b"int f(void) { return 0; }\n",
}
ODD_NAMES = ("/abs", "pkg-1.0/../../x", "other-1.0/x", "pkg-1.0/./a", "pkg-1.0//b", "", "pkg-1.0/dev")


def _mutate_sdist(seed: bytes, rng: random.Random) -> bytes:
    members: dict[str, bytes | str] = dict(SDIST_MEMBERS)
    action = rng.randrange(5)
    if action == 0:
        members[rng.choice(ODD_NAMES)] = b"x"
    elif action == 1:
        members["pkg-1.0/link"] = rng.choice(["../../etc/passwd", "/etc/passwd", "src", ""])
    elif action == 2:
        table = mutate_value({"build-system": {"requires": ["setuptools>=61"], "build-backend": "x"}}, rng)
        members["pkg-1.0/pyproject.toml"] = toml_text(table if isinstance(table, dict) else {"build-system": table}).encode()
    elif action == 3:
        members["pkg-1.0/pyproject.toml"] = rng.choice([b"\xff\xfe", b"[build-system", b"build-system = 1", b'[build-system]\nrequires = "setuptools"'])
    else:
        data = bytearray(sdist_bytes(members))
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    return sdist_bytes(members, {"pkg-1.0/dev": tarfile.CHRTYPE} if "pkg-1.0/dev" in members else None)
