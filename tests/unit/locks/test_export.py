"""Project locks (uv.lock, poetry.lock, pdm.lock) exported by the tools that own them:
what is exported (package, groups, extras), detection from the content, the header checks,
and the one-line errors. Real uv, poetry and pdm run here (the fixtures' README says how
their locks were made)."""

import shutil

import pytest
from paths import FIXTURES

from factory.core.config import load_config
from factory.core.errors import LockError
from factory.locks.lockfile import ExportOptions, read_lock
from factory.pipeline import find_lock

PROJECTS = FIXTURES / "projects"
PY = "3.14.8"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache for the module: the exporters' environment is installed once."""
    return tmp_path_factory.mktemp("cache")


def project(tmp_path, name):
    dest = tmp_path / name
    shutil.copytree(PROJECTS / name, dest)
    return dest


def pins(lock):
    return {p.name: p.version for p in lock.pins}


def test_uv_workspace_member_exports_its_runtime_dependencies(tmp_path, cache):
    root = project(tmp_path, "uvws")
    lock = read_lock(root / "uv.lock", ExportOptions(cache, PY, package="svc"))
    assert lock.exported_by == "uv" and lock.exported_from == root / "uv.lock" and lock.format == "pylock"
    assert pins(lock) == {"markupsafe": "3.0.3"}  # no dev group, no extra, no workspace member
    assert all(p.hashes for p in lock.pins)


def test_uv_groups_and_extras_are_uvs_words(tmp_path, cache):
    root = project(tmp_path, "uvws")
    lock = read_lock(root / "uv.lock", ExportOptions(cache, PY, package="svc", groups=("dev",), extras=("fast",)))
    assert pins(lock) == {"markupsafe": "3.0.3", "iniconfig": "2.1.0", "six": "1.17.0"}


def test_the_root_project_without_dependencies_names_the_package_key(tmp_path, cache):
    root = project(tmp_path, "uvws")
    with pytest.raises(LockError, match=r"exports no package for the root project.*\[tool.factory\] package") as e:
        read_lock(root / "uv.lock", ExportOptions(cache, PY))
    assert "\n" not in str(e.value)


def test_the_format_comes_from_the_content_not_the_name(tmp_path, cache):
    root = project(tmp_path, "uvws")
    (root / "uv.lock").rename(root / "service.lock")
    assert read_lock(root / "service.lock", ExportOptions(cache, PY, package="svc")).exported_by == "uv"


def test_an_export_is_cached_by_its_inputs(tmp_path, cache):
    root = project(tmp_path, "uvws")
    first = read_lock(root / "uv.lock", ExportOptions(cache, PY, package="svc"))
    again = read_lock(root / "uv.lock", ExportOptions(cache, PY, package="svc"))
    assert again.path == first.path
    other = read_lock(root / "uv.lock", ExportOptions(cache, PY, package="svc", groups=("dev",)))
    assert other.path != first.path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("version = 1\n", "version = 7\n", 1), r"uv.lock version 7 is not one factory's uv reads"),
        (lambda t: t.replace('requires-python = ">=3.14"', 'requires-python = "==3.12.*"', 1), r"requires-python ==3.12.\* excludes CPython 3.14.8.*change requires-python"),
    ],
)
def test_uv_header_errors_are_one_line(tmp_path, cache, edit, message):
    root = project(tmp_path, "uvws")
    lock = root / "uv.lock"
    lock.write_text(edit(lock.read_text()))
    with pytest.raises(LockError, match=message) as e:
        read_lock(lock, ExportOptions(cache, PY, package="svc"))
    assert "\n" not in str(e.value) and e.value.fix


def test_a_path_dependency_is_refused_naming_the_package(tmp_path, cache):
    root = project(tmp_path, "uvpathdep")
    with pytest.raises(LockError, match=r"package sub is a directory package"):
        read_lock(root / "uv.lock", ExportOptions(cache, PY))


def test_a_lock_without_its_pyproject_is_one_line(tmp_path, cache):
    root = project(tmp_path, "uvws")
    (root / "pyproject.toml").unlink()
    with pytest.raises(LockError, match=r"no pyproject.toml beside it"):
        read_lock(root / "uv.lock", ExportOptions(cache, PY, package="svc"))


