"""The one configuration object, built once from pyproject.toml, FACTORY_* and defaults.

Sources, later wins: built-in defaults < ``[tool.factory]`` in pyproject.toml <
``FACTORY_<KEY>`` environment variables (key upper-cased, ``-`` -> ``_``), the same
layering cibuildwheel uses for ``[tool.cibuildwheel]`` and ``CIBW_*``.

The defaults work in any directory, like ``pipx run cibuildwheel``: the Dockerfiles,
bootstrap recipes, toolchain and build-backend locks are files shipped in the package
(``factory/resources``, see ``resources.py``); the cache and the bootstrap outputs
(``bases.lock``, ``builders.lock``) go to the user cache directory. Nothing resolves to a
path factory would write inside the installed package.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from . import parallel, resources
from .errors import ConfigError
from .service import ServiceSpec, load_service, runtime_packages
from .smokespec import SmokeSpec, parse_smoke
from .targets import Arch, Target, lane_abi, parse_target

# Bump when the bootstrap procedure itself changes, so every recipe hash changes.
RECIPE_VERSION = 5




REMOTE_CACHE_MODES = ("pull-push", "pull")


@dataclass(frozen=True)
class RemoteSpec:
    """``remote-cache = "<address>/<repository>"`` and its ``mode`` (``pull-push``, or
    ``pull`` for untrusted runs: they read the cache and never write it)."""

    address: str
    repository: str
    mode: str = "pull-push"

    @classmethod
    def parse(cls, value: str, mode: str = "pull-push") -> RemoteSpec:
        """``host:port/repo/name`` → spec. ``ConfigError`` for a value without a repository
        or an unknown mode."""
        address, sep, repository = value.strip().partition("/")
        if not sep or not address or not repository or ":" in repository:
            raise ConfigError(f"remote-cache {value!r} is not <registry>/<repository>", 'write it as e.g. "127.0.0.1:5555/factory/buildcache"')
        if mode not in REMOTE_CACHE_MODES:
            raise ConfigError(f"remote-cache-mode {mode!r} is not one of {', '.join(REMOTE_CACHE_MODES)}", 'use "pull-push", or "pull" for untrusted runs')
        return cls(address, repository, mode)

    @property
    def push(self) -> bool:
        """Whether this run writes to the cache."""
        return self.mode == "pull-push"


@dataclass(frozen=True)
class Packaged:
    """A default naming a file shipped in ``factory/resources`` (``name`` relative to it)."""

    name: str


BASE_RECIPE = Packaged("images/recipes/forky-slim.toml")

# "" for a path key: derived at load time (see load_config). Packaged(...): a file shipped
# with factory, used unless [tool.factory] or FACTORY_* names another; relative paths given
# there are relative to the pyproject.toml (or the current directory without one).
DEFAULTS: dict[str, Any] = {
    "python": "3.14.8",
    # "" or "cp314": the default (GIL) lane; "cp314t": the free-threaded lane.
    "abi": "",
    "targets": [
        "manylinux_2_28_x86_64",
        "manylinux_2_28_aarch64",
        "musllinux_1_2_x86_64",
        "musllinux_1_2_aarch64",
    ],
    "index-url": "https://pypi.org/simple/",
    "ca-bundle": "system",
    "lock": "requirements.lock",
    "toolchain": Packaged("constraints/toolchain.txt"),
    # "": <cache-dir>/bases.lock. Its refs point into the local registry, whose data is
    # under <cache-dir>/registry by default, so the two are kept (and wiped) together.
    "bases-lock": "",
    # "": platformdirs.user_cache_dir("factory"), e.g. ~/.cache/factory.
    "cache-dir": "",
    "registry": "127.0.0.1:5555",
    "registry-local": True,
    # true: re-hash every cached file on reuse, whatever its stamp says (cache.FileCache)
    "verify-cache": False,
    "registry-dir": "",
    "registry-htpasswd": "",
    "dockerfile": Packaged("images/runtime.Dockerfile"),
    "repository": "factory/app",
    "base-repository": "factory/python",
    "uid": 10001,
    "jobs": 4,
    "builder-recipe": Packaged("images/recipes/forky-builder.toml"),
    "builder-dockerfile": Packaged("images/builder.Dockerfile"),
    # The library builder (host arch only): builds resources/libraries recipes with zig.
    "library-builder-recipe": Packaged("images/recipes/forky-libbuilder.toml"),
    # "": <cache-dir>/builders.lock, for the same reason as bases-lock.
    "builders-lock": "",
    "builder-repository": "factory/builder",
    "build-constraints": Packaged("constraints/build.txt"),
    "build-timeout": 1800,
    # "auto": one cell per core, at most one per parallel.GIB_PER_CELL GiB of available memory.
    "build-jobs": "auto",
    # The app image's org.opencontainers.image.{title,description,source} (labels and OCI
    # annotations). "": [project] name, [project] description, and the first of
    # [project.urls] Source/Repository/Homepage, else the repository's name, a generic
    # description and no source.
    "image-title": "",
    "image-description": "",
    "image-source": "",
    # true: a rebuilt base may record another package set than bases.lock (a moved mirror).
    "update-packages": False,
    # How the app layer is made: "host" (pypa/installer on the host, pycs by the native
    # base; nothing of the target arch runs), "dockerfile" (`dockerfile`'s RUN pip install,
    # arm64 under QEMU), "auto": host unless `dockerfile` is set or the bases are not
    # bootstrapped from one recipe.
    "image-assembly": "auto",
    # Where build locks generated for sdists whose build-system.requires conflict with
    # build-constraints are written (one <project>.txt each, to review and commit); "": none
    # are generated, such a cell fails naming the conflict.
    "build-overrides-dir": "constraints/build-overrides",
    # false: every docker build runs without the engine's layer cache (docker build
    # --no-cache), as the reproducibility test does for its two clean builds.
    "engine-cache": True,
    # The shared build cache in a registry: "<address>/<repository>" ("": none), and
    # "pull-push" or "pull" (untrusted runs read it, never write it). See remotecache.py.
    "remote-cache": "",
    "remote-cache-mode": "pull-push",
}
# Keys of the service a project ships (core/service.py).
SERVICE_KEYS = frozenset({"image", "app-files", "app-dir", "runtime-packages", "package"})
# What a project lock (uv.lock, poetry.lock, pdm.lock) exports, in uv's words (with `package`).
EXPORT_KEYS = frozenset({"groups", "extras"})
# The locks looked for in the project's directory when `lock` is not set, in this order.
LOCK_NAMES = ("uv.lock", "pylock.toml", "poetry.lock", "pdm.lock", "requirements.lock")
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# A recipe's ``snapshot`` names a state of the Debian archive (snapshot.debian.org's URL scheme).
SNAPSHOT_ARCHIVE = "https://snapshot.debian.org/archive/debian"
_PINNED_IMAGE_RE = re.compile(r"^[^@\s]+:[^@:/\s]+@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Recipe:
    """A bootstrap recipe (``resources/images/recipes/*.toml``): a Debian suite and package list."""

    path: Path
    suite: str
    mirror: str
    variant: str
    python_package: str
    packages: tuple[str, ...]
    path_exclude: tuple[str, ...]
    path_include: tuple[str, ...]
    # Packages of the dependency closure that are not unpacked (``variant = "extract"``
    # only): those that only maintainer scripts use, such as debconf.
    drop_packages: tuple[str, ...] = ()
    # Multi-arch: ``foreign_packages`` installed as ``name:<arch>`` for each of
    # ``foreign_arches`` other than the rootfs's own (e.g. Rust's std for another target).
    foreign_arches: tuple[str, ...] = ()
    foreign_packages: tuple[str, ...] = ()
    # A project's ``runtime-packages``, already among ``packages``: the base is then its own
    # (another digest, cache entry and tag) and the recipe's other users keep theirs.
    runtime_packages: tuple[str, ...] = ()

    def with_runtime_packages(self, names: tuple[str, ...]) -> Recipe:
        """This recipe with the Debian packages ``names`` added (itself when there are none)."""
        if not names:
            return self
        return replace(self, packages=tuple(dict.fromkeys((*self.packages, *names))), runtime_packages=names)

    def foreign(self, arch: str) -> tuple[str, ...]:
        """The foreign Debian arches of a rootfs for ``arch``."""
        return tuple(a for a in self.foreign_arches if a != arch)

    def digest(self, arch: str, python: str) -> str:
        """sha256 hex of everything that determines the rootfs for ``arch`` (``amd64``/``arm64``)."""
        data = {
            "recipe_version": RECIPE_VERSION,
            "arch": arch,
            "python": python,
            "suite": self.suite,
            "mirror": self.mirror,
            "variant": self.variant,
            "python_package": self.python_package,
            "packages": list(self.packages),
            "path_exclude": list(self.path_exclude),
            "path_include": list(self.path_include),
        }
        if self.drop_packages:  # only then: the builder recipes' hashes (and builders.lock) stay as they were
            data["drop_packages"] = list(self.drop_packages)
        if self.foreign(arch) and self.foreign_packages:
            data["foreign"] = [list(self.foreign(arch)), list(self.foreign_packages)]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class BaseSpec:
    """Where the base image for one arch comes from: exactly one of ``recipe`` or ``image``.

    ``image`` is an upstream reference pinned by tag and digest
    (``name:3.14.8-slim@sha256:<64 hex>``), for hosts that can reach a registry.
    """

    arch: str
    recipe: Recipe | None = None
    image: str | None = None


@dataclass(frozen=True)
class Config:
    """Everything the stages need. Paths are absolute.

    ``root`` is the directory of the pyproject.toml read, or the current directory when
    there is none; ``packaged`` names the keys that resolved to files shipped with factory.
    """

    root: Path
    python: str
    targets: tuple[Target, ...]
    index_url: str
    ca_bundle: Path | None
    lock: Path
    toolchain: Path
    bases_lock: Path
    cache_dir: Path
    registry: str
    registry_local: bool
    registry_dir: Path
    registry_htpasswd: Path | None
    dockerfile: Path
    repository: str
    base_repository: str
    uid: int
    jobs: int
    builder_recipe: Path
    builder_dockerfile: Path
    builders_lock: Path
    build_constraints: Path
    builder_repository: str = "factory/builder"
    build_timeout: int = 1800
    build_jobs: int = 1
    image_title: str = ""
    image_description: str = ""
    image_source: str = ""
    update_packages: bool = False
    image_assembly: str = "auto"
    build_overrides_dir: Path | None = None
    # "" (the default lane, cp3XY) or "cp314t" (the free-threaded lane); see targets.lane_abi.
    abi: str = ""
    # True when index-url was set in [tool.factory] or FACTORY_INDEX_URL: it then wins over
    # a lock's own --index-url line.
    index_url_explicit: bool = False
    engine_cache: bool = True
    verify_cache: bool = False
    builder_images: tuple[tuple[str, str], ...] = field(default=())
    build_overrides: tuple[tuple[str, Path], ...] = field(default=())
    library_builder_recipe: Path | None = None
    remote_cache: RemoteSpec | None = None
    # [tool.factory.sdist.<project>]: per-sdist build options, by canonical project name
    sdist_options: tuple[tuple[str, SdistOptions], ...] = field(default=())
    bases: tuple[BaseSpec, ...] = field(default=())
    # [tool.factory.hosts] / FACTORY_DOCKER_HOST_<ARCH>: arch -> Docker host URL of a native engine
    hosts: tuple[tuple[str, str], ...] = field(default=())
    # The service the images ship (core/service.py); None: the dependency image only.
    service: ServiceSpec | None = None
    # False when neither [tool.factory] lock nor FACTORY_LOCK names the lock: the pipeline
    # then looks for one of LOCK_NAMES in the project's directory.
    lock_explicit: bool = True
    # [tool.factory] package, groups, extras: what a project lock exports (locks/export.py).
    export_package: str = ""
    export_groups: tuple[str, ...] = ()
    export_extras: tuple[str, ...] = ()
    # [tool.factory.indexes]: a lock's index URL or uv index name -> the URL to read here.
    indexes: tuple[tuple[str, str], ...] = field(default=())
    # [[tool.uv.index]] of the project's pyproject.toml: (name, url).
    uv_indexes: tuple[tuple[str, str], ...] = field(default=())
    # [tool.factory.smoke] (core/smokespec.py): how smoke starts the service and knows it is ready.
    smoke: SmokeSpec | None = None
    # [tool.factory] runtime-packages: Debian packages added to every bootstrapped base.
    runtime_packages: tuple[str, ...] = ()
    # Keys (e.g. "toolchain") whose file is the one shipped in factory/resources: a command
    # that would rewrite it refuses, since that would write into the installed package.
    packaged: frozenset[str] = field(default=frozenset())

    @property
    def abi_tag(self) -> str:
        """The lane's wheel ABI tag: ``cp314`` (default) or ``cp314t`` (free-threaded)."""
        major, minor = self.python.split(".")[:2]
        return self.abi or f"cp{major}{minor}"

    @property
    def free_threaded(self) -> bool:
        """True in the free-threaded lane."""
        return self.abi.endswith("t")

    def lane_name(self, name: str) -> str:
        """``name`` for this lane: unchanged in the default lane; with ``-cp314t`` before the
        suffix in the free-threaded one (``wheelhouse`` -> ``wheelhouse-cp314t``,
        ``images.lock`` -> ``images-cp314t.lock``), so the lanes never share an output."""
        if not self.free_threaded:
            return name
        stem, dot, suffix = name.partition(".")
        return f"{stem}-{self.abi}{dot}{suffix}"

    def index_here(self, lock_index: str) -> str | None:
        """The simple-index URL (ending in "/") to read a package from that a lock pins to
        ``lock_index`` (a pylock ``index`` URL): ``[tool.factory.indexes]`` by URL, then by
        the name uv gives that URL; None for PyPI itself, which is ``index_url``'s to serve
        (a configured mirror), else the URL itself."""
        url = lock_index.rstrip("/") + "/"
        mapped = dict(self.indexes)
        names = [name for name, u in self.uv_indexes if u.rstrip("/") + "/" == url]
        for key in (lock_index, url, url.rstrip("/"), *names):
            if key in mapped:
                return mapped[key].rstrip("/") + "/"
        if url in (DEFAULTS["index-url"], "https://pypi.org/simple/", "https://pypi.python.org/simple/"):
            return None
        return url

    def index_for(self, lock_index_url: str | None) -> str:
        """The index to read for a lock: the configured one when set explicitly, else the
        lock's own ``--index-url`` line if it has one, else the default."""
        if lock_index_url and not self.index_url_explicit:
            return lock_index_url.rstrip("/") + "/"
        return self.index_url

    @property
    def arches(self) -> tuple[str, ...]:
        """Image architectures, ``amd64`` then ``arm64``."""
        return tuple(b.arch for b in self.bases)

    def base(self, arch: str) -> BaseSpec:
        """The base spec for ``arch``; ``ConfigError`` if none is configured."""
        for b in self.bases:
            if b.arch == arch:
                return b
        raise ConfigError(f"no base image configured for {arch}", f"add [tool.factory.base.{arch}]")

    def host_for(self, arch: str) -> str | None:
        """The Docker host configured for ``arch`` (``ssh://…``, ``tcp://…``, ``unix://…``),
        or None when that arch's containers run on the local engine."""
        return dict(self.hosts).get(arch)

    def image_target(self, arch: str) -> Target:
        """The glibc (manylinux) target whose wheels go into the ``arch`` image."""
        for t in self.targets:
            if t.libc == "manylinux" and t.docker_arch == arch:
                return t
        raise ConfigError(
            f"no manylinux target for the {arch} image",
            f"add manylinux_2_28_{Arch(arch).machine} to targets",
        )

    def builder_image(self, target: Target) -> str | None:
        """The upstream builder image configured for ``target`` (``[tool.factory.builders]``,
        e.g. ``quay.io/pypa/musllinux_1_2_x86_64:2026.11.01-1@sha256:…``), or None when the
        builder is bootstrapped here from ``builder-recipe``."""
        return dict(self.builder_images).get(target.name)

    def sdist_options_for(self, project: str) -> SdistOptions:
        """The ``[tool.factory.sdist.<project>]`` options of ``project`` (any spelling of
        its name), or the empty ``SdistOptions``."""
        from packaging.utils import canonicalize_name

        return dict(self.sdist_options).get(canonicalize_name(project), SdistOptions())

    def build_timeout_for(self, project: str) -> int:
        """Seconds a cell of ``project`` may build: its ``[tool.factory.sdist.<project>]``
        ``build-timeout``, else the run's ``build-timeout``."""
        return self.sdist_options_for(project).build_timeout or self.build_timeout

    def with_targets(self, names: list[str]) -> Config:
        """A copy restricted to the targets ``names`` (``UnknownTargetError`` if one is bad)."""
        return replace(self, targets=tuple(parse_target(n, self.abi) for n in names))

    def with_abi(self, abi: str) -> Config:
        """A copy in the lane of ``abi`` (``cp314`` or ``cp314t``); ``ConfigError`` for another."""
        lane = _lane(abi, self.python)
        return replace(self, abi=lane, targets=tuple(parse_target(t.name, lane) for t in self.targets))


def _lane(abi: str, python: str) -> str:
    try:
        return lane_abi(abi, python)
    except ValueError as e:
        major, minor = python.split(".")[:2]
        raise ConfigError(f"{e} (python {python})", f"set abi to cp{major}{minor} or cp{major}{minor}t") from None


def _env_key(key: str) -> str:
    return "FACTORY_" + key.upper().replace("-", "_")


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{key}={value!r} is not a boolean", f"set {key} to true or false")


def _as_int(key: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r} is not a whole number", f"set {key} to an integer") from None


def _project_source(project: Mapping[str, Any]) -> str:
    """The first of ``[project.urls]`` Source, Repository, Homepage (any case), or ""."""
    urls = project.get("urls", {})
    by_name = {str(k).lower(): str(v) for k, v in urls.items()} if isinstance(urls, dict) else {}
    return next((by_name[k] for k in ("source", "repository", "homepage") if k in by_name), "")


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not one of {', '.join(choices)}", f"set {key} to one of them")
    return str(value)


def _build_jobs(value: Any) -> int:
    """``build-jobs``: ``auto`` (``parallel.auto_build_jobs()``) or a whole number ≥ 1."""
    if value == "auto":
        return parallel.auto_build_jobs()
    jobs = _as_int("build-jobs", value)
    if jobs < 1:
        raise ConfigError(f"build-jobs={value!r} must be at least 1", "set build-jobs to auto or a whole number of 1 or more")
    return jobs


def _ca_bundle(root: Path, value: str) -> Path | None:
    """``system``: the host's bundle (SSL_CERT_FILE, else Debian's) if present; ``""``: none."""
    if value == "system":
        for candidate in (os.environ.get("SSL_CERT_FILE", ""), SYSTEM_CA_BUNDLE):
            if candidate and Path(candidate).is_file():
                return Path(candidate)
        return None
    if not value:
        return None
    path = (root / value).resolve()
    if not path.is_file():
        raise ConfigError(f"ca-bundle {path} does not exist", "set ca-bundle to a PEM file, \"system\" or \"\"")
    return path


def load_recipe(path: Path) -> Recipe:
    """Read a bootstrap recipe TOML. ``ConfigError`` if missing or incomplete."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"bootstrap recipe {path} not found", "point base.<arch>.recipe at an existing file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"bootstrap recipe {path} is not valid TOML: {e}", "fix the file's syntax") from None
    missing = [k for k in ("suite", "python-package", "packages") if k not in data] + ([] if "mirror" in data or "snapshot" in data else ["mirror (or snapshot)"])
    if missing:
        raise ConfigError(f"bootstrap recipe {path} lacks {', '.join(missing)}", "add the missing keys")
    snapshot = str(data.get("snapshot", ""))
    if snapshot and not re.fullmatch(r"\d{8}T\d{6}Z", snapshot):
        raise ConfigError(f"bootstrap recipe {path}: snapshot {snapshot!r} is not a timestamp", 'write it as snapshot.debian.org does, e.g. snapshot = "20261120T000000Z"')
    return Recipe(
        path=path,
        suite=data["suite"],
        mirror=f"{SNAPSHOT_ARCHIVE}/{snapshot}/" if snapshot else data["mirror"],
        variant=data.get("variant", "minbase"),
        python_package=data["python-package"],
        packages=tuple(data["packages"]),
        path_exclude=tuple(data.get("path-exclude", ())),
        path_include=tuple(data.get("path-include", ())),
        drop_packages=tuple(data.get("drop-packages", ())),
        foreign_arches=tuple(data.get("foreign-arches", ())),
        foreign_packages=tuple(data.get("foreign-packages", ())),
    )


def _load_bases(root: Path, table: Mapping[str, Any], env: Mapping[str, str]) -> tuple[BaseSpec, ...]:
    """``[tool.factory.base.<arch>]`` (all arches from the packaged forky-slim recipe when
    the project has no ``base`` table), each overridable by ``FACTORY_BASE_<ARCH>``."""
    bases = []
    for arch in Arch:
        spec = dict(table.get(arch, {}))
        if env.get(_env_key(f"base-{arch}")):
            spec = {"image": env[_env_key(f"base-{arch}")]}
        if not spec:
            continue
        if ("image" in spec) == ("recipe" in spec):
            raise ConfigError(
                f"base.{arch} must set exactly one of 'image' or 'recipe'",
                "keep either the upstream image reference or the bootstrap recipe",
            )
        if "image" in spec:
            if not _PINNED_IMAGE_RE.match(spec["image"]):
                raise ConfigError(
                    f"base.{arch} image {spec['image']!r} is not pinned by tag and digest",
                    "write it as name:3.14.8-slim@sha256:<64 hex digits>",
                )
            bases.append(BaseSpec(arch=arch, image=spec["image"]))
        else:
            recipe = spec["recipe"]
            path = resources.path(recipe.name) if isinstance(recipe, Packaged) else (root / str(recipe)).resolve()
            bases.append(BaseSpec(arch=arch, recipe=load_recipe(path)))
    return tuple(bases)


def _with_runtime_packages(bases: tuple[BaseSpec, ...], names: tuple[str, ...]) -> tuple[BaseSpec, ...]:
    """``bases`` with ``names`` added to each recipe. ``ConfigError`` for an upstream base:
    its packages would come from its own package manager at build time, unpinned by sha256."""
    upstream = [b.arch for b in bases if b.image is not None]
    if names and upstream:
        raise ConfigError(
            f"runtime-packages cannot be added to the upstream base of {', '.join(upstream)}: factory pins every package of a base by sha256, "
            "and an upstream image's package manager would install them unpinned at build time",
            "bootstrap that base from a recipe (remove its image =), or use an upstream image that already has the packages",
        )
    return tuple(replace(b, recipe=b.recipe.with_runtime_packages(names)) if b.recipe else b for b in bases)


HOST_SCHEMES = ("unix://", "tcp://", "ssh://")
ARCHES = tuple(a.value for a in Arch)


def _load_hosts(table: Any, env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """``[tool.factory.hosts]`` / ``FACTORY_DOCKER_HOST_<ARCH>`` (the variable wins): arch ->
    the Docker host URL whose engine runs that arch's containers natively. ``ConfigError`` for
    an arch other than amd64/arm64 or a URL that is not unix://, tcp:// or ssh://."""
    if not isinstance(table, dict):
        raise ConfigError("[tool.factory] hosts is not a table", 'write it as [tool.factory.hosts] with arm64 = "ssh://user@arm-host"')
    unknown = sorted(set(table) - set(ARCHES))
    if unknown:
        raise ConfigError(f"hosts.{unknown[0]}: not an arch", f"use one of {', '.join(ARCHES)}")
    hosts = {}
    for arch in ARCHES:
        url = env.get(f"FACTORY_DOCKER_HOST_{arch.upper()}") or table.get(arch) or ""
        if not url:
            continue
        if not isinstance(url, str) or not url.startswith(HOST_SCHEMES):
            raise ConfigError(f"hosts.{arch} = {url!r} is not a Docker host URL", "write it as ssh://user@host, tcp://host:2376 or unix:///path/docker.sock")
        hosts[arch] = url
    return tuple(sorted(hosts.items()))


def _load_builder_images(table: Mapping[str, Any], targets: tuple[Target, ...], env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """``[tool.factory.builders]`` / ``FACTORY_BUILDER_<TARGET>``: target name -> upstream image
    pinned by tag and digest (registry mode: plain cibuildwheel in e.g. pypa's musllinux image)."""
    images = dict(table)
    for t in targets:
        if env.get(_env_key(f"builder-{t.name}")):
            images[t.name] = env[_env_key(f"builder-{t.name}")]
    names = {t.name for t in targets}
    for name, image in images.items():
        if name not in names:
            raise ConfigError(f"builders.{name}: not a configured target", f"use one of {', '.join(sorted(names))}")
        if not isinstance(image, str) or not _PINNED_IMAGE_RE.match(image):
            raise ConfigError(
                f"builders.{name} image {image!r} is not pinned by tag and digest",
                "write it as quay.io/pypa/<target image>:<tag>@sha256:<64 hex digits>",
            )
    return tuple(sorted(images.items()))


@dataclass(frozen=True)
class SdistOptions:
    """``[tool.factory.sdist.<project>]``: cibuildwheel's per-package options, as its users
    know them (https://cibuildwheel.pypa.io/en/stable/options/), run in the builder.

    ``before_all`` / ``before_build``: shell commands (``CIBW_BEFORE_ALL``/``_BEFORE_BUILD``);
    ``environment``: variables added to the build's (values as shell words);
    ``repair_wheel_command``: replaces the factory's repair (``{wheel}``, ``{dest_dir}``);
    ``libraries``: library recipes (``resources/libraries``) to build and link, added to
    those the sdist's includes ask for; ``build_timeout``: seconds each of its cells may
    build, replacing the run's ``build-timeout`` (a large C++ sdist such as grpcio). Empty
    strings and tables, and 0, mean "not set".
    """

    before_all: str = ""
    before_build: str = ""
    environment: tuple[tuple[str, str], ...] = ()
    repair_wheel_command: str = ""
    libraries: tuple[str, ...] = ()
    build_timeout: int = 0


_SDIST_KEYS = {"before-all", "before-build", "environment", "repair-wheel-command", "libraries", "build-timeout"}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _load_sdist_options(table: Mapping[str, Any]) -> tuple[tuple[str, SdistOptions], ...]:
    """``[tool.factory.sdist]``: project name -> ``SdistOptions``. ``ConfigError`` naming the
    first unknown key or value of the wrong type."""
    from packaging.utils import canonicalize_name

    if not isinstance(table, Mapping):
        raise ConfigError("[tool.factory.sdist] is not a table", "write one [tool.factory.sdist.<project>] table per sdist")
    out = []
    for name, opts in table.items():
        where = f"sdist.{name}"
        if not isinstance(opts, Mapping):
            raise ConfigError(f"{where} is not a table", f"write it as [tool.factory.sdist.{name}]")
        unknown = set(opts) - _SDIST_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown keys {', '.join(sorted(unknown))}", f"use {', '.join(sorted(_SDIST_KEYS))}")
        for key in ("before-all", "before-build", "repair-wheel-command"):
            if not isinstance(opts.get(key, ""), str):
                raise ConfigError(f"{where}.{key} must be a string", "write the shell command as one string")
        env = opts.get("environment", {})
        if not isinstance(env, Mapping) or not all(isinstance(v, str) and _ENV_NAME.match(k) for k, v in env.items()):
            raise ConfigError(f"{where}.environment must map variable names to strings", 'write it as environment = { CFLAGS = "-O2" }')
        libraries = opts.get("libraries", [])
        if not isinstance(libraries, list) or not all(isinstance(v, str) for v in libraries):
            raise ConfigError(f"{where}.libraries must be a list of recipe names", 'write it as libraries = ["zlib"]')
        timeout = opts.get("build-timeout", 0)
        if not isinstance(timeout, int) or isinstance(timeout, bool) or (timeout and timeout < 60):
            raise ConfigError(f"{where}.build-timeout must be whole seconds, at least 60", "write it as build-timeout = 3600")
        out.append((
            canonicalize_name(name),
            SdistOptions(
                before_all=opts.get("before-all", ""), before_build=opts.get("before-build", ""),
                environment=tuple(sorted(env.items())), repair_wheel_command=opts.get("repair-wheel-command", ""),
                libraries=tuple(sorted(set(libraries))), build_timeout=timeout,
            ),
        ))  # fmt: skip
    return tuple(sorted(out))


def _load_build_overrides(root: Path, table: Mapping[str, Any]) -> tuple[tuple[str, Path], ...]:
    """``[tool.factory.build-overrides]``: project name -> a build constraints lock of its own."""
    from packaging.utils import canonicalize_name

    out = []
    for name, value in table.items():
        path = (root / str(value)).resolve()
        if not path.is_file():
            raise ConfigError(f"build-overrides.{name}: {path} not found", "point it at a hashed lock compiled like factory's packaged constraints/build.txt")
        out.append((canonicalize_name(name), path))
    return tuple(sorted(out))


def _read_table(pyproject: Path | str | None) -> tuple[Path, Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]]:
    """The project root, its ``[tool.factory]`` table, its ``[project]`` table ({} when absent)
    and the whole parsed file ({} without one).

    ``None``: ``./pyproject.toml`` if there is one, else no file (root: the current
    directory). An explicitly named file must exist.
    """
    if pyproject is None:
        path = Path("pyproject.toml").resolve()
        if not path.is_file():
            return path.parent, {}, {}, {}
    else:
        path = Path(pyproject).resolve()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} not found", "pass --config an existing pyproject.toml, or leave --config out to use the defaults") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}", "fix the file's syntax") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})", "save it as UTF-8 (TOML requires it)") from None
    except OSError as e:
        raise ConfigError(f"{path} cannot be read: {e.strerror}", "pass --config a readable pyproject.toml") from None
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: [tool] is not a table", "write it as a [tool] table ([tool.factory], …)")
    table = tool.get("factory", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.factory] is not a table", "write it as a [tool.factory] table")
    project = data.get("project", {})
    return path.parent, table, project if isinstance(project, dict) else {}, data


def _load_indexes(table: object) -> tuple[tuple[str, str], ...]:
    """``[tool.factory.indexes]``: ``"<lock's index URL or uv index name>" = "<URL here>"``."""
    if not isinstance(table, dict):
        raise ConfigError("[tool.factory.indexes] is not a table", 'map each index to its URL here: [tool.factory.indexes] internal = "https://mirror/simple/"')
    out = []
    for key, url in table.items():
        if not isinstance(url, str) or not re.match(r"^(https?|file)://[^\s]+$", url):
            raise ConfigError(f"indexes.{key} = {url!r} is not an index URL", 'give the simple index URL, e.g. "https://mirror.example/simple/"')
        out.append((str(key), url))
    return tuple(out)


def _uv_indexes(data: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The (name, url) of each ``[[tool.uv.index]]`` in the pyproject.toml (uv's named indexes)."""
    tool = data.get("tool")
    uv = tool.get("uv") if isinstance(tool, Mapping) else None
    entries = uv.get("index") if isinstance(uv, Mapping) else None
    if not isinstance(entries, list):
        return ()
    return tuple((str(e["name"]), str(e["url"])) for e in entries if isinstance(e, Mapping) and "name" in e and "url" in e)


def _target_names(value: object) -> list[str]:
    """``targets`` as a list of names: a list of strings, or one string of names separated
    by commas or spaces (as ``FACTORY_TARGETS`` is read). ``ConfigError`` otherwise."""
    if isinstance(value, str):
        return value.replace(",", " ").split()
    if not isinstance(value, list | tuple) or not all(isinstance(t, str) for t in value):
        raise ConfigError(f"targets = {value!r} is not a list of target names", 'give a list: targets = ["manylinux_2_28_x86_64"]')
    return list(value)


def _name_list(key: str, value: object) -> list[object]:
    if not isinstance(value, list):
        raise ConfigError(f"{key} = {value!r} is not a list", f'give a list of names: {key} = ["name"]')
    return value


def _name_key(key: str, value: object) -> str:
    if not isinstance(value, str) or (value and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value)):
        raise ConfigError(f"{key}: {value!r} is not a project, group or extra name", "use the name as pyproject.toml spells it")
    return value


def load_config(pyproject: Path | str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Build the ``Config`` from ``pyproject`` (its ``[tool.factory]`` table) and ``env``.

    ``pyproject`` None means ``./pyproject.toml`` if present, else defaults rooted at the
    current directory; a file without ``[tool.factory]`` also gives the defaults. ``env``
    defaults to ``os.environ``. Raises ``ConfigError`` for a named file that is missing or
    unreadable, or a bad value; ``UnknownTargetError`` for a bad target name.
    """
    env = os.environ if env is None else env
    root, table, project, data = _read_table(pyproject)
    unknown = set(table) - set(DEFAULTS) - {"base", "builders", "build-overrides", "sdist", "hosts", "indexes", "smoke"} - SERVICE_KEYS - EXPORT_KEYS
    if unknown:
        raise ConfigError(f"unknown [tool.factory] keys: {', '.join(sorted(unknown))}", "remove or rename them")

    values: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        value = table.get(key, default)
        if _env_key(key) in env:
            raw = env[_env_key(key)]
            value = raw.replace(",", " ").split() if key == "targets" else raw
        values[key] = value

    def path_of(key: str) -> Path:
        value = values[key]
        if isinstance(value, Packaged):
            return resources.path(value.name)
        return (root / str(value)).resolve()

    cache_dir = path_of("cache-dir") if values["cache-dir"] else Path(platformdirs.user_cache_dir("factory")).resolve()

    def path_or(key: str, default: Path) -> Path:
        return path_of(key) if values[key] else default

    python = str(values["python"])
    if not re.fullmatch(r"3\.\d+\.\d+", python):
        raise ConfigError(f"python={python!r} is not a patch version", "set python to e.g. \"3.14.8\"")
    abi = _lane(str(values["abi"]), python)
    targets = tuple(parse_target(t, abi) for t in _target_names(values["targets"]))
    if not targets:
        raise ConfigError("no targets configured", "list at least one target in [tool.factory] targets")
    ca_bundle = _ca_bundle(root, str(values["ca-bundle"]))
    base_table = table.get("base", {"amd64": {"recipe": BASE_RECIPE}, "arm64": {"recipe": BASE_RECIPE}})
    runtime = runtime_packages(env[_env_key("runtime-packages")].replace(",", " ").split() if _env_key("runtime-packages") in env else table.get("runtime-packages", []))
    bases = _with_runtime_packages(_load_bases(root, base_table, env), runtime)
    service = load_service(root, data, table, env)
    smoke = parse_smoke(table["smoke"]) if "smoke" in table else None
    if smoke is not None and service is None:
        raise ConfigError(
            "[tool.factory.smoke] is set but the project ships no service to start",
            "add [tool.factory.image] with the service's command, or remove [tool.factory.smoke]",
        )
    return Config(
        root=root,
        python=python,
        targets=targets,
        index_url=str(values["index-url"]).rstrip("/") + "/",
        index_url_explicit="index-url" in table or _env_key("index-url") in env,
        abi=abi,
        ca_bundle=ca_bundle,
        lock=path_of("lock"),
        toolchain=path_of("toolchain"),
        bases_lock=path_or("bases-lock", cache_dir / "bases.lock"),
        cache_dir=cache_dir,
        registry=str(values["registry"]).rstrip("/"),
        registry_local=_as_bool("registry-local", values["registry-local"]),
        verify_cache=_as_bool("verify-cache", values["verify-cache"]),
        registry_dir=path_or("registry-dir", cache_dir / "registry"),
        dockerfile=path_of("dockerfile"),
        registry_htpasswd=path_of("registry-htpasswd") if values["registry-htpasswd"] else None,
        repository=str(values["repository"]),
        base_repository=str(values["base-repository"]),
        uid=_as_int("uid", values["uid"]),
        jobs=max(1, _as_int("jobs", values["jobs"])),
        builder_recipe=path_of("builder-recipe"),
        builder_dockerfile=path_of("builder-dockerfile"),
        builders_lock=path_or("builders-lock", cache_dir / "builders.lock"),
        builder_repository=str(values["builder-repository"]),
        build_constraints=path_of("build-constraints"),
        build_timeout=max(60, _as_int("build-timeout", values["build-timeout"])),
        build_jobs=_build_jobs(values["build-jobs"]),
        image_title=str(values["image-title"] or project.get("name") or str(values["repository"]).rsplit("/", 1)[-1]),
        image_description=str(values["image-description"] or project.get("description") or f"Python {python} application image built by factory"),
        image_source=str(values["image-source"] or _project_source(project)),
        update_packages=_as_bool("update-packages", values["update-packages"]),
        image_assembly=_choice("image-assembly", values["image-assembly"], ("auto", "host", "dockerfile")),
        build_overrides_dir=path_of("build-overrides-dir") if values["build-overrides-dir"] else None,
        engine_cache=_as_bool("engine-cache", values["engine-cache"]),
        builder_images=_load_builder_images(table.get("builders", {}), targets, env),
        build_overrides=_load_build_overrides(root, table.get("build-overrides", {})),
        library_builder_recipe=path_of("library-builder-recipe"),
        remote_cache=RemoteSpec.parse(str(values["remote-cache"]), str(values["remote-cache-mode"])) if values["remote-cache"] else None,
        sdist_options=_load_sdist_options(table.get("sdist", {})),
        bases=bases,
        service=service,
        lock_explicit="lock" in table or _env_key("lock") in env,
        export_package=_name_key("package", table.get("package", "")),
        export_groups=tuple(_name_key("groups", g) for g in _name_list("groups", table.get("groups", []))),
        export_extras=tuple(_name_key("extras", e) for e in _name_list("extras", table.get("extras", []))),
        indexes=_load_indexes(table.get("indexes", {})),
        uv_indexes=_uv_indexes(data),
        smoke=smoke,
        runtime_packages=runtime,
        hosts=_load_hosts(table.get("hosts", {}), env),
        packaged=frozenset(k for k, v in values.items() if isinstance(v, Packaged)),
    )
