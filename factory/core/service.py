"""The service a project ships: its own code, how its image runs it, and what OS packages it needs.

Read from the project's pyproject.toml by ``config.load_config``:

- ``[tool.factory] package``: the uv workspace member to ship (its ``[project] name``), else
  the root ``[project]``;
- ``[tool.factory] app-files`` (paths and patterns relative to the pyproject.toml's directory,
  selected as ``.dockerignore`` does) and ``app-dir`` (default ``/app``): files copied into the
  image's top layer, for a virtual project (uv ``package = false``) or data files beside a
  packaged one;
- ``[tool.factory] runtime-packages``: Debian packages added to the bootstrapped base;
- ``[tool.factory.image]``: the OCI image config (image spec ``config.md``): ``command``
  (``Cmd``), ``entrypoint`` (``Entrypoint``), ``env`` (``Env``), ``workdir``
  (``WorkingDir``), ``ports`` (``ExposedPorts``), ``stop-signal`` (``StopSignal``), ``labels``.

A project ships as a service when it has ``[tool.factory.image]``, ``app-files`` or
``package``; otherwise the image is today's dependency image (``Cmd ["python3"]``) that teams
``FROM``. Every bad value is one ``ConfigError`` naming the key and the fix.
"""

from __future__ import annotations

import re
import signal
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from .errors import ConfigError

IMAGE_KEYS = frozenset({"command", "entrypoint", "env", "workdir", "ports", "stop-signal", "labels"})
DEFAULT_APP_DIR = "/app"
# Debian package names (Debian policy 5.6.1): lower case, digits, + - . ; at least two characters.
_DEB_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PORT = re.compile(r"^(\d{1,5})(?:/(tcp|udp|sctp))?$")


