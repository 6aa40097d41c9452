"""The bootstrap stage: runtime base images built here from Debian binary packages.

Per arch, ``mmdebstrap`` (arm64 through QEMU binfmt) makes a slim rootfs tarball from the
recipe's suite; a ``FROM scratch`` + ``ADD rootfs.tar /`` build turns it into a
single-platform image, which is pushed to the registry. Its config's times are then set to
the suite's Release date (``reproducible.pin_created``), so the same snapshot gives the
same digest. ``images/bases.lock`` records ``<registry>/<repo>@sha256:…`` per arch
together with the recipe hash, so an unchanged recipe whose image the registry still holds
is not rebuilt.

Upstream bases (``image = "name:tag@sha256:…"``) are recorded as configured. The entries
are ``imagelock.BaseImage``; the file is ``imagelock.BaseImagesLock``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from pathlib import Path

import requests

from ..core import atomic, binfmt, debs
from ..core.cache import sha256_file
from ..core.children import die_with_parent
from ..core.config import BaseSpec, Config, Recipe
from ..core.engine import Engine
from ..core.errors import BootstrapError
from ..core.parallel import KeyedLocks
from ..core.progress import Progress
from ..core.registry import Registry
from . import rootfs
from .debpackages import DebPackage, UnknownPackageError, first_difference, installed, package_lock
from .imagelock import BaseImage as BaseImage  # re-exported: lock, build and pipeline import it from here
from .imagelock import BaseImagesLock
from .reproducible import pin_created

MMDEBSTRAP_FIX = "apt-get install mmdebstrap (or `make deps`)"


def read_bases_lock(path: Path) -> dict[str, BaseImage]:
    """Entries of the bases lock at ``path`` by arch ({} when the file does not exist).
    ``ArtifactError`` if it is not JSON or not of ``BaseImagesLock``'s form."""
    if not path.exists():
        return {}
    return dict(BaseImagesLock.load(path).bases)


def write_bases_lock(path: Path, python: str, bases: dict[str, BaseImage]) -> None:
    """Write ``{"python": …, "bases": {arch: {...}}}`` atomically (``BaseImagesLock.dump``)."""
    BaseImagesLock(python=python, bases=bases).dump(path)


def mmdebstrap_command(recipe: Recipe, arch: str, out: Path, packages_index: Path | None = None) -> list[str]:
    """The mmdebstrap argv that writes the slim rootfs of ``recipe`` for ``arch`` to ``out``
    (tar) and, with ``packages_index``, the Packages files apt verified (InRelease) and
    installed from to that host path, before the lists are dropped from the rootfs."""
    cmd = [
        "mmdebstrap",
        f"--variant={recipe.variant}",
        f"--architectures={','.join((arch, *recipe.foreign(arch)))}" if recipe.foreign(arch) else f"--arch={arch}",
        "--format=tar",
        f"--include={','.join((*recipe.packages, *(f'{p}:{a}' for a in recipe.foreign(arch) for p in recipe.foreign_packages)))}",
        "--aptopt=Acquire::Check-Valid-Until \"false\"",
        "--aptopt=Acquire::Retries \"3\"",
    ]
    cmd += [f"--dpkgopt=path-exclude={p}" for p in recipe.path_exclude]
    cmd += [f"--dpkgopt=path-include={p}" for p in recipe.path_include]
    if packages_index is not None:
        cmd.append(
            "--customize-hook=for f in \"$1\"/var/lib/apt/lists/*_Packages*; do /usr/lib/apt/apt-helper cat-file \"$f\"; echo; done"
            f" > {shlex.quote(str(packages_index))}"
        )
    cmd += [
        # Slimming: no apt lists or caches, no logs; python3 -> python3.14 if the suite's
        # default python3 is another version (it is not installed then).
        "--customize-hook=rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/var/cache/apt/* \"$1\"/var/cache/ldconfig/aux-cache",
        "--customize-hook=find \"$1\"/var/log -type f -delete; rm -f \"$1\"/usr/share/info/dir",
        f"--customize-hook=[ -e \"$1\"/usr/bin/python3 ] || ln -s {recipe.python_package} \"$1\"/usr/bin/python3",
        # Least privilege: no setuid/setgid binaries (su, passwd, mount…) in a service image.
        "--customize-hook=find \"$1\" -xdev -type f -perm /6000 -exec chmod ug-s {} +",
        recipe.suite,
        str(out),
        recipe.mirror,
    ]
    return cmd


