"""The images stage: slim runtime images per arch, from the base by digest and the wheelhouse.

Each arch's image is built with the Docker SDK (classic builder) from
``resources/images/runtime.Dockerfile``: a multi-stage build that installs the manylinux target's
wheels with ``pip install --no-index --require-hashes`` into ``/opt/venv`` and copies only
that venv onto the base. Images are pushed, then one multi-arch index is pushed over
them, and only then is ``images.lock`` written (atomically):

    {"images": [{"arch", "ref", "base", "tag", "size", "compressed_size", "base_size",
                 "base_compressed_size", "inputs_sha256", "sbom",
                 "perf": {"cold_start_s", "import_s"}}],
     "index": "<repo>@sha256:…", "tags": [...], "python": "3.14.8", "lock_sha256": "…",
     "revision": "<git commit of the project>", "wheelhouse_sbom": "<path>"}

SBOM paths are relative to images.lock's directory (``<images.lock>.sbom/image-<arch>.cdx.json``).

Sizes are bytes: ``size`` as the engine reports the unpacked image, ``compressed_size``
the sum of the registry manifest's config and layer blobs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from . import atomic, binfmt, perf
from .bootstrap import BaseImage
from .cache import sha256_file
from .config import Config
from .engine import Engine
from .errors import ImageBuildError, WheelhouseMismatchError
from .lockfile import Lock
from .progress import Progress, console
from .registry import Registry
from .reproducible import epoch_of, pin_created
from .sbom import image_sbom, sbom_path
from .wheelhouse import SBOM_NAME


@dataclass(frozen=True)
class BuiltImage:
    """One pushed arch image (sizes in bytes)."""

    arch: str
    ref: str
    tag: str
    base: str
    size: int
    compressed_size: int
    base_size: int
    base_compressed_size: int
    inputs_sha256: str
    sbom: str = ""
    perf: dict | None = None



def source_revision(root: Path) -> str:
    """``git rev-parse HEAD`` of ``root`` (``unknown`` outside a git checkout)."""
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def write_context(dest: Path, dockerfile: Path, install_lock: Path, wheels: Path, pip_wheel: Path) -> None:
    """Write the build context tar: Dockerfile, requirements.lock (the wheelhouse's install
    lock for the target, whose hashes are those of its files), pip.whl, wheels/."""
    with tarfile.open(dest, "w") as tar:
        _add_bytes(tar, "Dockerfile", dockerfile.read_bytes())
        _add_bytes(tar, "requirements.lock", install_lock.read_bytes())
        tar.add(pip_wheel, arcname="pip.whl")
        tar.add(wheels, arcname="wheels")


def image_inputs(cfg: Config, lock: Lock, wheels: list[dict], base: BaseImage, pip_wheel: Path, toolchain_sha256: str) -> str:
    """sha256 hex over everything that determines an arch image: the Dockerfile, the base
    digest, the lock, the target's wheel hashes, pip's wheel, the toolchain lock, the uid.
    Not the project's git revision: a commit that changes none of these reuses the image,
    digest included (the revision is recorded in images.lock instead)."""
    data = {
        "dockerfile": hashlib.sha256(cfg.dockerfile.read_bytes()).hexdigest(),
        "base": base.ref,
        "lock": lock.sha256,
        "wheels": sorted((w["filename"], w["sha256"]) for w in wheels),
        "pip": pip_wheel.name,
        "toolchain": toolchain_sha256,
        "uid": cfg.uid,
        "python": cfg.python,
        "repository": f"{cfg.registry}/{cfg.repository}",
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _reusable(registry: Registry, cfg: Config, previous: dict | None, arch: str, inputs: str) -> BuiltImage | None:
    """The previous images.lock entry for ``arch`` if built from the same inputs and still in the registry."""
    for entry in (previous or {}).get("images", []):
        if entry.get("arch") == arch and entry.get("inputs_sha256") == inputs:
            if registry.manifest(cfg.repository, entry["ref"].partition("@")[2]) is not None:
                return BuiltImage(**entry)
    return None


def _base_facts(engine: Engine, registry: Registry, base: BaseImage, platform: str) -> tuple[int, int, int]:
    """(unpacked size, compressed size, SOURCE_DATE_EPOCH) of the base image: sizes in
    bytes, the epoch its config's ``created``, in seconds (pulled first if not local)."""
    info = engine.ensure_local(base.ref, platform, registry.auth)
    manifest = registry.manifest_of_ref(base.ref)  # None for an upstream base elsewhere
    try:
        epoch = epoch_of(info.created)
    except ValueError:
        raise ImageBuildError(f"base image {base.ref} has no usable created time ({info.created!r})", "rebuild or repin the base image") from None
    return info.size, manifest.compressed_size() if manifest else 0, epoch


