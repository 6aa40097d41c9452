"""The stable-ABI check of a PYO3_USE_ABI3_FORWARD_COMPATIBILITY build (factory/stableabi.py),
on shared objects the host's C compiler makes: one importing only stable-ABI symbols, one
importing what the full API has (PyUnicode_New, as pydantic-core 2.27.2's aarch64 build did),
and its wiring into the Rust cell's PYO3_USE_ABI3_FORWARD_COMPATIBILITY retry (the engine a
stand-in: a real PyO3 0.22 crate cross-compiled would need about 10 minutes)."""

from __future__ import annotations

import json
import subprocess
import types
import zipfile
from pathlib import Path

import pytest
from indexserver import FixtureIndex, lane_project, make_sdist, make_wheel, sha256

from factory.core.cache import FileCache
from factory.core.config import load_config
from factory.core.errors import WheelContentError
from factory.core.targets import parse_target
from factory.index.client import Index
from factory.locks.lockfile import Pin
from factory.sdist.build import SdistBuilder
from factory.sdist.stableabi import imported_cpython_symbols, outside_stable_abi, stable_abi_symbols

# Declared here, not from Python.h: the check reads only the names a module imports.
STABLE = "extern void *PyLong_FromLong(long); extern void Py_IncRef(void *);\nvoid *f(void *o) { Py_IncRef(o); return PyLong_FromLong(1); }\n"
FULL = "extern void *PyUnicode_New(long, unsigned); extern void *_PyObject_MakeTpCall(void *, void *, long, void *, void *);\nvoid *f(void) { return PyUnicode_New(1, 127); }\nvoid *g(void *o) { return _PyObject_MakeTpCall(0, o, 0, 0, 0); }\n"


def shared_object(tmp_path: Path, name: str, source: str) -> Path:
    c, so = tmp_path / f"{name}.c", tmp_path / f"{name}.so"
    c.write_text(source)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(so), str(c)], check=True)
    return so


