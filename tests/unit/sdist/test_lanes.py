"""The free-threaded lane (cp314t): configuration, wheel choice, outputs, and the cells that
cannot be built here (no free-threaded CPython in Debian, no CPython sources)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import run_factory
from indexserver import FixtureIndex, free_port, make_wheel, sha256
from paths import ROOT

from factory.core.config import load_config
from factory.core.errors import ConfigError
from factory.core.targets import parse_target
from factory.pipeline import complete_arches, require_lane_bases
from factory.sdist.cibw import Mounts, cibuildwheel_env
from factory.sdist.outcome import BuildRequest
from factory.sdist.plan import CellPlanner

RECIPE = ROOT / "factory/resources/images/recipes/forky-slim.toml"
TARGETS = ["manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "musllinux_1_2_x86_64", "musllinux_1_2_aarch64"]
# One project as the index would list it for 3.14: GIL wheels, abi3 wheels, free-threaded wheels.
WHEELS = [
    "fast-1.0-cp314-cp314-manylinux_2_17_x86_64.whl",
    "fast-1.0-cp314-cp314t-manylinux_2_17_x86_64.whl",
    "fast-1.0-cp314-cp314-manylinux_2_17_aarch64.whl",
    "fast-1.0-cp314-cp314t-manylinux_2_17_aarch64.whl",
    "fast-1.0-cp314-cp314-musllinux_1_2_x86_64.whl",
    "fast-1.0-cp314-cp314t-musllinux_1_2_x86_64.whl",
    "fast-1.0-cp314-cp314-musllinux_1_2_aarch64.whl",
    "fast-1.0-cp314-cp314t-musllinux_1_2_aarch64.whl",
    "stable-2.0-cp39-abi3-manylinux_2_17_x86_64.whl",  # abi3 only: no cp314t wheel
    "pure-3.0-py3-none-any.whl",
]


def project(tmp_path: Path, top: str = "", tables: str = "") -> Path:
    """Write ``tmp_path/pyproject.toml`` (``top``: more [tool.factory] keys; ``tables``: more
    sub-tables) and return its path."""
    path = tmp_path / "pyproject.toml"
    path.write_text(
        f"""[tool.factory]
