"""Rust sdists (maturin, setuptools-rust): compiled natively in the host builder for every
target, linked through zig, from crates checked against the sdist's ``Cargo.lock``.

The route, per sdist and target (``SdistBuilder`` drives it):

1. **crates**: ``cargo fetch --locked`` against the sdist's ``Cargo.lock``, in the host
   builder with the network on, into the shared ``<cache>/cargo-home``; cargo checks every
   crate against the lock's checksums. An sdist without a ``Cargo.lock`` fails with that
   reason: its crates could not be pinned.
2. **build**: ``python -m build --wheel`` in the host builder with ``--network none``,
   ``CARGO_NET_OFFLINE=true`` and the build backend from the build lock (``builddeps``).
   Debian forky's rustc/cargo compile natively; the other arch's std is Debian's multi-arch
   ``libstd-rust-dev:<arch>``. maturin: ``--target <triple> --zig --compatibility
   manylinux_2_28`` (its cargo-zigbuild links with the toolchain's zig at the glibc floor).
   setuptools-rust: ``CARGO_BUILD_TARGET``, the zig wrapper as the target's linker,
   ``_PYTHON_HOST_PLATFORM`` and the target's ``_sysconfigdata`` (Debian's
   ``libpython3.14-stdlib:<arch>``) for the extension suffix, then the wheel's platform tag
   set to the target (the factory's static checks hold it to the floor).
3. **musllinux**: Debian packages no musl std for Rust (and no rustup can be had here), so
   std is compiled from Debian's ``rust-src`` with the sdist's crates: cargo's
   ``-Z build-std=std,panic_abort`` on forky's stable compiler (``RUSTC_BOOTSTRAP=1``, the
   documented way to use an unstable cargo feature there). The crates std needs (pinned by
   rust-src's own ``library/Cargo.lock``) are fetched with the sdist's, and zig links
   against its musl; the extension is linked dynamically (``-crt-static``). The wheel is
   then repaired as the C lane's musllinux wheels are (``resources/sdist/musl_repair.py``:
   NEEDED ``libc.musl-<arch>.so.1``, the ``-linux-musl`` suffix, the ``musllinux_1_2`` tag).

No emulated rustc: the host builder is of the host's arch.
"""

from __future__ import annotations

import tarfile
import time
from pathlib import Path, PurePosixPath

from ..core import resources
from ..core.engine import TIMED_OUT, Engine
from ..core.targets import Target
from ..tools.toolchain import zig_target
from .archive import SdistInfo
from .outcome import BuildRun

TOOL = "python -m build (Rust)"
LOG_TAIL = 12
MATURIN = "maturin"
SETUPTOOLS_RUST = "setuptools-rust"
CARGO_HOME = "/opt/factory/cargo-home"
GLIBC_FLOOR_TAG = "manylinux_2_28"
MUSL_TAG = "musllinux_1_2"
# cargo -Z build-std: std for musl targets, compiled from Debian's rust-src with the sdist
BUILD_STD = "std,panic_abort"
# rust-src's std workspace; its Cargo.lock pins every crate std can use, on every platform
STD_WORKSPACE = "/usr/lib/rustlib/src/rust/library/Cargo.toml"
MUSL_REPAIR = "sdist/musl_repair.py"  # the resource; mounted at MUSL_REPAIR_PATH for musl cells
MUSL_REPAIR_PATH = "/opt/factory/musl_repair.py"
# std's crates added to an sdist's own directory source (orjson's include/cargo), for build-std
STD_CRATES = "sdist/std_crates.py"
STD_CRATES_PATH = "/opt/factory/std_crates.py"


def triple(target: Target) -> str:
    """Rust's target triple for ``target``: ``aarch64-unknown-linux-gnu``, ``x86_64-unknown-linux-musl``."""
    return f"{target.arch}-unknown-linux-{'musl' if target.libc == 'musllinux' else 'gnu'}"


def backend(info: SdistInfo) -> str | None:
    """``MATURIN`` or ``SETUPTOOLS_RUST`` for a Rust sdist (a ``Cargo.toml`` among its
    compiled sources) built by one of them, else None (other sdists take other routes)."""
    if not any(PurePosixPath(m).name == "Cargo.toml" for m in info.compiled):
        return None
    if info.backend.split(".")[0] == "maturin" or any(r.replace("_", "-").lower().startswith("maturin") for r in info.requires):
        return MATURIN
    if any(r.replace("_", "-").lower().startswith("setuptools-rust") for r in info.requires):
        return SETUPTOOLS_RUST
    return None


def cargo_lock(sdist: Path) -> str | None:
    """The member path (relative to the sdist's top directory) of the directory holding the
    sdist's top-most ``Cargo.lock`` (``""`` for the top itself), or None when it ships none.
    ``tarfile.TarError``/``OSError`` if unreadable."""
    with tarfile.open(sdist) as tar:
        locks = [PurePosixPath(m.name) for m in tar.getmembers() if m.isfile() and PurePosixPath(m.name).name == "Cargo.lock"]
    if not locks:
        return None
    best = min(locks, key=lambda p: (len(p.parts), str(p)))
    return str(PurePosixPath(*best.parts[1:-1])) if len(best.parts) > 2 else ""


