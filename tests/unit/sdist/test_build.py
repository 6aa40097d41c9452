"""The sdist lane's pure parts: zig targets, cibuildwheel variables, sdist choice, modules,
the cell planner, outcome records, the build cache key and entries, the zig tree."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from indexserver import FixtureIndex, lane_project, make_sdist, make_wheel, sha256
from paths import ROOT
from pypi_simple import DistributionPackage

from factory.bases.imagelock import BuilderImage
from factory.core import atomic, resources
from factory.core.config import SdistOptions, load_config
from factory.core.targets import parse_target
from factory.locks.lockfile import Pin
from factory.pipeline import make_index
from factory.sdist import cibw
from factory.sdist.buildcache import BuildCache, cell_key
from factory.sdist.builders import cache_identity
from factory.sdist.checks import WheelChecks, top_level_modules
from factory.sdist.cibw import Mounts, cibuildwheel_env
from factory.sdist.outcome import BuildOutcome
from factory.sdist.plan import CellPlanner, Connection, best_sdist, first_ready_release
from factory.tools import toolchain
from factory.tools.toolchain import zig_target

MOUNTS = Mounts(Path("/c/builddeps/t/x"), Path("/c/zig/abc"), Path("/c/zig-cache"), Path("/f/resources/sdist"))


def test_zig_target_is_the_glibc_floor_or_musl():
    assert zig_target(parse_target("manylinux_2_28_aarch64")) == "aarch64-linux-gnu.2.28"
    assert zig_target(parse_target("manylinux_2_17_x86_64")) == "x86_64-linux-gnu.2.17"
    assert zig_target(parse_target("musllinux_1_2_x86_64")) == "x86_64-linux-musl"


def test_bootstrapped_builder_env_is_offline_with_zig():
    env = cibuildwheel_env("3.14.8", parse_target("musllinux_1_2_aarch64"), "r/builder@sha256:1", MOUNTS, 1700000000, ("io.factory.build-cache=ab",))
    assert env["CIBW_BUILD"] == "cp314-musllinux_aarch64"
    assert env["CIBW_MUSLLINUX_AARCH64_IMAGE"] == "r/builder@sha256:1"
    engine = env["CIBW_CONTAINER_ENGINE"]
    assert engine.startswith("docker; disable_host_mount: true; create_args: --network=none ")
    assert "--label=io.factory.build-cache=ab" in engine
    assert f"--volume={MOUNTS.deps}:/opt/factory/deps:ro" in engine and f"--volume={MOUNTS.zig}/zig:/opt/factory/zig:ro" in engine
    assert f"--volume={MOUNTS.resources}:/opt/factory/resources:ro" in engine
    assert "FACTORY_ZIG_TARGET=aarch64-linux-musl" in env["CIBW_ENVIRONMENT"]
    assert "PIP_NO_INDEX=1" in env["CIBW_ENVIRONMENT"] and "SOURCE_DATE_EPOCH=1700000000" in env["CIBW_ENVIRONMENT"]
    assert env["CIBW_REPAIR_WHEEL_COMMAND"] == "python /opt/factory/resources/musl_repair.py {wheel} {dest_dir} aarch64"


def test_each_cibuildwheel_container_also_carries_a_label_of_its_own():
    one, two = cibw.cell_label(), cibw.cell_label()
    assert one != two and one.startswith("io.factory.cell=")
    engine = cibuildwheel_env("3.14.8", parse_target("manylinux_2_28_x86_64"), "b", MOUNTS, 1, ("io.factory.build-cache=ab", one))["CIBW_CONTAINER_ENGINE"]
    assert f"--label=io.factory.build-cache=ab --label={one}" in engine
    many = cibuildwheel_env("3.14.8", parse_target("manylinux_2_28_x86_64"), "b", MOUNTS, 1)
    assert many["CIBW_REPAIR_WHEEL_COMMAND"].startswith("auditwheel repair")


def test_compiler_environment_is_the_one_builds_always_had():
    # the compilers, archivers and pkg-config search path of every bootstrapped build
    env = cibuildwheel_env("3.14.8", parse_target("manylinux_2_28_aarch64"), "b", MOUNTS, 42)
    assert env["CIBW_ENVIRONMENT"] == (
        "CC=/opt/factory/bin/cc CXX=/opt/factory/bin/c++ LDSHARED='/opt/factory/bin/cc -shared' "
        "LDCXXSHARED='/opt/factory/bin/c++ -shared' AR=/opt/factory/bin/ar RANLIB=/opt/factory/bin/ranlib "
        "PKG_CONFIG_LIBDIR=/opt/factory/pkgconfig FACTORY_ZIG_TARGET=aarch64-linux-gnu.2.28 "
        "ZIG_GLOBAL_CACHE_DIR=/opt/factory/zig-cache ZIG_LOCAL_CACHE_DIR=/tmp/zig-local-cache "
        "PIP_NO_INDEX=1 PIP_FIND_LINKS=/opt/factory/deps PIP_CONSTRAINT=/opt/factory/deps/constraints.txt SOURCE_DATE_EPOCH=42"
    )


def test_upstream_builder_env_uses_its_own_compiler():
    upstream = Mounts(MOUNTS.deps, None, MOUNTS.zig_cache, MOUNTS.resources)
    env = cibuildwheel_env("3.14.8", parse_target("musllinux_1_2_x86_64"), "quay.io/pypa/m@sha256:1", upstream, 1)
    assert "CC=" not in env["CIBW_ENVIRONMENT"] and "zig" not in env["CIBW_CONTAINER_ENGINE"]
    assert "CIBW_REPAIR_WHEEL_COMMAND" not in env  # cibuildwheel's default auditwheel repair
    assert "--network=none" in env["CIBW_CONTAINER_ENGINE"] and "PIP_NO_INDEX=1" in env["CIBW_ENVIRONMENT"]


def test_cibuildwheel_command_reads_only_our_options(tmp_path):
    cmd = cibw.command(tmp_path / "x-1.0.tar.gz", parse_target("musllinux_1_2_aarch64"), tmp_path / "out", resources.path(cibw.CONFIG_FILE))
    assert cmd[1:4] == ["-m", "cibuildwheel", str(tmp_path / "x-1.0.tar.gz")]
    assert cmd[cmd.index("--archs") + 1] == "aarch64" and cmd[cmd.index("--platform") + 1] == "linux"
    assert Path(cmd[cmd.index("--config-file") + 1]).is_absolute()


def _pkg(filename: str, sha: str) -> DistributionPackage:
    return DistributionPackage(
        filename=filename, url=f"https://x/{filename}", project=None, version=None, package_type="wheel" if filename.endswith(".whl") else "sdist",
        digests={"sha256": sha}, requires_python=None, has_sig=None,
    )  # fmt: skip


def test_best_sdist_needs_a_locked_hash():
    pin = Pin("asyncpg", "0.30.0", frozenset({"a" * 64}), None, 1)
    files = [_pkg("asyncpg-0.30.0.tar.gz", "b" * 64), _pkg("asyncpg-0.29.0.tar.gz", "a" * 64)]
    assert best_sdist(pin, files) is None
    files.append(_pkg("asyncpg-0.30.0.tar.gz", "a" * 64))
    found = best_sdist(pin, files)
    assert found is not None and found[1] == "a" * 64


def test_the_first_later_release_with_a_wheel_for_the_target_is_named():
    """cffi 1.15.1 cannot compile for 3.14 (a removed C-API): the fix names the first release
    with a wheel this target installs, skipping pre-releases, other arches and older ones."""
    files = [
        _pkg("cffi-1.15.1.tar.gz", "a" * 64),
        _pkg("cffi-1.14.0-cp314-cp314-manylinux_2_28_x86_64.whl", "b" * 64),
        _pkg("cffi-1.17.1-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "c" * 64),
        _pkg("cffi-2.0.0b1-cp314-cp314-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "d" * 64),
        _pkg("cffi-2.0.0-cp314-cp314-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", "e" * 64),
        _pkg("cffi-2.0.0-cp314-cp314-musllinux_1_1_x86_64.whl", "f" * 64),
        _pkg("cffi-2.1.0-cp314-cp314-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "1" * 64),
    ]
    assert first_ready_release(files, "1.15.1", parse_target("manylinux_2_28_x86_64"), "3.14.8") == "2.1.0"
    assert first_ready_release(files, "1.15.1", parse_target("musllinux_1_2_x86_64"), "3.14.8") == "2.0.0"
    assert first_ready_release(files, "2.1.0", parse_target("manylinux_2_28_x86_64"), "3.14.8") is None


def test_the_musl_repair_refuses_a_wheel_whose_extension_fell_away(tmp_path):
    """PyYAML 6.0.1's C fails on 3.14 and its setup.py falls back to pure Python inside a
    cp314 wheel: refused on musllinux as auditwheel refuses it on manylinux."""
    tree = tmp_path / "pyyaml-6.0.1"
    (tree / "yaml").mkdir(parents=True)
    (tree / "yaml" / "__init__.py").write_text("X = 1\n")
    (tree / "pyyaml-6.0.1.dist-info").mkdir()
    (tree / "pyyaml-6.0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: pyyaml\nVersion: 6.0.1\n")
    (tree / "pyyaml-6.0.1.dist-info" / "WHEEL").write_text("Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp314-cp314-linux_x86_64\n")
    subprocess.run([sys.executable, "-m", "wheel", "pack", "-d", str(tmp_path), str(tree)], check=True, capture_output=True)
    wheel = tmp_path / "pyyaml-6.0.1-cp314-cp314-linux_x86_64.whl"
    proc = subprocess.run(
        [sys.executable, str(resources.path("sdist/musl_repair.py")), str(wheel), str(tmp_path / "out"), "x86_64"], capture_output=True, text=True
    )
    assert proc.returncode != 0 and "does not look like a platform wheel" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def _crate(path: Path, name: str, version: str) -> bytes:
    """A ``.crate`` as crates.io serves it (a gzip tarball of ``<name>-<version>/``) at ``path``; its bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for member, text in ((f"{name}-{version}/Cargo.toml", f'[package]\nname = "{name}"\nversion = "{version}"\n'), (f"{name}-{version}/src/lib.rs", "")):
            info = tarfile.TarInfo(member)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return path.read_bytes()