def debian_version_in(rootfs_tar: Path, package: str) -> str | None:
    """The installed version of ``package`` per the rootfs's ``var/lib/dpkg/status``."""
    return next((version for name, version, _ in installed(_dpkg_status(rootfs_tar)) if name == package), None)


def _upstream_version(debian_version: str) -> str:
    """``3.14.8-1`` -> ``3.14.8`` (Debian policy 5.6.12: [epoch:]upstream[-revision])."""
    version = debian_version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0] if "-" in version else version


def sweep(cache_dir: Path) -> None:
    """Remove rootfs tarballs a killed bootstrap left half-written (run lock held)."""
    for stale in (cache_dir / "bootstrap").glob("*/.rootfs.tar.*"):
        stale.unlink(missing_ok=True)
    for work in (cache_dir / "bootstrap").glob("*/.work-*"):
        shutil.rmtree(work, ignore_errors=True)


def release_epoch(mirror: str, suite: str, ca_bundle: Path | None = None) -> int:
    """SOURCE_DATE_EPOCH for a suite: the ``Date:`` of ``<mirror>/dists/<suite>/Release``.

    With it, mmdebstrap's output is bit-identical for the same snapshot (measured: two
    forky amd64 builds, same sha256). Raises ``BootstrapError`` if the file cannot be read.
    """
    url = f"{mirror.rstrip('/')}/dists/{suite}/Release"
    try:
        r = requests.get(url, timeout=30, verify=str(ca_bundle) if ca_bundle else True, stream=True)
        r.raise_for_status()
        head = next(r.iter_content(8192)).decode("utf-8", "replace")
    except (requests.RequestException, StopIteration) as e:
        raise BootstrapError(f"cannot read {url}: {str(e)[:160]}", "check the recipe's mirror and suite") from None
    for line in head.splitlines():
        if line.startswith("Date:"):
            return int(parsedate_to_datetime(line[5:].strip()).timestamp())
    raise BootstrapError(f"{url} has no Date: field", "check the recipe's mirror and suite")


def build_rootfs(cfg: Config, recipe: Recipe, arch: str, key: str) -> Path:
    """The cached slim rootfs tarball for ``recipe`` on ``arch``, built with mmdebstrap if needed.

    Cached as ``<cache>/bootstrap/<key>/rootfs.tar`` plus its sha256 (re-checked on reuse)
    and ``source_date_epoch``: the suite's Release date, with which it is built, so it is
    reproducible (see ``rootfs_epoch``).
    Raises ``BootstrapError`` when mmdebstrap fails or the interpreter version differs
    from ``cfg.python``.
    """
    entry = cfg.cache_dir / "bootstrap" / key
    if recipe.variant == rootfs.EXTRACT_VARIANT:
        with _entry_locks(entry):  # the host arch's entry is also wanted by the other arches' builds
            return _extracted_rootfs(cfg, recipe, arch, entry)
    tar = entry / "rootfs.tar"
    if _cached(tar):
        return tar
    if shutil.which("mmdebstrap") is None:
        raise BootstrapError("mmdebstrap is not installed", MMDEBSTRAP_FIX)
    if arch == "arm64":
        binfmt.require_arm64()
    entry.mkdir(parents=True, exist_ok=True)
    staged = entry / f".rootfs.tar.tmp-{os.getpid()}"
    index = entry / f".Packages.tmp-{os.getpid()}"
    log_path = entry / "mmdebstrap.log"
    epoch = release_epoch(recipe.mirror, recipe.suite, cfg.ca_bundle)
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
    with open(log_path, "wb") as log:
        rc = subprocess.run(
            mmdebstrap_command(recipe, arch, staged, index), stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=die_with_parent
        ).returncode
    try:
        packages = _package_lock(rc, staged, index, recipe, arch)
    finally:
        index.unlink(missing_ok=True)
    if rc != 0:
        staged.unlink(missing_ok=True)
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        raise BootstrapError(f"mmdebstrap {recipe.suite} {arch} failed: {' | '.join(tail)[:300]}", f"see {log_path}")
    version = version_of(packages, recipe.python_package)
    if version is None or _upstream_version(version) != cfg.python:
        staged.unlink(missing_ok=True)
        raise BootstrapError(
            f"recipe {recipe.path.name} gives {recipe.python_package} {version or 'nothing'} on {arch}, "
            f"not python {cfg.python}",
            "set [tool.factory] python to the suite's version or change the recipe's suite/mirror",
        )
    tar.with_name("rootfs.tar.sha256").write_text(sha256_file(staged) + "\n")
    _epoch_file(tar).write_text(f"{epoch}\n")
    atomic.write_text(_packages_file(tar), json.dumps([p.to_json() for p in packages], indent=1) + "\n")
    os.replace(staged, tar)
    return tar


