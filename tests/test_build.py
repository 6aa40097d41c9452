"""The build stage's pure parts: zig targets, cibuildwheel variables, sdist choice, modules."""

from __future__ import annotations

import zipfile
from pathlib import Path

from pypi_simple import DistributionPackage

from factory.build import best_sdist, cibuildwheel_env, top_level_modules, zig_target
from factory.lockfile import Pin
from factory.targets import parse_target

DEPS, ZIG, ZIG_CACHE = Path("/c/builddeps/t/x"), Path("/c/zig/abc"), Path("/c/zig-cache")


def test_zig_target_is_the_glibc_floor_or_musl():
    assert zig_target(parse_target("manylinux_2_28_aarch64")) == "aarch64-linux-gnu.2.28"
    assert zig_target(parse_target("manylinux_2_17_x86_64")) == "x86_64-linux-gnu.2.17"
    assert zig_target(parse_target("musllinux_1_2_x86_64")) == "x86_64-linux-musl"


def test_bootstrapped_builder_env_is_offline_with_zig():
    env = cibuildwheel_env("3.14.8", parse_target("musllinux_1_2_aarch64"), "r/builder@sha256:1", DEPS, ZIG, ZIG_CACHE, 1700000000, "io.factory.build-cache=ab")
    assert env["CIBW_BUILD"] == "cp314-musllinux_aarch64"
    assert env["CIBW_MUSLLINUX_AARCH64_IMAGE"] == "r/builder@sha256:1"
    engine = env["CIBW_CONTAINER_ENGINE"]
    assert engine.startswith("docker; disable_host_mount: true; create_args: --network=none ")
    assert "--label=io.factory.build-cache=ab" in engine
    assert f"--volume={DEPS}:/opt/factory/deps:ro" in engine and f"--volume={ZIG}/zig:/opt/factory/zig:ro" in engine
    assert "FACTORY_ZIG_TARGET=aarch64-linux-musl" in env["CIBW_ENVIRONMENT"]
    assert "PIP_NO_INDEX=1" in env["CIBW_ENVIRONMENT"] and "SOURCE_DATE_EPOCH=1700000000" in env["CIBW_ENVIRONMENT"]
    assert "musl_repair.py" in env["CIBW_REPAIR_WHEEL_COMMAND"]
    many = cibuildwheel_env("3.14.8", parse_target("manylinux_2_28_x86_64"), "b", DEPS, ZIG, ZIG_CACHE, 1)
    assert many["CIBW_REPAIR_WHEEL_COMMAND"].startswith("auditwheel repair")


def test_upstream_builder_env_uses_its_own_compiler():
    env = cibuildwheel_env("3.14.8", parse_target("musllinux_1_2_x86_64"), "quay.io/pypa/m@sha256:1", DEPS, None, ZIG_CACHE, 1)
    assert "CC=" not in env["CIBW_ENVIRONMENT"] and "zig" not in env["CIBW_CONTAINER_ENGINE"]
    assert "CIBW_REPAIR_WHEEL_COMMAND" not in env  # cibuildwheel's default auditwheel repair
    assert "--network=none" in env["CIBW_CONTAINER_ENGINE"] and "PIP_NO_INDEX=1" in env["CIBW_ENVIRONMENT"]


def _pkg(filename: str, sha: str) -> DistributionPackage:
    return DistributionPackage(
        filename=filename, url=f"https://x/{filename}", project=None, version=None, package_type="sdist",
        digests={"sha256": sha}, requires_python=None, has_sig=None,
    )


def test_best_sdist_needs_a_locked_hash():
    pin = Pin("asyncpg", "0.30.0", frozenset({"a" * 64}), None, 1)
    files = [_pkg("asyncpg-0.30.0.tar.gz", "b" * 64), _pkg("asyncpg-0.29.0.tar.gz", "a" * 64)]
    assert best_sdist(pin, files) is None
    files.append(_pkg("asyncpg-0.30.0.tar.gz", "a" * 64))
    assert best_sdist(pin, files)[1] == "a" * 64


def test_top_level_modules(tmp_path):
    wheel = tmp_path / "x-1.0-cp314-cp314-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name in ("pkg/__init__.py", "mod.py", "_speed.cpython-314-x86_64-linux-gnu.so", "x-1.0.dist-info/RECORD", "x.libs/libz.so"):
            z.writestr(name, "")
    assert top_level_modules(wheel) == ["_speed", "mod", "pkg"]


def test_musl_cross_builds_take_build_dependencies_for_the_builder(tmp_path):
    from factory.build import SdistBuilder
    from factory.config import load_config

    (tmp_path / "pyproject.toml").write_text("[tool.factory]\n")
    cfg = load_config(tmp_path / "pyproject.toml", env={})
    builder = SdistBuilder(cfg, index=None, connect=lambda: None)
    # zig cross-builds musl wheels in the glibc builder: pip installs Cython etc. there
    assert builder.build_platform(parse_target("musllinux_1_2_aarch64")).name == "manylinux_2_28_aarch64"
    assert builder.build_platform(parse_target("manylinux_2_28_x86_64")).name == "manylinux_2_28_x86_64"
    pypa = "quay.io/pypa/musllinux_1_2_x86_64:2026.11.01-1@sha256:" + "c" * 64
    (tmp_path / "pyproject.toml").write_text(f'[tool.factory.builders]\nmusllinux_1_2_x86_64 = "{pypa}"\n')
    upstream = SdistBuilder(load_config(tmp_path / "pyproject.toml", env={}), index=None, connect=lambda: None)
    assert upstream.build_platform(parse_target("musllinux_1_2_x86_64")).name == "musllinux_1_2_x86_64"


def test_per_package_build_constraints(tmp_path):
    from factory.build import SdistBuilder
    from factory.config import load_config

    (tmp_path / "build.txt").write_text("cython==3.3.1 --hash=sha256:" + "a" * 64 + "\n")
    (tmp_path / "old-cython.txt").write_text("cython==0.29.37 --hash=sha256:" + "b" * 64 + "\n")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.factory]\nbuild-constraints = "build.txt"\n[tool.factory.build-overrides]\nLegacy_Pkg = "old-cython.txt"\n'
    )
    builder = SdistBuilder(load_config(tmp_path / "pyproject.toml", env={}), index=None, connect=lambda: None)
    assert builder.build_lock("legacy-pkg").pin("cython").version == "0.29.37"
    assert builder.build_lock("asyncpg").pin("cython").version == "3.3.1"
