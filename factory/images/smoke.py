"""The smoke stage: start every image in ``images.lock`` with testcontainers and check it.

Checks, per image (arm64 runs through QEMU binfmt):

- the interpreter reports exactly the configured patch version;
- every top-level module of every installed distribution imports
  (``top_level.txt``, else the distribution's RECORD);
- the installed set is consistent: ``pip check``, run from the toolchain's pip wheel
  mounted read-only (pip itself is not in the image);
- the process runs as a non-root user.

The checks are the probe files ``smoke_probe.py`` and ``hardening.py`` of
``factory/resources/probes/`` (see ``factory.images.probes``), mounted read-only into the container.

Hardening, checked in the same container, which runs with a read-only root filesystem
and a tmpfs ``/tmp``: no compiler or build tool on PATH; no pip, setuptools or wheel
importable unless the lock pins it; no package-manager caches; no setuid/setgid file beyond ``SUID_ALLOWED``;
CA certificates present (and loaded by ``ssl``); time zone data present (``zoneinfo``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from ..bases.imagelock import ArchImage, ImagesLock
from ..core import binfmt, children
from ..core.engine import Engine
from ..core.errors import SmokeError
from ..core.progress import Progress, console
from ..core.targets import Arch
from . import probes

PIP_IN_CONTAINER = "/opt/factory/pip.whl"
# Bootstrap strips every setuid/setgid bit; an upstream base may need entries here.
SUID_ALLOWED: frozenset[str] = frozenset()

def unpinned_packaging_tools(importable: Iterable[str], pinned: Collection[str]) -> list[str]:
    """The packaging tools among ``importable`` (module names the hardening probe found
    importable: pip, setuptools, wheel) that the lock does not pin, sorted.

    ``pinned`` are the distribution names the lock pins (any spelling). A pinned tool is
    there on purpose (pip-compile ``--allow-unsafe``; some packages need setuptools at run
    time), so only an unpinned one is a leak. Each tool's module is named like its
    distribution.
    """
    wanted = {canonicalize_name(n) for n in pinned}
    return sorted(t for t in importable if canonicalize_name(t) not in wanted)


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


def hardening_failures(found: dict[str, Any], pinned: Collection[str] = ()) -> list[str]:
    """One-line problems in the ``hardening.py`` probe's report ``found`` (its JSON object),
    for an image whose lock pins the distributions ``pinned``."""
    failures = []
    if found["tools"]:
        failures.append(f"compiler/build tool present: {', '.join(found['tools'])}")
    leaked = unpinned_packaging_tools(found["packaging_tools"], pinned)
    if leaked:
        failures.append(f"packaging tool present but not pinned by the lock: {', '.join(leaked)}")
    if found["caches"]:
        failures.append(f"package caches present: {', '.join(found['caches'][:5])}")
    extra_suid = sorted(set(found["suid"]) - SUID_ALLOWED)
    if extra_suid:
        failures.append(f"setuid/setgid files: {', '.join(extra_suid)}")
    if not found["ca_certs"]:
        failures.append("no CA certificates (/etc/ssl/certs/ca-certificates.crt)")
    if not found["tzdata"]:
        failures.append("no time zone data (zoneinfo)")
    if not found["read_only"]:
        failures.append("root filesystem is writable although started --read-only")
    return failures


def _probe(engine: Engine, container: Any, name: str, where: str, failures: list[str], user: str = "") -> Any:
    """Run probe ``name`` in ``container``; its JSON result, or None after adding a failure
    naming the probe, its exit status and its last output line."""
    code, output = engine.exec_in(container, probes.command(name), user=user)
    text = output.decode(errors="replace")
    tail = probes.last_line(text)
    if code != 0:
        failures.append(f"{where}: probe {name} failed (exit {code}): {tail}")
        return None
    try:
        return json.loads(probes.last_line(text, limit=None))
    except ValueError:
        failures.append(f"{where}: probe {name} printed no result: {tail}")
        return None


def smoke_image(engine: Engine, ref: str, arch: str, python: str, pip_wheel: Path, pinned: Collection[str] = ()) -> SmokeResult:
    """Run the checks on image ``ref`` of ``arch``; failures are collected, not raised.

    ``python`` is the expected interpreter version, ``pip_wheel`` the toolchain's pip wheel
    (mounted for ``pip check``), ``pinned`` the distribution names the image's lock pins
    (packaging tools among them may be importable; default none). Raises ``EngineError``
    only when no container starts.
    """
    result = SmokeResult(arch=arch, ref=ref)
    where = f"image {ref} ({arch})"
    engine = engine.for_arch(arch)
    if engine.remote:  # volumes are staged from the image, so it must be there first
        engine.ensure_local(ref, f"linux/{arch}")
    mounts = [(str(pip_wheel), PIP_IN_CONTAINER), (probes.host_dir(), probes.IN_CONTAINER)]
    with engine.test_container(ref, volumes=mounts) as c:
        probe = _probe(engine, c, "smoke_probe.py", where, result.failures)
        if probe is None:
            return result
        result.python, result.machine, result.uid = probe["version"], probe["machine"], probe["uid"]
        if probe["version"] != python:
            result.failures.append(f"{where}: python is {probe['version']}, expected {python}")
        expected_machine = Arch(arch).machine
        if probe["machine"] != expected_machine:
            result.failures.append(f"{where}: machine is {probe['machine']}, expected {expected_machine}")
        if probe["uid"] == 0:
            result.failures.append(f"{where}: runs as root (uid 0)")
        found = _probe(engine, c, "hardening.py", where, result.failures, user="0")
        if found is None:
            return result
        result.failures += [f"{where}: {problem}" for problem in hardening_failures(found, pinned)]
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


def smoke(engine: Engine, images: ImagesLock, python: str, pip_wheel: Path, pinned: Collection[str] = ()) -> list[SmokeResult]:
    """Smoke-test every image of ``images`` (a loaded images.lock); raise ``SmokeError``
    naming the first failure.

    ``pinned`` are the distribution names of the lock the images were built from (the
    pipeline passes ``{p.name for p in lock.pins}`` of the lock whose sha256 is
    ``images.lock_sha256``); default none, which rejects every importable packaging tool.
    All images are checked before raising; every failure is printed.
    """
    if any(image.arch == "arm64" for image in images.images) and engine.emulates("arm64"):
        binfmt.require_arm64()

    def one(progress: Progress, image: ArchImage) -> SmokeResult:
        task = progress.step(f"smoke {image.arch}")
        r = smoke_image(engine, image.ref, image.arch, python, pip_wheel, pinned)
        status = "ok" if not r.failures else f"{len(r.failures)} failure(s)"
        progress.done(task, f"smoke {r.arch}: python {r.python} {r.machine} uid {r.uid}, {r.modules} modules: {status}")
        return r

    # The arches at once: smoke checks outcomes, not timings, so one may load the other.
    # An interrupt removes the test containers, so the threads end within seconds.
    with children.sigterm_interrupts(), Progress() as progress, ThreadPoolExecutor(max_workers=len(images.images) or 1, thread_name_prefix="smoke") as pool:
        results = children.results_or_stop([pool.submit(one, progress, image) for image in images.images], engine.stop)
    failures = [f for r in results for f in r.failures]
    for f in failures:
        console.print(f"[red]FAIL[/red] {f}")
    if failures:
        raise SmokeError(f"{len(failures)} smoke check(s) failed; first: {failures[0]}", "fix the image or the lock")
    return results