def _unpack(sdist_name: str) -> list[str]:
    return ["mkdir -p /tmp/src", f"tar -xf /opt/factory/sdist/{sdist_name} -C /tmp/src --no-same-owner"]


def is_musl(target: Target) -> bool:
    """True for a musllinux target, whose std cargo compiles (``BUILD_STD``)."""
    return target.libc == "musllinux"


def fetch(
    engine: Engine, image: str, cargo_home: Path, ca_bundle: Path | None, timeout: float, manifest: str, sdist: Path | None = None
) -> tuple[int, str]:
    """``cargo fetch --locked`` of the lock beside ``manifest`` (a ``Cargo.toml`` path in the
    container), every platform's crates, into ``cargo_home`` (network on, the host's CA
    bundle mounted for the proxy). ``sdist``, when given, is unpacked under ``/tmp/src``
    first (``sdist_manifest`` names its manifest there); ``STD_WORKSPACE`` fetches std's own
    lock, every crate of it: a directory source (``std_crates.py``) must hold each one, not
    only those a target compiles (wasip1…). Returns (exit status, output)."""
    volumes = {str(cargo_home): {"bind": CARGO_HOME, "mode": "rw"}}
    environment = {"CARGO_HOME": CARGO_HOME, **({"RUSTC_BOOTSTRAP": "1"} if manifest == STD_WORKSPACE else {})}
    if sdist is not None:
        volumes[str(sdist)] = {"bind": f"/opt/factory/sdist/{sdist.name}", "mode": "ro"}
    if ca_bundle is not None:
        volumes[str(ca_bundle)] = {"bind": "/opt/factory/ca.crt", "mode": "ro"}
        environment |= {"CARGO_HTTP_CAINFO": "/opt/factory/ca.crt", "SSL_CERT_FILE": "/opt/factory/ca.crt"}
    lines = ["set -e", *(_unpack(sdist.name) if sdist is not None else []), f"cargo fetch --locked --manifest-path {manifest}"]
    return engine.run(image, ["sh", "-c", "\n".join(lines)], volumes=volumes, environment=environment, timeout=timeout)


def sdist_manifest(top: str, lock_dir: str) -> str:
    """The container path of the ``Cargo.toml`` beside an unpacked sdist's ``Cargo.lock``
    (``cargo_lock``'s ``lock_dir`` under its top directory ``top``)."""
    return f"/tmp/src/{top}/{lock_dir}/Cargo.toml".replace("//", "/")


def environment(kind: str, target: Target, epoch: int, jobs: int) -> dict[str, str]:
    """The build container's variables for ``kind`` (``MATURIN``/``SETUPTOOLS_RUST``) and
    ``target``; a musl target builds std (``RUSTC_BOOTSTRAP``, ``CARGO_UNSTABLE_BUILD_STD``)
    and links the extension against musl dynamically (``-crt-static``)."""
    rust = triple(target)
    var = rust.upper().replace("-", "_")
    env = {
        "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/opt/factory/deps", "PIP_CONSTRAINT": "/opt/factory/deps/constraints.txt",
        "SOURCE_DATE_EPOCH": str(epoch), "CARGO_HOME": CARGO_HOME, "CARGO_NET_OFFLINE": "true", "CARGO_BUILD_JOBS": str(jobs),
        "ZIG_GLOBAL_CACHE_DIR": "/opt/factory/zig-cache", "ZIG_LOCAL_CACHE_DIR": "/tmp/zig-local-cache",
        "CARGO_ZIGBUILD_ZIG_PATH": "/opt/factory/zig/zig", "PYO3_CROSS_PYTHON_VERSION": "3.14",
    }  # fmt: skip
    if is_musl(target):
        env |= {"RUSTC_BOOTSTRAP": "1", "CARGO_UNSTABLE_BUILD_STD": BUILD_STD, f"CARGO_TARGET_{var}_RUSTFLAGS": "-C target-feature=-crt-static"}
    if kind == MATURIN:
        compatibility = MUSL_TAG if is_musl(target) else GLIBC_FLOOR_TAG
        env["MATURIN_PEP517_ARGS"] = f"--target {rust} --zig --compatibility {compatibility} --interpreter python3.14"
    else:
        # the arch's glibc _sysconfigdata names the suffix; on musl, musl_repair renames it
        env |= {
            "CARGO_BUILD_TARGET": rust, f"CARGO_TARGET_{var}_LINKER": "/opt/factory/bin/cc", "FACTORY_ZIG_TARGET": zig_target(target),
            "_PYTHON_HOST_PLATFORM": f"linux-{target.arch}", "_PYTHON_SYSCONFIGDATA_NAME": f"_sysconfigdata__{target.arch}-linux-gnu",
        }  # fmt: skip
    return env