def test_std_crates_join_an_sdist_s_own_directory_source(tmp_path):
    """orjson 3.10.15 replaces crates.io with include/cargo: on musl, cargo's build-std then
    looked for std's cfg-if 1.0.4 there ("failed to select a version for the requirement
    `cfg-if = "^1.0"`"). The crates factory fetched join that directory, as a directory
    source wants them; what the sdist vendors itself is kept."""
    root, home = tmp_path / "orjson-3.10.15", tmp_path / "cargo-home"
    (root / ".cargo").mkdir(parents=True)
    (root / ".cargo" / "config.toml").write_text('[source.crates-io]\nreplace-with = "vendored-sources"\n\n[source.vendored-sources]\ndirectory = "include/cargo"\n')
    (root / "include" / "cargo" / "cfg-if").mkdir(parents=True)
    (root / "include" / "cargo" / "cfg-if" / "Cargo.toml").write_text('[package]\nname = "cfg-if"\nversion = "1.0.0"\n')
    cache = home / "registry" / "cache" / "index.crates.io-1949cf8c6b5b557f"
    newer = _crate(cache / "cfg-if-1.0.4.crate", "cfg-if", "1.0.4")
    _crate(cache / "cfg-if-1.0.0.crate", "cfg-if", "1.0.0")
    script = str(resources.path("sdist/std_crates.py"))
    proc = subprocess.run([sys.executable, script, str(root), str(home)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    vendored = sorted(p.name for p in (root / "include" / "cargo").iterdir())
    assert vendored == ["cfg-if", "factory-cfg-if-1.0.4"], vendored
    checksum = json.loads((root / "include" / "cargo" / "factory-cfg-if-1.0.4" / ".cargo-checksum.json").read_text())
    assert checksum == {"files": {}, "package": hashlib.sha256(newer).hexdigest()}
    assert "1 crates from CARGO_HOME added" in proc.stdout
    # an sdist without a directory source is left as it is
    plain = tmp_path / "plain"
    plain.mkdir()
    assert subprocess.run([sys.executable, script, str(plain), str(home)], capture_output=True).returncode == 0
    assert list(plain.iterdir()) == []


def test_top_level_modules(tmp_path):
    wheel = tmp_path / "x-1.0-cp314-cp314-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name in ("pkg/__init__.py", "mod.py", "_speed.cpython-314-x86_64-linux-gnu.so", "x-1.0.dist-info/RECORD", "x.libs/libz.so"):
            z.writestr(name, "")
    assert top_level_modules(wheel) == ["_speed", "mod", "pkg"]


def _no_connection() -> Connection:
    raise AssertionError("the planner must not reach the engine here")


def test_musl_cross_builds_take_build_dependencies_for_the_builder(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.factory]\n")
    cfg = load_config(tmp_path / "pyproject.toml", env={})
    planner = CellPlanner(cfg, index=None, connection=_no_connection)  # type: ignore[arg-type]
    # zig cross-builds musl wheels in the glibc builder: pip installs Cython etc. there
    assert planner.build_platform(parse_target("musllinux_1_2_aarch64")).name == "manylinux_2_28_aarch64"
    assert planner.build_platform(parse_target("manylinux_2_28_x86_64")).name == "manylinux_2_28_x86_64"
    pypa = "quay.io/pypa/musllinux_1_2_x86_64:2026.11.01-1@sha256:" + "c" * 64
    (tmp_path / "pyproject.toml").write_text(f'[tool.factory.builders]\nmusllinux_1_2_x86_64 = "{pypa}"\n')
    upstream = CellPlanner(load_config(tmp_path / "pyproject.toml", env={}), index=None, connection=_no_connection)  # type: ignore[arg-type]
    assert upstream.build_platform(parse_target("musllinux_1_2_x86_64")).name == "musllinux_1_2_x86_64"
    assert upstream.builder_for(parse_target("musllinux_1_2_x86_64")) == pypa and upstream.upstream(parse_target("musllinux_1_2_x86_64"))


def test_per_package_build_constraints(tmp_path):
    (tmp_path / "build.txt").write_text("cython==3.3.1 --hash=sha256:" + "a" * 64 + "\n")
    (tmp_path / "old-cython.txt").write_text("cython==0.29.37 --hash=sha256:" + "b" * 64 + "\n")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.factory]\nbuild-constraints = "build.txt"\n[tool.factory.build-overrides]\nLegacy_Pkg = "old-cython.txt"\n'
    )
    planner = CellPlanner(load_config(tmp_path / "pyproject.toml", env={}), index=None, connection=_no_connection)  # type: ignore[arg-type]
    assert planner.build_lock("legacy-pkg").pin("cython").version == "0.29.37"
    assert planner.build_lock("asyncpg").pin("cython").version == "3.3.1"


