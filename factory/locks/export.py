"""Project locks (uv.lock, poetry.lock, pdm.lock), exported by the tools that own them.

These formats are not stable for third parties (astral says so of uv.lock), so factory does
not parse their packages: it reads only the header it must check first, and has the owning
tool export a lock factory reads (``pylock``/``requirements``):

- **uv.lock** (``version = 1``, ``requires-python``, ``[[package]]``): ``uv export --frozen
  --format pylock.toml --no-emit-workspace`` with the uv installed beside factory, offline,
  without user configuration (``--no-config``) and with a private cache;
- **poetry.lock** (``[metadata] lock-version`` and ``content-hash``): ``poetry export -f
  requirements.txt`` (poetry-plugin-export), with hashes;
- **pdm.lock** (``[metadata] lock_version`` and ``content_hash``): ``pdm export -f
  requirements``, with hashes.

poetry and pdm run from a virtual environment of their own, installed once into the cache
from ``resources/constraints/exporters.txt`` (hash-pinned, ``pip --require-hashes``).

What is exported is named with uv's words (``ExportOptions``): the workspace ``package``,
dependency ``groups`` and ``extras``; by default the project's runtime dependencies without
its dev group. The exported lock is kept under ``<cache>/exports/<sha256>/`` (the key hashes
the lock, its pyproject.toml, the options and the tool's version), so its line numbers in a
message can be looked up.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from ..core import atomic, resources
from ..core.errors import LockError

ProjectLockKind = Literal["uv", "poetry", "pdm"]
# The uv.lock schema versions the pinned uv reads (uv.lock's top-level `version`).
UV_LOCK_VERSIONS = frozenset({1})
EXPORTERS_LOCK = "constraints/exporters.txt"
_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_TIMEOUT = 300.0  # seconds for one export (poetry resolves nothing, but it starts slowly)


@dataclass(frozen=True)
class ExportOptions:
    """What to export from a project lock, in uv's words: ``package`` (a workspace member's
    name, "" for the root project), dependency ``groups`` and ``extras`` (names). ``python`` is
    the configured CPython (``"3.14.8"``) the lock's ``requires-python`` must admit;
    ``cache_dir`` holds the exports and the exporters' environment."""

    cache_dir: Path
    python: str
    package: str = ""
    groups: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    # False for `factory upgrade`, whose input is a lock made for another Python
    check_python: bool = True


def project_lock_kind(toml: Mapping[str, Any]) -> ProjectLockKind | None:
    """The project-lock format of a parsed TOML document, from its content, or None.

    uv.lock: a top-level integer ``version`` with ``[[package]]`` or ``requires-python``;
    poetry.lock: ``[metadata]`` with ``lock-version`` and ``content-hash``; pdm.lock:
    ``[metadata]`` with ``lock_version`` and ``content_hash``."""
    meta = toml.get("metadata")
    if isinstance(meta, Mapping):
        if "content-hash" in meta and "lock-version" in meta:
            return "poetry"
        if "content_hash" in meta and "lock_version" in meta:
            return "pdm"
    if "version" in toml and ("package" in toml or "requires-python" in toml) and "lock-version" not in toml:
        return "uv"
    return None


def _check_uv_header(path: Path, toml: Mapping[str, Any], python: str | None) -> None:
    version = toml.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version not in UV_LOCK_VERSIONS:
        raise LockError(
            f"{path}: uv.lock version {version!r} is not one factory's uv reads (known: {', '.join(map(str, sorted(UV_LOCK_VERSIONS)))})",
            "lock it again with the uv beside factory (`uv lock`), or export it yourself: uv export --format pylock.toml",
        )
    _check_requires_python(path, toml.get("requires-python"), python, "uv lock")


def _check_requires_python(path: Path, spec: Any, python: str | None, relock: str) -> None:
    if spec is None or python is None:
        return
    try:
        admits = isinstance(spec, str) and SpecifierSet(spec).contains(Version(python), prereleases=True)
    except InvalidSpecifier:
        raise LockError(f"{path}: requires-python {spec!r} is not a version specifier", f"fix requires-python in pyproject.toml and run {relock}") from None
    if not admits:
        raise LockError(
            f"{path}: requires-python {spec} excludes CPython {python} (the configured python)",
            f"change requires-python in pyproject.toml to admit {python} and run {relock}",
        )


def _poetry_python(toml: Mapping[str, Any]) -> Any:
    meta = toml.get("metadata")
    return meta.get("python-versions") if isinstance(meta, Mapping) else None


def _pdm_python(toml: Mapping[str, Any]) -> Any:
    # pdm.lock 4.5: [[metadata.targets]] requires_python (one per target of a cross-platform lock)
    meta = toml.get("metadata")
    targets = meta.get("targets") if isinstance(meta, Mapping) else None
    if not isinstance(targets, list):
        return None
    specs = {str(t["requires_python"]) for t in targets if isinstance(t, Mapping) and t.get("requires_python")}
    # several targets with different ranges: pdm itself checks each, so only one range is checked here
    return specs.pop() if len(specs) == 1 else None


def _clean_env(home: Path) -> dict[str, str]:
    """The environment an exporter runs in: no user or site configuration, no keyring."""
    keep = {"PATH", "LANG", "LC_ALL", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "TMPDIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env |= {
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"), "XDG_CACHE_HOME": str(home / "cache"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring", "POETRY_VIRTUALENVS_CREATE": "false",
        "PDM_CHECK_UPDATE": "false", "PDM_IGNORE_SAVED_PYTHON": "1", "NO_COLOR": "1",
    }  # fmt: skip
    return env