def build_image(
    cfg: Config,
    engine: Engine,
    registry: Registry,
    lock: Lock,
    wheelhouse: Path,
    base: BaseImage,
    pip_wheel: Path,
    toolchain_sha256: str,
    inputs: str,
) -> BuiltImage:
    """Build and push the image for ``base.arch``; return what the registry holds."""
    arch = base.arch
    platform = f"linux/{arch}"
    if arch == "arm64":
        binfmt.require_arm64()
    target = cfg.image_target(arch)
    wheels = wheelhouse / target.name
    base_size, base_compressed, epoch = _base_facts(engine, registry, base, platform)
    repo = f"{cfg.registry}/{cfg.repository}"
    tag = f"{cfg.python}-{lock.sha256[:12]}-{arch}"
    labels = {
        "org.opencontainers.image.version": cfg.python,
        "org.opencontainers.image.base.name": base.tag,
        "org.opencontainers.image.base.digest": base.ref.partition("@")[2],
        "io.factory.python.version": cfg.python,
        "io.factory.lock.sha256": lock.sha256,
        "io.factory.toolchain.sha256": toolchain_sha256,
        "io.factory.target": target.name,
    }
    with tempfile.TemporaryDirectory(prefix="factory-image-") as tmp:
        ctx = Path(tmp) / "context.tar"
        write_context(ctx, cfg.dockerfile, wheelhouse / "install" / f"{target.name}.lock", wheels, pip_wheel)
        with open(ctx, "rb") as f:
            image_id = engine.build(
                f,
                tag=f"{repo}:{tag}",
                platform=platform,
                buildargs={"BASE": base.ref, "UID": str(cfg.uid), "SOURCE_DATE_EPOCH": str(epoch)},
                labels=labels,
                nocache=not cfg.engine_cache,
            )
    info = engine.inspect(image_id)
    if info is None or info.platform != platform:
        raise ImageBuildError(f"image {repo}:{tag} inspects as {info.platform if info else 'missing'}", "check the engine")
    digest = pin_created(registry, cfg.repository, tag, engine.push(repo, tag, registry.auth), epoch)
    engine.ensure_local(f"{repo}@{digest}", platform, registry.auth)  # the pinned config (same layers)
    manifest = registry.manifest(cfg.repository, digest)
    return BuiltImage(
        arch=arch,
        ref=f"{repo}@{digest}",
        tag=f"{repo}:{tag}",
        base=base.ref,
        size=info.size,
        compressed_size=manifest.compressed_size() if manifest else 0,
        base_size=base_size,
        base_compressed_size=base_compressed,
        inputs_sha256=inputs,
    )


def build_images(
    cfg: Config,
    engine: Engine,
    registry: Registry,
    lock: Lock,
    wheelhouse: Path,
    bases: dict[str, BaseImage],
    pip_wheel: Path,
    out: Path,
    strict: bool = False,
) -> dict:
    """Build, push and index the images of every arch; write ``out`` (images.lock) last.

    New images are measured (``perf.measure``) and gated against the previous ``out``
    (``perf.gate``): regressions are printed, and with ``strict`` raise
    ``PerfRegressionError`` before the index tags move and before ``out`` is written.

    Raises ``WheelhouseMismatchError`` if ``wheelhouse/manifest.json`` was made from
    another lock, ``ImageBuildError``/``RegistryError``/``BinfmtMissingError`` from the steps.
    """
    manifest = json.loads((wheelhouse / "manifest.json").read_text())
    if manifest.get("lock_sha256") != lock.sha256:
        raise WheelhouseMismatchError(
            f"{wheelhouse} was built from lock {manifest.get('lock_sha256', '?')[:12]}, not {lock.path} ({lock.sha256[:12]})",
            "rebuild the wheelhouse from this lock",
        )
    toolchain_sha256 = sha256_file(cfg.toolchain)
    try:
        previous = json.loads(out.read_text())
    except (OSError, ValueError):
        previous = None
    built: list[BuiltImage] = []
    with Progress() as progress:
        for arch in cfg.arches:
            target = cfg.image_target(arch)
            if target.name not in manifest["targets"] or not (wheelhouse / target.name).is_dir():
                raise ImageBuildError(f"{wheelhouse} has no {target.name} wheels", f"build the wheelhouse for {target.name} first")
            inputs = image_inputs(cfg, lock, manifest["targets"][target.name], bases[arch], pip_wheel, toolchain_sha256)
            task = progress.step(f"image {arch}")
            sbom = sbom_path(out, arch)
            reused = _reusable(registry, cfg, previous, arch, inputs)
            if reused is not None and sbom.exists():
                built.append(reused)
                progress.done(task, f"image {arch}: {reused.ref} (unchanged inputs, reused)")
                continue
            image = reused or build_image(
                cfg, engine, registry, lock, wheelhouse, bases[arch], pip_wheel, toolchain_sha256, inputs
            )
            atomic.write_text(sbom, image_sbom(engine, image.ref, arch, manifest["targets"][target.name]))
            measured = perf.measure(engine, image.ref, arch)
            built.append(replace(image, sbom=str(sbom.relative_to(out.parent)), perf=measured.__dict__))
            progress.done(
                task,
                f"image {arch}: {image.ref} (SBOM {sbom.name}; cold start {measured.cold_start_s:.2f} s, "
                f"imports {measured.import_s:.3f} s)",
            )
    # Gate before the index moves: with --strict a regression publishes no new tag.
    regressions = perf.gate(previous, {"images": [b.__dict__ for b in built]})
    for message in regressions:
        console.print(f"[yellow]perf gate[/yellow]: {message}")
    if regressions and strict:
        raise perf.PerfRegressionError(
            f"{len(regressions)} perf regression(s) against {out.name}: {'; '.join(regressions)}",
            "look into the regression, or rerun without --strict to accept it",
        )
    entries = [(registry.manifest(cfg.repository, b.ref.partition("@")[2]), b.arch) for b in built]
    tags = [f"{cfg.python}-{lock.sha256[:12]}", cfg.python]
    digest = ""
    for t in tags:
        digest = registry.put_manifest_list(cfg.repository, t, [(m, a) for m, a in entries if m is not None])
    repo = f"{cfg.registry}/{cfg.repository}"
    data = {
        "images": [b.__dict__ for b in built],
        "index": f"{repo}@{digest}",
        "tags": [f"{repo}:{t}" for t in tags],
        "python": cfg.python,
        "lock_sha256": lock.sha256,
        "revision": source_revision(cfg.root),
        "wheelhouse_sbom": os.path.relpath(wheelhouse / SBOM_NAME, out.parent),
    }
    atomic.write_json(out, data)
    return data