# -- outcome records -------------------------------------------------------------------
OK = BuildOutcome(
    "tinyc", "1.0", "manylinux_2_28_x86_64", ok=True, sdist="tinyc-1.0.tar.gz", sdist_sha256="a" * 64,
    builder="r/b@sha256:" + "b" * 64, toolchain_sha256="c" * 64, build_constraints_sha256="d" * 64,
    filename="tinyc-1.0-cp314-cp314-manylinux_2_5_x86_64.whl", sha256="e" * 64, tag="cp314-cp314-manylinux_2_5_x86_64",
    seconds=12.5, log_tail=("a", "b"), log="/c/builds/k/build.log",
)  # fmt: skip


def test_outcome_json_round_trip():
    data = json.loads(json.dumps(OK.to_json()))
    assert data["log_tail"] == ["a", "b"] and set(data) >= {"name", "sdist_sha256", "builder", "seconds", "cross_built", "cached"}
    assert BuildOutcome.from_json(data) == OK
    assert OK.wheel == Path("/c/builds/k") / OK.filename


@pytest.mark.parametrize(
    "change",
    [lambda d: d.pop("name"), lambda d: d.update(ok="yes"), lambda d: d.update(seconds=True), lambda d: d.update(log_tail=[1])],
)
def test_outcome_json_refuses_bad_records(change):
    data = OK.to_json()
    change(data)
    with pytest.raises(ValueError):
        BuildOutcome.from_json(data)
    with pytest.raises(ValueError):
        BuildOutcome.from_json(["not", "an", "object"])


# -- the build cache key ---------------------------------------------------------------
KEY_ARGS = dict(
    python="3.14.8", target=parse_target("manylinux_2_28_x86_64"), builder="r/b@sha256:" + "1" * 64, zig=True,
    sdist_sha256="2" * 64, epoch=1700000000, toolchain_sha256="3" * 64, build_constraints_sha256="4" * 64,
)  # fmt: skip


@pytest.fixture
def resources_copy(tmp_path, monkeypatch):
    """The package's resources, copied: edits to the copy are what the key must see."""
    root = tmp_path / "resources"
    shutil.copytree(resources.ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(resources, "ROOT", root)
    return root


def test_identical_inputs_give_the_same_key(resources_copy):
    assert cell_key(**KEY_ARGS) == cell_key(**KEY_ARGS)
    assert cell_key(**KEY_ARGS).hexdigest() == cell_key(**KEY_ARGS).hexdigest()


@pytest.mark.parametrize(
    "field, value",
    [
        ("python", "3.14.9"),
        ("target", parse_target("musllinux_1_2_x86_64")),
        ("builder", "r/b@sha256:" + "9" * 64),
        ("zig", False),
        ("sdist_sha256", "9" * 64),
        ("epoch", 1700000001),
        ("toolchain_sha256", "9" * 64),
        ("build_constraints_sha256", "9" * 64),
        ("libraries", ("a" * 64,)),
        ("options", SdistOptions(before_all="echo hi")),
        ("options", SdistOptions(environment=(("CFLAGS", "-O3"),))),
    ],
)
def test_each_input_changes_the_key(resources_copy, field, value):
    assert cell_key(**{**KEY_ARGS, field: value}).hexdigest() != cell_key(**KEY_ARGS).hexdigest()


def test_a_bootstrapped_builder_is_keyed_by_its_inputs_not_its_digest(resources_copy):
    """Two machines bootstrap the same builder with two digests (pip's layer keeps build-time
    mtimes): one shared build cache must serve both, so their cells share keys (#15)."""
    here = BuilderImage("amd64", "r/b@sha256:" + "1" * 64, "r/b:3.14.8-forky-amd64", "5" * 64)
    there = BuilderImage("amd64", "r/b@sha256:" + "9" * 64, "r/b:3.14.8-forky-amd64", "5" * 64)
    rebuilt = BuilderImage("amd64", "r/b@sha256:" + "1" * 64, "r/b:3.14.8-forky-amd64", "6" * 64)

    def key(entry: BuilderImage) -> str:
        return cell_key(**{**KEY_ARGS, "builder": cache_identity(entry)}).hexdigest()

    assert key(here) == key(there) != key(rebuilt)


@pytest.mark.parametrize("name", ["sdist/zig-cc.sh", "sdist/cibuildwheel.toml", "sdist/musl_repair.py", "sdist/new-helper.sh"])
def test_editing_a_build_resource_changes_the_key(resources_copy, name):
    before = cell_key(**KEY_ARGS).hexdigest()
    path = resources_copy / name
    path.write_bytes((path.read_bytes() if path.exists() else b"") + b"\n# edited\n")
    assert cell_key(**KEY_ARGS).hexdigest() != before


def test_resources_outside_the_build_leave_the_key(resources_copy):
    before = cell_key(**KEY_ARGS).hexdigest()
    with open(resources_copy / "checks" / "import_check.py", "a") as f:
        f.write("# edited\n")
    assert cell_key(**KEY_ARGS).hexdigest() == before


def test_a_compiler_flag_changes_the_key(resources_copy, monkeypatch):
    before = cell_key(**KEY_ARGS).hexdigest()
    monkeypatch.setitem(cibw.ZIG_COMPILERS, "CFLAGS", "-O3")
    assert cell_key(**KEY_ARGS).hexdigest() != before
    monkeypatch.delitem(cibw.ZIG_COMPILERS, "CFLAGS")
    monkeypatch.setitem(cibw.ZIG_COMPILERS, "CC", "'/opt/factory/bin/cc -fno-plt'")
    assert cell_key(**KEY_ARGS).hexdigest() != before


def test_the_cibuildwheel_version_changes_the_key(resources_copy, monkeypatch):
    before = cell_key(**KEY_ARGS).hexdigest()
    monkeypatch.setattr(cibw, "version", lambda: "9.9.9")
    assert cell_key(**KEY_ARGS).hexdigest() != before


# -- build cache entries ---------------------------------------------------------------
def _wheel_build(name: str = OK.filename, ok: bool = True):
    def build(work: Path) -> BuildOutcome:
        (work / "build.log").write_text("compiling\nok\n")
        if not ok:
            return BuildOutcome("tinyc", "1.0", "manylinux_2_28_x86_64", ok=False, sdist="s", sdist_sha256="a" * 64, reason="boom")
        (work / name).write_bytes(b"wheel bytes")
        return BuildOutcome(
            "tinyc", "1.0", "manylinux_2_28_x86_64", ok=True, sdist="s", sdist_sha256="a" * 64,
            filename=name, sha256=hashlib.sha256(b"wheel bytes").hexdigest(), seconds=3.0,
        )  # fmt: skip

    return build


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]


