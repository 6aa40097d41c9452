"""The smoke stage: start every image in ``images.lock`` with testcontainers and check it.

Checks, per image (arm64 runs through QEMU binfmt):

- the interpreter reports exactly the configured patch version;
- every top-level module of every installed distribution imports
  (``top_level.txt``, else the distribution's RECORD);
- the installed set is consistent: ``pip check``, run from the toolchain's pip wheel
  mounted read-only (pip itself is not in the image);
- the process runs as a non-root user.

Hardening, checked in the same container, which runs with a read-only root filesystem
and a tmpfs ``/tmp``: no compiler or build tool on PATH; no pip, setuptools or wheel
importable; no package-manager caches; no setuid/setgid file beyond ``SUID_ALLOWED``;
CA certificates present (and loaded by ``ssl``); time zone data present (``zoneinfo``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from . import binfmt
from .engine import Engine
from .errors import SmokeError
from .progress import Progress, console
from .targets import Arch

PIP_IN_CONTAINER = "/opt/factory/pip.whl"
# Bootstrap strips every setuid/setgid bit; an upstream base may need entries here.
SUID_ALLOWED: frozenset[str] = frozenset()

# Runs inside an image: the top-level modules of an installed distribution
# (top_level.txt, else the RECORD). Shared with the perf measurements.
TOP_LEVEL = r"""
import importlib, importlib.metadata as md, json, os, platform, time

def top_level(dist):
    text = dist.read_text("top_level.txt")
    if text:
        return sorted({m.strip() for m in text.split() if m.strip()})
    mods = set()
    for f in dist.files or ():
        parts = f.parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith((".dist-info", ".data")):
            continue
        if len(parts) == 1:
            if parts[0].endswith(".py"):
                mods.add(parts[0][:-3])
            elif parts[0].endswith(".so"):
                mods.add(parts[0].split(".")[0])
        elif parts[-1].endswith((".py", ".so")):
            mods.add(parts[0])
    return sorted(m for m in mods if m.isidentifier())
"""

# Runs inside the image as its own user; prints one JSON object.
PROBE = TOP_LEVEL + r"""
out = {"version": platform.python_version(), "machine": platform.machine(), "uid": os.getuid(), "dists": {}}
for dist in md.distributions():
    results = {}
    for mod in top_level(dist):
        try:
            importlib.import_module(mod)
            results[mod] = None
        except BaseException as e:
            results[mod] = f"{type(e).__name__}: {e}"[:300]
    out["dists"][dist.metadata["Name"]] = results
print(json.dumps(out))
"""


HARDENING = r"""
import json, os

def hardening():
    import glob, importlib.util, shutil, ssl, stat, zoneinfo
    found = {}
    found["tools"] = sorted(t for t in ("cc", "gcc", "g++", "c++", "clang", "ld", "make") if shutil.which(t))
    found["packaging_tools"] = sorted(m for m in ("pip", "setuptools", "wheel") if importlib.util.find_spec(m))
    caches = []
    for pattern in ("/var/lib/apt/lists/*_*", "/var/cache/apt/*.bin", "/var/cache/apt/archives/*.deb", "/root/.cache/*", "/tmp/factory", "/opt/venv/**/*.whl"):
        caches += glob.glob(pattern, recursive=True)
    found["caches"] = sorted(caches)
    special = []
    for root, dirs, files in os.walk("/"):
        if root.startswith(("/proc", "/sys", "/dev")):
            dirs[:] = []
            continue
        for f in files:
            path = os.path.join(root, f)
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
                special.append(path)
    found["suid"] = sorted(special)
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    found["ca_certs"] = os.path.isfile(bundle) and os.path.getsize(bundle) > 0 and ssl.create_default_context().cert_store_stats()["x509_ca"] > 0
    try:
        found["tzdata"] = zoneinfo.ZoneInfo("America/New_York").key == "America/New_York"
    except Exception:
        found["tzdata"] = False
    try:
        open("/opt/venv/.write-test", "w").close()
        found["read_only"] = False
    except OSError:
        found["read_only"] = True
    return found

