"""``[tool.factory.smoke]``: how smoke starts a service image and knows it is ready.

Read by ``config.load_config`` beside ``[tool.factory.image]`` (``service.py``)::

    [tool.factory.smoke]
    ready = "http://:8000/health"     # any 2xx; or "tcp://:8000"; or
    # ready-exec = ["myapp", "check"] # run in the container (docker exec), exit 0 = ready
    env = { DATABASE_URL = "sqlite:////tmp/db" }
    timeout = 60                      # seconds a container may take to become ready
    runs = 5                          # fresh containers per measurement
    cpus = 0.5                        # the limits of the limited runs (Kubernetes resources)
    memory = "512MiB"
    grace-period = 30                 # seconds from SIGTERM to exit (terminationGracePeriodSeconds)
    ready-regression = 0.10           # the gates against the previous images.lock: +10 %
    rss-regression = 0.05             # and +5 %

The check runs from outside the container, as a kubelet's probes do: HTTP and TCP against the
container's address on a test network, ``ready-exec`` through the engine (``docker exec``), so
the image needs no shell. Every bad value is one ``ConfigError`` naming the key and the fix.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

SMOKE_KEYS = frozenset({"ready", "ready-exec", "env", "timeout", "runs", "cpus", "memory", "grace-period", "ready-regression", "rss-regression"})
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Kubernetes quantities (Ki, Mi, Gi) and the IEC/SI spellings people write in TOML.
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|k|K|KB|M|MB|G|GB|Ki|KiB|Mi|MiB|Gi|GiB)?\s*$")
_UNITS = {
    None: 1, "B": 1, "k": 10**3, "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6, "G": 10**9, "GB": 10**9,
    "Ki": 2**10, "KiB": 2**10, "Mi": 2**20, "MiB": 2**20, "Gi": 2**30, "GiB": 2**30,
}  # fmt: skip
# The engine refuses a memory limit under 6 MiB.
MIN_MEMORY = 6 * 2**20
_LOOPBACK = {"", "localhost", "127.0.0.1", "0.0.0.0", "::1"}


@dataclass(frozen=True)
class ReadyCheck:
    """The readiness check: ``kind`` ``http``/``https`` (``port``, ``path``; any 2xx answer is
    ready), ``tcp`` (``port``; an accepted connection is ready) or ``exec`` (``argv`` run in
    the container; exit 0 is ready)."""

    kind: str
    port: int = 0
    path: str = ""
    argv: tuple[str, ...] = ()

    def describe(self) -> str:
        """The check as configured: ``http://:8000/health``, ``tcp://:8000`` or ``exec myapp check``."""
        if self.kind == "exec":
            return "exec " + " ".join(self.argv)
        return f"{self.kind}://:{self.port}{self.path}"


@dataclass(frozen=True)
class SmokeSpec:
    """``[tool.factory.smoke]`` parsed: the ``ready`` check, the variables ``env`` added to the
    image's own, ``timeout`` and ``grace_period`` in seconds, ``runs`` fresh containers per
    measurement, the limits ``cpus`` (CPUs) and ``memory`` (bytes), and the gates'
    ``ready_regression`` and ``rss_regression`` (fractions: 0.10 is +10 %)."""

    ready: ReadyCheck
    env: tuple[tuple[str, str], ...] = ()
    timeout: float = 60.0
    runs: int = 5
    cpus: float = 0.5
    memory: int = 512 * 2**20
    grace_period: float = 30.0
    ready_regression: float = 0.10
    rss_regression: float = 0.05

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON (hashed by ``digest``; the gates' fractions left out, as they
        change no measurement)."""
        return {
            "ready": self.ready.describe(), "env": dict(self.env), "timeout": self.timeout, "runs": self.runs,
            "cpus": self.cpus, "memory": self.memory, "grace_period": self.grace_period,
        }  # fmt: skip

    def digest(self) -> str:
        """sha256 hex of ``to_json``: a measurement made under other settings is redone."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()


