"""Typed image artifacts: ``images.lock``, ``bases.lock`` and ``builders.lock``.

Each file is a frozen dataclass with ``from_json``/``to_json`` (the JSON value, key names as
on disk) and ``load(path)``/``dump(path)``. ``dump`` writes a temporary sibling and renames
it into place, so a reader sees the old file or the new one, never a mix. Each format has a
JSON Schema (draft 2020-12) shipped as the resource named by the class's ``SCHEMA``; the
loaders check the same rules by hand, so reading needs no ``jsonschema``.

- ``images.lock`` (``ImagesLock``): the pushed runtime images, one ``ArchImage`` per arch,
  their multi-arch index and tags, and what they were made from.
- ``bases.lock`` (``BaseImagesLock``): the runtime base image per arch (``BaseImage``).
- ``builders.lock`` (``BuilderImagesLock``): the builder image per arch (``BuilderImage``).
  Until this module, builders.lock used the bases.lock format with the builder's key in
  ``recipe_sha256``; that form is still read (the key is the same value), and the next write
  uses the ``builders`` form.

References are ``<registry>/<repository>@sha256:<hex>`` (OCI distribution spec digests);
sizes are bytes; times are seconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..core.errors import ArtifactError
from ..core.textfile import write_atomically
from .debpackages import DebPackage

_Kind = Literal["str", "str?", "int", "float", "object?", "list", "object", "bool"]


def _check(data: object, where: str, fix: str, required: Mapping[str, _Kind], optional: Mapping[str, _Kind] | None = None) -> dict[str, Any]:
    """``data`` as a dict after checking it is a JSON object with exactly the known keys,
    each of its kind; ``ArtifactError`` naming ``where`` and the key otherwise."""
    optional = optional or {}
    if not isinstance(data, dict):
        raise ArtifactError(f"{where} is not a JSON object", fix)
    missing = sorted(set(required) - set(data))
    if missing:
        raise ArtifactError(f"{where} lacks {', '.join(missing)}", fix)
    unknown = sorted(set(data) - set(required) - set(optional))
    if unknown:
        raise ArtifactError(f"{where} has unknown key(s) {', '.join(unknown)}", fix)
    for key, kind in {**required, **optional}.items():
        if key in data and not _is(data[key], kind):
            raise ArtifactError(f"{where}.{key} is not {_KIND_NAMES[kind]} ({data[key]!r:.60})", fix)
    return data


_KIND_NAMES: dict[_Kind, str] = {
    "str": "a string",
    "str?": "a string or null",
    "int": "an integer",
    "float": "a number",
    "object?": "an object or null",
    "list": "a list",
    "object": "an object",
    "bool": "true or false",
}


def _is(value: object, kind: _Kind) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "str?":
        return value is None or isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "object?":
        return value is None or isinstance(value, dict)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "bool":
        return isinstance(value, bool)
    return isinstance(value, list)


def _read(path: Path, fix: str) -> object:
    """The JSON value in ``path``; ``ArtifactError`` if it is missing or not JSON."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path} does not exist", fix) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ArtifactError(f"cannot read {path}: {e}", fix) from None
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path} is not valid JSON ({e.msg}, line {e.lineno})", fix) from None


