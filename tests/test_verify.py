"""Wheels whose contents contradict their filename are refused."""

import struct

import pytest

from factory.targets import parse_target
from factory.verify import WheelContentError, check_wheel
from indexserver import make_wheel

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