def parse_ready(value: Any) -> ReadyCheck:
    """``ready`` (``http://:8000/health``, ``https://:8443/``, ``tcp://:8000``) -> ``ReadyCheck``.
    The host is left out (or is a loopback name): the check goes to the container's address.
    ``ConfigError`` for another scheme, a host, or a missing or bad port."""
    example = 'ready = "http://:8000/health" or ready = "tcp://:8000"'
    if not isinstance(value, str) or not value:
        raise ConfigError("smoke.ready must be a URL string", f"write it as {example}")
    url = urllib.parse.urlsplit(value)
    if url.scheme not in ("http", "https", "tcp"):
        raise ConfigError(f"smoke.ready {value!r}: scheme {url.scheme or '(none)'} is not http, https or tcp", f"write it as {example}")
    if (url.hostname or "") not in _LOOPBACK:
        raise ConfigError(f"smoke.ready {value!r} names the host {url.hostname}", "leave the host out: the check goes to the container's address, e.g. http://:8000/health")
    try:
        port = url.port
    except ValueError:
        port = -1
    if port is None and url.scheme != "tcp":
        port = 80 if url.scheme == "http" else 443
    if port is None or not 1 <= port <= 65535:
        raise ConfigError(f"smoke.ready {value!r} has no valid port", f"give the port the service listens on, e.g. {example}")
    if url.scheme == "tcp":
        if url.path not in ("", "/") or url.query:
            raise ConfigError(f"smoke.ready {value!r}: a tcp check has no path", 'write it as ready = "tcp://:8000"')
        return ReadyCheck("tcp", port)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    return ReadyCheck(url.scheme, port, path)


def _number(table: Mapping[str, Any], key: str, default: float, low: float, high: float, example: str) -> float:
    value = table.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"smoke.{key} = {value!r} is not a number from {low:g} to {high:g}", f"write it as e.g. {key} = {example}")
    return float(value)


def parse_memory(value: Any) -> int:
    """``memory`` (``"512MiB"``, ``"512Mi"``, ``"1G"``, or bytes as an integer) -> bytes.
    ``ConfigError`` for another form or under 6 MiB (the engine's minimum)."""
    m = _MEMORY.match(value) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif m is not None:
        size = int(float(m.group(1)) * _UNITS[m.group(2)])
    else:
        raise ConfigError(f"smoke.memory = {value!r} is not a size", 'write it as e.g. memory = "512MiB" (Ki/Mi/Gi, KiB/MiB/GiB, K/M/G or bytes)')
    if size < MIN_MEMORY:
        raise ConfigError(f"smoke.memory = {value!r} is under 6 MiB, the least the engine allows", 'give more, e.g. memory = "512MiB"')
    return size


def parse_smoke(table: Any) -> SmokeSpec:
    """``[tool.factory.smoke]`` -> ``SmokeSpec``. ``ConfigError`` for an unknown key, both or
    neither of ``ready`` and ``ready-exec``, or a bad value."""
    if not isinstance(table, Mapping):
        raise ConfigError("[tool.factory] smoke is not a table", 'write it as [tool.factory.smoke] with e.g. ready = "http://:8000/health"')
    unknown = sorted(set(table) - SMOKE_KEYS)
    if unknown:
        raise ConfigError(f"unknown [tool.factory.smoke] keys: {', '.join(unknown)}", f"use {', '.join(sorted(SMOKE_KEYS))}")
    if ("ready" in table) == ("ready-exec" in table):
        raise ConfigError(
            "[tool.factory.smoke] needs exactly one of ready and ready-exec",
            'give ready = "http://:8000/health", ready = "tcp://:8000" or ready-exec = ["myapp", "check"]',
        )
    if "ready" in table:
        ready = parse_ready(table["ready"])
    else:
        argv = table["ready-exec"]
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and a for a in argv):
            raise ConfigError("smoke.ready-exec must be a non-empty list of non-empty strings", 'write it as e.g. ready-exec = ["python3", "-m", "myapp.check"]')
        ready = ReadyCheck("exec", argv=tuple(argv))
    env = table.get("env", {})
    if not isinstance(env, Mapping) or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in env.values()):
        raise ConfigError("smoke.env must map names to strings", 'write it as e.g. env = { DATABASE_URL = "sqlite:////tmp/app.db" }')
    bad = [k for k in env if not _ENV_NAME.match(str(k))]
    if bad:
        raise ConfigError(f"smoke.env: {bad[0]!r} is not an environment variable name", "use letters, digits and _, not starting with a digit")
    runs = table.get("runs", 5)
    if not isinstance(runs, int) or isinstance(runs, bool) or not 1 <= runs <= 50:
        raise ConfigError(f"smoke.runs = {runs!r} is not a whole number from 1 to 50", "write it as e.g. runs = 5")
    return SmokeSpec(
        ready=ready,
        env=tuple(sorted((str(k), str(v)) for k, v in env.items())),
        timeout=_number(table, "timeout", 60, 1, 3600, "60"),
        runs=runs,
        cpus=_number(table, "cpus", 0.5, 0.01, 256, "0.5"),
        memory=parse_memory(table.get("memory", "512MiB")),
        grace_period=_number(table, "grace-period", 30, 1, 3600, "30"),
        ready_regression=_number(table, "ready-regression", 0.10, 0, 10, "0.10"),
        rss_regression=_number(table, "rss-regression", 0.05, 0, 10, "0.05"),
    )