def wheel_of(tmp_path: Path, name: str, modules: dict[str, Path]) -> Path:
    wheel = tmp_path / f"{name}-1.0-cp314-cp314-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for arcname, so in modules.items():
            z.write(so, arcname)
        z.writestr(f"{name}-1.0.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    return wheel


def test_a_module_importing_only_the_stable_abi_passes(tmp_path):
    so = shared_object(tmp_path, "stable", STABLE)
    assert imported_cpython_symbols(so.read_bytes()) == {"PyLong_FromLong", "Py_IncRef"}
    assert outside_stable_abi(wheel_of(tmp_path, "ok", {"ok/_ok.cpython-314-x86_64-linux-gnu.so": so})) == {}


def test_the_full_api_symbols_a_module_imports_are_named(tmp_path):
    stable, full = shared_object(tmp_path, "stable", STABLE), shared_object(tmp_path, "full", FULL)
    wheel = wheel_of(tmp_path, "mixed", {"mixed/_a.cpython-314-x86_64-linux-gnu.so": stable, "mixed/_b.cpython-314-x86_64-linux-gnu.so": full})
    assert outside_stable_abi(wheel) == {"mixed/_b.cpython-314-x86_64-linux-gnu.so": ("PyUnicode_New", "_PyObject_MakeTpCall")}
    detail = SdistBuilder._outside_stable_abi(wheel)
    assert "PYO3_USE_ABI3_FORWARD_COMPATIBILITY=1" in detail and "imports PyUnicode_New, _PyObject_MakeTpCall" in detail
    assert SdistBuilder._outside_stable_abi(wheel_of(tmp_path, "ok", {"ok/_ok.so": stable})) == ""


def test_the_stable_abi_list_is_cpythons():
    symbols = stable_abi_symbols()
    assert {"PyLong_FromLong", "Py_IncRef", "_Py_NoneStruct", "PyType_FromSpec"} <= symbols  # functions and data
    assert not {"PyUnicode_New", "_PyObject_MakeTpCall", "PyFunction_Type"} & symbols


def test_a_module_that_is_not_elf_is_a_wheel_content_error(tmp_path):
    bogus = tmp_path / "bogus.so"
    bogus.write_bytes(b"not an ELF file")
    with pytest.raises(WheelContentError, match="cannot read its extension modules"):
        outside_stable_abi(wheel_of(tmp_path, "bad", {"bad/_bad.so": bogus}))


class RustEngine:
    """A stand-in engine for the Rust cell: ``cargo fetch`` succeeds; the build refuses 3.14
    as PyO3 before 0.25 does, unless the forward-compatibility variable is exported, when
    it writes ``wheel`` (a ``cp314-abi3`` wheel) into the container's output directory."""

    WHEEL = "rustabi-1.0-cp314-abi3-manylinux_2_28_x86_64.whl"

    def __init__(self, wheel: bytes) -> None:
        self.wheel, self.builds = wheel, 0

    def inspect(self, ref: str) -> dict[str, str]:
        return {"Id": ref}  # the host builder image is there

    def remove_labelled(self, label: str) -> None:
        pass

    def run(self, image, cmd, volumes, environment, timeout, network=True):
        script = cmd[-1]
        if "cargo fetch" in script:
            return 0, ""
        self.builds += 1
        if 'export PYO3_USE_ABI3_FORWARD_COMPATIBILITY="1"' not in script:
            return 1, "error: the configured Python interpreter version (3.14) is newer than PyO3's maximum supported version (3.13)\n"
        out = next(Path(host) for host, spec in volumes.items() if spec["bind"] == "/opt/factory/out")
        (out / self.WHEEL).write_bytes(self.wheel)
        return 0, "Built wheel\n"


@pytest.fixture
def rust_lane(tmp_path):
    """An ``SdistBuilder`` over a real index on loopback holding a maturin sdist with a
    ``Cargo.lock``, its engine a ``RustEngine`` whose wheel each test sets."""
    pyproject = '[build-system]\nrequires = []\nbuild-backend = "maturin"\n[project]\nname = "rustabi"\nversion = "1.0"\n'
    sdist = make_sdist("rustabi", "1.0", {"pyproject.toml": pyproject, "Cargo.toml": "[package]\n", "Cargo.lock": "version = 3\n", "src/lib.rs": ""})
    projects = {"rustabi": {"rustabi-1.0.tar.gz": sdist}, **lane_project(tmp_path)}
    cfg = load_config(tmp_path / "pyproject.toml", env={})
    engine = RustEngine(b"")
    with FixtureIndex(projects) as idx:
        builder = SdistBuilder(cfg, Index(idx.url, FileCache(cfg.cache_dir)), lambda: types.SimpleNamespace(engine=engine))
        builder._zig_roots[None] = tmp_path / "zig"
        builder.__dict__["_tools"] = tmp_path / "tools"
        req = builder.request(Pin("rustabi", "1.0", frozenset({sha256(sdist)}), None, 1), parse_target("manylinux_2_28_x86_64"))
        yield builder, req, engine


def test_a_forward_compatible_rust_build_must_keep_to_the_stable_abi(tmp_path, rust_lane):
    """The Rust cell's retry with PYO3_USE_ABI3_FORWARD_COMPATIBILITY=1: a wheel importing
    only stable-ABI symbols is the cell's; one importing PyUnicode_New fails with the check's
    reason, is not cached, and a cached one (from before the check) is dropped and rebuilt."""
    builder, req, engine = rust_lane
    full, stable = (
        make_wheel(RustEngine.WHEEL, {"rustabi/_rustabi.abi3.so": shared_object(tmp_path, name, source).read_bytes()})
        for name, source in (("full", FULL), ("stable", STABLE))
    )

    engine.wheel = full
    refused = builder.build(req)
    assert not refused.ok and engine.builds == 2
    assert refused.reason.startswith("PyO3 older than CPython 3.14: PyO3 supports up to 3.13")
    assert "built again with PYO3_USE_ABI3_FORWARD_COMPATIBILITY=1: PyO3 older than CPython 3.14: built with" in refused.reason
    assert "not against the stable ABI: it imports PyUnicode_New, _PyObject_MakeTpCall" in refused.reason
    assert not list((builder.cfg.cache_dir / "builds").glob("*/*.whl"))  # nothing of it cached

    engine.wheel, engine.builds = stable, 0
    built = builder.build(req)
    assert built.ok and not built.cached and built.filename == RustEngine.WHEEL, built.reason
    assert builder.build(req).cached and engine.builds == 2  # the first build is not cached (it failed); the retry is

    # a full-API wheel cached before the check existed: dropped, built again and refused
    (entry,) = {w.parent for w in (builder.cfg.cache_dir / "builds").glob("*/*.whl")}
    (entry / built.filename).write_bytes(full)
    record = json.loads((entry / "outcome.json").read_text())
    (entry / "outcome.json").write_text(json.dumps({**record, "sha256": sha256(full)}))  # a sound entry
    engine.wheel, engine.builds = full, 0
    again = builder.build(req)
    assert not again.ok and "it imports PyUnicode_New" in again.reason and engine.builds == 2 and not entry.exists()
