"""Config: [tool.factory] + FACTORY_* overrides, built once into a frozen object."""

import dataclasses

import pytest
from paths import ROOT

from factory.core.config import load_config
from factory.core.errors import ConfigError, UnknownTargetError


def write(tmp_path, body):
    p = tmp_path / "pyproject.toml"
    p.write_text("[tool.factory]\n" + body)
    return p


def test_project_config_loads():
    cfg = load_config(ROOT / "pyproject.toml", env={})
    assert cfg.python == "3.14.8"
    assert [t.name for t in cfg.targets] == [
        "manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "musllinux_1_2_x86_64", "musllinux_1_2_aarch64"]
    assert cfg.arches == ("amd64", "arm64")
    assert cfg.base("arm64").recipe.suite == "forky"
    assert cfg.image_target("arm64").name == "manylinux_2_28_aarch64"
    assert cfg.cache_dir == ROOT / ".cache" / "factory"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.python = "3.14.9"


def test_environment_overrides(tmp_path):
    cfg = load_config(
        ROOT / "pyproject.toml",
        env={
            "FACTORY_CACHE_DIR": str(tmp_path / "c"),
            "FACTORY_INDEX_URL": "http://127.0.0.1:1/simple",
            "FACTORY_TARGETS": "musllinux_1_2_x86_64,manylinux_2_28_x86_64",
            "FACTORY_REGISTRY_LOCAL": "false",
            "FACTORY_BASE_AMD64": "docker.io/library/python:3.14.8-slim-trixie@sha256:" + "a" * 64,
        },
    )
    assert cfg.cache_dir == tmp_path / "c"
    assert cfg.index_url == "http://127.0.0.1:1/simple/"
    assert [t.name for t in cfg.targets] == ["musllinux_1_2_x86_64", "manylinux_2_28_x86_64"]
    assert cfg.registry_local is False
    assert cfg.base("amd64").image.endswith("a" * 64) and cfg.base("amd64").recipe is None


@pytest.mark.parametrize(
    "body, error, message",
    [
        ('targets = ["manylinux_2_28_riscv64"]\n', UnknownTargetError, "unknown target 'manylinux_2_28_riscv64'"),
        ('python = "3.14"\n', ConfigError, "not a patch version"),
        ('colour = "blue"\n', ConfigError, "unknown \\[tool.factory\\] keys: colour"),
        ('registry-local = "maybe"\n', ConfigError, "is not a boolean"),
        ('[tool.factory.base.amd64]\nimage = "python:3.14-slim"\n', ConfigError, "not pinned by tag and digest"),
        ('[tool.factory.base.amd64]\nrecipe = "nope.toml"\n', ConfigError, "recipe .* not found"),
        ('[tool.factory.base.amd64]\nrecipe = "x.toml"\nimage = "a:b@sha256:' + "a" * 64 + '"\n', ConfigError, "exactly one"),
    ],
)
def test_bad_config(tmp_path, body, error, message):
    with pytest.raises(error, match=message):
        load_config(write(tmp_path, body), env={})


def test_recipe_hash_changes_with_inputs():
    cfg = load_config(ROOT / "pyproject.toml", env={})
    recipe = cfg.base("amd64").recipe
    assert recipe.digest("amd64", "3.14.8") == recipe.digest("amd64", "3.14.8")
    assert recipe.digest("amd64", "3.14.8") != recipe.digest("arm64", "3.14.8")
    assert recipe.digest("amd64", "3.14.8") != dataclasses.replace(recipe, packages=(*recipe.packages, "curl")).digest("amd64", "3.14.8")


PYPA_MUSL = "quay.io/pypa/musllinux_1_2_x86_64:2026.11.01-1@sha256:" + "c" * 64


def test_upstream_builder_per_target(tmp_path):
    from factory.core.targets import parse_target

    cfg = load_config(write(tmp_path, f'[tool.factory.builders]\nmusllinux_1_2_x86_64 = "{PYPA_MUSL}"\n'), env={})
    assert cfg.builder_image(parse_target("musllinux_1_2_x86_64")) == PYPA_MUSL
    assert cfg.builder_image(parse_target("manylinux_2_28_x86_64")) is None
    env = {"FACTORY_BUILDER_MANYLINUX_2_28_AARCH64": PYPA_MUSL.replace("musllinux_1_2_x86_64", "manylinux_2_28_aarch64")}
    cfg = load_config(write(tmp_path, ""), env=env)
    assert cfg.builder_image(parse_target("manylinux_2_28_aarch64")).startswith("quay.io/pypa/manylinux_2_28_aarch64:")


@pytest.mark.parametrize(
    "body, words",
    [
        ('musllinux_1_2_x86_64 = "quay.io/pypa/musllinux_1_2_x86_64:latest"', "not pinned by tag and digest"),
        (f'manylinux_2_28_riscv64 = "{PYPA_MUSL}"', "not a configured target"),
    ],
)
def test_bad_upstream_builder(tmp_path, body, words):
    with pytest.raises(ConfigError, match=words):
        load_config(write(tmp_path, f"[tool.factory.builders]\n{body}\n"), env={})


def test_build_override_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="build-overrides.foo: .* not found"):
        load_config(write(tmp_path, '[tool.factory.build-overrides]\nfoo = "nope.txt"\n'), env={})