_entry_locks = KeyedLocks()


def _cached(tar: Path) -> bool:
    """Whether a cached rootfs tarball is whole: its sha256 as recorded, epoch and packages beside it."""
    digest_file = tar.with_name("rootfs.tar.sha256")
    return (
        tar.exists()
        and digest_file.exists()
        and _epoch_file(tar).exists()
        and _packages_file(tar).exists()
        and sha256_file(tar) == digest_file.read_text().strip()
    )


_UNKNOWN_PACKAGE = re.compile(r"E: (?:Unable to locate package (\S+)|Package '([^']+)' has no installation candidate)")


def unknown_packages(log: str) -> list[str]:
    """The package names apt could not find, from an mmdebstrap/apt log (its ``E:`` lines)."""
    return sorted({a or b for a, b in _UNKNOWN_PACKAGE.findall(log)})


def host_arch() -> str:
    """The Debian arch of this machine (``amd64``/``arm64``); ``BootstrapError`` on others."""
    arch = debs.ARCHES.get(platform.machine())
    if arch is None:
        raise BootstrapError(f"bootstrapping on a {platform.machine()} host is not supported", "run factory on an x86_64 or aarch64 host")
    return arch


def _extracted_rootfs(cfg: Config, recipe: Recipe, arch: str, entry: Path) -> Path:
    """The ``variant = "extract"`` route (``rootfs``): nothing of ``arch`` runs.
    The host arch's tree is kept beside its tarball (``tree/``): its interpreter compiles
    the stdlib pycs of every arch, so the host arch's rootfs is made first."""
    native_arch = host_arch()
    tar = entry / "rootfs.tar"
    if _cached(tar) and (arch != native_arch or (entry / "tree").is_dir()):
        return tar
    if shutil.which("mmdebstrap") is None:
        raise BootstrapError("mmdebstrap is not installed", MMDEBSTRAP_FIX)
    if arch != native_arch:
        native_entry = build_rootfs(cfg, recipe, native_arch, recipe.digest(native_arch, cfg.python)).parent
        native = (native_entry / "tree", native_arch)
    entry.mkdir(parents=True, exist_ok=True)
    epoch = release_epoch(recipe.mirror, recipe.suite, cfg.ca_bundle)
    with tempfile.TemporaryDirectory(dir=entry, prefix=".work-") as tmp:
        download, tree = Path(tmp) / "download", Path(tmp) / "tree"
        log_path = entry / "mmdebstrap.log"
        with open(log_path, "wb") as log:
            rc = subprocess.run(
                rootfs.download_command(recipe, arch, download), stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
            ).returncode
        if rc != 0:
            text = log_path.read_text(errors="replace")
            unknown = unknown_packages(text)
            if unknown:
                where = "runtime-packages" if set(unknown) <= set(recipe.runtime_packages) else f"recipe {recipe.path.name}"
                raise BootstrapError(
                    f"Debian {recipe.suite} has no package {', '.join(unknown)} for {arch} ({where})",
                    f"check the name on https://packages.debian.org/{recipe.suite} and fix {where}",
                )
            tail = text.strip().splitlines()[-3:]
            raise BootstrapError(f"downloading {recipe.suite} {arch} packages failed: {' | '.join(tail)[:300]}", f"see {log_path}")
        if arch == native_arch:
            native = (tree, arch)
        packages, digest = rootfs.assemble(recipe, arch, download, tree, tar.with_name(".rootfs.tar.staged"), epoch, native)
        version = version_of(packages, recipe.python_package)
        if version is None or _upstream_version(version) != cfg.python:
            raise BootstrapError(
                f"recipe {recipe.path.name} gives {recipe.python_package} {version or 'nothing'} on {arch}, not python {cfg.python}",
                "set [tool.factory] python to the suite's version or change the recipe's suite/mirror",
            )
        if arch == native_arch:
            shutil.rmtree(entry / "tree", ignore_errors=True)
            os.replace(tree, entry / "tree")
        (entry / "rootfs.tar.sha256").write_text(digest + "\n")
        _epoch_file(tar).write_text(f"{epoch}\n")
        atomic.write_text(_packages_file(tar), json.dumps([p.to_json() for p in packages], indent=1) + "\n")
        os.replace(tar.with_name(".rootfs.tar.staged"), tar)
    return tar


