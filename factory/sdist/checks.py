"""The checks of built wheels: static ones on the host, and the import check in the
runtime base image.

Static (``WheelChecks.verify``): the wheel is what its name says (``verify.check_wheel``:
WHEEL tags, ELF machine), one of its tags fits the target (within the glibc floor, naming
the symbols that need more), and a musllinux wheel cross-built with zig NEEDs only musl and
resolves every symbol against musl's ``libc.so`` and CPython's ``libpython``
(``verify.check_musl_wheel``). Dynamic (``WheelChecks.import_check``): each built manylinux
wheel is installed and its top-level modules imported in the runtime base image of its
arch, network off, by the ``checks/import_check.py`` resource.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

from ..core import atomic, binfmt, resources
from ..core.config import Config
from ..core.errors import EngineError, WheelContentError
from ..core.targets import Arch, Target
from ..index.verify import check_musl_wheel, check_wheel, elf_exports, glibc_versions_above
from ..tools.toolchain import zig_target
from .outcome import BuildOutcome
from .plan import Connection

IMPORT_CHECK = "checks/import_check.py"
# The reason of a built wheel whose import check could not install a dependency because that
# dependency's own cell failed on the same target: the failure is the dependency's.
BLOCKED = "blocked by a failed dependency"
_NO_DISTRIBUTION = re.compile(r"No matching distribution found for (?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)")


def _failed_dependency(output: str, failed: set[str]) -> str | None:
    """The dependency pip could not find while installing a wheel, when it is one of the
    ``failed`` cells' projects (canonical names) of the same target; else None."""
    m = _NO_DISTRIBUTION.search(output)
    return m["name"] if m and canonicalize_name(m["name"]) in failed else None


_ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*(?:Error|Exception)|ERROR): .+")


def _error_line(output: str) -> str:
    """The last exception or pip ``ERROR:`` line of an import check's output, at most 200
    characters, or "" when it has none."""
    lines = [line.strip() for line in output.splitlines() if _ERROR_LINE.match(line.strip())]
    return lines[-1][:200] if lines else ""


LOG_TAIL = 12


def top_level_modules(wheel: Path) -> list[str]:
    """Importable top-level names of the wheel at ``wheel``: packages and extension/py
    modules at its root (``.dist-info``, ``.data`` and ``.libs`` directories excluded), sorted."""
    names: set[str] = set()
    with zipfile.ZipFile(wheel) as z:
        for member in z.namelist():
            head = member.split("/", 1)[0]
            if head.endswith((".dist-info", ".data")) or head.endswith(".libs"):
                continue
            if "/" in member:
                names.add(head)
            elif member.endswith(".py"):
                names.add(member[:-3])
            elif member.endswith(".so"):
                names.add(member.split(".", 1)[0])
    return sorted(n for n in names if n.isidentifier())


def best_tag(wheel: Path, target: Target, python: str) -> str:
    """The wheel's tag (``cp314-cp314-manylinux_2_5_x86_64``) that ``target`` prefers most.
    ``ValueError`` if none fits (``WheelChecks.verify`` rules that out first)."""
    rank = target.rank(python)
    fitting = [(rank[t], str(t)) for t in parse_wheel_filename(wheel.name)[3] if t in rank]
    if not fitting:
        raise ValueError(f"{wheel.name} has no tag that fits {target.name}")
    return min(fitting)[1]


