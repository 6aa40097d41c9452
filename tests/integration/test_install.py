"""factory as an installed tool: a plain ``pip install`` of this checkout into a fresh venv
gives a CLI that runs in a directory holding nothing but a lock, and writes nothing into
the installed package. Needs the index (integration)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from paths import ROOT

pytestmark = pytest.mark.integration


CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
TARGET = "manylinux_2_28_x86_64"


def _pip_env() -> dict[str, str]:
    # The host's pip configuration adds local find-links: install from the index only.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _listing(directory: Path) -> dict[str, tuple[int, int]]:
    """relative path -> (size, mtime_ns) of every file below ``directory``."""
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(directory.rglob("*")) if p.is_file()}


class Installed:
    def __init__(self, venv: Path, package_dir: Path, seconds: float) -> None:
        self.venv = venv
        self.package_dir = package_dir
        self.seconds = seconds
        self.listing = _listing(package_dir)

    def factory(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**_pip_env(), **(env or {})}
        return subprocess.run(
            [str(self.venv / "bin" / "factory"), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=600
        )


def _source_copy(into: Path) -> Path:
    """The checkout's working tree (tracked and unignored files) copied to ``into``: setuptools
    builds in the source tree, and a ``build/`` left in the checkout can carry stale modules
    into later wheels."""
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode().split("\0")
    for name in filter(None, names):
        if (ROOT / name).is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, into / name)
    return into


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A fresh venv with ``pip install <checkout>`` (not editable, with its dependencies)."""
    venv = tmp_path_factory.mktemp("venv")
    started = time.monotonic()
    source = _source_copy(tmp_path_factory.mktemp("src"))
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    cert = ["--cert", CA_BUNDLE] if Path(CA_BUNDLE).is_file() else []
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *cert, str(source)],
        env=_pip_env(), capture_output=True, text=True, timeout=1200, cwd=tmp_path_factory.mktemp("pip-cwd"),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    seconds = time.monotonic() - started
    print(f"\nfresh venv + pip install of {ROOT}: {seconds:.1f} s")
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import factory, pathlib; print(pathlib.Path(factory.__file__).parent)"],
        env=_pip_env(), capture_output=True, text=True, check=True, cwd=venv,
    )
    package_dir = Path(found.stdout.strip())
    assert package_dir.is_relative_to(venv), f"factory imported from {package_dir}, not from the venv"
    return Installed(venv, package_dir, seconds)


def _small_lock(path: Path) -> set[str]:
    """Write a one-pin hashed lock (typing-extensions, copied with its real hashes from the
    checkout's example lock) to ``path``; return the pin's sha256 hashes."""
    text = (ROOT / "constraints" / "requirements.lock").read_text()
    block = re.search(r"^typing-extensions==\S+(?: \\\n\s+--hash=sha256:[0-9a-f]{64})+", text, re.M)
    assert block, "the example lock no longer pins typing-extensions"
    path.write_text(block.group(0) + "\n")
    return set(re.findall(r"sha256:([0-9a-f]{64})", block.group(0)))


def test_public_modules_import(installed: Installed) -> None:
    package = ROOT / "factory"
    modules = sorted(
        ".".join(p.relative_to(package).with_suffix("").parts) for p in package.rglob("*.py") if "resources" not in p.parts and not p.stem.startswith("_")
    )
    assert {"cli", "core.config", "images.sbom", "index.verify", "sdist.build"} <= set(modules)
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module('factory.' + m)\n"
    proc = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", code, *modules], env=_pip_env(), capture_output=True, text=True, cwd=installed.venv
    )
    assert proc.returncode == 0, proc.stderr


def test_packaged_resources_are_installed(installed: Installed) -> None:
    """Every file of factory/resources (Dockerfiles, recipes, locks, build and probe programs,
    schemas, knowledge) ships in the installed package, byte for byte."""
    source = ROOT / "factory" / "resources"
    names = sorted(str(f.relative_to(source)) for f in source.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
    assert {"images/runtime.Dockerfile", "constraints/toolchain.txt", "sdist/cibuildwheel.toml", "schemas/manifest.schema.json"} <= set(names)
    for name in names:
        installed_file = installed.package_dir / "resources" / name
        assert installed_file.read_bytes() == (source / name).read_bytes(), name


def test_wheelhouse_in_a_directory_holding_only_a_lock(installed: Installed, tmp_path: Path) -> None:
    service = tmp_path / "service"
    service.mkdir()
    hashes = _small_lock(service / "requirements.lock")
    env = {"FACTORY_CACHE_DIR": str(tmp_path / "cache")}

    help_run = installed.factory(service, "--help")
    assert help_run.returncode == 0 and "wheelhouse" in help_run.stdout, help_run.stderr

    # no pyproject.toml: the default lock is ./requirements.lock
    validate = installed.factory(service, "validate", env=env)
    assert validate.returncode == 0, validate.stderr
    assert f"{service / 'requirements.lock'}: ok, requirements lock, 1 pins" in validate.stdout + validate.stderr

    run = installed.factory(service, "wheelhouse", "--no-build", "--lock", "requirements.lock", "--target", TARGET, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    manifest = json.loads((service / "wheelhouse" / "manifest.json").read_text())
    assert list(manifest["targets"]) == [TARGET]
    [entry] = manifest["targets"][TARGET]
    assert entry["name"] == "typing-extensions" and entry["source"] == "index"
    assert entry["filename"].startswith("typing_extensions-") and entry["filename"].endswith(".whl")
    assert entry["sha256"] in hashes
    assert (service / "wheelhouse" / TARGET / entry["filename"]).is_file()
    assert (service / "wheelhouse" / "sbom.cdx.json").is_file()  # written with cyclonedx-python-lib
    # the run's locks and downloads went to the cache, nothing else beside the outputs
    assert sorted(p.name for p in service.iterdir()) == ["requirements.lock", "wheelhouse"]
    assert list((tmp_path / "cache" / "locks").glob("*.lock"))


def test_missing_config_is_a_one_line_error(installed: Installed, tmp_path: Path) -> None:
    proc = installed.factory(tmp_path, "--config", "nope/pyproject.toml", "validate")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("factory: error: ") and "not found" in lines[0] and "(fix: " in lines[0], proc.stderr


def test_toolchain_lock_is_not_rewritten_in_the_package(installed: Installed, tmp_path: Path) -> None:
    proc = installed.factory(tmp_path, "lock", "--toolchain", env={"FACTORY_CACHE_DIR": str(tmp_path / "cache")})
    assert proc.returncode == 2
    assert "would write into the installed package" in proc.stderr and "Traceback" not in proc.stderr


def test_nothing_written_into_the_installed_package(installed: Installed) -> None:
    # runs after the others (pytest keeps file order): none of them changed the package
    assert _listing(installed.package_dir) == installed.listing