def test_a_stored_build_is_reused_verified(tmp_path, resources_copy):
    cache, key = BuildCache(tmp_path / "builds"), cell_key(**KEY_ARGS)
    assert cache.get(key) is None
    stored = cache.put(key, _wheel_build())
    entry = cache.entry(key)
    assert stored.ok and not stored.cached and stored.log == str(entry / "build.log") and stored.wheel.read_bytes() == b"wheel bytes"
    again = cache.get(key)
    assert again is not None and again.cached and again.seconds == 3.0 and again.sha256 == stored.sha256
    assert not _leftovers(tmp_path)


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: (e / OK.filename).write_bytes(b"tampered"),
        lambda e: (e / OK.filename).unlink(),
        lambda e: (e / "outcome.json").write_text("{not json"),
        lambda e: (e / "outcome.json").write_text('{"name": "tinyc"}'),
    ],
)
def test_a_corrupt_entry_is_evicted(tmp_path, resources_copy, damage):
    cache, key = BuildCache(tmp_path / "builds"), cell_key(**KEY_ARGS)
    cache.put(key, _wheel_build())
    damage(cache.entry(key))
    assert cache.get(key) is None
    assert not cache.entry(key).exists()  # evicted: the next put rebuilds it
    assert cache.put(key, _wheel_build()).ok and cache.get(key) is not None


def test_a_failed_build_is_not_cached_and_keeps_its_log(tmp_path, resources_copy):
    cache, key = BuildCache(tmp_path / "builds"), cell_key(**KEY_ARGS)
    failed = cache.put(key, _wheel_build(ok=False))
    assert not failed.ok and not cache.entry(key).exists()
    assert Path(failed.log) == tmp_path / "builds" / "failed" / "tinyc-1.0-manylinux_2_28_x86_64.log"
    assert Path(failed.log).read_text() == "compiling\nok\n"
    assert not _leftovers(tmp_path)


def test_a_build_that_raises_leaves_nothing(tmp_path, resources_copy):
    cache, key = BuildCache(tmp_path / "builds"), cell_key(**KEY_ARGS)

    def build(work: Path) -> BuildOutcome:
        (work / "build.log").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.put(key, build)
    assert not cache.entry(key).exists() and not _leftovers(tmp_path)


def test_sweep_removes_a_killed_runs_temporary_directories(tmp_path):
    from factory.sdist.build import sweep

    stale = [
        tmp_path / "builds" / ".abc.tmp-1",
        tmp_path / "builds" / ".tmp-legacy",
        tmp_path / "builddeps" / "manylinux_2_28_x86_64" / ".0123.tmp-x",
        tmp_path / "zig" / ".z.old-y",
    ]
    kept = [tmp_path / "builds" / "abc", tmp_path / "builddeps" / "manylinux_2_28_x86_64" / "0123", tmp_path / "zig" / "z"]
    for d in stale + kept:
        (d / "sub").mkdir(parents=True)
    (tmp_path / "builds" / "failed").mkdir()
    (tmp_path / "builds" / "failed" / ".x.log.tmp-1").write_text("")
    gone = sweep(tmp_path)
    assert sorted(gone) == sorted([*stale, tmp_path / "builds" / "failed" / ".x.log.tmp-1"])
    assert all(d.is_dir() for d in kept) and not any(d.exists() for d in stale)
    assert atomic.sweep_dir(tmp_path / "missing") == []


# -- the zig tree ----------------------------------------------------------------------
@pytest.fixture
def zig_wheel(tmp_path, monkeypatch):
    """A stand-in ziglang wheel in a FileCache-like directory named by its sha256."""
    staged = tmp_path / "staged.whl"
    with zipfile.ZipFile(staged, "w") as z:
        z.writestr("ziglang/zig", '#!/bin/sh\necho zig "$@"\n')
        z.writestr("ziglang/lib/libc.txt", "libc")
        z.writestr("ziglang-0.15.1.dist-info/RECORD", "")
    sha = hashlib.sha256(staged.read_bytes()).hexdigest()
    wheel = tmp_path / "files" / sha / "ziglang-0.15.1-py3-none-manylinux_2_12_x86_64.whl"
    wheel.parent.mkdir(parents=True)
    staged.rename(wheel)
    monkeypatch.setattr(toolchain, "tool_wheel", lambda cfg, index, name, rank=None: wheel)
    (tmp_path / "pyproject.toml").write_text(f'[tool.factory]\ncache-dir = "{tmp_path / "cache"}"\n')
    return load_config(tmp_path / "pyproject.toml", env={}), sha