def _write(path: Path, data: object) -> None:
    """Write ``data`` as indented JSON with sorted keys to ``path`` atomically
    (``textfile.write_atomically``); ``OutputError`` on a full disk or a refused write."""
    write_atomically(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


# -- images.lock ---------------------------------------------------------------------------

_IMAGES_FIX = "delete it and run `factory images` again"


@dataclass(frozen=True)
class Perf:
    """Median cold start (``python3 -c pass`` in a fresh container) and import time of every
    top-level module of the installed distributions, of one image, in seconds."""

    cold_start_s: float
    import_s: float

    def to_json(self) -> dict[str, float]:
        """``{"cold_start_s": …, "import_s": …}``."""
        return {"cold_start_s": self.cold_start_s, "import_s": self.import_s}

    @classmethod
    def from_json(cls, data: object, where: str = "perf") -> Perf:
        """From ``to_json``'s form; ``ArtifactError`` naming ``where`` if it is not."""
        d = _check(data, where, _IMAGES_FIX, {"cold_start_s": "float", "import_s": "float"})
        return cls(cold_start_s=float(d["cold_start_s"]), import_s=float(d["import_s"]))


@dataclass(frozen=True)
class Startup:
    """The service's start and stop as Kubernetes would run it, measured by smoke
    (``images.startup``) on ``runs`` fresh containers per figure; seconds and bytes.

    ``ready``: the check (``http://:8000/health``, ``tcp://:8000``, ``exec …``);
    ``cold_median_s``/``cold_max_s``: from the container's start to the first passing check,
    without limits; ``limited_median_s``/``limited_max_s``: the same at ``cpus`` CPUs and
    ``memory`` bytes; ``rss_bytes``: the median anonymous memory of the container's cgroup at
    ready; ``stop_max_s``: the longest time from the stop signal to the exit, and
    ``stop_exit_code`` the exit code then (the highest seen); ``emulated``: measured under
    QEMU (times not gated); ``settings_sha256``: ``SmokeSpec.digest`` of the settings.
    """

    ready: str
    runs: int
    cold_median_s: float
    cold_max_s: float
    limited_median_s: float
    limited_max_s: float
    cpus: float
    memory: int
    rss_bytes: int
    stop_max_s: float
    stop_exit_code: int
    emulated: bool
    settings_sha256: str

    def to_json(self) -> dict[str, Any]:
        """The figures as images.lock stores them (keys as the fields)."""
        return {k: getattr(self, k) for k in _STARTUP_KEYS}

    @classmethod
    def from_json(cls, data: object, where: str = "startup") -> Startup:
        """From ``to_json``'s form; ``ArtifactError`` naming ``where`` and the key if it is not."""
        d = _check(data, where, _IMAGES_FIX, _STARTUP_KEYS)
        if not isinstance(d["emulated"], bool):
            raise ArtifactError(f"{where}.emulated is not true or false", _IMAGES_FIX)
        values: dict[str, Any] = {k: (float(d[k]) if kind == "float" else d[k]) for k, kind in _STARTUP_KEYS.items()}
        return cls(**values)


_STARTUP_KEYS: dict[str, _Kind] = {
    "ready": "str", "runs": "int", "cold_median_s": "float", "cold_max_s": "float", "limited_median_s": "float",
    "limited_max_s": "float", "cpus": "float", "memory": "int", "rss_bytes": "int", "stop_max_s": "float",
    "stop_exit_code": "int", "emulated": "bool", "settings_sha256": "str",
}  # fmt: skip


@dataclass(frozen=True)
class ArchImage:
    """One pushed single-arch runtime image as ``images.lock`` lists it.

    ``ref`` is ``<repo>@sha256:…``, ``tag`` ``<repo>:<python>-<lock12>-<arch>``, ``base`` the
    base image's ref. Sizes in bytes: ``size`` the engine's unpacked size, ``compressed_size``
    the sum of the registry manifest's config and layer blobs (same for the base).
    ``inputs_sha256`` hashes everything that determines the image (``images.image_inputs``).
    ``sbom`` is the image's CycloneDX file relative to images.lock's directory; ``perf`` its
    measurements (None before measuring, or in a lock written before perf existed);
    ``probes_sha256`` hashes the in-image programs that made ``sbom`` and ``perf`` ("" in a
    lock written before it was recorded): when they change, both are redone, the image is not.
    A service image also names its ``dependencies`` image (``<repo>@sha256:…``: base plus
    ``/opt/venv`` of the lock's wheels, the layers it shares) and that image's
    ``dependencies_inputs_sha256``; both are "" for a dependency-only image. ``startup``: the
    service's time to ready, memory and shutdown as smoke measured them (``Startup``; None for
    a dependency image, or a service without ``[tool.factory.smoke]``).
    """

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
    perf: Perf | None = None
    probes_sha256: str = ""
    dependencies: str = ""
    dependencies_inputs_sha256: str = ""
    startup: Startup | None = None

    @property
    def digest(self) -> str:
        """The ``sha256:…`` part of ``ref``."""
        return self.ref.partition("@")[2]

    def to_json(self) -> dict[str, Any]:
        """The entry as images.lock stores it (every key, ``perf`` null when unmeasured)."""
        return {
            "arch": self.arch,
            "ref": self.ref,
            "tag": self.tag,
            "base": self.base,
            "size": self.size,
            "compressed_size": self.compressed_size,
            "base_size": self.base_size,
            "base_compressed_size": self.base_compressed_size,
            "inputs_sha256": self.inputs_sha256,
            "sbom": self.sbom,
            "perf": self.perf.to_json() if self.perf else None,
            "probes_sha256": self.probes_sha256,
            **({"dependencies": self.dependencies, "dependencies_inputs_sha256": self.dependencies_inputs_sha256} if self.dependencies else {}),
            **({"startup": self.startup.to_json()} if self.startup else {}),
        }

    @classmethod
    def from_json(cls, data: object, where: str = "image") -> ArchImage:
        """From ``to_json``'s form (``sbom``, ``perf``, ``probes_sha256`` optional, as older
        locks lack them); ``ArtifactError`` naming ``where`` and the key if it is not."""
        d = _check(
            data,
            where,
            _IMAGES_FIX,
            {
                "arch": "str",
                "ref": "str",
                "tag": "str",
                "base": "str",
                "size": "int",
                "compressed_size": "int",
                "base_size": "int",
                "base_compressed_size": "int",
                "inputs_sha256": "str",
            },
            {"sbom": "str", "perf": "object?", "probes_sha256": "str", "dependencies": "str", "dependencies_inputs_sha256": "str", "startup": "object"},
        )
        if "@sha256:" not in d["ref"]:
            raise ArtifactError(f"{where}.ref {d['ref']!r} is not pinned by digest (<repo>@sha256:…)", _IMAGES_FIX)
        perf = d.get("perf")
        return cls(
            arch=d["arch"],
            ref=d["ref"],
            tag=d["tag"],
            base=d["base"],
            size=d["size"],
            compressed_size=d["compressed_size"],
            base_size=d["base_size"],
            base_compressed_size=d["base_compressed_size"],
            inputs_sha256=d["inputs_sha256"],
            sbom=d.get("sbom", ""),
            perf=Perf.from_json(perf, f"{where}.perf") if perf is not None else None,
            probes_sha256=d.get("probes_sha256", ""),
            dependencies=d.get("dependencies", ""),
            dependencies_inputs_sha256=d.get("dependencies_inputs_sha256", ""),
            startup=Startup.from_json(d["startup"], f"{where}.startup") if "startup" in d else None,
        )


@dataclass(frozen=True)
class ImagesLock:
    """``images.lock``: what ``factory images`` pushed, written after the index.

    ``images`` one per arch; ``index`` the multi-arch index (Docker manifest list) as
    ``<repo>@sha256:…``; ``tags`` the ``<repo>:<tag>`` names it was pushed under; ``python``
    the interpreter version; ``lock_sha256`` the requirements lock's sha256; ``revision`` the
    project's git commit (``unknown`` outside git); ``wheelhouse_sbom`` the wheelhouse's
    CycloneDX file relative to images.lock's directory; ``signing`` what ``factory sign``
    (or ``factory all``) added: the public key, the signature and attestation references
    (``signing.sign_images``), None before signing. ``service``: what a service image ships
    (``{"project", "version", "app_dir", "image"}``, ``image`` the ``[tool.factory.image]``
    settings written into its config), None for dependency-only images.
    """

    SCHEMA = "schemas/images-lock.schema.json"

    images: tuple[ArchImage, ...]
    index: str
    tags: tuple[str, ...]
    python: str
    lock_sha256: str
    revision: str
    wheelhouse_sbom: str
    signing: dict[str, Any] | None = None
    service: dict[str, Any] | None = None

    def image(self, arch: str) -> ArchImage | None:
        """The entry for ``arch`` (``amd64``/``arm64``), or None."""
        return next((i for i in self.images if i.arch == arch), None)

    def to_json(self) -> dict[str, Any]:
        """The JSON object images.lock holds (keys as documented in the README)."""
        return {
            "images": [i.to_json() for i in self.images],
            "index": self.index,
            "tags": list(self.tags),
            "python": self.python,
            "lock_sha256": self.lock_sha256,
            "revision": self.revision,
            "wheelhouse_sbom": self.wheelhouse_sbom,
            **({"signing": self.signing} if self.signing is not None else {}),
            **({"service": self.service} if self.service is not None else {}),
        }

    @classmethod
    def from_json(cls, data: object, where: str = "images.lock") -> ImagesLock:
        """From ``to_json``'s form; ``ArtifactError`` naming ``where`` and the key if it is
        not (a missing or mistyped key, an unknown key, two entries for one arch)."""
        d = _check(
            data,
            where,
            _IMAGES_FIX,
            {"images": "list", "index": "str", "tags": "list", "python": "str", "lock_sha256": "str", "revision": "str", "wheelhouse_sbom": "str"},
            {"signing": "object", "service": "object"},
        )
        images = tuple(ArchImage.from_json(e, f"{where}: images[{n}]") for n, e in enumerate(d["images"]))
        arches = [i.arch for i in images]
        if len(set(arches)) != len(arches):
            raise ArtifactError(f"{where} lists an arch twice ({', '.join(arches)})", _IMAGES_FIX)
        if not all(isinstance(t, str) for t in d["tags"]):
            raise ArtifactError(f"{where}.tags is not a list of strings", _IMAGES_FIX)
        return cls(
            images=images,
            index=d["index"],
            tags=tuple(d["tags"]),
            python=d["python"],
            lock_sha256=d["lock_sha256"],
            revision=d["revision"],
            wheelhouse_sbom=d["wheelhouse_sbom"],
            signing=d.get("signing"),
            service=d.get("service"),
        )

    @classmethod
    def load(cls, path: Path) -> ImagesLock:
        """Read ``path``; ``ArtifactError`` if it is missing, not JSON or not of this form."""
        return cls.from_json(_read(path, "run `factory images` to write it"), str(path))

    def dump(self, path: Path) -> None:
        """Write ``path`` atomically (temporary sibling, then rename); ``OutputError`` if refused."""
        _write(path, self.to_json())


# -- bases.lock ----------------------------------------------------------------------------

_BASES_FIX = "delete it and run `factory bootstrap`"


@dataclass(frozen=True)
class BaseImage:
    """One arch's runtime base image as ``bases.lock`` records it.

    ``ref`` is ``<repo>@sha256:…``; ``tag`` the human tag it was pushed under;
    ``source`` ``"bootstrap"`` (built here from ``recipe_sha256``'s recipe) or ``"upstream"``
    (configured ``image``, no recipe); ``debian_python`` the Debian version of the interpreter
    package (None for upstream); ``packages`` every Debian package installed in a
    bootstrapped base, sorted (``debpackages.DebPackage``; empty for upstream bases and for
    entries written before package locks).
    """

    arch: str
    ref: str
    tag: str
    source: str
    recipe_sha256: str | None = None
    debian_python: str | None = None
    packages: tuple[DebPackage, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The entry as bases.lock stores it."""
        return {
            "arch": self.arch,
            "ref": self.ref,
            "tag": self.tag,
            "source": self.source,
            "recipe_sha256": self.recipe_sha256,
            "debian_python": self.debian_python,
            **({"packages": [p.to_json() for p in self.packages]} if self.packages else {}),
        }

    @classmethod
    def from_json(cls, data: object, where: str = "base") -> BaseImage:
        """From ``to_json``'s form; ``ArtifactError`` naming ``where`` if it is not."""
        d = _check(
            data,
            where,
            _BASES_FIX,
            {"arch": "str", "ref": "str", "tag": "str", "source": "str"},
            {"recipe_sha256": "str?", "debian_python": "str?", "packages": "list"},
        )
        if d["source"] not in ("bootstrap", "upstream"):
            raise ArtifactError(f"{where}.source is {d['source']!r}, not bootstrap or upstream", _BASES_FIX)
        try:
            packages = tuple(DebPackage.from_json(p) for p in d.get("packages", []))
        except (KeyError, TypeError):
            raise ArtifactError(f"{where}.packages has an entry without name, version, arch, sha256 and filename", _BASES_FIX) from None
        return cls(d["arch"], d["ref"], d["tag"], d["source"], d.get("recipe_sha256"), d.get("debian_python"), packages)


@dataclass(frozen=True)
class BaseImagesLock:
    """``bases.lock``: ``{"python": …, "bases": {arch: BaseImage}}``."""

    SCHEMA = "schemas/bases-lock.schema.json"

    python: str
    bases: Mapping[str, BaseImage] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON object bases.lock holds (arches sorted)."""
        return {"python": self.python, "bases": {a: b.to_json() for a, b in sorted(self.bases.items())}}

    @classmethod
    def from_json(cls, data: object, where: str = "bases.lock") -> BaseImagesLock:
        """From ``to_json``'s form; ``ArtifactError`` if not (also when an entry's ``arch``
        differs from its key)."""
        d = _check(data, where, _BASES_FIX, {"python": "str", "bases": "object"})
        bases = {arch: BaseImage.from_json(e, f"{where}: bases.{arch}") for arch, e in d["bases"].items()}
        _same_arch(bases, where, "bases", _BASES_FIX)
        return cls(python=d["python"], bases=bases)

    @classmethod
    def load(cls, path: Path) -> BaseImagesLock:
        """Read ``path``; ``ArtifactError`` if it is missing, not JSON or not of this form."""
        return cls.from_json(_read(path, "run `factory bootstrap` to write it"), str(path))

    def dump(self, path: Path) -> None:
        """Write ``path`` atomically (temporary sibling, then rename); ``OutputError`` if refused."""
        _write(path, self.to_json())


def _same_arch(entries: Mapping[str, BaseImage | BuilderImage], where: str, key: str, fix: str) -> None:
    for arch, entry in entries.items():
        if entry.arch != arch:
            raise ArtifactError(f"{where}: {key}.{arch} is the entry of arch {entry.arch!r}", fix)


# -- builders.lock -------------------------------------------------------------------------

_BUILDERS_FIX = "delete it; the next build that needs a builder bootstraps it again"


@dataclass(frozen=True)
class BuilderImage:
    """One arch's builder image (the sdist lane's cibuildwheel image) as ``builders.lock``
    records it: ``ref`` ``<repo>@sha256:…``, ``tag`` the human tag, ``inputs_sha256`` the
    builder key (``builders.builder_key``: recipe, Dockerfile, tool wheels)."""

    arch: str
    ref: str
    tag: str
    inputs_sha256: str

    def to_json(self) -> dict[str, str]:
        """The entry as builders.lock stores it."""
        return {"arch": self.arch, "ref": self.ref, "tag": self.tag, "inputs_sha256": self.inputs_sha256}

    @classmethod
    def from_json(cls, data: object, where: str = "builder") -> BuilderImage:
        """From ``to_json``'s form; ``ArtifactError`` naming ``where`` if it is not."""
        d = _check(data, where, _BUILDERS_FIX, {"arch": "str", "ref": "str", "tag": "str", "inputs_sha256": "str"})
        return cls(d["arch"], d["ref"], d["tag"], d["inputs_sha256"])

    @classmethod
    def from_legacy_json(cls, data: object, where: str = "builder") -> BuilderImage:
        """From the bases.lock-shaped entry builders.lock held before: the builder key was
        stored as ``recipe_sha256`` (``source`` was always ``bootstrap``, ``debian_python``
        null). The key is kept as is, so the recorded builder stays current."""
        legacy = BaseImage.from_json(data, where)
        if legacy.recipe_sha256 is None:
            raise ArtifactError(f"{where} has no recipe_sha256 (the builder key)", _BUILDERS_FIX)
        return cls(legacy.arch, legacy.ref, legacy.tag, legacy.recipe_sha256)