def command(kind: str, sdist_name: str, top: str, target: Target, user_env: tuple[tuple[str, str], ...] = ()) -> list[str]:
    """The build container's command: a venv with ``build`` from the mounted tool wheels,
    the sdist unpacked, ``python -m build --wheel`` into ``/opt/factory/out`` (setuptools-rust:
    then its platform tag set to the target's glibc floor; on musl, std's crates are first
    added to a directory source the sdist vendors its crates in (``std_crates.py``), and both
    backends' wheels go through ``musl_repair.py``). ``user_env`` (``[tool.factory.sdist.<project>] environment``)
    is exported first, each value double-quoted as cibuildwheel's table form is, so ``$VAR``
    still expands and it wins over the container's variables."""
    lines = [
        "set -e",
        *(f'export {k}="{v}"' for k, v in user_env),
        "python3.14 -m venv /tmp/v",
        "/tmp/v/bin/python -m pip install -q --no-index --find-links /opt/factory/tools build",
        *_unpack(sdist_name),
    ]
    if is_musl(target):
        lines += [
            f"python3.14 {STD_CRATES_PATH} /tmp/src/{top} {CARGO_HOME}",
            f"/tmp/v/bin/python -m build --wheel --outdir /tmp/built /tmp/src/{top}",
            "/tmp/v/bin/python -m pip install -q --no-index --find-links /opt/factory/deps wheel",
            f"for w in /tmp/built/*.whl; do /tmp/v/bin/python {MUSL_REPAIR_PATH} $w /opt/factory/out {target.arch}; done",
        ]
    elif kind == MATURIN:
        lines.append(f"/tmp/v/bin/python -m build --wheel --outdir /opt/factory/out /tmp/src/{top}")
    else:
        platform = f"{GLIBC_FLOOR_TAG}_{target.arch}"
        lines += [
            f"/tmp/v/bin/python -m build --wheel --outdir /tmp/built /tmp/src/{top}",
            "/tmp/v/bin/python -m pip install -q --no-index --find-links /opt/factory/deps wheel",
            f"/tmp/v/bin/python -m wheel tags --platform-tag {platform} --remove /tmp/built/*.whl",
            "cp /tmp/built/*.whl /opt/factory/out/",
        ]
    return ["sh", "-c", "\n".join(lines)]


def run(
    engine: Engine,
    image: str,
    kind: str,
    target: Target,
    sdist: Path,
    top: str,
    mounts: dict[str, Path],
    work: Path,
    epoch: int,
    jobs: int,
    timeout: float,
    user_env: tuple[tuple[str, str], ...] = (),
) -> BuildRun:
    """Build the wheel of the Rust ``sdist`` for ``target`` in the host builder ``image``
    with the network off; wheel into ``work/out``, log into ``work/build.log``. ``mounts``
    names the host paths of ``deps`` (build lock wheels), ``tools`` (the toolchain's
    ``build`` wheels), ``cargo_home``, ``zig`` (``toolchain.zig_root()``) and ``zig_cache``.
    ``user_env`` as for ``command``. Killed after ``timeout`` seconds. A failed build is a result; ``EngineError`` when no
    container can start."""
    out = work / "out"
    out.mkdir(parents=True, exist_ok=True)
    volumes = {
        str(sdist): {"bind": f"/opt/factory/sdist/{sdist.name}", "mode": "ro"},
        str(mounts["deps"]): {"bind": "/opt/factory/deps", "mode": "ro"},
        str(mounts["tools"]): {"bind": "/opt/factory/tools", "mode": "ro"},
        str(mounts["cargo_home"]): {"bind": CARGO_HOME, "mode": "ro"},
        str(mounts["zig"] / "zig"): {"bind": "/opt/factory/zig", "mode": "ro"},
        str(mounts["zig"] / "bin"): {"bind": "/opt/factory/bin", "mode": "ro"},
        str(mounts["zig_cache"]): {"bind": "/opt/factory/zig-cache", "mode": "rw"},
        str(out): {"bind": "/opt/factory/out", "mode": "rw"},
    }
    if is_musl(target):
        volumes[str(resources.path(MUSL_REPAIR))] = {"bind": MUSL_REPAIR_PATH, "mode": "ro"}
        volumes[str(resources.path(STD_CRATES))] = {"bind": STD_CRATES_PATH, "mode": "ro"}
    started = time.monotonic()
    status, logs = engine.run(
        image, command(kind, sdist.name, top, target, user_env), volumes=volumes, environment=environment(kind, target, epoch, jobs),
        network=False, timeout=timeout,
    )  # fmt: skip
    seconds = round(time.monotonic() - started, 1)
    log = work / "build.log"
    log.write_text(logs)
    tail = tuple(logs.strip().splitlines()[-LOG_TAIL:])
    return BuildRun(None if status == TIMED_OUT else status, seconds, log, tail, tuple(sorted(out.glob("*.whl"))), TOOL)