PACKAGED = {
    "dockerfile": "images/runtime.Dockerfile",
    "builder_dockerfile": "images/builder.Dockerfile",
    "builder_recipe": "images/recipes/forky-builder.toml",
    "library_builder_recipe": "images/recipes/forky-libbuilder.toml",
    "toolchain": "constraints/toolchain.txt",
    "build_constraints": "constraints/build.txt",
}


def test_defaults_resolve_to_packaged_resources(tmp_path, monkeypatch):
    from factory.core import resources

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cfg = load_config(write(tmp_path, ""), env={})
    for attr, name in PACKAGED.items():
        path = getattr(cfg, attr)
        assert path == resources.ROOT / name and path.is_file(), attr
    assert cfg.packaged == {"dockerfile", "builder-dockerfile", "builder-recipe", "library-builder-recipe", "toolchain", "build-constraints"}
    assert cfg.arches == ("amd64", "arm64")
    assert {cfg.base(a).recipe.path for a in cfg.arches} == {resources.ROOT / "images/recipes/forky-slim.toml"}
    assert cfg.lock == tmp_path / "requirements.lock"
    package_dir = resources.ROOT.parent
    for written in (cfg.lock, cfg.cache_dir, cfg.bases_lock, cfg.builders_lock, cfg.registry_dir):
        assert not written.is_relative_to(package_dir), written


