"""A base's Debian package lock: installed packages matched to the Packages index apt
used, and the one-phrase difference a rebuild on a moved mirror is refused with."""

from __future__ import annotations

import pytest

from factory.bases.debpackages import DebPackage, UnknownPackageError, first_difference, installed, package_lock
from factory.bases.imagelock import BaseImage, BaseImagesLock
from factory.core.config import SNAPSHOT_ARCHIVE, load_recipe
from factory.core.errors import ConfigError

STATUS = """\
Package: libc6
Status: install ok installed
Architecture: arm64
Version: 2.42-2

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2026a-1

Package: removed-one
Status: deinstall ok config-files
Architecture: arm64
Version: 1.0-1
"""

PACKAGES = f"""\
Package: libc6
Version: 2.42-2
Architecture: arm64
Filename: pool/main/g/glibc/libc6_2.42-2_arm64.deb
SHA256: {'a' * 64}

Package: libc6
Version: 2.41-9
Architecture: arm64
Filename: pool/main/g/glibc/libc6_2.41-9_arm64.deb
SHA256: {'b' * 64}

Package: tzdata
Version: 2026a-1
Architecture: all
Filename: pool/main/t/tzdata/tzdata_2026a-1_all.deb
SHA256: {'c' * 64}
"""


def test_installed_packages_get_the_sha256_of_their_exact_version():
    assert installed(STATUS) == [("libc6", "2.42-2", "arm64"), ("tzdata", "2026a-1", "all")]
    lock = package_lock(installed(STATUS), PACKAGES)
    assert lock == (
        DebPackage("libc6", "2.42-2", "arm64", "a" * 64, "pool/main/g/glibc/libc6_2.42-2_arm64.deb"),
        DebPackage("tzdata", "2026a-1", "all", "c" * 64, "pool/main/t/tzdata/tzdata_2026a-1_all.deb"),
    )


def test_a_package_the_index_does_not_list_is_named():
    with pytest.raises(UnknownPackageError, match="libc6 2.42-2 \\(arm64\\)"):
        package_lock([("libc6", "2.42-2", "arm64")], PACKAGES.split("\n\n", 1)[1])


def test_first_difference_names_the_package():
    lock = package_lock(installed(STATUS), PACKAGES)
    assert first_difference(lock, lock) == ""
    moved = (DebPackage("libc6", "2.43-1", "arm64", "d" * 64, "x"), lock[1])
    assert first_difference(lock, moved) == "libc6 is 2.43-1 now, 2.42-2 in bases.lock"
    assert "is new" in first_difference(lock[:1], lock)
    assert "no longer installed" in first_difference(lock, lock[:1])
    rebuilt = (lock[0], DebPackage("tzdata", "2026a-1", "all", "e" * 64, lock[1].filename))
    assert "tzdata 2026a-1's .deb has sha256 eeeeeeeeeeee" in first_difference(lock, rebuilt)


def test_bases_lock_round_trips_the_package_lists(tmp_path):
    packages = package_lock(installed(STATUS), PACKAGES)
    base = BaseImage("arm64", "r/python@sha256:" + "1" * 64, "r/python:t", "bootstrap", "2" * 64, "3.14.8-1", packages)
    path = tmp_path / "bases.lock"
    BaseImagesLock("3.14.8", {"arm64": base}).dump(path)
    assert BaseImagesLock.load(path).bases["arm64"].packages == packages
    assert "packages" not in BaseImage("amd64", "r@sha256:" + "1" * 64, "t", "upstream").to_json()


def test_a_recipe_snapshot_is_the_snapshot_archive(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('suite = "forky"\nsnapshot = "20261120T000000Z"\npython-package = "python3.14"\npackages = ["python3.14"]\n')
    assert load_recipe(recipe).mirror == f"{SNAPSHOT_ARCHIVE}/20261120T000000Z/"
    recipe.write_text('suite = "forky"\nsnapshot = "last week"\npython-package = "python3.14"\npackages = ["python3.14"]\n')
    with pytest.raises(ConfigError, match="not a timestamp"):
        load_recipe(recipe)
    recipe.write_text('suite = "forky"\npython-package = "python3.14"\npackages = ["python3.14"]\n')
    with pytest.raises(ConfigError, match="mirror \\(or snapshot\\)"):
        load_recipe(recipe)
