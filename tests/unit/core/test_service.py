"""The service a project ships: [tool.factory.image], app-files, package and runtime-packages,
read into Config.service; and the project's source tree (selection and content hash)."""

import os

import pytest

from factory.core import tree
from factory.core.config import load_config
from factory.core.errors import ConfigError

APP = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "My_App"
version = "1.0"
"""


def project(tmp_path, factory="", scripts='[project.scripts]\nmyapp = "my_app:main"\n', head=APP):
    (tmp_path / "pyproject.toml").write_text(head + scripts + "[tool.factory]\n" + factory)
    return tmp_path / "pyproject.toml"


def test_a_project_without_service_keys_ships_the_dependency_image(tmp_path):
    assert load_config(project(tmp_path), env={}).service is None


def test_the_only_console_script_is_the_default_command(tmp_path):
    cfg = load_config(project(tmp_path, "[tool.factory.image]\nports = [8000, \"5353/udp\"]\nstop-signal = \"term\"\n"), env={})
    service = cfg.service
    assert service.project.name == "my-app" and service.project.root == tmp_path
    assert service.image.command == ("myapp",)
    assert service.image.ports == ("5353/udp", "8000/tcp")
    assert service.image.stop_signal == "SIGTERM"
    assert service.app_dir == "/app"


def test_the_image_keys_reach_the_spec(tmp_path):
    body = '[tool.factory.image]\ncommand = ["serve", "--port", "8000"]\nentrypoint = ["tini", "--"]\nenv = { PORT = "8000", WORKERS = 4 }\nworkdir = "/srv"\nlabels = { team = "payments" }\n'
    image = load_config(project(tmp_path, body), env={}).service.image
    assert image.command == ("serve", "--port", "8000") and image.entrypoint == ("tini", "--")
    assert image.env == (("PORT", "8000"), ("WORKERS", "4")) and image.workdir == "/srv" and image.labels == (("team", "payments"),)


@pytest.mark.parametrize(
    "factory, scripts, message",
    [
        ("[tool.factory.image]\n", '[project.scripts]\na = "m:a"\nb = "m:b"\n', r"has 2 \[project.scripts\] entries \(a, b\).*fix: set \[tool.factory.image\] command"),
        ("[tool.factory.image]\n", "", r"has no \[project.scripts\] entry"),
        ('[tool.factory.image]\ncommand = ["x"]\nports = [70000]\n', "", r"image.ports: 70000 is not a port"),
        ('[tool.factory.image]\ncommand = ["x"]\nports = ["http"]\n', "", r"image.ports: 'http' is not a port"),
        ('[tool.factory.image]\ncommand = "serve"\n', "", r"image.command is a string, not a list"),
        ('[tool.factory.image]\ncommand = ["x"]\ncolour = "blue"\n', "", r"unknown \[tool.factory.image\] keys: colour"),
        ('[tool.factory.image]\ncommand = ["x"]\nstop-signal = "SIGNOPE"\n', "", r"not a signal name"),
        ('[tool.factory.image]\ncommand = ["x"]\nworkdir = "srv"\n', "", r"not an absolute path"),
        ('[tool.factory.image]\ncommand = ["x"]\nenv = { "1X" = "y" }\n', "", r"not an environment variable name"),
        ('runtime-packages = "libmagic1"\n', "", r"runtime-packages is a string, not a list"),
        ('runtime-packages = ["LibMagic"]\n', "", r"'LibMagic' is not a Debian package name"),
        ('app-files = ["../secrets"]\n[tool.factory.image]\ncommand = ["x"]\n', "", r"is not inside the project"),
        ('package = "nope"\n', "", r"package 'nope' is not the project or a workspace member"),
    ],
)
def test_bad_service_settings_are_one_line(tmp_path, factory, scripts, message):
    with pytest.raises(ConfigError, match=message) as e:
        load_config(project(tmp_path, factory, scripts), env={})
    assert "\n" not in str(e.value)


def test_runtime_packages_make_a_base_of_their_own(tmp_path):
    plain = load_config(project(tmp_path, ""), env={})
    cfg = load_config(project(tmp_path, 'runtime-packages = ["libpq5", "libmagic1", "libpq5"]\n'), env={})
    recipe, before = cfg.base("amd64").recipe, plain.base("amd64").recipe
    assert cfg.runtime_packages == ("libmagic1", "libpq5") and recipe.runtime_packages == ("libmagic1", "libpq5")
    assert {"libmagic1", "libpq5"} <= set(recipe.packages) and set(before.packages) < set(recipe.packages)
    assert recipe.digest("amd64", "3.14.8") != before.digest("amd64", "3.14.8")
    env = load_config(project(tmp_path, ""), env={"FACTORY_RUNTIME_PACKAGES": "libpq5,libmagic1"})
    assert env.base("arm64").recipe.digest("arm64", "3.14.8") == cfg.base("arm64").recipe.digest("arm64", "3.14.8")


def test_runtime_packages_on_an_upstream_base_are_refused_with_the_reason(tmp_path):
    body = 'runtime-packages = ["libpq5"]\n[tool.factory.base.amd64]\nimage = "python:3.14.8-slim@sha256:' + "a" * 64 + '"\n'
    with pytest.raises(ConfigError, match="cannot be added to the upstream base of amd64: factory pins every package"):
        load_config(project(tmp_path, body), env={})


def test_a_uv_workspace_member_is_found_by_its_name(tmp_path):
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "pyproject.toml").write_text(APP.replace("My_App", "app") + '[project.scripts]\nserve = "app:main"\n')
    (tmp_path / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["backend"]\n[tool.factory]\npackage = "app"\n')
    service = load_config(tmp_path / "pyproject.toml", env={}).service
    assert service.project.root == tmp_path / "backend" and service.image.command == ("serve",)


def test_a_virtual_project_ships_its_app_files_and_needs_a_command(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "site"\nversion = "0"\n[tool.uv]\npackage = false\n[tool.factory]\napp-files = ["src/"]\n')
    with pytest.raises(ConfigError, match="the service image has no command"):
        load_config(tmp_path / "pyproject.toml", env={})
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "site"\nversion = "0"\n[tool.uv]\npackage = false\n[tool.factory]\napp-files = ["src/"]\n[tool.factory.image]\ncommand = ["python3", "-m", "site"]\n'
    )
    service = load_config(tmp_path / "pyproject.toml", env={}).service
    assert service.project is None and service.app_files == ("src/",)


def test_a_service_that_ships_nothing_is_refused(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.factory.image]\ncommand = ["python3"]\n')
    with pytest.raises(ConfigError, match="the service ships nothing"):
        load_config(tmp_path / "pyproject.toml", env={})


def _tree(root):
    for rel, text in {"app/__init__.py": "x = 1\n", "app/static/index.html": "<p>", "manage.py": "", "notes.txt": "n",
                      "app/__pycache__/x.pyc": "b", ".git/HEAD": "h", "secret.env": "s", "docs/a.md": "a"}.items():  # fmt: skip
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / ".dockerignore").write_text("# comment\n*.env\ndocs\n!docs/keep.md\n")


def test_the_tree_is_selected_as_dockerignore_selects_a_context(tmp_path):
    _tree(tmp_path)
    assert tree.select(tmp_path) == [".dockerignore", "app/__init__.py", "app/static/index.html", "manage.py", "notes.txt"]
    assert tree.select(tmp_path, ["app/", "manage.py"]) == ["app/__init__.py", "app/static/index.html", "manage.py"]
    with pytest.raises(ConfigError, match="'docs/' selects no file"):
        tree.select(tmp_path, ["docs/"])


def test_the_tree_hash_follows_content_and_mode_not_mtimes(tmp_path):
    _tree(tmp_path)
    files = tree.select(tmp_path)
    first = tree.tree_sha256(tmp_path, files)
    os.utime(tmp_path / "manage.py", (1, 1))
    assert tree.tree_sha256(tmp_path, files) == first
    (tmp_path / "manage.py").chmod(0o755)
    assert tree.tree_sha256(tmp_path, files) != first
    (tmp_path / "manage.py").chmod(0o644)
    assert tree.tree_sha256(tmp_path, files) == first
    (tmp_path / "app/__init__.py").write_text("x = 2\n")
    assert tree.tree_sha256(tmp_path, files) != first
