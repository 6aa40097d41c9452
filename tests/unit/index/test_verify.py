"""Wheels whose contents contradict their filename are refused."""

import struct
from pathlib import Path

import pytest
from indexserver import make_wheel

from factory.core.errors import WheelContentError
from factory.core.targets import parse_target
from factory.index.verify import check_wheel

EM_X86_64, EM_AARCH64 = 62, 183


def elf(machine: int) -> bytes:
    """A minimal ELF64 little-endian shared-object header for ``machine``."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    return struct.pack("<16sHHIQQQIHHHHHH", ident, 3, machine, 1, 0, 0, 0, 0, 64, 56, 0, 64, 0, 0)


def wheel(tmp_path, filename, **kw):
    p = tmp_path / filename
    p.write_bytes(make_wheel(filename, **kw))
    return p


X86 = parse_target("manylinux_2_28_x86_64")
NAME = "demo-1.0-cp314-cp314-manylinux_2_17_x86_64.whl"


def test_an_honest_wheel_passes(tmp_path):
    check_wheel(wheel(tmp_path, NAME, extra={"demo/_x.cpython-314-x86_64-linux-gnu.so": elf(EM_X86_64)}), X86)


def test_elf_for_another_machine(tmp_path):
    path = wheel(tmp_path, NAME, extra={"demo/_x.cpython-314-x86_64-linux-gnu.so": elf(EM_AARCH64)})
    with pytest.raises(WheelContentError, match=r"demo/_x.cpython-314-x86_64-linux-gnu.so is built for EM_AARCH64, the target manylinux_2_28_x86_64 needs EM_X86_64"):
        check_wheel(path, X86)


def test_wheel_metadata_tags_that_differ_from_the_filename(tmp_path):
    path = wheel(tmp_path, NAME, tags=["cp314-cp314-manylinux_2_17_aarch64"])
    with pytest.raises(WheelContentError, match="WHEEL declares tags cp314-cp314-manylinux_2_17_aarch64, the filename says cp314-cp314-manylinux_2_17_x86_64"):
        check_wheel(path, X86)


def test_not_a_zip(tmp_path):
    path = tmp_path / NAME
    path.write_bytes(b"<html>proxy error</html>")
    with pytest.raises(WheelContentError, match="not a valid zip archive"):
        check_wheel(path, X86)


def _compiled_wheel(tmp_path, source: str, name: str, flags: tuple[str, ...] = ("-lpthread",)) -> Path:
    """A wheel holding one shared object compiled by the host's gcc (glibc 2.36 on bookworm)."""
    import shutil
    import subprocess

    if shutil.which("gcc") is None:
        pytest.skip("no host C compiler")
    (tmp_path / "x.c").write_text(source)
    so = tmp_path / "x.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", so, tmp_path / "x.c", *flags], check=True)
    path = tmp_path / name
    path.write_bytes(make_wheel(name, extra={"pkg/_x.so": so.read_bytes()}))
    return path


THREADS = "#include <pthread.h>\nstatic void *f(void *a) { return a; }\nint go(void) { pthread_t t; return pthread_create(&t, 0, f, 0); }\n"


def test_glibc_versions_above_the_floor_are_named(tmp_path):
    from factory.index.verify import glibc_versions_above

    wheel = _compiled_wheel(tmp_path, THREADS, "x-1.0-cp314-cp314-manylinux_2_28_x86_64.whl")
    above = glibc_versions_above(wheel, (2, 28))
    assert any(s.startswith("pthread_create@GLIBC_2.34") for s in above), above
    assert glibc_versions_above(wheel, (2, 40)) == []


def test_musl_static_check_names_foreign_needs_and_symbols(tmp_path):
    from factory.index.verify import check_musl_wheel

    wheel = _compiled_wheel(tmp_path, THREADS, "x-1.0-cp314-cp314-musllinux_1_2_x86_64.whl")
    target = parse_target("musllinux_1_2_x86_64")
    with pytest.raises(WheelContentError, match="needs libc.so.6"):
        check_musl_wheel(wheel, target, {"pthread_create"})


def test_musl_static_check_names_unresolved_symbols(tmp_path):
    from factory.index.verify import check_musl_wheel

    source = "extern int strlen_musl_lacks(const char *);\nextern int puts(const char *);\nint go(void) { puts(\"hi\"); return strlen_musl_lacks(\"x\"); }\n"
    wheel = _compiled_wheel(tmp_path, source, "x-1.0-cp314-cp314-musllinux_1_2_x86_64.whl", ("-nostdlib",))
    target = parse_target("musllinux_1_2_x86_64")
    check_musl_wheel(wheel, target, {"puts", "strlen_musl_lacks"})
    with pytest.raises(WheelContentError, match="neither musl nor CPython 3.14 export: strlen_musl_lacks"):
        check_musl_wheel(wheel, target, {"puts"})
