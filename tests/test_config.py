"""Config: [tool.factory] + FACTORY_* overrides, built once into a frozen object."""

import dataclasses
from pathlib import Path

import pytest

from factory.config import load_config
from factory.errors import ConfigError, UnknownTargetError

ROOT = Path(__file__).parent.parent


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
    from factory.targets import parse_target

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
