"""Sdist inspection (unsafe members, bad archives) and build requirement checks."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from indexserver import make_sdist

from factory.core.errors import BuildDependencyError, SdistError
from factory.core.targets import parse_target
from factory.locks.lockfile import read_lock
from factory.sdist.archive import LEGACY_REQUIRES, inspect_sdist
from factory.sdist.builddeps import check_requires

TARGET = parse_target("manylinux_2_28_x86_64")


def tar_with(tmp_path: Path, members: list[tarfile.TarInfo]) -> Path:
    path = tmp_path / "evil-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for m in members:
            tar.addfile(m, io.BytesIO(b"x" * m.size) if m.isfile() else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


def test_reads_build_requires(tmp_path):
    path = tmp_path / "tinyc-1.0.tar.gz"
    path.write_bytes(make_sdist("tinyc", "1.0", {"setup.py": ""}, requires=("setuptools>=61", "cython<4")))
    info = inspect_sdist(path)
    assert info.top == "tinyc-1.0"
    assert info.requires == ("setuptools>=61", "cython<4")


def test_legacy_sdist_gets_pep517_default(tmp_path):
    path = tar_with(tmp_path, [member("evil-1.0/setup.py")])
    assert inspect_sdist(path).requires == LEGACY_REQUIRES


@pytest.mark.parametrize(
    "members, words",
    [
        ([member("evil-1.0/setup.py"), member("evil-1.0/../../etc/cron.d/x")], "escapes the archive"),
        ([member("/etc/passwd")], "escapes the archive"),
        ([member("evil-1.0/setup.py"), member("other/setup.py")], "one top-level directory"),
        ([member("evil-1.0/setup.py"), member("evil-1.0/link", tarfile.SYMTYPE, "../../../etc/passwd")], "points outside"),
        ([member("evil-1.0/setup.py"), member("evil-1.0/abs", tarfile.SYMTYPE, "/etc/passwd")], "points outside"),
        ([member("evil-1.0/setup.py"), member("evil-1.0/hard", tarfile.LNKTYPE, "etc/passwd")], "points outside"),
        ([member("evil-1.0/setup.py"), member("evil-1.0/dev", tarfile.CHRTYPE)], "device"),
    ],
)
def test_unsafe_members_are_refused(tmp_path, members, words):
    with pytest.raises(SdistError, match=words):
        inspect_sdist(tar_with(tmp_path, members))


def test_inner_links_are_fine(tmp_path):
    path = tar_with(tmp_path, [member("ok-1.0/setup.py"), member("ok-1.0/a/link", tarfile.SYMTYPE, "../setup.py")])
    assert inspect_sdist(path).top == "ok-1.0"


def test_corrupt_archive(tmp_path):
    path = tmp_path / "bad-1.0.tar.gz"
    good = make_sdist("bad", "1.0", {"setup.py": ""})
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(SdistError, match="not a readable tar archive"):
        inspect_sdist(path)


def build_lock(tmp_path: Path) -> Path:
    path = tmp_path / "build.txt"
    path.write_text("setuptools==84.2.1 --hash=sha256:" + "a" * 64 + "\ncython==3.3.1 --hash=sha256:" + "b" * 64 + "\n")
    return path


def sdist_requiring(tmp_path: Path, *requires: str):
    path = tmp_path / "needs-1.0.tar.gz"
    path.write_bytes(make_sdist("needs", "1.0", {"setup.py": ""}, requires=requires))
    return inspect_sdist(path)


def test_requires_satisfied(tmp_path):
    check_requires(sdist_requiring(tmp_path, "setuptools>=61", "Cython>=3,<4", "pywin32; sys_platform == 'win32'"), read_lock(build_lock(tmp_path)), TARGET, "3.14.8")


def test_unpinned_build_dependency_is_named(tmp_path):
    with pytest.raises(BuildDependencyError, match="needs build dependency 'maturin>=1'.*does not pin"):
        check_requires(sdist_requiring(tmp_path, "setuptools", "maturin>=1"), read_lock(build_lock(tmp_path)), TARGET, "3.14.8")


def test_build_dependency_version_conflict_is_named(tmp_path):
    with pytest.raises(BuildDependencyError, match=r"needs build dependency 'Cython<3'.*pins cython==3.3.1"):
        check_requires(sdist_requiring(tmp_path, "Cython<3"), read_lock(build_lock(tmp_path)), TARGET, "3.14.8")