@dataclass(frozen=True)
class ImageSpec:
    """``[tool.factory.image]``, as the OCI config holds it. ``command``/``entrypoint`` are
    argv lists (``()``: not set); ``ports`` are ``"8000/tcp"`` strings (``ExposedPorts`` keys);
    ``stop_signal`` a signal name (``SIGTERM``) or ""."""

    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    workdir: str = ""
    ports: tuple[str, ...] = ()
    stop_signal: str = ""
    labels: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON (hashed into the image's inputs, shown by the summary)."""
        return {
            "command": list(self.command), "entrypoint": list(self.entrypoint), "env": dict(self.env), "workdir": self.workdir,
            "ports": list(self.ports), "stop_signal": self.stop_signal, "labels": dict(self.labels),
        }  # fmt: skip


@dataclass(frozen=True)
class Project:
    """The packaged project a service ships: ``name`` (canonical), its directory ``root``
    (absolute; holds its pyproject.toml with ``[build-system]``) and its console scripts
    (``[project.scripts]`` names)."""

    name: str
    root: Path
    scripts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceSpec:
    """What the service image adds over the dependency layer: the ``project`` wheel (None for a
    virtual project), ``app_files`` (patterns relative to ``files_root``) copied under
    ``app_dir``, and the ``image`` config with its ``command`` resolved."""

    project: Project | None
    files_root: Path
    app_files: tuple[str, ...] = ()
    app_dir: str = DEFAULT_APP_DIR
    image: ImageSpec = field(default_factory=ImageSpec)


def _strings(key: str, value: Any, example: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ConfigError(f"{key} is a string, not a list", f"write it as a list, e.g. {key} = {example}")
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{key} must be a list of non-empty strings", f"write it as e.g. {key} = {example}")
    return tuple(value)


def _table(key: str, value: Any, example: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str | int) and not isinstance(v, bool) for k, v in value.items()):
        raise ConfigError(f"{key} must map names to strings", f"write it as e.g. {key} = {example}")
    return tuple(sorted((k, str(v)) for k, v in value.items()))


def parse_ports(value: Any) -> tuple[str, ...]:
    """``ports`` (``[8000, "9000/udp"]``) -> OCI ``ExposedPorts`` keys (``"8000/tcp"``), sorted.
    ``ConfigError`` naming the first entry that is not a port number 1–65535 with an optional
    ``/tcp``, ``/udp`` or ``/sctp``."""
    if not isinstance(value, list):
        raise ConfigError("image.ports must be a list", "write it as e.g. ports = [8000]")
    out = set()
    for entry in value:
        m = _PORT.match(str(entry)) if isinstance(entry, int | str) and not isinstance(entry, bool) else None
        if m is None or not 1 <= int(m.group(1)) <= 65535:
            raise ConfigError(f"image.ports: {entry!r} is not a port", 'give a number from 1 to 65535, optionally with /tcp, /udp or /sctp, e.g. ports = [8000, "5353/udp"]')
        out.add(f"{int(m.group(1))}/{m.group(2) or 'tcp'}")
    return tuple(sorted(out, key=lambda p: (int(p.split("/")[0]), p)))


def _stop_signal(value: Any) -> str:
    names = {s.name for s in signal.Signals}
    text = str(value).upper() if isinstance(value, str) else ""
    if text and not text.startswith("SIG"):
        text = "SIG" + text
    if text not in names:
        raise ConfigError(f"image.stop-signal {value!r} is not a signal name", 'write it as e.g. stop-signal = "SIGTERM" (Kubernetes sends SIGTERM)')
    return text


def parse_image(table: Any) -> ImageSpec:
    """``[tool.factory.image]`` -> ``ImageSpec``; ``ConfigError`` for an unknown key or a bad value."""
    if not isinstance(table, Mapping):
        raise ConfigError("[tool.factory] image is not a table", 'write it as [tool.factory.image] with e.g. command = ["myapp"]')
    unknown = sorted(set(table) - IMAGE_KEYS)
    if unknown:
        raise ConfigError(f"unknown [tool.factory.image] keys: {', '.join(unknown)}", f"use {', '.join(sorted(IMAGE_KEYS))}")
    env = _table("image.env", table.get("env", {}), '{ PORT = "8000" }')
    bad = [k for k, _ in env if not _ENV_NAME.match(k)]
    if bad:
        raise ConfigError(f"image.env: {bad[0]!r} is not an environment variable name", "use letters, digits and _, not starting with a digit")
    workdir = table.get("workdir", "")
    if not isinstance(workdir, str) or (workdir and not workdir.startswith("/")):
        raise ConfigError(f"image.workdir {workdir!r} is not an absolute path", 'write it as e.g. workdir = "/app"')
    return ImageSpec(
        command=_strings("image.command", table["command"], '["myapp", "--port", "8000"]') if "command" in table else (),
        entrypoint=_strings("image.entrypoint", table["entrypoint"], '["tini", "--"]') if "entrypoint" in table else (),
        env=env,
        workdir=workdir,
        ports=parse_ports(table.get("ports", [])),
        stop_signal=_stop_signal(table["stop-signal"]) if "stop-signal" in table else "",
        labels=_table("image.labels", table.get("labels", {}), '{ "org.example.team" = "payments" }'),
    )


def runtime_packages(value: Any) -> tuple[str, ...]:
    """``runtime-packages`` -> the sorted, de-duplicated Debian package names. ``ConfigError``
    for a value that is not a list of Debian package names (Debian policy 5.6.1)."""
    names = _strings("runtime-packages", value, '["libmagic1", "libpq5"]') if value != [] else ()
    bad = [n for n in names if not _DEB_NAME.match(n)]
    if bad:
        raise ConfigError(f"runtime-packages: {bad[0]!r} is not a Debian package name", "use the binary package's name as apt knows it, e.g. libmagic1")
    return tuple(sorted(set(names)))


def _pyproject(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} not found", "point package at a workspace member with a pyproject.toml") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid TOML: {e}", "fix the file's syntax") from None


