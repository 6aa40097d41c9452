"""The app layer of an image, prepared on the host: no code of the image's arch runs.

``python -m pip install`` and ``compileall`` inside an arm64 build run under QEMU. Neither
needs the target arch: wheels are unpacked (pypa/installer: RECORD, entry-point scripts,
``.data`` directories, shebangs pointing at ``/opt/venv/bin/python``), and bytecode is the
same on every arch. So the layer is laid out here:

1. ``layer/opt/venv``: each wheel of the target (sha256 checked against the wheelhouse
   manifest) installed by pypa/installer, as pip would into ``/opt/venv``, with
   ``INSTALLER`` and ``REQUESTED`` records;
2. one container of the **native** base (same recipe, host arch, no emulation), with the
   layer's venv mounted at ``/opt/venv``, runs ``python3 -m venv --without-pip /opt/venv``
   (the interpreter links, ``pyvenv.cfg``, activate scripts: exactly what the base's own
   python writes) and ``compileall --invalidation-mode checked-hash`` with
   ``PYTHONHASHSEED=0``;
3. ``layer/etc/passwd`` and ``group``: the target base's files (read, not run) plus the
   app user;
4. every mtime set to SOURCE_DATE_EPOCH.

``layerimage`` then writes ``layer/`` as the image's one layer over the base.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile
from packaging.utils import parse_wheel_filename

from ..core.cache import sha256_file
from ..core.engine import Engine
from ..core.errors import ImageBuildError

VENV = "/opt/venv"
PYTHON_DIR = "python3.14"


def install_wheels(wheels: Iterable[tuple[Path, str]], root: Path, python_dir: str = PYTHON_DIR) -> list[str]:
    """Install each (wheel path, expected sha256 hex) into ``root`` + ``/opt/venv`` as pip
    would (``purelib``/``platlib`` ``lib/<python_dir>/site-packages``, scripts ``bin`` with
    ``#!/opt/venv/bin/python``, headers ``include/site/<python_dir>/<name>``, data the
    venv); returns the distribution names. ``ImageBuildError`` when a wheel's sha256
    differs from the expected one."""
    installed = []
    for wheel, sha256 in wheels:
        if sha256_file(wheel) != sha256:
            raise ImageBuildError(f"{wheel.name} does not hash to the wheelhouse manifest's sha256", "rebuild the wheelhouse")
        name = str(parse_wheel_filename(wheel.name)[0])
        site = f"{VENV}/lib/{python_dir}/site-packages"
        scheme = {
            "purelib": site,
            "platlib": site,
            "headers": f"{VENV}/include/site/{python_dir}/{name}",
            "scripts": f"{VENV}/bin",
            "data": VENV,
        }
        destination = SchemeDictionaryDestination(
            scheme, interpreter=f"{VENV}/bin/python", script_kind="posix", destdir=str(root), bytecode_optimization_levels=()
        )
        with WheelFile.open(wheel) as source:
            install(source, destination, additional_metadata={"INSTALLER": b"factory\n", "REQUESTED": b""})
        installed.append(name)
    return installed


def finish_venv(engine: Engine, native_base: str, platform: str, root: Path) -> None:
    """Create the venv skeleton over the installed files and byte-compile it, in a container
    of ``native_base`` (``platform`` the host's) with ``root/opt/venv`` mounted at
    ``/opt/venv``, network off. ``ImageBuildError`` with the output's tail if it fails."""
    venv = root / VENV.lstrip("/")
    venv.mkdir(parents=True, exist_ok=True)
    # python3 runs the steps, not a shell: the bootstrapped base has none.
    create = ["python3", "-m", "venv", "--without-pip", VENV]
    compile_ = [f"{VENV}/bin/python", "-m", "compileall", "-qq", "-j", "0", "--invalidation-mode", "checked-hash", f"{VENV}/lib"]
    script = (
        "import os, subprocess, sys\n"
        f"rc = subprocess.run({create!r}).returncode\n"
        "if rc:\n    sys.exit(rc)\n"
        f"if subprocess.run({compile_!r}, env={{**os.environ, 'PYTHONHASHSEED': '0'}}).returncode:\n"
        "    print('note: some files did not byte-compile (pip leaves those uncompiled too)')\n"
    )
    status, out = engine.run(
        native_base, ["python3", "-c", script], volumes={str(venv): {"bind": VENV, "mode": "rw"}}, platform=platform, network=False
    )
    if status != 0:
        tail = " | ".join(out.strip().splitlines()[-3:])
        raise ImageBuildError(f"preparing the venv in {native_base} failed (exit {status}): {tail[:300]}", "check the base image")


def add_user(root: Path, passwd: bytes, group: bytes, uid: int) -> None:
    """``root/etc/passwd`` and ``group``: the base's files with the app user and group ``uid``."""
    etc = root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "passwd").write_bytes(passwd + f"app:x:{uid}:{uid}:app:/nonexistent:/usr/sbin/nologin\n".encode())
    (etc / "group").write_bytes(group + f"app:x:{uid}:\n".encode())
    for f in ("passwd", "group"):
        os.chmod(etc / f, 0o644)


def pin_mtimes(root: Path, epoch: int) -> None:
    """Every file, link and directory under ``root`` (and ``root``) gets mtime ``epoch``."""
    for path in sorted(root.rglob("*"), reverse=True):
        os.utime(path, (epoch, epoch), follow_symlinks=False)
    os.utime(root, (epoch, epoch))
