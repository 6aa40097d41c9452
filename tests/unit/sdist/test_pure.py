"""Pure-Python sdists: which sdists try the one-build route, and which wheels it accepts."""

from __future__ import annotations

from pathlib import Path

from indexserver import make_sdist
from tinysrc import C_SOURCE, c_project

from factory.sdist.archive import inspect_sdist
from factory.sdist.buildcache import PURE_TARGET, pure_key
from factory.sdist.pure import command, is_pure


def _sdist(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    path = tmp_path / f"{name}-1.0.tar.gz"
    path.write_bytes(make_sdist(name, "1.0", files))
    return path


def test_an_sdist_without_compiled_sources_is_a_pure_candidate(tmp_path):
    pure = inspect_sdist(_sdist(tmp_path, "tinypure", {"tinypure/__init__.py": "X = 1\n", "tinypure/data.h": "/* a header */\n"}))
    assert pure.compiled == ()
    compiled = inspect_sdist(_sdist(tmp_path, "tinyc", c_project("tinyc", "_tinyc", C_SOURCE)))
    assert compiled.compiled == ("tinyc-1.0/src/_tinyc.c",)
    rust = inspect_sdist(_sdist(tmp_path, "tinyrs", {"Cargo.toml": "[package]\n", "tinyrs/__init__.py": ""}))
    assert rust.compiled == ("tinyrs-1.0/Cargo.toml",)


def test_only_none_any_wheels_are_pure():
    assert is_pure(Path("tinypure-1.0-py3-none-any.whl"))
    assert is_pure(Path("six-1.17.0-py2.py3-none-any.whl"))
    assert not is_pure(Path("tinyc-1.0-cp314-cp314-linux_x86_64.whl"))
    assert not is_pure(Path("cffi_mod-1.0-py3-none-manylinux_2_28_x86_64.whl"))
    assert not is_pure(Path("abi3mod-1.0-cp39-abi3-linux_x86_64.whl"))


def test_the_pure_build_is_one_cache_entry_for_every_target():
    args = {"python": "3.14.8", "builder": "b@sha256:1", "sdist_sha256": "0" * 64, "toolchain_sha256": "1" * 64, "build_constraints_sha256": "2" * 64}
    key = pure_key(epoch=1, **args)
    assert key.target == PURE_TARGET and key.hexdigest() == pure_key(epoch=1, **args).hexdigest()
    assert key.hexdigest() != pure_key(epoch=2, **args).hexdigest()
    assert "python -m build --wheel" in " ".join(command("x.tar.gz", "x-1.0")).replace("/opt/python/cp314-cp314/bin/", "")