def _run(argv: Sequence[str], cwd: Path, env: Mapping[str, str], what: str, path: Path) -> str:
    try:
        proc = subprocess.run(list(argv), cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    except FileNotFoundError:
        raise LockError(f"{path}: {argv[0]} not found, so the {what} cannot be exported", "reinstall factory (make venv)") from None
    except subprocess.TimeoutExpired:
        raise LockError(f"{path}: {what} export took longer than {_TIMEOUT:.0f} s", "export it yourself and give the result as --lock") from None
    if proc.returncode != 0:
        lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit {proc.returncode}"
        raise LockError(f"{path}: {what} export failed: {last}", "check that the lock is current for its pyproject.toml (and lock again if not)")
    return proc.stdout


def uv_binary() -> str:
    """The uv installed beside factory (the ``uv`` package's binary), else ``uv`` on PATH."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("uv") or "uv"


def uv_version() -> str:
    """``uv --version`` of ``uv_binary()`` ("uv 0.13.9 (…)"), or "" when it cannot run."""
    try:
        return subprocess.run([uv_binary(), "--version"], capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def exporters_python(cache_dir: Path) -> Path:
    """The Python of the exporters' environment (poetry, poetry-plugin-export, pdm),
    installed into ``<cache>/tools/exporters-<sha8>`` from the hash-pinned exporters lock on
    first use (``.installed`` marks a complete one; anything else there is made again).
    Raises ``LockError`` when it cannot be installed (the index unreachable)."""
    lock = resources.path(EXPORTERS_LOCK)
    digest = hashlib.sha256(lock.read_bytes() + sys.version.encode()).hexdigest()[:8]
    venv = cache_dir / "tools" / f"exporters-{digest}"
    python = venv / "bin" / "python"
    if (venv / ".installed").exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    argv = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--require-hashes", "--no-deps", "-r", str(lock)]
    if Path(_CA_BUNDLE).exists():
        argv += ["--cert", _CA_BUNDLE]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise LockError(
            f"the lock exporters (poetry, pdm) cannot be installed: {last}",
            "check that the index is reachable, or export the lock yourself and pass the result as --lock",
        )
    (venv / ".installed").touch()
    return python


def export_project_lock(path: Path, data: bytes, toml: Mapping[str, Any], kind: ProjectLockKind, options: ExportOptions) -> Path:
    """Export the project lock at ``path`` (its ``data`` bytes, parsed ``toml``, format
    ``kind``) with its own tool; returns the exported file (``pylock.toml`` for uv,
    ``requirements.txt`` for poetry and pdm), to be read by the pylock or requirements reader.

    The lock's pyproject.toml must sit beside it (the tools need the project). Raises
    ``LockError`` (one line) for an unknown uv.lock ``version``, a ``requires-python`` that
    excludes ``options.python``, a missing pyproject.toml, or a failed export (the tool's
    last line)."""
    root = path.resolve().parent
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        raise LockError(f"{path}: no pyproject.toml beside it, so {kind} cannot export it", f"run factory in the project's directory (where {path.name} and pyproject.toml are)")
    admit = options.python if options.check_python else None
    if kind == "uv":
        _check_uv_header(path, toml, admit)
    elif kind == "poetry":
        _check_requires_python(path, _poetry_python(toml), admit, "poetry lock")
    else:
        _check_requires_python(path, _pdm_python(toml), admit, "pdm lock")
    key = hashlib.sha256(
        json.dumps([kind, hashlib.sha256(data).hexdigest(), hashlib.sha256(pyproject.read_bytes()).hexdigest(),
                    options.package, list(options.groups), list(options.extras), resources.digest(EXPORTERS_LOCK) if kind != "uv" else uv_version()]).encode()
    ).hexdigest()  # fmt: skip
    out_dir = options.cache_dir / "exports" / key
    name = "pylock.toml" if kind == "uv" else "requirements.txt"
    out = out_dir / name
    if out.is_file():
        return out
    home = options.cache_dir / "exports" / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = _clean_env(home)
    if kind == "uv":
        argv = [uv_binary(), "export", "--frozen", "--format", "pylock.toml", "--no-emit-workspace", "--no-config", "--offline",
                "--no-progress", "--quiet", "--cache-dir", str(home / "uv-cache"), "--directory", str(root)]  # fmt: skip
        argv += ["--package", options.package] if options.package else []
        argv += [a for g in options.groups for a in ("--group", g)]
        argv += [a for e in options.extras for a in ("--extra", e)]
        argv += ["--no-dev"] if "dev" not in options.groups else []
        # uv insists on a file named pylock.toml; it writes it (and prints it) itself.
        staging = out_dir.with_name(out_dir.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            _run([*argv, "--output-file", str(staging / name)], root, env, "uv.lock", path)
            # uv's header repeats the command, whose --output-file path changes with the
            # export key: dropped, so the exported lock's sha256 follows only its content.
            lines = (staging / name).read_text().splitlines(keepends=True)
            text = "".join(lines[next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines)) :])
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    elif kind == "poetry":
        python = exporters_python(options.cache_dir)
        argv = [str(python), "-m", "poetry", "export", "--no-interaction", "--format", "requirements.txt", "--directory", str(root)]
        argv += [a for g in options.groups for a in ("--with", g)]
        argv += [a for e in options.extras for a in ("--extras", e)]
        text = _run(argv, root, env, "poetry.lock", path)
    else:
        python = exporters_python(options.cache_dir)
        argv = [str(python), "-m", "pdm", "export", "--format", "requirements", "--project", str(root)]
        # pdm's --prod leaves out every dev group, so a named group needs --dev instead
        argv += [a for g in options.groups for a in ("--group", g)] + ["--dev"] if options.groups else ["--prod"]
        text = _run(argv, root, env, "pdm.lock", path)
    atomic.write_text(out, text)
    return out