class WheelChecks:
    """The checks of one factory run. ``connection`` is called only when a check needs the
    engine (musl/CPython exports not yet cached, import checks)."""

    def __init__(self, cfg: Config, connection: Callable[[], Connection]) -> None:
        self.cfg, self._connection = cfg, connection
        self._exports: dict[str, set[str]] = {}

    def verify(self, wheel: Path, target: Target, builder: str) -> None:
        """Static checks of a built wheel: it fits ``target`` (tags within the glibc floor,
        naming the symbols otherwise), ELF machine, and for musl wheels cross-built in a
        bootstrapped ``builder`` the NEEDED set and symbol resolution. Raises
        ``WheelContentError``."""
        check_wheel(wheel, target)
        tags = parse_wheel_filename(wheel.name)[3]
        if not any(t in target.rank(self.cfg.python) for t in tags):
            above = glibc_versions_above(wheel, target.floor) if target.libc == "manylinux" else []
            raise WheelContentError(
                f"{wheel.name} does not fit {target.name}"
                + (f": it needs {', '.join(above[:6])}" if above else f" (tags {', '.join(sorted(map(str, tags)))})"),
                f"build against the {target.name} glibc floor (zig -target {zig_target(target)}) or raise the target's floor",
            )
        if target.libc == "musllinux" and self.cfg.builder_image(target) is None:
            check_musl_wheel(wheel, target, self.exports(builder, target))

    def exports(self, builder: str, target: Target) -> set[str]:
        """musl's ``libc.so`` and CPython's ``libpython3.14.so.1.0`` exports for ``target``'s
        arch, read from the ``builder`` image (cached in ``<cache>/exports/<sha256 of the
        builder reference and the arch>.json``: the host builder holds both arches' files).
        ``EngineError`` if the image cannot be read."""
        arch = target.docker_arch
        memo = f"{builder} {arch}"
        if memo in self._exports:
            return self._exports[memo]
        cache = self.cfg.cache_dir / "exports" / (hashlib.sha256(memo.encode()).hexdigest() + ".json")
        if cache.is_file():
            names = set(json.loads(cache.read_text()))
        else:
            names = self._read_exports(builder, arch)
            atomic.write_json(cache, sorted(names))
        self._exports[memo] = names
        return names

    def _read_exports(self, builder: str, arch: Arch) -> set[str]:
        """The exports of ``arch``'s musl ``libc.so`` and libpython in ``builder``; a builder
        that holds only its own arch's files (the arch builders, which cross-build musl
        cells of the other arch with zig) gives its own: both libraries export the same
        names on amd64 and arm64. The builder is pulled first when the engine lacks it (a
        run whose cells all come from the cache never needed it). ``EngineError`` when it
        holds neither, ``RegistryError`` when it cannot be pulled."""
        conn = self._connection()
        engine = conn.engine
        engine.ensure_local(builder, None, conn.registry.auth)
        errors: list[EngineError] = []
        for candidate in (arch, *(a for a in Arch if a != arch)):
            try:
                names: set[str] = set()
                for path in (f"/usr/lib/{candidate.musl_triplet}/libc.so", f"/usr/lib/{candidate.triplet}/libpython3.14.so.1.0"):
                    names |= elf_exports(engine.read_file(builder, path))
                return names
            except EngineError as e:
                errors.append(e)
        raise errors[0]

    def import_check(self, target: Target, wheel_dir: Path, outcomes: list[BuildOutcome]) -> list[BuildOutcome]:
        """Install each ok manylinux outcome of ``target`` from ``wheel_dir`` (its target
        directory in the wheelhouse being assembled) with ``--no-index`` into the runtime
        base image of its arch and import its top-level modules; aarch64 runs through QEMU.

        Returns ``outcomes`` in order, each whose check failed replaced by a failed copy
        (``reason``, ``log_tail``); musllinux targets are returned as they are (no musl
        CPython here). ``EngineError``/``RegistryError`` if the base cannot be run;
        ``BinfmtMissingError`` for an emulated aarch64 target when QEMU is not registered.
        """
        if target.libc != "manylinux" or not any(o.ok and o.target == target.name for o in outcomes):
            return list(outcomes)
        conn = self._connection()
        base = conn.bases[target.docker_arch]
        # The engine may have lost the base (pruned, or untagged by another project that
        # shares its digest): pull it back by digest rather than fail to start a container.
        engine = conn.engine.for_arch(target.docker_arch)
        if target.docker_arch == "arm64" and engine.emulates("arm64"):
            # Without QEMU every check would fail as "exec format error", blamed on the wheel.
            binfmt.require_arm64()
        engine.ensure_local(base.ref, f"linux/{target.docker_arch}", conn.registry.auth)
        program = resources.path(IMPORT_CHECK)
        failed = {str(canonicalize_name(o.name)) for o in outcomes if o.target == target.name and not o.ok}
        checked = []
        for o in outcomes:
            if not (o.ok and o.target == target.name):
                checked.append(o)
                continue
            modules = top_level_modules(wheel_dir / o.filename)
            rc, output = engine.run(
                base.ref,
                ["python3", "/opt/factory/import_check.py", o.filename, *modules],
                volumes={
                    str(wheel_dir): {"bind": "/opt/factory/wheels", "mode": "ro"},
                    str(conn.pip_wheel): {"bind": "/opt/factory/pip.whl", "mode": "ro"},
                    str(program): {"bind": "/opt/factory/import_check.py", "mode": "ro"},
                },
                platform=f"linux/{target.docker_arch}",
                network=False,
            )
            if rc != 0 or "imported" not in output:
                if (dep := _failed_dependency(output, failed)) is not None:
                    reason = f"{BLOCKED}: {dep} has no wheel for {target.name} (its own cell failed); this wheel built and is checked once {dep} builds"
                else:
                    reason = f"built, but installing and importing {', '.join(modules)} on {target.name} failed"
                    reason += f": {line}" if (line := _error_line(output)) else ""
                o = dataclasses.replace(o, ok=False, reason=reason, log_tail=tuple(output.strip().splitlines()[-LOG_TAIL:]))
            checked.append(o)
        return checked