def test_project_settings_override_the_packaged_defaults(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "docker").mkdir(parents=True)
    (project / "docker" / "app.Dockerfile").write_text("FROM scratch\n")
    (project / "docker" / "slim.toml").write_text('suite = "trixie"\nmirror = "http://m"\npython-package = "python3.14"\npackages = []\n')
    body = (
        'dockerfile = "docker/app.Dockerfile"\ntoolchain = "locks/toolchain.txt"\nbases-lock = "out/bases.lock"\n'
        'cache-dir = "cache"\n[tool.factory.base.amd64]\nrecipe = "docker/slim.toml"\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative paths follow the pyproject, not the current directory
    cfg = load_config(write(project, body), env={})
    assert cfg.dockerfile == project / "docker" / "app.Dockerfile"
    assert cfg.toolchain == project / "locks" / "toolchain.txt"
    assert cfg.bases_lock == project / "out" / "bases.lock"
    assert cfg.cache_dir == project / "cache" and cfg.builders_lock == project / "cache" / "builders.lock"
    assert cfg.arches == ("amd64",) and cfg.base("amd64").recipe.suite == "trixie"
    assert "dockerfile" not in cfg.packaged and "toolchain" not in cfg.packaged and "builder-dockerfile" in cfg.packaged
    # FACTORY_* wins over the table
    cfg = load_config(project / "pyproject.toml", env={"FACTORY_DOCKERFILE": "other.Dockerfile"})
    assert cfg.dockerfile == project / "other.Dockerfile"


def test_this_checkout_keeps_its_committed_outputs():
    cfg = load_config(ROOT / "pyproject.toml", env={})
    assert cfg.bases_lock == ROOT / "images" / "bases.lock" and cfg.bases_lock.is_file()
    assert cfg.builders_lock == cfg.cache_dir / "builders.lock"  # machine-local: not committed
    assert cfg.lock == ROOT / "constraints" / "requirements.lock"
    assert cfg.toolchain == ROOT / "factory" / "resources" / "constraints" / "toolchain.txt" and "toolchain" not in cfg.packaged


@pytest.mark.parametrize("pyproject", [None, '[project]\nname = "service"\n'])
def test_no_factory_table_uses_defaults_rooted_at_the_current_directory(tmp_path, monkeypatch, pyproject):
    from factory.core.config import DEFAULTS

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if pyproject is not None:
        (tmp_path / "pyproject.toml").write_text(pyproject)
    cfg = load_config(env={})
    assert cfg.root == tmp_path
    assert cfg.lock == tmp_path / "requirements.lock"
    assert cfg.python == DEFAULTS["python"] and [t.name for t in cfg.targets] == DEFAULTS["targets"]
    assert cfg.arches == ("amd64", "arm64")


def test_cache_dir_defaults_to_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cfg = load_config(write(tmp_path, ""), env={})
    cache = tmp_path / "xdg" / "factory"
    assert cfg.cache_dir == cache
    assert (cfg.bases_lock, cfg.builders_lock, cfg.registry_dir) == (cache / "bases.lock", cache / "builders.lock", cache / "registry")
    cfg = load_config(write(tmp_path, ""), env={"FACTORY_CACHE_DIR": str(tmp_path / "mine")})
    assert cfg.cache_dir == tmp_path / "mine" and cfg.bases_lock == tmp_path / "mine" / "bases.lock"


def test_missing_named_config_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    from factory.cli import main

    with pytest.raises(ConfigError, match="nope.toml not found"):
        load_config(tmp_path / "nope.toml", env={})
    monkeypatch.chdir(tmp_path)
    assert main(["--config", "nope.toml", "validate"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("factory: error: ") and "nope.toml not found" in err[0] and "(fix: " in err[0]


def test_packaged_toolchain_lock_is_not_recompiled_in_place(tmp_path, monkeypatch, capsys):
    from factory.cli import main
    from factory.core import resources

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FACTORY_CACHE_DIR", str(tmp_path / "cache"))
    before = (resources.ROOT / "constraints/toolchain.txt").stat().st_mtime_ns
    assert main(["lock", "--toolchain"]) == 2
    assert "would write into the installed package" in capsys.readouterr().err
    assert (resources.ROOT / "constraints/toolchain.txt").stat().st_mtime_ns == before


@pytest.mark.parametrize("command", ["validate", "lock", "wheelhouse", "images", "all"])
def test_every_command_using_the_lock_takes_lock(command):
    from factory.cli import _parser

    args = _parser().parse_args([command, "--lock", "service.lock"])
    assert (args.out if command == "lock" else args.lock) == "service.lock"


def test_image_annotations_come_from_the_project_table(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "billing"\ndescription = "Billing API"\n[project.urls]\nHomepage = "https://h"\nRepository = "https://git/billing"\n'
        "[tool.factory]\n"
    )
    cfg = load_config(tmp_path / "pyproject.toml", env={})
    assert (cfg.image_title, cfg.image_description, cfg.image_source) == ("billing", "Billing API", "https://git/billing")
    cfg = load_config(tmp_path / "pyproject.toml", env={"FACTORY_IMAGE_TITLE": "billing-api"})
    assert cfg.image_title == "billing-api"
    (tmp_path / "pyproject.toml").write_text('[tool.factory]\nrepository = "team/orders"\n')
    cfg = load_config(tmp_path / "pyproject.toml", env={})
    assert cfg.image_title == "orders" and cfg.image_source == "" and "3.14" in cfg.image_description


def test_native_hosts_per_arch_from_the_table_and_the_environment(tmp_path):
    p = write(tmp_path, '[tool.factory.hosts]\narm64 = "ssh://ci@arm-runner"\n')
    assert load_config(p, env={}).hosts == (("arm64", "ssh://ci@arm-runner"),)
    assert load_config(p, env={}).host_for("amd64") is None
    cfg = load_config(p, env={"FACTORY_DOCKER_HOST_ARM64": "tcp://10.0.0.5:2376", "FACTORY_DOCKER_HOST_AMD64": "unix:///run/other.sock"})
    assert cfg.host_for("arm64") == "tcp://10.0.0.5:2376" and cfg.host_for("amd64") == "unix:///run/other.sock"
    assert load_config(write(tmp_path, ""), env={}).hosts == ()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('[tool.factory.hosts]\nriscv64 = "ssh://x"\n', "hosts.riscv64: not an arch"),
        ('[tool.factory.hosts]\narm64 = "https://x"\n', "is not a Docker host URL"),
        ('hosts = "ssh://x"\n', "hosts is not a table"),
    ],
)
def test_bad_native_hosts(tmp_path, body, words):
    with pytest.raises(ConfigError, match=words):
        load_config(write(tmp_path, body), env={})