def test_zig_root_unpacks_once(zig_wheel, resources_copy):
    cfg, sha = zig_wheel
    root = toolchain.zig_root(cfg, None)  # type: ignore[arg-type]
    assert root.parent == cfg.cache_dir / "zig" and root.name.startswith(sha)
    assert (root / "zig" / "zig").read_text().startswith("#!/bin/sh") and os.access(root / "zig" / "zig", os.X_OK)
    assert (root / "zig" / "lib" / "libc.txt").is_file()
    for tool in ("cc", "c++"):
        assert (root / "bin" / tool).read_bytes() == (resources_copy / toolchain.ZIG_WRAPPER).read_bytes()
        assert os.access(root / "bin" / tool, os.X_OK)
    mtime = (root / "bin" / "cc").stat().st_mtime_ns
    assert toolchain.zig_root(cfg, None) == root and (root / "bin" / "cc").stat().st_mtime_ns == mtime  # type: ignore[arg-type]
    assert not _leftovers(cfg.cache_dir)


def test_zig_root_rewrites_an_edited_wrapper(zig_wheel, resources_copy):
    cfg, _ = zig_wheel
    first = toolchain.zig_root(cfg, None)  # type: ignore[arg-type]
    wrapper = resources_copy / toolchain.ZIG_WRAPPER
    wrapper.write_text(wrapper.read_text().replace("-isystem /opt/factory/pyinc", "-isystem /opt/factory/pyinc -g0"))
    second = toolchain.zig_root(cfg, None)  # type: ignore[arg-type]
    assert second != first
    assert "-g0" in (second / "bin" / "cc").read_text() and "-g0" in (second / "bin" / "c++").read_text()


@pytest.mark.parametrize("tool", ["cc", "c++"])
def test_zig_wrapper_calls_zig_for_its_name_and_the_target(tmp_path, tool):
    fake = tmp_path / "zig"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    text = resources.path(toolchain.ZIG_WRAPPER).read_text().replace("/opt/factory/zig/zig", str(fake))
    wrapper = tmp_path / tool
    wrapper.write_text(text)
    wrapper.chmod(0o755)
    out = subprocess.run([str(wrapper), "-c", "x.c"], env={"FACTORY_ZIG_TARGET": "aarch64-linux-gnu.2.28", "PATH": os.environ["PATH"]},
                         capture_output=True, text=True, check=True).stdout.split("\n")  # fmt: skip
    assert out[:7] == [tool, "-target", "aarch64-linux-gnu.2.28", "-isystem", "/opt/factory/pyinc", "-c", "x.c"]


# -- the import check ------------------------------------------------------------------
class _Engine:
    """Records container runs; a wheel named in ``broken`` fails with that output (or a
    missing ``_tinyc``)."""

    remote = False  # a local engine, serving every arch

    def for_arch(self, arch):
        return self

    def emulates(self, arch):
        return True

    def __init__(self, broken: set[str] | dict[str, str]) -> None:
        self.broken = broken if isinstance(broken, dict) else dict.fromkeys(broken, "ModuleNotFoundError: No module named '_tinyc'\n")
        self.runs: list = []

    def ensure_local(self, ref, platform, auth):
        pass

    def run(self, image, command, *, volumes, platform, network):
        self.runs.append((image, command, volumes, platform, network))
        return (1, self.broken[command[2]]) if command[2] in self.broken else (0, "imported\n")


def test_import_check_fails_only_the_wheels_that_do_not_import(tmp_path):
    from factory.bases.bootstrap import BaseImage

    (tmp_path / "pyproject.toml").write_text("[tool.factory]\n")
    cfg = load_config(tmp_path / "pyproject.toml", env={})
    good = OK
    bad = BuildOutcome(**{**OK.to_json(), "name": "broken", "filename": "broken-1.0-cp314-cp314-manylinux_2_5_x86_64.whl", "log_tail": ()})
    musl = BuildOutcome(**{**OK.to_json(), "target": "musllinux_1_2_x86_64", "log_tail": ()})
    for o in (good, bad):
        with zipfile.ZipFile(tmp_path / o.filename, "w") as z:
            z.writestr("_tinyc.cpython-314-x86_64-linux-gnu.so", "")
    engine = _Engine({bad.filename})
    base = BaseImage(arch="amd64", ref="r/python@sha256:" + "f" * 64, tag="t", source="bootstrap")
    conn = Connection(engine=engine, registry=type("R", (), {"auth": None})(), bases={"amd64": base}, pip_wheel=tmp_path / "pip.whl")  # type: ignore[arg-type]
    checks = WheelChecks(cfg, lambda: conn)
    checked = checks.import_check(parse_target("manylinux_2_28_x86_64"), tmp_path, [good, bad, musl])
    assert checked[0] == good and checked[2] == musl
    assert not checked[1].ok and "importing _tinyc" in checked[1].reason and checked[1].log_tail[-1].startswith("ModuleNotFoundError")
    _, command, volumes, platform, network = engine.runs[0]
    assert command[:2] == ["python3", "/opt/factory/import_check.py"] and command[3:] == ["_tinyc"] and network is False
    assert volumes[str(resources.path("checks/import_check.py"))]["mode"] == "ro" and platform == "linux/amd64"
    assert checks.import_check(parse_target("musllinux_1_2_x86_64"), tmp_path, [musl]) == [musl]
    assert len(engine.runs) == 2  # musllinux: no container


# -- the cibuildwheel runner -----------------------------------------------------------
def _fake_cibuildwheel(monkeypatch, script: str) -> None:
    """Stand in for cibuildwheel: ``script`` runs with argv [out]; nothing else changes."""
    monkeypatch.setattr(cibw, "command", lambda sdist, target, out, config: [sys.executable, "-c", script, str(out)])


