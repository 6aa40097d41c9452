"""Publishing the wheelhouse to a loopback pypiserver with twine, then installing from it
with pip ``--require-hashes`` against the wheelhouse's install lock (issue 14, part 5)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from clirun import run_factory
from indexserver import free_port, make_wheel
from paths import ROOT

from factory.core.errors import HashMismatchError, PublishError
from factory.release.publish import wheels_of

TARGETS = {
    "manylinux_2_28_x86_64": ["tinyapp-1.0-py3-none-any.whl", "tinynative-2.0-cp314-cp314-manylinux_2_28_x86_64.whl"],
    "manylinux_2_28_aarch64": ["tinyapp-1.0-py3-none-any.whl", "tinynative-2.0-cp314-cp314-manylinux_2_28_aarch64.whl"],
}


def _wheelhouse(root: Path, prefix: str = "", salt: str = "") -> Path:
    """A wheelhouse laid out as the wheelhouse stage writes it: <target>/, install/, manifest.json;
    projects renamed ``<prefix>tiny…``, file contents varied by ``salt``."""
    manifest: dict = {"python": "3.14.8", "lock_sha256": "0" * 64, "targets": {}}
    (root / "install").mkdir(parents=True)
    for target, filenames in TARGETS.items():
        (root / target).mkdir()
        entries = []
        for filename in (prefix + f for f in filenames):
            data = make_wheel(filename, {f"{filename.split('-')[0]}/__init__.py": f"FILE = {filename!r}\n{salt}".encode()})
            (root / target / filename).write_bytes(data)
            name, version = filename.split("-")[:2]
            entries.append({"name": name, "version": version, "filename": filename, "sha256": hashlib.sha256(data).hexdigest(), "source": "index"})
        manifest["targets"][target] = entries
        (root / "install" / f"{target}.lock").write_text("".join(f"{e['name']}=={e['version']} --hash=sha256:{e['sha256']}\n" for e in entries))
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_each_wheel_is_offered_once_and_checked_against_the_manifest(tmp_path):
    house = _wheelhouse(tmp_path / "wheelhouse")
    assert [w.path.name for w in wheels_of(house)] == sorted({f for fs in TARGETS.values() for f in fs})
    victim = house / "manylinux_2_28_aarch64" / TARGETS["manylinux_2_28_aarch64"][1]
    victim.write_bytes(victim.read_bytes() + b"x")
    with pytest.raises(HashMismatchError):
        wheels_of(house)
    victim.unlink()
    with pytest.raises(PublishError, match="lacks"):
        wheels_of(house)


@pytest.fixture(scope="module")
def pypiserver(tmp_path_factory):
    pytest.importorskip("pypiserver", reason="pypiserver is not installed (constraints/host.txt)")
    packages = tmp_path_factory.mktemp("pypiserver-packages")
    port = free_port()
    log = open(packages.parent / "pypiserver.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "pypiserver", "run", "-i", "127.0.0.1", "-p", str(port), "-P", ".", "-a", ".", str(packages)],
        stdout=log, stderr=log,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("pypiserver did not come up")
    yield url, packages
    proc.terminate()
    proc.wait(10)
    log.close()


@pytest.mark.integration
def test_publish_then_install_with_require_hashes(pypiserver, tmp_path):
    url, packages = pypiserver
    house = _wheelhouse(tmp_path / "wheelhouse")
    run_factory(tmp_path, "publish", "--wheelhouse", str(house), "--to", url, check=True)
    assert sorted(p.name for p in packages.iterdir()) == sorted({f for fs in TARGETS.values() for f in fs})
    # again: everything is already there, nothing fails
    run_factory(tmp_path, "publish", "--wheelhouse", str(house), "--to", url, check=True)

    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    for target, platform in (("manylinux_2_28_x86_64", "manylinux_2_28_x86_64"), ("manylinux_2_28_aarch64", "manylinux_2_28_aarch64")):
        dest = tmp_path / f"site-{target}"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--index-url", f"{url}simple/", "--require-hashes", "--no-deps",
             "--only-binary", ":all:", "--python-version", "3.14", "--implementation", "cp", "--abi", "cp314", "--platform", platform,
             "--target", str(dest), "-r", str(house / "install" / f"{target}.lock")],
            check=True, env=env, capture_output=True, text=True,
        )
        assert (dest / "tinynative" / "__init__.py").read_text() == f"FILE = {TARGETS[target][1]!r}\n"
        assert (dest / "tinyapp" / "__init__.py").exists()


@pytest.mark.integration
def test_bad_inputs_are_one_line_and_a_wrong_hash_is_refused_by_pip(pypiserver, tmp_path):
    url, packages = pypiserver
    house = _wheelhouse(tmp_path / "wheelhouse", prefix="other")
    run_factory(tmp_path, "publish", "--wheelhouse", str(house), "--to", url, check=True)
    before = sorted((p.name, p.read_bytes()) for p in packages.iterdir())
    changed = _wheelhouse(tmp_path / "changed", prefix="other", salt="# rebuilt\n")
    proc = run_factory(tmp_path, "publish", "--wheelhouse", str(changed), "--to", url)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "already has othertinyapp-1.0-py3-none-any.whl with sha256" in lines[0]
    assert sorted((p.name, p.read_bytes()) for p in packages.iterdir()) == before

    bad = tmp_path / "bad.lock"
    bad.write_text(f"othertinyapp==1.0 --hash=sha256:{'0' * 64}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--index-url", f"{url}simple/", "--require-hashes", "--no-deps",
                           "--target", str(tmp_path / "t"), "-r", str(bad)], env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "HASHES" in proc.stderr.upper()

    proc = run_factory(tmp_path, "publish", "--wheelhouse", str(house), "--to", f"http://127.0.0.1:{free_port()}/")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("factory: error: the package index") and "does not answer" in lines[0]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from registrykit import loopback_registry

    with loopback_registry(tmp_path_factory.mktemp("publish-registry")) as reg:
        yield reg


@pytest.mark.integration
def test_the_wheelhouse_as_an_oci_artifact_pulls_back_identical_with_oras(registry, tmp_path):
    from factory.release.publish import ARTIFACT_TYPE, install_oras

    cache = Path(os.environ.get("FACTORY_TEST_CACHE", ROOT / ".cache" / "test"))
    oras = install_oras(cache)
    house = _wheelhouse(tmp_path / "wheelhouse")
    reference = f"{registry.address}/t/wheelhouse:3.14.8"
    proc = run_factory(tmp_path, "publish", "--wheelhouse", str(house), "--to", f"oci://{reference}", "--cache-dir", str(cache), check=True)
    manifest = registry.manifest("t/wheelhouse", "3.14.8")
    assert manifest is not None and manifest.digest in proc.stdout + proc.stderr
    assert manifest.body["artifactType"] == ARTIFACT_TYPE
    wheel_layers = {layer["annotations"]["org.opencontainers.image.title"]: layer["digest"] for layer in manifest.body["layers"]}
    for target, filenames in TARGETS.items():
        for filename in filenames:
            assert wheel_layers[f"{target}/{filename}"] == "sha256:" + hashlib.sha256((house / target / filename).read_bytes()).hexdigest()

    out = tmp_path / "pulled"
    subprocess.run([str(oras), "pull", "--plain-http", "--no-tty", "-o", str(out), reference], check=True, capture_output=True)
    for path in house.rglob("*"):
        if path.is_file():
            assert (out / path.relative_to(house)).read_bytes() == path.read_bytes(), path

    proc = run_factory(tmp_path, "publish", "--wheelhouse", str(house), "--to", f"oci://127.0.0.1:{free_port()}/t/w:1", "--cache-dir", str(cache))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and lines[0].startswith("factory: error: oras could not push"), proc.stderr