def _package_lock(rc: int, rootfs: Path, index: Path, recipe: Recipe, arch: str) -> tuple[DebPackage, ...]:
    """The package lock of a finished mmdebstrap run (``()`` when it failed: its own error
    is raised then). ``BootstrapError`` when an installed package is missing from the
    Packages files apt used."""
    if rc != 0:
        return ()
    status = _dpkg_status(rootfs)
    try:
        return package_lock(installed(status), index.read_text(errors="replace"))
    except (OSError, UnknownPackageError) as e:
        rootfs.unlink(missing_ok=True)
        raise BootstrapError(
            f"base {arch}: {e} is installed but not in the Packages index apt used for {recipe.suite}",
            "check the recipe's mirror (a mirror changing under the run?) and bootstrap again",
        ) from None


def _dpkg_status(rootfs_tar: Path) -> str:
    """The ``var/lib/dpkg/status`` text of a rootfs tarball ("" when it has none)."""
    with tarfile.open(rootfs_tar) as tar:
        for name in ("./var/lib/dpkg/status", "var/lib/dpkg/status"):
            try:
                f = tar.extractfile(name)
            except KeyError:
                continue
            if f is not None:
                return f.read().decode("utf-8", "replace")
    return ""


def version_of(packages: tuple[DebPackage, ...], name: str) -> str | None:
    """The Debian version of the package ``name`` in a package lock, or None."""
    return next((p.version for p in packages if p.name == name), None)


def rootfs_packages(rootfs: Path) -> tuple[DebPackage, ...]:
    """The package lock recorded beside a cached rootfs by ``build_rootfs``."""
    return tuple(DebPackage.from_json(p) for p in json.loads(_packages_file(rootfs).read_text()))


def _epoch_file(rootfs: Path) -> Path:
    return rootfs.with_name("source_date_epoch")


def _packages_file(rootfs: Path) -> Path:
    return rootfs.with_name("packages.json")


def rootfs_epoch(rootfs: Path) -> int:
    """The SOURCE_DATE_EPOCH (seconds) a cached rootfs from ``build_rootfs`` was made with."""
    return int(_epoch_file(rootfs).read_text())


def scratch_context(rootfs: Path, dest: Path) -> None:
    """Write a build context tar at ``dest``: a FROM-scratch Dockerfile and ``rootfs.tar``."""
    dockerfile = b'FROM scratch\nADD rootfs.tar /\nENV LANG=C.UTF-8\nCMD ["python3"]\n'
    with tarfile.open(dest, "w") as t:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        t.addfile(info, io.BytesIO(dockerfile))
        t.add(rootfs, arcname="rootfs.tar")


def upstream_base(spec: BaseSpec) -> BaseImage:
    """The entry for an upstream base (``image = "name:tag@sha256:…"``), used as configured."""
    assert spec.image is not None
    return BaseImage(arch=spec.arch, ref=spec.image, tag=spec.image.split("@")[0], source="upstream")