def test_cibw_run_captures_the_log_and_the_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("CIBW_BUILD", "cp39-*")  # the host's own CIBW_* must not leak in
    _fake_cibuildwheel(monkeypatch, (
        "import os, sys, pathlib; out = pathlib.Path(sys.argv[1]); out.mkdir()\n"
        "[print('line', i) for i in range(20)]\n"
        "print('CIBW_BUILD=' + os.environ['CIBW_BUILD'], 'FOO=' + os.environ.get('CIBW_FOO', '-'))\n"
        "(out / 'x-1.0-cp314-cp314-manylinux_2_28_x86_64.whl').write_bytes(b'w')\n"
    ))  # fmt: skip
    result = cibw.run(tmp_path / "x.tar.gz", parse_target("manylinux_2_28_x86_64"), {"CIBW_BUILD": "cp314-manylinux_x86_64"}, tmp_path, 60)
    assert result.returncode == 0 and result.failure == "" and result.seconds >= 0
    assert [w.name for w in result.wheels] == ["x-1.0-cp314-cp314-manylinux_2_28_x86_64.whl"]
    assert len(result.tail) == cibw.LOG_TAIL and result.tail[-1] == "CIBW_BUILD=cp314-manylinux_x86_64 FOO=-"
    assert result.log == tmp_path / "build.log" and "line 0" in result.log.read_text()


def test_cibw_run_failures_are_results(tmp_path, monkeypatch):
    cleaned: list[str] = []  # on_timeout: only the timed-out run removes its container
    _fake_cibuildwheel(monkeypatch, "import sys; print('error: no compiler'); sys.exit(3)")
    failed = cibw.run(tmp_path / "x.tar.gz", parse_target("manylinux_2_28_x86_64"), {}, tmp_path, 60, on_timeout=lambda: cleaned.append("no"))
    assert failed.failure == "cibuildwheel exited with 3" and failed.tail == ("error: no compiler",) and failed.wheels == ()
    _fake_cibuildwheel(monkeypatch, "import time; time.sleep(30)")
    slow = cibw.run(tmp_path / "x.tar.gz", parse_target("manylinux_2_28_x86_64"), {}, tmp_path, 0.5, on_timeout=lambda: cleaned.append("x"))
    assert slow.returncode is None and slow.failure == "build timed out" and cleaned == ["x"]
    _fake_cibuildwheel(monkeypatch, "import pathlib, sys; pathlib.Path(sys.argv[1]).mkdir(exist_ok=True)")
    none = cibw.run(tmp_path / "x.tar.gz", parse_target("manylinux_2_28_x86_64"), {}, tmp_path, 60)
    assert none.failure == "cibuildwheel produced 0 wheels, expected 1"


# -- the orchestrator, with only cibuildwheel stood in ---------------------------------
UPSTREAM = "quay.io/pypa/manylinux_2_28_x86_64:2026.11.01-1@sha256:" + "c" * 64


@pytest.fixture
def lane(tmp_path, resources_copy, monkeypatch):
    """A real index on loopback (an sdist, setuptools), a project whose x86_64 manylinux target
    builds in an upstream image (no Docker), and a stand-in cibuildwheel that records its runs."""
    from factory.core.cache import FileCache
    from factory.index.client import Index
    from factory.sdist.build import SdistBuilder

    sdists = {
        "tinyc": make_sdist("tinyc", "1.0", {"setup.py": "from setuptools import setup\nsetup()\n", "src/_tinyc.c": "int x;\n"}),
        "needsmaturin": make_sdist("needsmaturin", "1.0", {}, requires=("maturin>=1",)),
    }
    projects = {name: {f"{name}-1.0.tar.gz": data} for name, data in sdists.items()}
    projects |= lane_project(tmp_path, f'[tool.factory.builders]\nmanylinux_2_28_x86_64 = "{UPSTREAM}"\n')
    # publishes wheels only; 1.1 is the first with one for manylinux_2_28_x86_64 under 3.14
    projects["wheelonly"] = {
        name: make_wheel(name)
        for name in ("wheelonly-1.0-cp313-cp313-manylinux_2_17_x86_64.whl", "wheelonly-1.1-cp314-cp314-manylinux_2_28_x86_64.whl")
    }
    projects["oddsdist"] = {"oddsdist-1.0.tar.bz2": b"not read"}  # a legacy format PEP 625 does not name
    projects["tinyc"]["tinyc-2.0-cp314-cp314-manylinux_2_28_x86_64.whl"] = make_wheel("tinyc-2.0-cp314-cp314-manylinux_2_28_x86_64.whl")
    cfg = load_config(tmp_path / "pyproject.toml", env={})
    runs: list[dict[str, str]] = []
    exit_code = [0]

    def run(sdist, target, env, work, timeout, docker_host=None, on_timeout=None, running=None):
        runs.append({**env, "timeout": str(timeout)})
        (work / "build.log").write_text("Building wheel\n")
        wheels: tuple[Path, ...] = ()
        if exit_code[0] == 0:
            (work / "out").mkdir()
            wheel = work / "out" / "tinyc-1.0-cp314-cp314-manylinux_2_28_x86_64.whl"
            wheel.write_bytes(make_wheel(wheel.name))
            wheels = (wheel,)
        return cibw.CibwRun(exit_code[0], 1.5, work / "build.log", ("Building wheel",), wheels)

    monkeypatch.setattr(cibw, "run", run)

    def connect() -> Connection:
        raise AssertionError("nothing here needs the container engine")

    with FixtureIndex(projects) as idx:
        index = Index(idx.url, FileCache(cfg.cache_dir))
        pins = {name: Pin(name, "1.0", frozenset({sha256(data)}), None, 1) for name, data in sdists.items()}
        yield SdistBuilder(cfg, index, connect), pins, runs, exit_code


def _build(builder, pin):
    req = builder.request(pin, parse_target("manylinux_2_28_x86_64"))
    assert not isinstance(req, BuildOutcome), req
    return builder.build(req)


def test_a_cell_is_built_once_and_rebuilt_when_its_wrapper_changes(lane, resources_copy):
    builder, pins, runs, _ = lane
    first = _build(builder, pins["tinyc"])
    assert first.ok and not first.cached and first.builder == UPSTREAM and first.seconds == 1.5
    assert first.tag == "cp314-cp314-manylinux_2_28_x86_64" and first.sha256 == hashlib.sha256(first.wheel.read_bytes()).hexdigest()
    assert first.toolchain_sha256 == hashlib.sha256(builder.cfg.toolchain.read_bytes()).hexdigest()
    assert runs[0]["CIBW_MANYLINUX_X86_64_IMAGE"] == UPSTREAM and "--label=io.factory.build-cache=" in runs[0]["CIBW_CONTAINER_ENGINE"]
    again = _build(builder, pins["tinyc"])
    assert again.cached and again.sha256 == first.sha256 and len(runs) == 1
    with open(resources_copy / "sdist" / "zig-cc.sh", "a") as f:
        f.write("# edited\n")
    rebuilt = _build(builder, pins["tinyc"])
    assert rebuilt.ok and not rebuilt.cached and len(runs) == 2


