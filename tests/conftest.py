"""Shared session fixtures for the integration tests: one project directory with its own
loopback registry, base images, lock, wheelhouse and images, built once per test session."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

# the shared helpers (tests/support/) import as top-level modules in every test directory
sys.path.insert(0, str(Path(__file__).parent / "support"))

from clirun import run_project as run
from indexserver import free_port
from paths import ROOT

from factory.core.config import load_config
from factory.core.engine import Engine
from factory.core.registry import LocalRegistry
from factory.locks.lockfile import read_lock

SMALL_REQUIREMENTS = "orjson==3.13.0\nmarkupsafe\nmsgpack\ntyping-extensions\n"





@pytest.fixture(scope="session")
def project(tmp_path_factory):
    """A project directory whose config points at a fresh loopback registry."""
    tmp = tmp_path_factory.mktemp("project")
    cache = Path(os.environ.get("FACTORY_TEST_CACHE", ROOT / ".cache" / "test"))
    port = free_port()
    recipe = ROOT / "factory/resources/images/recipes/forky-slim.toml"
    (tmp / "pyproject.toml").write_text(
        f"""[tool.factory]
cache-dir = "{cache}"
registry = "127.0.0.1:{port}"
registry-dir = "{tmp / 'registry'}"
repository = "factory-test/app"
base-repository = "factory-test/python"
bases-lock = "bases.lock"
lock = "requirements.lock"
toolchain = "{ROOT / 'factory/resources/constraints/toolchain.txt'}"
builder-recipe = "{ROOT / 'factory/resources/images/recipes/forky-builder.toml'}"
builder-dockerfile = "{ROOT / 'factory/resources/images/builder.Dockerfile'}"
builders-lock = "builders.lock"
builder-repository = "factory-test/builder"
build-constraints = "{ROOT / 'factory/resources/constraints/build.txt'}"
image-source = "https://example.org/factory-test"
[tool.factory.base.amd64]
recipe = "{recipe}"
[tool.factory.base.arm64]
recipe = "{recipe}"
"""
    )
    (tmp / "requirements.in").write_text(SMALL_REQUIREMENTS)
    yield tmp
    cfg = load_config(tmp / "pyproject.toml")
    engine = Engine()
    for image in engine.client.images.list():
        for tag in image.tags:
            if tag.startswith(f"{cfg.registry}/"):
                engine.client.images.remove(tag, force=True)
    LocalRegistry(cfg.registry, cfg.registry_dir).stop()


@pytest.fixture(scope="session")
def cfg(project):
    return load_config(project / "pyproject.toml")


@pytest.fixture(scope="session")
def bases(project):
    run(project, "bootstrap")
    return json.loads((project / "bases.lock").read_text())


@pytest.fixture(scope="session")
def lock(project, bases):
    run(project, "lock")
    return read_lock(project / "requirements.lock")


@pytest.fixture(scope="session")
def wheelhouse(project, lock):
    run(project, "wheelhouse", "--out", "wheelhouse")
    return json.loads((project / "wheelhouse" / "manifest.json").read_text())


@pytest.fixture(scope="session")
def images(project, wheelhouse):
    """``factory all``, as ``make images`` runs it: the wheelhouse is current (kept), then
    images, smoke and signing (cosign, a key made in the cache)."""
    run(project, "all", "--wheelhouse", "wheelhouse", "--images-lock", "images.lock")
    return json.loads((project / "images.lock").read_text())


