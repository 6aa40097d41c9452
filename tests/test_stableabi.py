"""The stable-ABI check of a PYO3_USE_ABI3_FORWARD_COMPATIBILITY build (factory/stableabi.py),
on shared objects the host's C compiler makes: one importing only stable-ABI symbols, one
importing what the full API has (PyUnicode_New, as pydantic-core 2.27.2's aarch64 build did)."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from factory.build import SdistBuilder
from factory.errors import WheelContentError
from factory.stableabi import imported_cpython_symbols, outside_stable_abi, stable_abi_symbols

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
