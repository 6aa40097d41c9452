"""The cibuildwheel runner: the sdist lane's second path to the container engine.

factory reaches the engine through ``factory/core/engine.py`` (Docker SDK) everywhere except
here: cibuildwheel drives ``docker`` itself (its ``oci_container.py``). Everything about
that run lives in this module: the ``CIBW_*`` environment, the mounts and the container
label, the ``CIBW_CONTAINER_ENGINE`` string, the command line, the timeout and the log.
It does not import the Docker SDK.

One run builds one cell (cibuildwheel 4.x, options documented at
https://cibuildwheel.pypa.io/en/stable/options/): ``CIBW_BUILD=cp314-<libc>_<arch>``,
our own ``--config-file`` (``resources/sdist/cibuildwheel.toml``, so the sdist's own
``[tool.cibuildwheel]`` is never read), ``--network=none``, pip pointed at the mounted
build dependencies only.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core import children, resources
from ..core.config import SdistOptions
from ..core.targets import Target
from ..tools.toolchain import zig_target
from .outcome import BuildRun

# Everything under this resources directory is mounted into the build container at
# CONTAINER_RESOURCES and hashed into each build's cache key (buildcache.BuildKey).
RESOURCE_DIR = "sdist"
CONFIG_FILE = f"{RESOURCE_DIR}/cibuildwheel.toml"
CONTAINER_RESOURCES = "/opt/factory/resources"
# Where a build container sees the build dependencies, zig, its wrappers and zig's cache.
DEPS, ZIG, ZIG_BIN, ZIG_CACHE = "/opt/factory/deps", "/opt/factory/zig", "/opt/factory/bin", "/opt/factory/zig-cache"
LOG_TAIL = 12
# The compilers of a bootstrapped builder: the zig wrappers of toolchain.zig_root(),
# mounted at /opt/factory/bin (values are shell words, as CIBW_ENVIRONMENT parses them).
ZIG_COMPILERS: dict[str, str] = {
    "CC": "/opt/factory/bin/cc",
    "CXX": "/opt/factory/bin/c++",
    "LDSHARED": "'/opt/factory/bin/cc -shared'",
    "LDCXXSHARED": "'/opt/factory/bin/c++ -shared'",
    "AR": "/opt/factory/bin/ar",
    "RANLIB": "/opt/factory/bin/ranlib",
    # pkg-config (Debian's pkgconf in the builder) must not hand the builder's own glibc
    # libraries to a musl or glibc-floor link: it searches only here (library recipes' .pc files).
    "PKG_CONFIG_LIBDIR": "/opt/factory/pkgconfig",
}
ZIG_CACHES: dict[str, str] = {"ZIG_GLOBAL_CACHE_DIR": "/opt/factory/zig-cache", "ZIG_LOCAL_CACHE_DIR": "/tmp/zig-local-cache"}
# Where a cell's library recipes (libraries.sysroot: static archives, headers, .pc files) are
# mounted; their .pc files name this prefix, since the recipes were installed into it.
LIBS = "/opt/factory/libs"
LIBS_ENV: dict[str, str] = {
    # the recipes' config scripts (pg_config, xml2-config) answer for this prefix
    "PATH": f"{LIBS}/bin:$PATH",
    "CPPFLAGS": f"-I{LIBS}/include",
    "LDFLAGS": f"-L{LIBS}/lib",
    "PKG_CONFIG_LIBDIR": f"{LIBS}/lib/pkgconfig:{LIBS}/share/pkgconfig",
}


@dataclass(frozen=True)
class Mounts:
    """The host directories a build container mounts.

    ``deps``: the find-links directory of ``builddeps.builddeps_dir`` (read only);
    ``zig``: ``toolchain.zig_root()`` for a bootstrapped builder, None for an upstream one
    (its own compiler); ``zig_cache``: zig's shared libc/libc++ cache (read-write);
    ``resources``: the ``RESOURCE_DIR`` resources (cibuildwheel options, musl repair);
    ``libs``: the cell's library recipes (``libraries.sysroot``), None when it uses none.
    """

    deps: Path
    zig: Path | None
    zig_cache: Path
    resources: Path
    libs: Path | None = None

    @classmethod
    def placeholders(cls, zig: bool, libs: bool = False) -> Mounts:
        """Fixed stand-ins for the host paths: the environment a cache key hashes must not
        depend on where the cache lives (what the paths hold is keyed on its own)."""
        return cls(Path("/deps"), Path("/zig") if zig else None, Path("/zig-cache"), Path("/resources"), Path("/libs") if libs else None)


def mount_points(mounts: Mounts) -> dict[str, tuple[Path, str]]:
    """Container path -> (host path, ``ro``/``rw``) of everything ``mounts`` binds into a
    build container (zig's cache is the one read-write mount)."""
    points = {DEPS: (mounts.deps, "ro")}
    if mounts.zig is not None:
        points |= {ZIG: (mounts.zig / "zig", "ro"), ZIG_BIN: (mounts.zig / "bin", "ro"), ZIG_CACHE: (mounts.zig_cache, "rw")}
        points[CONTAINER_RESOURCES] = (mounts.resources, "ro")
    if mounts.libs is not None:
        points[LIBS] = (mounts.libs, "ro")
    return points


def container_label(cache_dir: Path) -> str:
    """The label (``key=value``) on every build container of runs on ``cache_dir``."""
    return f"io.factory.build-cache={hashlib.sha256(str(cache_dir.resolve()).encode()).hexdigest()[:16]}"


def cell_label() -> str:
    """A label (``key=value``) naming one cibuildwheel run's container alone: a timed-out
    run's container is removed by it (cibuildwheel, killed, leaves its container compiling)."""
    return f"io.factory.cell={uuid.uuid4().hex}"


def sdist_epoch(path: Path) -> int:
    """SOURCE_DATE_EPOCH (seconds) for a build: the newest member mtime of the sdist at
    ``path``, or 1980-01-01 if none is set. ``tarfile.TarError``/``OSError`` if unreadable."""
    with tarfile.open(path) as tar:
        return int(max((m.mtime for m in tar.getmembers()), default=0)) or 315532800


def version() -> str:
    """The installed cibuildwheel's version (it runs from this interpreter), or
    ``"missing"`` (each build then fails with cibuildwheel's own message)."""
    try:
        return importlib.metadata.version("cibuildwheel")
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def _words(env: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in env.items())


def _user_words(env: tuple[tuple[str, str], ...]) -> str:
    # cibuildwheel's own table form: each value double-quoted, so $VAR still expands
    return " ".join(f'{k}="{v}"' for k, v in env)


def cibuildwheel_env(
    python: str,
    target: Target,
    builder: str,
    mounts: Mounts,
    epoch: int,
    labels: Sequence[str] = (),
    compile_jobs: int | None = None,
    options: SdistOptions | None = None,
    sources: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The ``CIBW_*`` variables for one cell.

    ``python`` is the CPython version (``"3.14.8"``), ``builder`` the builder image
    reference, ``epoch`` SOURCE_DATE_EPOCH in seconds, ``labels`` the ``key=value``
    container labels (``container_label``, ``cell_label``), if any. With ``mounts.zig`` (a bootstrapped builder),
    CC/CXX are the zig wrappers targeting the glibc floor or musl, and musllinux repair is
    ``musl_repair.py``; without, the builder's own compiler and cibuildwheel's default
    auditwheel repair. The container always runs with ``--network=none``, the host not
    mounted, and pip pointed at the mounted build dependencies only. ``compile_jobs`` sets
    the parallel jobs of make, CMake, cargo and grpcio's setup.py inside the cell; None leaves them out, as
    cache keys do (how many jobs compile a wheel does not change it). ``mounts.libs`` adds
    the library recipes' include, library and pkg-config paths; ``options`` (the sdist's
    ``[tool.factory.sdist.<project>]``) adds its before-all, before-build, environment (after
    the factory's, so it wins) and repair command. ``sources`` replaces what is mounted at a
    container path of ``mount_points(mounts)`` (volumes of a remote Docker host's engine).
    """
    source = {**{path: str(host) for path, (host, _) in mount_points(mounts).items()}, **(sources or {})}
    parallel_env = (
        {} if compile_jobs is None
        else {
            "MAKEFLAGS": f"-j{compile_jobs}", "CMAKE_BUILD_PARALLEL_LEVEL": str(compile_jobs), "CARGO_BUILD_JOBS": str(compile_jobs),
            # grpcio's setup.py compiles its ~2,300 C/C++ sources one at a time unless told
            "GRPC_PYTHON_BUILD_EXT_COMPILER_JOBS": str(compile_jobs),
        }
    )  # fmt: skip
    pip_env = {
        **parallel_env,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": "/opt/factory/deps",
        "PIP_CONSTRAINT": "/opt/factory/deps/constraints.txt",
        "SOURCE_DATE_EPOCH": str(epoch),
    }
    volumes = [f"--volume={source[DEPS]}:{DEPS}:ro", *(f"--label={one}" for one in labels)]
    env = {
        # cibuildwheel's identifier: cp314-… or, in the free-threaded lane, cp314t-…
        "CIBW_BUILD": f"cp{python.replace('.', '')[:3]}{'t' if target.free_threaded else ''}-{target.libc}_{target.arch}",
        f"CIBW_{target.libc.upper()}_{target.arch.upper()}_IMAGE": builder,
        "CIBW_BUILD_FRONTEND": "build",
        "CIBW_ENVIRONMENT": _words(pip_env),
    }
    if mounts.zig is not None:
        volumes += [
            f"--volume={source[ZIG]}:{ZIG}:ro",
            f"--volume={source[ZIG_BIN]}:{ZIG_BIN}:ro",
            f"--volume={source[ZIG_CACHE]}:{ZIG_CACHE}",
            f"--volume={source[CONTAINER_RESOURCES]}:{CONTAINER_RESOURCES}:ro",
        ]
        compilers = {**ZIG_COMPILERS, "FACTORY_ZIG_TARGET": zig_target(target), **ZIG_CACHES, **(LIBS_ENV if mounts.libs else {})}
        env["CIBW_ENVIRONMENT"] = f"{_words(compilers)} {_words(pip_env)}"
        if target.libc == "musllinux":
            env["CIBW_REPAIR_WHEEL_COMMAND"] = f"python {CONTAINER_RESOURCES}/musl_repair.py {{wheel}} {{dest_dir}} {target.arch}"
        else:
            env["CIBW_REPAIR_WHEEL_COMMAND"] = "auditwheel repair -w {dest_dir} {wheel}"
    elif mounts.libs is not None:
        env["CIBW_ENVIRONMENT"] = f"{_words(LIBS_ENV)} {env['CIBW_ENVIRONMENT']}"
    if mounts.libs is not None:
        volumes.append(f"--volume={source[LIBS]}:{LIBS}:ro")
    if options is not None:
        if options.environment:
            env["CIBW_ENVIRONMENT"] += " " + _user_words(options.environment)
        for key, value in (("CIBW_BEFORE_ALL", options.before_all), ("CIBW_BEFORE_BUILD", options.before_build),
                           ("CIBW_REPAIR_WHEEL_COMMAND", options.repair_wheel_command)):  # fmt: skip
            if value:
                env[key] = value
    env["CIBW_CONTAINER_ENGINE"] = "docker; disable_host_mount: true; create_args: --network=none " + " ".join(volumes)
    return env


def command(sdist: Path, target: Target, out: Path, config: Path) -> list[str]:
    """The cibuildwheel command line: this interpreter's cibuildwheel on ``sdist`` for
    ``target``'s arch, wheels into ``out``, options from ``config`` only."""
    return [
        sys.executable, "-m", "cibuildwheel", str(sdist),
        "--platform", "linux", "--archs", target.arch,
        "--output-dir", str(out), "--config-file", str(config),
    ]  # fmt: skip


# One cibuildwheel run (``tool`` "cibuildwheel").
CibwRun = BuildRun


def run(
    sdist: Path, target: Target, env: Mapping[str, str], work: Path, timeout: float, docker_host: str | None = None,
    on_timeout: Callable[[], object] | None = None, running: children.Children | None = None,
) -> CibwRun:
    """Run cibuildwheel for one cell in ``work``: wheels into ``work/out``, the log into
    ``work/build.log``. ``env`` is ``cibuildwheel_env``'s variables; the host's own
    ``CIBW_*`` are dropped. The child dies with this process (``PR_SET_PDEATHSIG``) and is
    killed after ``timeout`` seconds, then ``on_timeout`` is called: the container the
    killed cibuildwheel started keeps running until removed (by its ``cell_label``).
    ``docker_host`` (a ``[tool.factory.hosts]`` URL) sends cibuildwheel's ``docker``
    commands to that engine. A failing build is a result, not an exception; ``OSError`` if
    ``work`` cannot be written; what ``on_timeout`` raises. ``running`` (the run's
    ``Children``) can stop the child: then ``Interrupted``.
    """  # fmt: skip
    full = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")} | dict(env)
    if docker_host is not None:
        full["DOCKER_HOST"] = docker_host
    out, log_path = work / "out", work / "build.log"
    cmd = command(sdist, target, out, resources.path(CONFIG_FILE))
    started = time.monotonic()
    with open(log_path, "wb") as log:
        rc = (running or children.Children()).run(cmd, timeout=timeout, stdout=log, stderr=subprocess.STDOUT, env=full, cwd=work)
    if rc is None and on_timeout is not None:
        on_timeout()
    seconds = round(time.monotonic() - started, 1)
    tail = tuple(log_path.read_text(errors="replace").strip().splitlines()[-LOG_TAIL:])
    return CibwRun(rc, seconds, log_path, tail, tuple(sorted(out.glob("*.whl"))))
