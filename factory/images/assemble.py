"""The images stage: slim runtime images per arch, from the base by digest and the wheelhouse.

Each arch's image is the base plus one app layer holding ``/opt/venv``. On the host route
(bases bootstrapped from one recipe) the layer is laid out on the host (``hostlayer``) and
pushed with its config and manifest through the registry API (``layerimage``): nothing of
the target arch runs and no engine builds it. On the Dockerfile route (``image-assembly =
"dockerfile"``, upstream bases) the Docker SDK's classic builder runs
``resources/images/runtime.Dockerfile``: a multi-stage build that installs the manylinux
target's wheels with ``pip install --no-index --require-hashes`` into ``/opt/venv``.
Images are pushed, then one multi-arch index is pushed over them, and only then is
``images.lock`` written (atomically), as ``imagelock.ImagesLock``:

    {"images": [{"arch", "ref", "base", "tag", "size", "compressed_size", "base_size",
                 "base_compressed_size", "inputs_sha256", "sbom",
                 "perf": {"cold_start_s", "import_s"}, "probes_sha256",
                 "startup": {"ready", "cold_median_s", "limited_median_s", "rss_bytes", …}}],
     "index": "<repo>@sha256:…", "tags": [...], "python": "3.14.8", "lock_sha256": "…",
     "revision": "<git commit of the project>", "wheelhouse_sbom": "<path>"}

SBOM paths are relative to images.lock's directory (``<images.lock>.sbom/image-<arch>.cdx.json``).

Sizes are bytes: ``size`` as the engine reports the unpacked image, ``compressed_size``
the sum of the registry manifest's config and layer blobs.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from platform import machine
from typing import Any

from ..bases import oci
from ..bases.imagelock import ArchImage, BaseImage, ImagesLock
from ..bases.reproducible import epoch_of, pin_created, push_oci_image, push_oci_index
from ..core import atomic, binfmt, children, resources
from ..core.cache import sha256_file
from ..core.config import Config
from ..core.engine import Engine
from ..core.errors import ArtifactError, ImageBuildError, PerfRegressionError, RegistryError, WheelhouseMismatchError
from ..core.progress import Progress, console
from ..core.registry import ManifestInfo, Registry
from ..core.targets import Arch
from ..locks.lockfile import Lock
from ..wheelhouse.manifest import ProjectEntry
from ..wheelhouse.stage import SBOM_NAME
from . import hostlayer, kubeprobes, layerimage, perf, probes, startup
from . import service as service_layer
from .sbom import image_sbom, sbom_path

# An image paired with its manifest as the registry served it when the image was pushed or
# found reusable: the index is made of exactly these, so no arch can drop out of it.
Pushed = tuple[ArchImage, ManifestInfo]



def source_revision(root: Path) -> str:
    """``git rev-parse HEAD`` of ``root`` (``unknown`` outside a git checkout)."""
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# The history entry of the host-made layer (OCI config.md ``history[].created_by``).
HOST_LAYER_HISTORY = "factory images: /opt/venv, /etc/passwd, /etc/group laid out on the host (pypa/installer, native compileall)"

# The packaged Dockerfile's stage 1, added to every Dockerfile-route context.
INSTALL_SCRIPT = "images/install_venv.py"
INSTALL_SCRIPT_NAME = "install_venv.py"


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def write_context(dest: Path, dockerfile: Path, install_lock: Path, wheels: Path, pip_wheel: Path) -> None:
    """Write the build context tar: Dockerfile, requirements.lock (the wheelhouse's install
    lock for the target, whose hashes are those of its files), install_venv.py (the
    packaged Dockerfile's stage 1, for bases without a shell), pip.whl, wheels/."""
    with tarfile.open(dest, "w") as tar:
        _add_bytes(tar, "Dockerfile", dockerfile.read_bytes())
        _add_bytes(tar, "requirements.lock", install_lock.read_bytes())
        _add_bytes(tar, INSTALL_SCRIPT_NAME, resources.path(INSTALL_SCRIPT).read_bytes())
        tar.add(pip_wheel, arcname="pip.whl")
        tar.add(wheels, arcname="wheels")


def native_base(cfg: Config, bases: dict[str, BaseImage], arch: str) -> BaseImage | None:
    """The base that prepares ``arch``'s layer on the host (``hostlayer``): the host arch's
    base when both are bootstrapped from the same recipe and ``image-assembly`` allows it
    (``auto``: unless ``dockerfile`` was set); None for the Dockerfile route."""
    if cfg.image_assembly == "dockerfile" or (cfg.image_assembly == "auto" and "dockerfile" not in cfg.packaged):
        return None
    try:
        host = str(Arch.of_machine(machine()))
    except KeyError:
        return None
    if host not in bases or host not in cfg.arches:
        return None
    mine, native = cfg.base(arch), cfg.base(host)
    if mine.recipe is None or native.recipe is None or mine.recipe.path != native.recipe.path:
        return None
    return bases[host]


def image_inputs(
    cfg: Config, lock: Lock, wheels: list[dict[str, Any]], base: BaseImage, pip_wheel: Path, toolchain_sha256: str, native: BaseImage | None = None
) -> str:
    """sha256 hex over everything that determines an arch image: the Dockerfile (or, on the
    host route, the runtime config and the layer writer: the gzip bytes depend on zlib), the base
    digest, the lock, the target's wheel hashes, pip's wheel, the toolchain lock, the uid,
    the manifest format and the app's title, description and source annotations.
    Not the project's git revision: a commit that changes none of these reuses the image,
    digest included (the revision is recorded in images.lock instead). Nor the probes
    (``factory/resources/probes``): they measure an image, they do not shape it; their hash
    is ``probes_sha256`` of the images.lock entry."""
    data = {
        "dockerfile": None if native else hashlib.sha256(cfg.dockerfile.read_bytes()).hexdigest(),
        # host route: the config set over the base, and how the layer and config are written
        "runtime_config": hashlib.sha256(resources.path(layerimage.RUNTIME_CONFIG).read_bytes()).hexdigest() if native else None,
        "layer_writer": [HOST_LAYER_HISTORY, sys.version_info[:2], zlib.ZLIB_VERSION] if native else None,
        "install_script": None if native else hashlib.sha256(resources.path(INSTALL_SCRIPT).read_bytes()).hexdigest(),
        # host assembly: the native base that made the venv and pycs, and the installer
        "assembly": [native.ref, importlib.metadata.version("installer")] if native else "dockerfile",
        "base": base.ref,
        "lock": lock.sha256,
        "wheels": sorted((w["filename"], w["sha256"]) for w in wheels),
        "pip": pip_wheel.name,
        "toolchain": toolchain_sha256,
        "uid": cfg.uid,
        "python": cfg.python,
        "repository": f"{cfg.registry}/{cfg.repository}",
        # The manifest is an annotated OCI image manifest (before: a Docker v2 one, unannotated).
        "manifest": oci.OCI_MANIFEST,
        "annotations": [cfg.image_title, cfg.image_description, cfg.image_source],
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _reusable(registry: Registry, cfg: Config, previous: ImagesLock | None, arch: str, inputs: str) -> Pushed | None:
    """The previous images.lock entry for ``arch``, with its manifest, if it was built from
    the same ``inputs`` and the registry still holds it (else None: it is rebuilt)."""
    entry = previous.image(arch) if previous else None
    if entry is None or entry.inputs_sha256 != inputs:
        return None
    manifest = registry.manifest(cfg.repository, entry.digest)
    return (entry, manifest) if manifest is not None else None


def _reusable_dependencies(registry: Registry, cfg: Config, previous: ImagesLock | None, arch: str, inputs: str) -> Pushed | None:
    """The dependency image a previous service image of ``arch`` stood on, with its
    manifest, if it was built from the same ``inputs`` and the registry still holds it: a
    code change then leaves every dependency layer, and their digests, as they were."""
    entry = previous.image(arch) if previous else None
    if entry is None or not entry.dependencies or entry.dependencies_inputs_sha256 != inputs:
        return None
    manifest = registry.manifest(cfg.repository, entry.dependencies.partition("@")[2])
    if manifest is None:
        return None
    deps = replace(entry, ref=entry.dependencies, inputs_sha256=inputs, dependencies="", dependencies_inputs_sha256="", sbom="", perf=None)
    return deps, manifest


def host_native_base(bases: dict[str, BaseImage]) -> BaseImage:
    """The base of this machine's arch, whose interpreter byte-compiles a service layer
    without emulation. ``ImageBuildError`` when no such base is configured."""
    try:
        host = str(Arch.of_machine(machine()))
    except KeyError:
        host = ""
    if host not in bases:
        raise ImageBuildError(f"no {host or machine()} base image to byte-compile the service with", f"configure [tool.factory.base.{host or 'amd64'}]")
    return bases[host]


def build_service_image(
    cfg: Config, engine: Engine, registry: Registry, wheelhouse: Path, project: ProjectEntry | None, deps: Pushed, files: list[str], native: BaseImage, inputs: str, base: BaseImage
) -> Pushed:
    """Push the service image of ``deps``' arch: the dependency image plus the service layer
    (``service``), with ``[tool.factory.image]`` in its config. Returns its entry (not yet
    measured) and manifest, after the engine that runs its arch has pulled it by digest."""
    assert cfg.service is not None
    spec = cfg.service
    deps_image, deps_manifest = deps
    arch = deps_image.arch
    platform = f"linux/{arch}"
    epoch = _created(deps_manifest)
    tag = f"{cfg.python}-service-{inputs[:12]}-{arch}"
    labels = {"io.factory.service.inputs.sha256": inputs, **({"io.factory.project": project.name, "io.factory.project.version": project.version} if project else {})}
    with tempfile.TemporaryDirectory(prefix="factory-service-") as tmp:
        root = Path(tmp) / "layer"
        root.mkdir()
        service_layer.lay_out(spec, project, wheelhouse, files, engine, native, root, epoch)
        layer = layerimage.write_layer(root, Path(tmp) / "layer.tar.gz")
        pushed = layerimage.push_image(
            registry, cfg.repository, tag, deps_image.ref, layer, service_layer.config_of(spec, layer, labels, epoch), app_annotations(cfg, epoch, base)
        )
    repo = f"{cfg.registry}/{cfg.repository}"
    arch_engine = engine.for_arch(arch)
    info = arch_engine.ensure_local(f"{repo}@{pushed.digest}", platform, registry.auth)
    if info.platform != platform:
        raise ImageBuildError(f"image {repo}@{pushed.digest} inspects as {info.platform}", "check the engine and the base image")
    image = replace(
        deps_image, ref=f"{repo}@{pushed.digest}", tag=f"{repo}:{tag}", size=info.size, compressed_size=pushed.compressed_size(),
        inputs_sha256=inputs, dependencies=deps_image.ref, dependencies_inputs_sha256=deps_image.inputs_sha256, sbom="", perf=None, probes_sha256="",
    )  # fmt: skip
    return image, pushed


def service_record(cfg: Config, project: ProjectEntry | None) -> dict[str, Any] | None:
    """``images.lock``'s ``service``: the project, its version, ``app-dir`` and the image config."""
    if cfg.service is None:
        return None
    return {"project": project.name if project else None, "version": project.version if project else None, "app_dir": cfg.service.app_dir, "image": cfg.service.image.to_json()}


def read_previous(out: Path) -> ImagesLock | None:
    """The images.lock at ``out`` from an earlier run, or None if there is none or it is
    unreadable (then said on the console: every image is then rebuilt or re-measured)."""
    if not out.exists():
        return None
    try:
        return ImagesLock.load(out)
    except ArtifactError as e:
        console.print(f"[yellow]ignoring the previous images.lock[/yellow]: {e.problem}")
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


def _host_layer(
    cfg: Config, engine: Engine, registry: Registry, wheelhouse: Path, target: str, base: BaseImage, native: BaseImage, epoch: int, layer: Path
) -> None:
    """Lay out the app layer of ``base``'s image in ``layer`` on the host (``hostlayer``):
    the native base runs on this machine's engine (it writes into ``layer``); ``base`` is
    read where its arch's engine holds it."""
    engine.ensure_local(native.ref, f"linux/{native.arch}", registry.auth)  # the other arch's thread may not have pulled it yet
    entries = json.loads((wheelhouse / "manifest.json").read_text())["targets"][target]
    hostlayer.install_wheels([(wheelhouse / target / e["filename"], e["sha256"]) for e in entries], layer)
    hostlayer.finish_venv(engine, native.ref, f"linux/{native.arch}", layer)
    arch_engine = engine.for_arch(base.arch)
    hostlayer.add_user(layer, arch_engine.read_file(base.ref, "/etc/passwd"), arch_engine.read_file(base.ref, "/etc/group"), cfg.uid)
    hostlayer.pin_mtimes(layer, epoch)


def _push_host_image(
    cfg: Config,
    engine: Engine,
    registry: Registry,
    wheelhouse: Path,
    target: str,
    base: BaseImage,
    native: BaseImage,
    epoch: int,
    tag: str,
    labels: dict[str, str],
    tmp: Path,
) -> ManifestInfo:
    """The host route: lay out the app layer (``_host_layer``), write it as a tar and push
    base + layer as ``cfg.repository:tag`` through the registry API (``layerimage``), with
    ``resources/images/runtime-config.json`` over the base's config. No engine builds it."""
    _host_layer(cfg, engine, registry, wheelhouse, target, base, native, epoch, tmp / "layer")
    layer = layerimage.write_layer(tmp / "layer", tmp / "layer.tar.gz")
    runtime = layerimage.RuntimeConfig.load(resources.path(layerimage.RUNTIME_CONFIG))
    user = f"{cfg.uid}:{cfg.uid}"

    def config_of(base_config: dict[str, Any]) -> bytes:
        return layerimage.image_config(base_config, layer, runtime, user, labels, epoch, HOST_LAYER_HISTORY)

    return layerimage.push_image(registry, cfg.repository, tag, base.ref, layer, config_of, app_annotations(cfg, epoch, base))


def _created(manifest: ManifestInfo) -> int:
    """The SOURCE_DATE_EPOCH an app image manifest is annotated with (``app_annotations``)."""
    created = manifest.body.get("annotations", {}).get("org.opencontainers.image.created", "")
    try:
        return epoch_of(created)
    except ValueError:
        raise RegistryError(f"image manifest {manifest.digest} has no created annotation", "rebuild the images with `factory images`") from None


def app_annotations(cfg: Config, epoch: int, base: BaseImage | None = None) -> oci.Annotations:
    """The OCI annotations of an app image on ``base`` (or, with None, of the index, which
    spans the bases of every arch and names none); ``epoch`` is its SOURCE_DATE_EPOCH."""
    return oci.Annotations(
        created_epoch=epoch,
        version=cfg.python,
        base_name=base.tag if base else "",
        base_digest=base.ref.partition("@")[2] if base else "",
        source=cfg.image_source,
        title=cfg.image_title,
        description=cfg.image_description,
    )


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
    native: BaseImage | None = None,
) -> Pushed:
    """Build and push the image for ``base.arch``; return its entry (not yet measured) and
    its manifest as the registry serves it. With ``native`` (``native_base``) the app layer
    is made on the host (``hostlayer``) and pushed as a tar through the registry API with
    its config and manifest (``layerimage``): no engine builds it. Else ``cfg.dockerfile``
    installs it, built and pushed by ``base.arch``'s engine (``Engine.for_arch``). Either
    way that engine then holds the image (pulled by digest) for the probes and smoke.
    ``RegistryError`` if the registry does not serve the manifest it has just accepted."""
    arch = base.arch
    platform = f"linux/{arch}"
    if arch == "arm64" and native is None and engine.emulates(arch):  # the Dockerfile route runs pip in the image's arch
        binfmt.require_arm64()
    target = cfg.image_target(arch)
    wheels = wheelhouse / target.name
    local, engine = engine, engine.for_arch(arch)
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
        "org.opencontainers.image.title": cfg.image_title,
        "org.opencontainers.image.description": cfg.image_description,
        **({"org.opencontainers.image.source": cfg.image_source} if cfg.image_source else {}),
    }
    with tempfile.TemporaryDirectory(prefix="factory-image-") as tmp:
        if native is not None:
            manifest = _push_host_image(cfg, local, registry, wheelhouse, target.name, base, native, epoch, tag, labels, Path(tmp))
        else:
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
            built = engine.inspect(image_id)
            if built is None or built.platform != platform:
                raise ImageBuildError(f"image {repo}:{tag} inspects as {built.platform if built else 'missing'}", "check the engine")
            pinned = pin_created(registry, cfg.repository, tag, engine.push(repo, tag, registry.auth), epoch)
            manifest = push_oci_image(registry, cfg.repository, pinned, tag, app_annotations(cfg, epoch, base))
    digest = manifest.digest
    info = engine.ensure_local(f"{repo}@{digest}", platform, registry.auth)  # the image as pushed, for the probes and smoke
    if info.platform != platform:
        raise ImageBuildError(f"image {repo}@{digest} inspects as {info.platform}", "check the engine and the base image")
    image = ArchImage(
        arch=arch,
        ref=f"{repo}@{digest}",
        tag=f"{repo}:{tag}",
        base=base.ref,
        size=info.size,
        compressed_size=manifest.compressed_size(),
        base_size=base_size,
        base_compressed_size=base_compressed,
        inputs_sha256=inputs,
    )
    return image, manifest


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
) -> ImagesLock:
    """Build, push and index the images of every arch; write ``out`` (images.lock) last.

    An arch whose previous ``out`` entry has the same inputs and whose image the registry
    still holds is reused (digest included); its SBOM and perf figures are redone when
    missing or made by other probes. New images are measured (``perf.measure``) and gated
    against the previous ``out`` (``perf.gate``): regressions are printed, and with
    ``strict`` raise ``PerfRegressionError`` before the index tags move and before ``out`` is
    written. A service with ``[tool.factory.smoke]`` is started as Kubernetes would run it
    (``startup.measure``: time to ready, RSS, shutdown; redone when the image is new or the
    settings changed) and gated the same way (``startup.gate``); a service that does not come
    up raises ``SmokeError`` and writes nothing. Its probes and resources are then written as
    ``probes.yaml`` beside ``out`` (``kubeprobes``). The index lists every arch of ``cfg.arches``, each with the manifest the
    registry served when the image was pushed or found reusable.

    Returns what was written to ``out``. Raises ``WheelhouseMismatchError`` if
    ``wheelhouse/manifest.json`` was made from another lock, ``ImageBuildError`` /
    ``RegistryError`` / ``BinfmtMissingError`` / ``ProbeError`` from the steps.
    """
    manifest = json.loads((wheelhouse / "manifest.json").read_text())
    if manifest.get("lock_sha256") != lock.sha256:
        raise WheelhouseMismatchError(
            f"{wheelhouse} was built from lock {manifest.get('lock_sha256', '?')[:12]}, not {lock.path} ({lock.sha256[:12]})",
            "rebuild the wheelhouse from this lock",
        )
    toolchain_sha256 = sha256_file(cfg.toolchain)
    probes_sha256 = probes.digest(*probes.MEASURING)
    previous = read_previous(out)
    try:
        project = ProjectEntry.from_json(manifest["project"]) if manifest.get("project") is not None else None
    except ValueError as e:
        raise WheelhouseMismatchError(f"{wheelhouse}/manifest.json: {e}", "build the wheelhouse again (factory wheelhouse)") from None
    if cfg.service is not None and cfg.service.project is not None and project is None:
        raise ImageBuildError(f"{wheelhouse} holds no wheel of the project {cfg.service.project.name}", "build the wheelhouse again (factory wheelhouse), without --no-build")
    files = service_layer.app_files(cfg.service) if cfg.service is not None else []
    compiler = host_native_base(bases) if cfg.service is not None else None
    sbom_wheels = [project.to_json()] if project else []
    plans: list[tuple[str, str, BaseImage | None, str | None]] = []
    for arch in cfg.arches:
        target = cfg.image_target(arch)
        if target.name not in manifest["targets"] or not (wheelhouse / target.name).is_dir():
            raise ImageBuildError(f"{wheelhouse} has no {target.name} wheels", f"build the wheelhouse for {target.name} first")
        native = native_base(cfg, bases, arch)
        deps_inputs = image_inputs(cfg, lock, manifest["targets"][target.name], bases[arch], pip_wheel, toolchain_sha256, native)
        svc_inputs = service_layer.inputs(cfg.service, project, deps_inputs, compiler, files) if cfg.service is not None and compiler is not None else None
        plans.append((arch, deps_inputs, native, svc_inputs))

    def assemble(progress: Progress, arch: str, deps_inputs: str, native: BaseImage | None, svc_inputs: str | None) -> tuple[Pushed, bool]:
        """The arch's image, reused or built and pushed, with its SBOM; True when it is new
        (or its probes changed) and must be measured. A service image reuses its dependency
        image when that image's inputs did not change, and builds only the service layer."""
        target = cfg.image_target(arch)
        task = progress.step(f"image {arch}")
        sbom = sbom_path(out, arch)
        inputs = svc_inputs or deps_inputs
        reused = _reusable(registry, cfg, previous, arch, inputs)
        if reused is not None and sbom.exists() and reused[0].probes_sha256 == probes_sha256:
            progress.done(task, f"image {arch}: {reused[0].ref} (unchanged inputs, reused)")
            return reused, False
        if reused is None and svc_inputs is not None:
            assert compiler is not None
            deps = _reusable_dependencies(registry, cfg, previous, arch, deps_inputs) or build_image(
                cfg, engine, registry, lock, wheelhouse, bases[arch], pip_wheel, toolchain_sha256, deps_inputs, native
            )
            reused = build_service_image(cfg, engine, registry, wheelhouse, project, deps, files, compiler, svc_inputs, bases[arch])
        image, image_manifest = reused or build_image(
            cfg, engine, registry, lock, wheelhouse, bases[arch], pip_wheel, toolchain_sha256, inputs, native
        )
        if arch == "arm64" and engine.emulates(arch):  # the SBOM and perf probes run in the image: under QEMU on x86_64
            binfmt.require_arm64()
        atomic.write_text(sbom, image_sbom(engine, image.ref, arch, [*manifest["targets"][target.name], *sbom_wheels]))
        progress.done(task, f"image {arch}: {image.ref} (SBOM {sbom.name})")
        return (replace(image, sbom=str(sbom.relative_to(out.parent))), image_manifest), True

    # The arches are built at once (the SBOM probe, and on the Dockerfile route pip and
    # compileall, run arm64 under QEMU on one core); they are measured one after the other,
    # so neither's timings carry the other's load.
    # An interrupt removes the containers they run (SBOM probe, compileall), so the threads
    # end within seconds.
    with children.sigterm_interrupts(), Progress() as progress, ThreadPoolExecutor(max_workers=len(plans) or 1, thread_name_prefix="image") as pool:
        assembled = children.results_or_stop([pool.submit(assemble, progress, *plan) for plan in plans], engine.stop)
    pushed: list[Pushed] = []
    smoke = cfg.smoke if cfg.service is not None else None
    for (image, image_manifest), fresh in assembled:
        if fresh:
            measured = perf.measure(engine, image.ref, image.arch)
            image = replace(image, perf=measured, probes_sha256=probes_sha256)
            console.print(f"image {image.arch}: cold start {measured.cold_start_s:.2f} s, imports {measured.import_s:.3f} s")
        if smoke is None:
            image = replace(image, startup=None)
        elif fresh or image.startup is None or image.startup.settings_sha256 != smoke.digest():
            assert cfg.service is not None
            if image.arch == "arm64" and engine.emulates(image.arch):
                binfmt.require_arm64()
            image = replace(image, startup=startup.measure(engine, image.ref, image.arch, smoke, cfg.service.image.stop_signal))
            console.print(f"image {startup.describe(image)}")
        pushed.append((image, image_manifest))
    images = [image for image, _ in pushed]
    # Gate before the index moves: with --strict a regression publishes no new tag.
    regressions = perf.gate(previous, images)
    if smoke is not None:
        slower, notes = startup.gate(previous, images, smoke)
        regressions += slower
        for note in notes:
            console.print(f"note: {note}")
    for message in regressions:
        console.print(f"[yellow]perf gate[/yellow]: {message}")
    if regressions and strict:
        raise PerfRegressionError(
            f"{len(regressions)} perf regression(s) against {out.name}: {'; '.join(regressions)}",
            "look into the regression, or rerun without --strict to accept it",
        )
    # The floating {python} tag is not moved here: `factory promote` moves tags, by digest.
    tags = [f"{cfg.python}-{lock.sha256[:12]}" + (f"-{hashlib.sha256(''.join(i.inputs_sha256 for i in images).encode()).hexdigest()[:12]}" if cfg.service else "")]
    epoch = max(_created(m) for _, m in pushed)
    digest = push_oci_index(registry, cfg.repository, tags, [(m, image.arch) for image, m in pushed], app_annotations(cfg, epoch))
    repo = f"{cfg.registry}/{cfg.repository}"
    result = ImagesLock(
        images=tuple(images),
        index=f"{repo}@{digest}",
        tags=tuple(f"{repo}:{t}" for t in tags),
        python=cfg.python,
        lock_sha256=lock.sha256,
        revision=source_revision(cfg.root),
        wheelhouse_sbom=os.path.relpath(wheelhouse / SBOM_NAME, out.parent),
        # An unchanged index keeps its signatures (they are by digest, in the registry).
        signing=previous.signing if previous is not None and previous.index == f"{repo}@{digest}" else None,
        service=service_record(cfg, project),
    )
    result.dump(out)
    if smoke is not None and cfg.service is not None:
        written = kubeprobes.write(out.parent / cfg.lane_name(kubeprobes.NAME), result, smoke, cfg.image_title or cfg.repository.rsplit("/", 1)[-1], cfg.service.image.ports)
        console.print(f"Kubernetes probes and resources from the measured startup: {written}")
    return result
