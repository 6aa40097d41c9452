"""Library recipes built per target: the system libraries an sdist links, from Debian's sources.

For a cell that needs libraries (``recipes``: the headers its sources include, the
``libraries`` of its ``[tool.factory.sdist.<project>]``, or what its failed log named), each
recipe of the closure is built once per target and cached:

1. the **library builder** image, of the host's arch only: ``library-builder-recipe`` (forky
   minbase with make, autotools, cmake) bootstrapped by ``bootstrap.build_rootfs``, kept in
   the local engine as ``factory/libbuilder:<key>`` (it never leaves this machine);
2. the recipe's orig tarball from the Debian mirror of that recipe, checked against the
   recipe's sha256 (``<cache>/libraries/sources/``);
3. its build lines in the library builder with the network off, the zig compilers of the
   sdist lane targeting the wheel target's glibc floor or musl, installed into
   ``/opt/factory/libs`` (the same prefix a cibuildwheel run mounts them at, so the
   ``.pc`` files are right there), on top of the recipes it depends on;
4. the result under ``<cache>/libraries/<key>/prefix`` (written in a temporary sibling and
   renamed), with ``build.log``. The key covers the recipe file, the source sha256, the
   target, the toolchain lock (zig), the zig wrapper and the library builder recipe;
5. a cell's **sysroot**: the union of its recipes' prefixes, ``<cache>/libraries/roots/<key>``.

Nothing here runs code of another arch: zig cross-compiles in the host-arch container.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..bases.bootstrap import build_rootfs, host_arch, scratch_context
from ..core import atomic, debs, resources
from ..core.cache import sha256_file
from ..core.config import Config, load_recipe
from ..core.engine import TIMED_OUT, Engine
from ..core.errors import LibraryRecipeError
from ..core.parallel import KeyedLocks
from ..core.targets import Target
from ..tools import toolchain
from .recipes import RECIPE_DIR, LibraryRecipe, closure

# Bump when this module changes the built libraries in a way no key input shows.
PROCEDURE_VERSION = 1
PREFIX = "/opt/factory/libs"
LOG_TAIL = 12
# Stripped from every prefix: documentation, and libtool archives (they carry build paths).
_DROPPED = ("share/man", "share/info", "share/doc")


def recipe_dir() -> Path:
    """The packaged recipes (``resources/libraries``)."""
    return resources.path(RECIPE_DIR)


def host_triplet(target: Target) -> str:
    """The GNU triplet a recipe's ``--host`` names for ``target``: ``aarch64-linux-gnu``,
    ``x86_64-linux-musl``."""
    return f"{target.arch}-linux-{'musl' if target.libc == 'musllinux' else 'gnu'}"


@dataclass(frozen=True)
class Sysroot:
    """A cell's libraries: ``path`` to mount at ``cibw.LIBS``, the ``recipes`` in it (in
    build order) and ``keys``, the build key of each (hashed into the cell's key)."""

    path: Path
    recipes: tuple[LibraryRecipe, ...]
    keys: tuple[str, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        """``name version`` of each recipe, as the manifest and the matrix show them."""
        return tuple(r.label for r in self.recipes)


class LibraryBuilder:
    """Builds library recipes for targets; one per run, safe to call from several cells.

    ``engine`` and ``zig`` give the run's engine and ``toolchain.zig_root()`` on first need;
    ``once`` is the run's keyed locks, so a recipe is built once per target however many
    cells want it.
    """

    def __init__(self, cfg: Config, engine: Callable[[], Engine], zig: Callable[[], Path], once: KeyedLocks, jobs: int) -> None:
        self.cfg, self._engine, self._zig, self._once, self.jobs = cfg, engine, zig, once, jobs
        self.root = cfg.cache_dir / "libraries"

    def _builder_recipe(self) -> tuple[Path, str]:
        path = self.cfg.library_builder_recipe
        if path is None or not path.is_file():
            raise LibraryRecipeError(f"library builder recipe {path} not found", "point library-builder-recipe at an existing file, or remove it")
        return path, load_recipe(path).digest(host_arch(), self.cfg.python)

    def key(self, recipe: LibraryRecipe, target: Target) -> str:
        """sha256 hex naming ``recipe``'s build for ``target`` (its dependencies' keys included)."""
        deps = [self.key(d, target) for d in closure(recipe.depends, recipe_dir())]
        data = {
            "recipe": recipe.sha256, "source": recipe.source_sha256, "target": target.name,
            "zig_target": toolchain.zig_target(target), "toolchain": sha256_file(self.cfg.toolchain),
            "wrapper": resources.digest(toolchain.ZIG_WRAPPER), "builder": self._builder_recipe()[1],
            "depends": deps, "procedure": PROCEDURE_VERSION,
        }  # fmt: skip
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def builder_digest(self) -> str:
        """The host builder's recipe digest (what its image is made from), for cache keys."""
        return self._builder_recipe()[1]

    def image(self) -> str:
        """The library builder image's local tag, bootstrapped on first need."""
        with self._once("libbuilder"):
            path, digest = self._builder_recipe()
            tag = f"factory/libbuilder:{digest[:16]}"
            engine = self._engine()
            if engine.inspect(tag) is not None:
                return tag
            arch = host_arch()
            rootfs = build_rootfs(self.cfg, load_recipe(path), arch, digest)
            with tempfile.TemporaryDirectory(dir=rootfs.parent) as tmp:
                ctx = Path(tmp) / "context.tar"
                scratch_context(rootfs, ctx)
                with open(ctx, "rb") as f:
                    engine.build(f, tag=tag, platform=f"linux/{arch}", labels={"org.opencontainers.image.title": "factory library builder"})
            return tag

    def source(self, recipe: LibraryRecipe) -> Path:
        """The recipe's orig tarball, downloaded from the library builder recipe's mirror and
        sha256-checked (``LibraryRecipeError`` on a network error or another hash)."""
        path, _ = self._builder_recipe()
        url = load_recipe(path).mirror.rstrip("/") + "/" + recipe.source_path
        with self._once(("libsource", recipe.source_sha256)):
            try:
                return debs.fetch(url, recipe.source_sha256, self.root / "sources" / recipe.source_sha256)
            except debs.DebError as e:
                raise LibraryRecipeError(f"library recipe {recipe.label}: {e}", "check the mirror, or the recipe's source path and sha256") from None

    def prefix(self, recipe: LibraryRecipe, target: Target) -> Path:
        """The installed prefix of ``recipe`` built for ``target`` (its dependencies' files
        included), from the cache or built now. ``LibraryRecipeError`` when the build fails
        (the last log lines and the log's path in it); ``EngineError`` when no container starts."""
        key = self.key(recipe, target)
        entry = self.root / key
        with self._once(("library", key)):
            if (entry / "prefix").is_dir() and (entry / "build.log").is_file():
                return entry / "prefix"
            deps = [self.prefix(d, target) for d in closure(recipe.depends, recipe_dir())]
            image, source, zig = self.image(), self.source(recipe), self._zig()
            zig_cache = self.cfg.cache_dir / "zig-cache"
            zig_cache.mkdir(parents=True, exist_ok=True)
            failed_log = self.root / "failed" / f"{recipe.name}-{target.name}.log"

            def fill(work: Path) -> None:
                prefix = work / "prefix"
                prefix.mkdir()
                for dep in deps:
                    shutil.copytree(dep, prefix, dirs_exist_ok=True, symlinks=True)
                status, logs = self._engine().run(
                    image, ["sh", "-c", _script(recipe)],
                    volumes={
                        str(zig / "zig"): {"bind": "/opt/factory/zig", "mode": "ro"},
                        str(zig / "bin"): {"bind": "/opt/factory/bin", "mode": "ro"},
                        str(zig_cache): {"bind": "/opt/factory/zig-cache", "mode": "rw"},
                        str(source): {"bind": f"/src/{recipe.source_name}", "mode": "ro"},
                        str(prefix): {"bind": PREFIX, "mode": "rw"},
                    },
                    environment=self._environment(target), network=False, timeout=self.cfg.build_timeout,
                )  # fmt: skip
                (work / "build.log").write_text(logs)
                missing = [lib for lib in recipe.libraries if not (prefix / "lib" / f"lib{lib}.a").is_file()]
                if status != 0 or missing:
                    atomic.write_text(failed_log, logs)
                    tail = " | ".join(logs.strip().splitlines()[-3:])[:300]
                    what = "timed out" if status == TIMED_OUT else f"exited {status}" if status else f"installed no lib{missing[0]}.a"
                    raise LibraryRecipeError(f"library recipe {recipe.label} for {target.name} {what}: {tail}", f"see {failed_log}")
                for rel in _DROPPED:
                    shutil.rmtree(prefix / rel, ignore_errors=True)
                for la in prefix.rglob("*.la"):
                    la.unlink()

            atomic.replace_dir(entry, fill)
            return entry / "prefix"

    def _environment(self, target: Target) -> dict[str, str]:
        return {
            "CC": "/opt/factory/bin/cc", "CXX": "/opt/factory/bin/c++", "AR": "/opt/factory/bin/ar", "RANLIB": "/opt/factory/bin/ranlib",
            "FACTORY_ZIG_TARGET": toolchain.zig_target(target), "ZIG_GLOBAL_CACHE_DIR": "/opt/factory/zig-cache",
            "ZIG_LOCAL_CACHE_DIR": "/tmp/zig-local-cache", "PREFIX": PREFIX, "HOST_TRIPLET": host_triplet(target),
            "JOBS": str(self.jobs), "CFLAGS": "-O2 -fPIC", "CXXFLAGS": "-O2 -fPIC", "CPPFLAGS": f"-I{PREFIX}/include",
            "LDFLAGS": f"-L{PREFIX}/lib", "PKG_CONFIG_LIBDIR": f"{PREFIX}/lib/pkgconfig:{PREFIX}/share/pkgconfig",
            "SOURCE_DATE_EPOCH": "315532800",
        }  # fmt: skip

    def sysroot(self, names: Iterable[str], target: Target) -> Sysroot:
        """The union of the prefixes of ``names`` and their dependencies for ``target``, built
        as needed. ``LibraryRecipeError`` for an unknown recipe or a failed build."""
        recipes = closure(names, recipe_dir())
        keys = tuple(self.key(r, target) for r in recipes)
        root = self.root / "roots" / hashlib.sha256(" ".join(keys).encode()).hexdigest()
        with self._once(("sysroot", root.name)):
            if not root.is_dir():
                prefixes = [self.prefix(r, target) for r in recipes]

                def fill(tmp: Path) -> None:
                    for p in prefixes:
                        shutil.copytree(p, tmp, dirs_exist_ok=True, symlinks=True)

                atomic.replace_dir(root, fill)
        return Sysroot(root, recipes, keys)


def keys_of(builder: LibraryBuilder, names: Iterable[str], target: Target) -> tuple[str, ...]:
    """The build keys of ``names``' closure for ``target``, without building anything."""
    return tuple(builder.key(r, target) for r in closure(names, recipe_dir()))


def _script(recipe: LibraryRecipe) -> str:
    """The container's shell script: unpack the orig tarball, then the recipe's lines."""
    return "\n".join([
        "set -ex",
        "mkdir -p /tmp/src && cd /tmp/src",
        f"tar -xf /src/{recipe.source_name} --strip-components=1 --no-same-owner",
        *recipe.build,
    ])  # fmt: skip


def sweep(cache_dir: Path) -> list[Path]:
    """Remove the half-built library entries a killed run left (call with the run lock held)."""
    root = cache_dir / "libraries"
    return atomic.sweep_dir(root) + atomic.sweep_dir(root / "roots")