def bootstrap_base(cfg: Config, spec: BaseSpec, engine: Engine, registry: Registry, previous: BaseImage | None) -> BaseImage:
    """Ensure the base image for ``spec.arch`` exists in the registry; return its entry."""
    if spec.image is not None:
        return upstream_base(spec)
    assert spec.recipe is not None
    recipe = spec.recipe
    key = recipe.digest(spec.arch, cfg.python)
    if previous is not None and previous.recipe_sha256 == key and registry.manifest_of_ref(previous.ref) is not None:
        return previous
    rootfs = build_rootfs(cfg, recipe, spec.arch, key)
    packages = rootfs_packages(rootfs)
    if previous is not None and previous.recipe_sha256 == key and previous.packages and not cfg.update_packages:
        difference = first_difference(previous.packages, packages)
        if difference:
            raise BootstrapError(
                f"base {spec.arch}: the same recipe gives other packages than bases.lock records: {difference}",
                'pin the recipe to a Debian snapshot (snapshot = "YYYYMMDDTHHMMSSZ"), or accept the new set with FACTORY_UPDATE_PACKAGES=1',
            )
    repo = f"{cfg.registry}/{cfg.base_repository}"
    # A base with a service's runtime-packages is its own image: the plain base keeps its tag.
    extra = f"-{hashlib.sha256(' '.join(recipe.runtime_packages).encode()).hexdigest()[:8]}" if recipe.runtime_packages else ""
    tag = f"{cfg.python}-slim-{recipe.suite}{extra}-{spec.arch}"
    with tempfile.TemporaryDirectory(dir=rootfs.parent) as tmp:
        ctx = Path(tmp) / "context.tar"
        scratch_context(rootfs, ctx)
        with open(ctx, "rb") as f:
            image_id = engine.build(
                f,
                tag=f"{repo}:{tag}",
                platform=f"linux/{spec.arch}",
                labels={
                    "org.opencontainers.image.title": "factory python base",
                    "org.opencontainers.image.version": cfg.python,
                    "io.factory.recipe.sha256": key,
                    "io.factory.recipe.suite": recipe.suite,
                },
                nocache=not cfg.engine_cache,
            )
    info = engine.inspect(image_id)
    if info is None or info.platform != f"linux/{spec.arch}":
        raise BootstrapError(
            f"base image for {spec.arch} inspects as {info.platform if info else 'missing'}",
            "the engine ignored --platform; use a Docker engine that honours it for FROM scratch builds",
        )
    digest = pin_created(registry, cfg.base_repository, tag, engine.push(repo, tag, registry.auth), rootfs_epoch(rootfs))
    engine.ensure_local(f"{repo}@{digest}", f"linux/{spec.arch}", registry.auth)  # the pinned config (same layers)
    return BaseImage(
        arch=spec.arch,
        ref=f"{repo}@{digest}",
        tag=f"{repo}:{tag}",
        source="bootstrap",
        recipe_sha256=key,
        debian_python=version_of(packages, recipe.python_package),
        packages=packages,
    )


def bootstrap(cfg: Config, engine: Engine, registry: Registry) -> dict[str, BaseImage]:
    """Bootstrap (or reuse) the base image of every configured arch and update ``bases.lock``.

    The arches are bootstrapped at once. Returns the entries by arch. Raises
    ``BootstrapError``, ``BinfmtMissingError``, ``RegistryError`` or ``EngineError`` (the
    first arch's, once the others end); ``bases.lock`` then holds the arches that were done.
    """
    previous = read_bases_lock(cfg.bases_lock)
    result = dict(previous)
    written = threading.Lock()

    def one(progress: Progress, spec: BaseSpec) -> None:
        task = progress.step(f"base image {spec.arch}")
        base = bootstrap_base(cfg, spec, engine, registry, previous.get(spec.arch))
        with written:
            result[spec.arch] = base
            if base != previous.get(spec.arch):
                write_bases_lock(cfg.bases_lock, cfg.python, result)
        progress.done(task, f"base image {spec.arch}: {base.ref}")

    # The arches at once: arm64's mmdebstrap runs its maintainer scripts under QEMU on one
    # core, and amd64's finishes beside it.
    with Progress() as progress, ThreadPoolExecutor(max_workers=len(cfg.bases) or 1, thread_name_prefix="base") as pool:
        for future in [pool.submit(one, progress, spec) for spec in cfg.bases]:
            future.result()
    return {a: result[a] for a in cfg.arches}