def _workspace_member(root: Path, data: Mapping[str, Any], package: str) -> Path:
    """The directory of the uv workspace member whose ``[project] name`` is ``package``
    (``[tool.uv.workspace] members``, globs as uv reads them, ``exclude`` honoured)."""
    workspace = _sub(data, "tool", "uv", "workspace")
    members = workspace.get("members", []) if isinstance(workspace, Mapping) else []
    excluded = {p.resolve() for pattern in workspace.get("exclude", []) for p in root.glob(str(pattern))} if isinstance(workspace, Mapping) else set()
    wanted = canonicalize_name(package)
    seen = []
    for pattern in members if isinstance(members, list) else []:
        for candidate in sorted(root.glob(str(pattern))):
            member = candidate.resolve()
            if member in excluded or not (member / "pyproject.toml").is_file():
                continue
            name = _sub(_pyproject(member / "pyproject.toml"), "project").get("name", "")
            seen.append(str(name))
            if canonicalize_name(str(name)) == wanted:
                return member
    if canonicalize_name(str(_sub(data, "project").get("name", ""))) == wanted:
        return root
    listed = ", ".join(seen) or "none"
    raise ConfigError(f"package {package!r} is not the project or a workspace member (members: {listed})", "set package to a [project] name of the uv workspace")


def _sub(data: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    """``data[k1][k2]…``, or {} where a step is missing or not a table (a hand-edited file)."""
    for key in keys:
        value = data.get(key, {})
        data = value if isinstance(value, Mapping) else {}
    return data


def _project(root: Path, data: Mapping[str, Any], package: str) -> Project | None:
    """The packaged project to ship, or None for a virtual one (no ``[build-system]``, or
    uv's ``package = false``)."""
    directory = _workspace_member(root, data, package) if package else root
    own = data if directory == root else _pyproject(directory / "pyproject.toml")
    project = own.get("project")
    if not isinstance(project, Mapping) or "name" not in project:
        return None
    if _sub(own, "tool", "uv").get("package") is False or "build-system" not in own:
        return None
    scripts = project.get("scripts", {})
    return Project(canonicalize_name(str(project["name"])), directory, tuple(sorted(scripts)) if isinstance(scripts, Mapping) else ())


def load_service(root: Path, data: Mapping[str, Any], table: Mapping[str, Any], env: Mapping[str, str]) -> ServiceSpec | None:
    """The ``ServiceSpec`` of the project at ``root`` (``data``: its parsed pyproject.toml,
    ``table``: its ``[tool.factory]``), or None when it ships no service. ``FACTORY_APP_DIR``
    overrides ``app-dir``. ``ConfigError`` for a bad value, an unknown workspace member, or a
    service with no command: several or no ``[project.scripts]`` and no ``command``."""
    package = str(table.get("package", "") or "")
    if "image" not in table and "app-files" not in table and not package:
        return None
    image = parse_image(table.get("image", {}))
    app_files = _strings("app-files", table.get("app-files", []), '["src/", "manage.py"]') if table.get("app-files") else ()
    bad = [p for p in app_files if p.startswith("/") or ".." in Path(p).parts]
    if bad:
        raise ConfigError(f"app-files: {bad[0]!r} is not inside the project", "give paths relative to the pyproject.toml's directory")
    app_dir = str(env.get("FACTORY_APP_DIR", table.get("app-dir", DEFAULT_APP_DIR)))
    if not app_dir.startswith("/") or ".." in Path(app_dir).parts:
        raise ConfigError(f"app-dir {app_dir!r} is not an absolute path", 'write it as e.g. app-dir = "/app"')
    project = _project(root, data, package)
    if not image.command and not image.entrypoint:
        scripts = project.scripts if project else ()
        if len(scripts) != 1:
            what = f"{len(scripts)} [project.scripts] entries ({', '.join(scripts)})" if scripts else "no [project.scripts] entry"
            raise ConfigError(
                f"the service image has no command: {project.name if project else 'the project'} has {what}",
                'set [tool.factory.image] command, e.g. command = ["myapp", "serve"]',
            )
        image = ImageSpec(**{**image.__dict__, "command": scripts})
    if project is None and not app_files:
        raise ConfigError(
            "the service ships nothing: the project has no [build-system] to build (or uv package = false) and app-files is empty",
            'list its files in app-files, e.g. app-files = ["src/", "manage.py"]',
        )
    return ServiceSpec(project=project, files_root=root, app_files=app_files, app_dir=app_dir.rstrip("/") or "/", image=image)