print(json.dumps(hardening()))
"""


@dataclass
class SmokeResult:
    """Outcome for one image: what was checked, and failures as one-line messages."""

    arch: str
    ref: str
    python: str = ""
    machine: str = ""
    uid: int = -1
    modules: int = 0
    failures: list[str] = field(default_factory=list)


def smoke_image(engine: Engine, ref: str, arch: str, python: str, pip_wheel: Path) -> SmokeResult:
    """Run the checks on one image; failures are collected, not raised."""
    result = SmokeResult(arch=arch, ref=ref)
    where = f"image {ref} ({arch})"
    with engine.test_container(ref, volumes=[(str(pip_wheel), PIP_IN_CONTAINER)]) as c:
        code, output = engine.exec_in(c, ["python3", "-c", PROBE])
        text = output.decode(errors="replace").strip()
        if code != 0:
            result.failures.append(f"{where}: the probe failed (exit {code}): {text.splitlines()[-1:] or ''}")
            return result
        probe = json.loads(text.splitlines()[-1])
        result.python, result.machine, result.uid = probe["version"], probe["machine"], probe["uid"]
        if probe["version"] != python:
            result.failures.append(f"{where}: python is {probe['version']}, expected {python}")
        expected_machine = Arch(arch).machine
        if probe["machine"] != expected_machine:
            result.failures.append(f"{where}: machine is {probe['machine']}, expected {expected_machine}")
        if probe["uid"] == 0:
            result.failures.append(f"{where}: runs as root (uid 0)")
        code, output = engine.exec_in(c, ["python3", "-c", HARDENING], user="0")
        if code != 0:
            result.failures.append(f"{where}: the hardening probe failed (exit {code}): {output.decode(errors='replace')[-300:]}")
            return result
        h = json.loads(output.decode().strip().splitlines()[-1])
        for kind, what in (("tools", "compiler/build tool"), ("packaging_tools", "packaging tool")):
            if h[kind]:
                result.failures.append(f"{where}: {what} present: {', '.join(h[kind])}")
        if h["caches"]:
            result.failures.append(f"{where}: package caches present: {', '.join(h['caches'][:5])}")
        extra_suid = sorted(set(h["suid"]) - SUID_ALLOWED)
        if extra_suid:
            result.failures.append(f"{where}: setuid/setgid files: {', '.join(extra_suid)}")
        if not h["ca_certs"]:
            result.failures.append(f"{where}: no CA certificates (/etc/ssl/certs/ca-certificates.crt)")
        if not h["tzdata"]:
            result.failures.append(f"{where}: no time zone data (zoneinfo)")
        if not h["read_only"]:
            result.failures.append(f"{where}: root filesystem is writable although started --read-only")
        for dist, mods in sorted(probe["dists"].items()):
            for mod, err in sorted(mods.items()):
                result.modules += 1
                if err is not None:
                    result.failures.append(f"{where}: module {mod} (from {dist}) does not import: {err}")
        code, output = engine.exec_in(c, ["python3", f"{PIP_IN_CONTAINER}/pip", "check", "--disable-pip-version-check", "--no-cache-dir"])
        if code != 0:
            lines = output.decode(errors="replace").strip().splitlines()
            result.failures.append(f"{where}: pip check failed: {'; '.join(lines[:5])}")
    return result


def smoke(engine: Engine, images_lock: Path, python: str, pip_wheel: Path) -> list[SmokeResult]:
    """Smoke-test every image in ``images_lock``; raise ``SmokeError`` naming the first failure.

    All images are checked before raising; every failure is printed.
    """
    data = json.loads(images_lock.read_text())
    results = []
    with Progress() as progress:
        for image in data["images"]:
            if image["arch"] == "arm64":
                binfmt.require_arm64()
            task = progress.step(f"smoke {image['arch']}")
            results.append(smoke_image(engine, image["ref"], image["arch"], python, pip_wheel))
            r = results[-1]
            status = "ok" if not r.failures else f"{len(r.failures)} failure(s)"
            progress.done(task, f"smoke {r.arch}: python {r.python} {r.machine} uid {r.uid}, {r.modules} modules: {status}")
    failures = [f for r in results for f in r.failures]
    for f in failures:
        console.print(f"[red]FAIL[/red] {f}")
    if failures:
        raise SmokeError(f"{len(failures)} smoke check(s) failed; first: {failures[0]}", "fix the image or the lock")
    return results