def test_a_cell_that_fails_before_building_needs_no_engine(lane):
    builder, pins, runs, _ = lane
    outcome = _build(builder, pins["needsmaturin"])
    assert not outcome.ok and "maturin>=1" in outcome.reason and runs == []
    target = parse_target("manylinux_2_28_x86_64")
    missing = builder.request(Pin("tinyc", "1.0", frozenset({"9" * 64}), None, 1), target)
    assert isinstance(missing, BuildOutcome) and not missing.ok
    assert missing.reason == (
        "no wheel for manylinux_2_28_x86_64 and no sdist whose sha256 the lock allows: the lock's hashes leave out "
        "tinyc-1.0.tar.gz (fix: lock again with every file's hash, e.g. `factory lock`)"
    )
    wheels_only = builder.request(Pin("wheelonly", "1.0", frozenset({"9" * 64}), None, 1), target)
    assert isinstance(wheels_only, BuildOutcome) and not wheels_only.ok and runs == []
    assert wheels_only.reason == (
        "no wheel for manylinux_2_28_x86_64 and no sdist whose sha256 the lock allows: wheelonly 1.0 publishes no sdist; "
        "wheelonly 1.1 is the first later release with a wheel for manylinux_2_28_x86_64: upgrade the pin to it or above"
    )
    odd = builder.request(Pin("oddsdist", "1.0", frozenset({sha256(b"not read")}), None, 1), target)
    assert isinstance(odd, BuildOutcome) and odd.reason.endswith(
        ": oddsdist-1.0.tar.bz2 is not an sdist name factory reads (fix: ask oddsdist for a PEP 625 `.tar.gz` sdist)"
    )
    arm = builder.request(Pin("wheelonly", "1.0", frozenset({"9" * 64}), None, 1), parse_target("manylinux_2_28_aarch64"))
    assert isinstance(arm, BuildOutcome) and arm.reason.endswith(
        "wheelonly 1.0 publishes no sdist (fix: use a release of wheelonly with a wheel for manylinux_2_28_aarch64, or a package that ships an sdist)"
    )


def test_a_release_whose_source_is_not_ready_names_the_first_later_release_with_a_wheel(lane, monkeypatch):
    builder, pins, _, _ = lane
    line = "src/_tinyc.c:1:5: error: call to undeclared function '_PyUnicode_AsString'; ISO C99 and later do not support"

    def run(sdist, target, env, work, timeout, docker_host=None, on_timeout=None, running=None):
        (work / "build.log").write_text(f"{line}\n")
        return cibw.CibwRun(1, 1.0, work / "build.log", (line,), ())

    monkeypatch.setattr(cibw, "run", run)
    failed = _build(builder, pins["tinyc"])
    assert not failed.ok and failed.reason.startswith("C-API removed in 3.14: _PyUnicode_AsString")
    assert failed.reason.endswith("; tinyc 2.0 is the first later release with a wheel for manylinux_2_28_x86_64: upgrade the pin to it or above")


def test_a_failed_build_is_retried_next_time(lane):
    builder, pins, runs, exit_code = lane
    exit_code[0] = 2
    failed = _build(builder, pins["tinyc"])
    assert not failed.ok and failed.reason == "unclassified: Building wheel (fix: read the build log) [cibuildwheel exited with 2]" and failed.log_tail == ("Building wheel",)
    assert Path(failed.log).read_text() == "Building wheel\n" and Path(failed.log).parent.name == "failed"
    exit_code[0] = 0
    assert _build(builder, pins["tinyc"]).ok and len(runs) == 2


@pytest.mark.integration
@pytest.mark.parametrize("target", ["x86_64-linux-gnu.2.28", "aarch64-linux-musl"])
def test_the_zig_wrapper_answers_gcc_style_probes_and_archives(tmp_path, target):
    """The wrapper as bin/cc, c++, ar, ranlib (run on the host with the toolchain's zig):
    build scripts' GCC probes get an answer and exit 0; objects compile and archive."""
    cache = Path(os.environ.get("FACTORY_TEST_CACHE", ROOT / ".cache" / "test"))
    (tmp_path / "pyproject.toml").write_text(f'[tool.factory]\ncache-dir = "{cache}"\n')
    cfg = load_config(tmp_path / "pyproject.toml", env={})
    root = toolchain.zig_root(cfg, make_index(cfg))
    env = {**os.environ, "FACTORY_ZIG": str(root / "zig" / "zig"), "FACTORY_ZIG_TARGET": target, "ZIG_GLOBAL_CACHE_DIR": str(cfg.cache_dir / "zig-cache")}

    def tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(root / "bin" / name), *args], env=env, cwd=tmp_path, capture_output=True, text=True)

    for probe in ("-dumpversion", "-dumpfullversion"):
        version = tool("cc", probe)
        assert version.returncode == 0 and re.fullmatch(r"\d+\.\d+\.\d+\n", version.stdout), version
    assert tool("c++", "-dumpmachine").stdout == target.split(".")[0] + "\n"
    assert tool("cc", "--version").stdout.startswith("clang version")
    # libtool's configure: the compiler names its linker, which must run and say it is GNU-compatible
    assert tool("cc", "-print-prog-name=ld").stdout == f"{root / 'bin' / 'ld'}\n"
    assert "compatible with GNU linkers" in tool("ld", "-v").stdout
    (tmp_path / "a.c").write_text("int answer(void) { return 42; }\n")
    assert tool("cc", "-c", "a.c", "-o", "a.o").returncode == 0
    assert tool("ar", "rcs", "liba.a", "a.o").returncode == 0 and tool("ranlib", "liba.a").returncode == 0
    assert (tmp_path / "liba.a").read_bytes().startswith(b"!<arch>\n")
    if "musl" in target:  # a build script's -I/usr/include (Pillow's) must not bring in this glibc host's headers
        (tmp_path / "b.c").write_text("#include <assert.h>\n#include <stdio.h>\nint b(void) { assert(1); return BUFSIZ; }\n")
        built = tool("cc", "-I/usr/include", "-I", "/usr/local/include", "-L/usr/lib", "-c", "b.c", "-o", "b.o")
        assert built.returncode == 0, built.stderr