def test_a_project_lock_outside_a_command_is_refused(tmp_path):
    root = project(tmp_path, "uvws")
    with pytest.raises(LockError, match=r"a uv lock, which factory reads only through its own commands"):
        read_lock(root / "uv.lock")


def test_poetry_lock_is_exported_by_poetry(tmp_path, cache):
    root = project(tmp_path, "poetryapp")
    lock = read_lock(root / "poetry.lock", ExportOptions(cache, PY))
    assert lock.exported_by == "poetry" and lock.format == "requirements"
    assert pins(lock) == {"six": "1.17.0"} and len(lock.pin("six").hashes) == 2
    assert pins(read_lock(root / "poetry.lock", ExportOptions(cache, PY, groups=("dev",)))) == {"six": "1.17.0", "iniconfig": "2.1.0"}


def test_pdm_lock_is_exported_by_pdm(tmp_path, cache):
    root = project(tmp_path, "pdmapp")
    lock = read_lock(root / "pdm.lock", ExportOptions(cache, PY))
    assert lock.exported_by == "pdm" and pins(lock) == {"six": "1.17.0"}
    assert pins(read_lock(root / "pdm.lock", ExportOptions(cache, PY, groups=("dev",)))) == {"six": "1.17.0", "iniconfig": "2.1.0"}


def test_pdm_requires_python_is_checked_before_pdm_runs(tmp_path, cache):
    root = project(tmp_path, "pdmapp")
    lock = root / "pdm.lock"
    lock.write_text(lock.read_text().replace('requires_python = ">=3.11"', 'requires_python = "<3.13"', 1))
    with pytest.raises(LockError, match=r"requires-python <3.13 excludes CPython 3.14.8.*pdm lock"):
        read_lock(lock, ExportOptions(cache, PY))


def test_the_lock_is_found_in_the_project_directory(tmp_path, cache):
    root = project(tmp_path, "poetryapp")
    cfg = load_config(root / "pyproject.toml", env={"FACTORY_CACHE_DIR": str(cache)})
    assert not cfg.lock_explicit and find_lock(cfg) == root / "poetry.lock"
    # the same pins in a second format: taken, in LOCK_NAMES order
    (root / "requirements.lock").write_text(read_lock(root / "poetry.lock", ExportOptions(cache, PY)).path.read_text())
    assert find_lock(cfg) == root / "poetry.lock"
    # two locks that disagree are refused
    text = (root / "requirements.lock").read_text().replace("six==1.17.0", "six==1.16.0")
    (root / "requirements.lock").write_text(text)
    with pytest.raises(LockError, match=r"poetry.lock and requirements.lock disagree") as e:
        find_lock(cfg)
    assert "\n" not in str(e.value)


def test_a_lock_named_in_the_config_is_not_looked_for(tmp_path, cache):
    root = project(tmp_path, "poetryapp")
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + '\n[tool.factory]\nlock = "other.lock"\n')
    cfg = load_config(root / "pyproject.toml", env={"FACTORY_CACHE_DIR": str(cache)})
    assert cfg.lock_explicit and find_lock(cfg) == root / "other.lock"


@pytest.mark.parametrize(("key", "value"), [("groups", '"dev"'), ("extras", "[1]"), ("package", '"no spaces please"')])
def test_export_keys_are_checked(tmp_path, key, value):
    root = project(tmp_path, "poetryapp")
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + f"\n[tool.factory]\n{key} = {value}\n")
    from factory.core.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        load_config(root / "pyproject.toml", env={})
    assert "\n" not in str(e.value)


def test_the_exported_lock_follows_the_lock_not_the_config(tmp_path, cache):
    """A change to [tool.factory] alone gives another export directory but the same exported
    bytes, so the wheelhouse made from the lock stays current."""
    root = project(tmp_path, "uvws")
    first = read_lock(root / "uv.lock", ExportOptions(cache, PY, package="svc"))
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + '\n[tool.factory]\napp-dir = "/srv"\n')
    again = read_lock(root / "uv.lock", ExportOptions(cache, PY, package="svc"))
    assert again.path != first.path and again.sha256 == first.sha256
