"""The distroless rootfs steps that need neither Docker nor a mirror (factory/rootfs.py):
dpkg's path filters, the redone maintainer-script side effects, the status records, the
deterministic tar and the hash check of downloaded packages. The whole route, on real
forky packages with the QEMU handler off, is in tests/integration/test_pipeline.py."""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import pytest
from debian.deb822 import Deb822
from paths import ROOT

from factory.bases import rootfs
from factory.core.config import load_recipe
from factory.core.errors import BootstrapError

RECIPE = ROOT / "factory/resources/images/recipes/forky-slim.toml"


def test_path_filters_follow_dpkg():
    recipe = load_recipe(RECIPE)
    assert not rootfs.kept("/usr/share/doc/libc6/changelog.gz", recipe.path_exclude, recipe.path_include)
    assert rootfs.kept("/usr/share/doc/libc6/copyright", recipe.path_exclude, recipe.path_include)
    assert not rootfs.kept("/usr/share/man/man1/python3.14.1.gz", recipe.path_exclude, recipe.path_include)
    assert rootfs.kept("/usr/lib/python3.14/os.py", recipe.path_exclude, recipe.path_include)


def test_the_slim_recipe_is_distroless():
    recipe = load_recipe(RECIPE)
    assert recipe.variant == rootfs.EXTRACT_VARIANT and "debconf" in recipe.drop_packages
    assert not {"apt", "dpkg", "perl-base", "bash", "dash"} & set(recipe.packages)


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    (tree / "usr/share/base-passwd").mkdir(parents=True)
    (tree / "usr/share/base-passwd/passwd.master").write_text("root:*:0:0:root:/root:/bin/bash\n")
    (tree / "usr/share/base-passwd/group.master").write_text("root:*:0:\n")
    (tree / "usr/share/ca-certificates/mozilla").mkdir(parents=True)
    (tree / "usr/share/ca-certificates/mozilla/B.crt").write_text("-----B-----")
    (tree / "usr/share/ca-certificates/mozilla/A.crt").write_text("-----A-----\n")
    (tree / "usr/share/zoneinfo/Etc").mkdir(parents=True)
    (tree / "usr/share/zoneinfo/Etc/UTC").write_bytes(b"TZif")
    (tree / "usr/bin").mkdir(parents=True)
    return tree


def test_side_effects_of_the_maintainer_scripts(tmp_path):
    tree = _tree(tmp_path)
    rootfs.write_accounts(tree)
    assert (tree / "etc/passwd").read_text().startswith("root:*:0:0:") and oct((tree / "etc/passwd").stat().st_mode & 0o777) == "0o644"
    assert rootfs.write_ca_bundle(tree) == 2
    assert (tree / "etc/ssl/certs/ca-certificates.crt").read_text() == "-----A-----\n-----B-----\n"
    assert (tree / "etc/ca-certificates.conf").read_text().splitlines()[1:] == ["mozilla/A.crt", "mozilla/B.crt"]
    rootfs.write_timezone(tree)
    assert os.readlink(tree / "etc/localtime") == "/usr/share/zoneinfo/Etc/UTC" and (tree / "etc/timezone").read_text() == "Etc/UTC\n"
    rootfs.link_python3(tree, "python3.14")
    assert os.readlink(tree / "usr/bin/python3") == "python3.14"


def test_a_set_without_base_passwd_is_refused(tmp_path):
    with pytest.raises(BootstrapError, match="base-passwd"):
        rootfs.write_accounts(tmp_path)


def test_status_records_are_dpkg_paragraphs(tmp_path):
    deb = rootfs.DebFile(tmp_path / "x.deb", {"Package": "zlib1g", "Version": "1:1.3", "Architecture": "arm64"}, b"abc  usr/lib/libz.so.1\n")
    rootfs.write_status(tmp_path, [deb])
    record = Deb822((tmp_path / rootfs.STATUS_DIR / "zlib1g").read_text())
    assert (record["Package"], record["Status"], record["Version"], record["Architecture"]) == ("zlib1g", "install ok installed", "1:1.3", "arm64")
    assert (tmp_path / rootfs.STATUS_DIR / "zlib1g.md5sums").read_bytes() == deb.md5sums


def test_the_tar_is_sorted_clamped_and_the_same_twice(tmp_path):
    tree = _tree(tmp_path)
    rootfs.write_accounts(tree)
    os.link(tree / "etc/passwd", tree / "etc/passwd-")
    (tree / "usr/bin/python3").symlink_to("python3.14")
    first = rootfs.write_tar(tree, tmp_path / "a.tar", epoch=1000)
    os.utime(tree / "etc/group", (5, 5))  # older than the epoch: kept
    second = rootfs.write_tar(tree, tmp_path / "b.tar", epoch=1000)
    assert first != second
    assert rootfs.write_tar(tree, tmp_path / "c.tar", epoch=1000) == second == hashlib.sha256((tmp_path / "b.tar").read_bytes()).hexdigest()
    with tarfile.open(tmp_path / "b.tar") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["./etc/group"].mtime == 5 and members["./etc/passwd"].mtime == 1000
    assert members["./etc/passwd-"].islnk() and members["./etc/passwd-"].linkname == "./etc/passwd"
    assert members["./usr/bin/python3"].issym() and list(members).index("./etc") < list(members).index("./etc/group")
    assert not list(tmp_path.glob(".*.tmp-*"))


def test_a_package_with_another_sha256_is_refused(tmp_path):
    deb = tmp_path / "zlib1g_1.3_arm64.deb"
    deb.write_bytes(b"not the packaged bytes")
    index = "Package: zlib1g\nVersion: 1.3\nArchitecture: arm64\nFilename: pool/main/z/zlib/zlib1g_1.3_arm64.deb\nSHA256: " + "0" * 64 + "\n"
    files = [rootfs.DebFile(deb, {"Package": "zlib1g", "Version": "1.3", "Architecture": "arm64"}, b"")]
    with pytest.raises(BootstrapError, match="has sha256"):
        rootfs.verify(files, index)
    with pytest.raises(BootstrapError, match="not in the Packages index"):
        rootfs.verify(files, index.replace("1.3", "1.4"))
    good = index.replace("0" * 64, hashlib.sha256(deb.read_bytes()).hexdigest())
    assert [p.name for p in rootfs.verify(files, good)] == ["zlib1g"]