@dataclass(frozen=True)
class BuilderImagesLock:
    """``builders.lock``: ``{"python": …, "builders": {arch: BuilderImage}}``.

    ``from_json`` also reads the former ``{"python": …, "bases": {arch: {…, "recipe_sha256":
    <builder key>}}}`` form; ``to_json`` always writes the ``builders`` form.
    """

    SCHEMA = "schemas/builders-lock.schema.json"

    python: str
    builders: Mapping[str, BuilderImage] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON object builders.lock holds (arches sorted)."""
        return {"python": self.python, "builders": {a: b.to_json() for a, b in sorted(self.builders.items())}}

    @classmethod
    def from_json(cls, data: object, where: str = "builders.lock") -> BuilderImagesLock:
        """From ``to_json``'s form or the former bases-shaped one; ``ArtifactError`` if neither."""
        if isinstance(data, dict) and "bases" in data and "builders" not in data:
            d = _check(data, where, _BUILDERS_FIX, {"python": "str", "bases": "object"})
            builders = {arch: BuilderImage.from_legacy_json(e, f"{where}: bases.{arch}") for arch, e in d["bases"].items()}
            _same_arch(builders, where, "bases", _BUILDERS_FIX)
        else:
            d = _check(data, where, _BUILDERS_FIX, {"python": "str", "builders": "object"})
            builders = {arch: BuilderImage.from_json(e, f"{where}: builders.{arch}") for arch, e in d["builders"].items()}
            _same_arch(builders, where, "builders", _BUILDERS_FIX)
        return cls(python=d["python"], builders=builders)

    @classmethod
    def load(cls, path: Path) -> BuilderImagesLock:
        """Read ``path``; ``ArtifactError`` if it is missing, not JSON or not of either form."""
        return cls.from_json(_read(path, "build an sdist to bootstrap the builders"), str(path))

    def dump(self, path: Path) -> None:
        """Write ``path`` atomically (temporary sibling, then rename); ``OutputError`` if refused."""
        _write(path, self.to_json())