def test_a_conflicting_sdist_gets_its_own_generated_build_lock(lane, tmp_path, monkeypatch):
    """needsmaturin's requirement is not in build.txt: a lock of its own is generated (here
    by a stand-in for pip-compile), used, and named on the outcome; a user's own lock wins."""
    import dataclasses

    from factory.bases.bootstrap import BaseImage
    from factory.sdist import build, buildlocks

    builder, pins, _runs, _ = lane
    generated: list[str] = []

    def generate(cfg, engine, index, base_ref, pin, info, shared, out):
        generated.append(base_ref)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(shared.path.read_text() + f"maturin==1.9.0 --hash=sha256:{'a' * 64}\n")

    class Engine:
        def remove_labelled(self, label):
            return 0

    def connect():
        return Connection(Engine(), None, {"amd64": BaseImage("amd64", "r/python@sha256:" + "b" * 64, "t", "bootstrap")}, Path("pip.whl"))  # type: ignore[arg-type]

    monkeypatch.setattr(buildlocks, "generate", generate)
    cfg = dataclasses.replace(builder.cfg, build_overrides_dir=tmp_path / "overrides")
    own = build.SdistBuilder(cfg, builder.index, connect)
    req = own.request(pins["needsmaturin"], parse_target("manylinux_2_28_x86_64"))
    outcome = own.build(req)
    assert generated == ["r/python@sha256:" + "b" * 64]
    assert outcome.build_constraints == "overrides/needsmaturin.txt"  # relative to the project root
    # it got past the requirement check to the build-dependency download (maturin is not on the fixture index)
    assert "maturin" in outcome.reason and "does not pin" not in outcome.reason
    user = tmp_path / "user-build.txt"
    user.write_text(builder.cfg.build_constraints.read_text())
    mine = build.SdistBuilder(dataclasses.replace(cfg, build_overrides=(("needsmaturin", user),)), builder.index, connect)
    refused = mine.build(mine.request(pins["needsmaturin"], parse_target("manylinux_2_28_x86_64")))
    assert not refused.ok and "user-build.txt does not pin" in refused.reason and len(generated) == 1


def test_a_wheel_whose_dependency_cell_failed_is_blocked_by_it_not_broken(tmp_path):
    """pywebpush (pure) built, but cffi's cell failed on the target, so pip cannot install
    its dependencies: the reason names cffi; a missing dependency that is no failed cell
    keeps the plain reason."""
    from factory.bases.bootstrap import BaseImage

    (tmp_path / "pyproject.toml").write_text("[tool.factory]\n")
    cfg = load_config(tmp_path / "pyproject.toml", env={})
    pure = BuildOutcome(**{**OK.to_json(), "name": "pywebpush", "filename": "pywebpush-1.9.4-py3-none-any.whl", "log_tail": ()})
    other = BuildOutcome(**{**OK.to_json(), "name": "other", "filename": "other-1.0-py3-none-any.whl", "log_tail": ()})
    cffi = BuildOutcome(**{**OK.to_json(), "name": "cffi", "ok": False, "filename": "", "reason": "C-API removed in 3.14", "log_tail": ()})
    for o in (pure, other):
        with zipfile.ZipFile(tmp_path / o.filename, "w") as z:
            z.writestr("pywebpush/__init__.py", "")
    missing = "ERROR: No matching distribution found for {}>=1.12 (from cryptography)\n"
    engine = _Engine({pure.filename: missing.format("CFFI"), other.filename: missing.format("cryptography")})
    base = BaseImage(arch="amd64", ref="r/python@sha256:" + "f" * 64, tag="t", source="bootstrap")
    conn = Connection(engine=engine, registry=type("R", (), {"auth": None})(), bases={"amd64": base}, pip_wheel=tmp_path / "pip.whl")  # type: ignore[arg-type]
    checked = WheelChecks(cfg, lambda: conn).import_check(parse_target("manylinux_2_28_x86_64"), tmp_path, [pure, other, cffi])
    assert checked[0].reason.startswith("blocked by a failed dependency: CFFI has no wheel for manylinux_2_28_x86_64"), checked[0]
    assert checked[1].reason.startswith("built, but installing and importing"), checked[1]
    assert checked[1].reason.endswith("failed: ERROR: No matching distribution found for cryptography>=1.12 (from cryptography)"), checked[1]
    from factory.sdist.checks import _error_line  # the line that names why an import failed (uvloop 0.21.0 on 3.14)

    traceback = "Traceback (most recent call last):\n  File \"x\", line 1\nImportError: cannot import name 'BaseDefaultEventLoopPolicy' from 'asyncio.events'\n"
    assert _error_line(traceback) == "ImportError: cannot import name 'BaseDefaultEventLoopPolicy' from 'asyncio.events'"
    assert _error_line("imported nothing useful\n") == ""


def test_a_project_s_build_timeout_reaches_its_cells_only(lane):
    import dataclasses

    from factory.core.config import SdistOptions

    builder, pins, runs, _ = lane
    builder.cfg = dataclasses.replace(builder.cfg, sdist_options=(("tinyc", SdistOptions(build_timeout=4000)),))
    assert _build(builder, pins["tinyc"]).ok
    assert runs[0]["timeout"] == "4000" and builder.cfg.build_timeout_for("other") == 1800


def test_import_check_on_emulated_arm64_without_qemu_stops_the_run_instead_of_failing_the_wheel(tmp_path, monkeypatch):
    from factory.bases.bootstrap import BaseImage
    from factory.core import binfmt
    from factory.core.errors import BinfmtMissingError

    (tmp_path / "pyproject.toml").write_text("[tool.factory]\n")
    cfg = load_config(tmp_path / "pyproject.toml", env={})
    arm = BuildOutcome(**{**OK.to_json(), "target": "manylinux_2_28_aarch64", "filename": "tinyc-1.0-py3-none-any.whl", "log_tail": ()})
    with zipfile.ZipFile(tmp_path / arm.filename, "w") as z:
        z.writestr("tinyc/__init__.py", "")
    engine = _Engine(set())
    base = BaseImage(arch="arm64", ref="r/python@sha256:" + "f" * 64, tag="t", source="bootstrap")
    conn = Connection(engine=engine, registry=type("R", (), {"auth": None})(), bases={"arm64": base}, pip_wheel=tmp_path / "pip.whl")  # type: ignore[arg-type]
    monkeypatch.setattr(binfmt.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(binfmt, "status", lambda root=None: None)
    with pytest.raises(BinfmtMissingError):
        WheelChecks(cfg, lambda: conn).import_check(parse_target("manylinux_2_28_aarch64"), tmp_path, [arm])
    assert engine.runs == []