cache-dir = "cache"
registry-local = false
registry = "127.0.0.1:{free_port()}"
bases-lock = "bases.lock"
{top}
[tool.factory.base.amd64]
recipe = "{RECIPE}"
[tool.factory.base.arm64]
recipe = "{RECIPE}"
{tables}"""
    )
    return path


@pytest.fixture
def served(tmp_path):
    files = {}
    for name in WHEELS:
        files.setdefault(name.split("-")[0], {})[name] = make_wheel(name)
    lines = []
    for proj, wheels in sorted(files.items()):
        version = next(iter(wheels)).split("-")[1]
        lines.append(f"{proj}=={version} " + " ".join(f"--hash=sha256:{sha256(b)}" for b in wheels.values()) + "\n")
    (tmp_path / "req.lock").write_text("".join(lines))
    with FixtureIndex(files) as idx:
        yield idx, files


@pytest.mark.parametrize("how", ["table", "env", "cli"])
def test_the_lane_is_chosen_by_table_env_or_option(tmp_path, served, how):
    idx, _ = served
    project(tmp_path, 'abi = "cp314t"' if how == "table" else "")
    env = {"FACTORY_INDEX_URL": idx.url, **({"FACTORY_ABI": "cp314t"} if how == "env" else {})}
    args = ["wheelhouse", "--lock", "req.lock", "--no-build", "--allow-missing", *(["--abi", "cp314t"] if how == "cli" else [])]
    proc = run_factory(tmp_path, *args, env=env)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "wheelhouse").exists()  # the lanes never share an output
    out = tmp_path / "wheelhouse-cp314t"
    manifest = json.loads((out / "manifest.json").read_text())
    readiness = json.loads((out / "readiness.json").read_text())
    assert manifest["abi"] == readiness["abi"] == "cp314t"
    names = {e["filename"] for entries in manifest["targets"].values() for e in entries}
    assert not any("abi3" in n for n in names), names  # a free-threaded 3.14 does not load abi3
    assert {e["filename"] for e in manifest["targets"]["manylinux_2_28_x86_64"]} == {
        "fast-1.0-cp314-cp314t-manylinux_2_17_x86_64.whl", "pure-3.0-py3-none-any.whl",
    }  # fmt: skip
    # the readiness matrix is the playbooks' "extension readiness" gate: no cp314t wheel for stable
    missing = {(m["name"], m["target"]) for m in manifest["missing"]}
    assert ("stable", "manylinux_2_28_x86_64") in missing
    install = (out / "install" / "manylinux_2_28_x86_64.lock").read_text()
    assert "stable" not in install and "fast==1.0" in install


def test_the_default_lane_takes_abi3_and_gil_wheels(tmp_path, served):
    idx, _ = served
    project(tmp_path)
    proc = run_factory(tmp_path, "wheelhouse", "--lock", "req.lock", "--no-build", "--allow-missing", env={"FACTORY_INDEX_URL": idx.url})
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "wheelhouse" / "manifest.json").read_text())
    assert manifest["abi"] == "cp314"
    x86 = {e["filename"] for e in manifest["targets"]["manylinux_2_28_x86_64"]}
    assert "stable-2.0-cp39-abi3-manylinux_2_17_x86_64.whl" in x86 and "fast-1.0-cp314-cp314-manylinux_2_17_x86_64.whl" in x86


def test_an_unknown_abi_is_a_one_line_error(tmp_path):
    project(tmp_path, 'abi = "cp313t"')
    proc = run_factory(tmp_path, "validate", "--lock", "req.lock")
    assert proc.returncode == 2 and proc.stderr.strip().startswith("factory: error: abi 'cp313t' is neither cp314 nor cp314t")
    assert "Traceback" not in proc.stderr


def test_lane_outputs_and_config(tmp_path):
    cfg = load_config(project(tmp_path, 'abi = "cp314t"'), env={})
    assert cfg.abi_tag == "cp314t" and cfg.free_threaded and all(t.free_threaded for t in cfg.targets)
    assert cfg.lane_name("wheelhouse") == "wheelhouse-cp314t" and cfg.lane_name("images.lock") == "images-cp314t.lock"
    gil = load_config(project(tmp_path), env={})
    assert gil.abi_tag == "cp314" and gil.lane_name("images.lock") == "images.lock" and not gil.free_threaded
    assert gil.with_abi("cp314t").targets == cfg.targets


def test_offline_the_lane_s_images_fail_with_the_reason(tmp_path):
    cfg = load_config(project(tmp_path, 'abi = "cp314t"'), env={})
    with pytest.raises(ConfigError, match="Debian ships no python3.14t"):
        require_lane_bases(cfg)
    upstream = load_config(
        project(tmp_path, 'abi = "cp314t"'),
        env={"FACTORY_BASE_AMD64": f"example.org/py:3.14.8t@sha256:{'a' * 64}", "FACTORY_BASE_ARM64": f"example.org/py:3.14.8t@sha256:{'b' * 64}"},
    )
    assert require_lane_bases(upstream) is upstream  # a user-supplied free-threaded base is accepted


def test_offline_the_lane_s_sdist_cells_fail_with_the_reason(tmp_path):
    cfg = load_config(project(tmp_path, 'abi = "cp314t"'), env={})
    planner = CellPlanner(cfg, index=None, connection=lambda: pytest.fail("no engine is needed to refuse"))  # type: ignore[arg-type]
    from factory.locks.lockfile import Pin

    outcome = planner.request(Pin("fast", "1.0", frozenset({"a" * 64}), None, 1), cfg.targets[0])
    assert not isinstance(outcome, BuildRequest) and not outcome.ok
    assert "no free-threaded CPython for manylinux_2_28_x86_64" in outcome.reason and "[tool.factory.builders]" in outcome.reason


def test_registry_mode_builder_for_the_lane_is_accepted(tmp_path):
    image = f"quay.io/pypa/manylinux_2_28_x86_64:2026.11.01-1@sha256:{'c' * 64}"
    cfg = load_config(project(tmp_path, 'abi = "cp314t"', f'[tool.factory.builders]\nmanylinux_2_28_x86_64 = "{image}"\n'), env={})
    target = cfg.targets[0]
    assert cfg.builder_image(target) == image
    mounts = Mounts(tmp_path / "deps", None, tmp_path / "zig-cache", tmp_path / "res")
    env = cibuildwheel_env(cfg.python, target, image, mounts, 1)
    assert env["CIBW_BUILD"] == "cp314t-manylinux_x86_64"
    assert env["CIBW_MANYLINUX_X86_64_IMAGE"] == image
    gil = cibuildwheel_env(cfg.python, parse_target("manylinux_2_28_x86_64"), image, mounts, 1)
    assert gil["CIBW_BUILD"] == "cp314-manylinux_x86_64"


def test_complete_arches_keeps_the_images_whose_glibc_target_was_published(tmp_path):
    cfg = load_config(project(tmp_path), env={})
    assert complete_arches(cfg, tuple(TARGETS)).arches == ("amd64", "arm64")
    assert complete_arches(cfg, ("manylinux_2_28_x86_64", "manylinux_2_28_aarch64")).arches == ("amd64", "arm64")
    assert complete_arches(cfg, ("manylinux_2_28_x86_64", "musllinux_1_2_aarch64")).arches == ("amd64",)
    assert complete_arches(cfg, ("musllinux_1_2_x86_64",)).arches == ()
