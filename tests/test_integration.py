"""End to end on a small real lock: bootstrap both bases, pip-compile under 3.14, a 4-target
wheelhouse from the real index, images for amd64 and arm64 pushed to a real loopback
registry, and testcontainers smoke tests on both arches (arm64 through QEMU).

The expensive steps are session fixtures shared by the tests below. Bootstrap rootfs
tarballs are cached in ``.cache/test`` (FACTORY_TEST_CACHE overrides), so a fresh
machine (CI) bootstraps from nothing while a developer's rerun reuses them. The registry,
its data and every image tag are per session and removed at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from factory.config import load_config
from factory.engine import Engine
from factory.errors import SmokeError
from factory.lockfile import read_lock
from factory.registry import LocalRegistry, Registry
from indexserver import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

ROOT = Path(__file__).parent.parent
SMALL_REQUIREMENTS = "orjson==3.13.0\nmarkupsafe\nmsgpack\ntyping-extensions\n"



def run(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "factory", *args], cwd=cwd, capture_output=True, text=True, timeout=1800)
    if check and proc.returncode != 0:
        raise AssertionError(f"factory {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def project(tmp_path_factory):
    """A project directory whose config points at a fresh loopback registry."""
    tmp = tmp_path_factory.mktemp("project")
    cache = Path(os.environ.get("FACTORY_TEST_CACHE", ROOT / ".cache" / "test"))
    port = free_port()
    recipe = ROOT / "images/recipes/forky-slim.toml"
    (tmp / "pyproject.toml").write_text(
        f"""[tool.factory]
cache-dir = "{cache}"
registry = "127.0.0.1:{port}"
registry-dir = "{tmp / 'registry'}"
repository = "factory-test/app"
base-repository = "factory-test/python"
bases-lock = "bases.lock"
lock = "requirements.lock"
toolchain = "{ROOT / 'constraints/toolchain.txt'}"
dockerfile = "{ROOT / 'images/runtime.Dockerfile'}"
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
    run(project, "images", "--wheelhouse", "wheelhouse", "--images-lock", "images.lock")
    return json.loads((project / "images.lock").read_text())


def test_bootstrap_pushes_single_arch_bases_and_is_cached(project, cfg, bases):
    registry = Registry(cfg.registry)
    engine = Engine()
    assert set(bases["bases"]) == {"amd64", "arm64"} and bases["python"] == "3.14.8"
    for arch, entry in bases["bases"].items():
        repo, digest = entry["ref"].split("@")
        assert repo == f"{cfg.registry}/factory-test/python" and digest.startswith("sha256:")
        assert registry.manifest("factory-test/python", digest).digest == digest
        assert engine.inspect(entry["ref"]).platform == f"linux/{arch}"
        assert entry["debian_python"].startswith("3.14.8")
        assert entry["tag"].endswith(f":3.14.8-slim-forky-{arch}")
    before = (project / "bases.lock").read_text()
    again = run(project, "bootstrap")
    assert (project / "bases.lock").read_text() == before, again.stderr


def test_base_is_slim(cfg, bases):
    engine = Engine()
    status, out = engine.run(
        bases["bases"]["amd64"]["ref"],
        [
            "sh",
            "-c",
            "find /usr/share/man /usr/share/locale /usr/share/info /var/lib/apt/lists /var/cache/apt /var/log"
            " -type f ! -name lock | wc -l; python3 --version",
        ],
        platform="linux/amd64",
    )
    count, version = out.split()[0], out.split()[-1]
    assert status == 0 and count == "0", out
    assert version == "3.14.8"


def test_lock_compiled_under_cpython_314(lock, project):
    text = (project / "requirements.lock").read_text()
    assert "autogenerated by pip-compile with Python 3.14" in text
    assert "factory lock" in text
    assert "--index-url" not in text and "--find-links" not in text
    names = {p.name for p in lock.pins}
    assert {"orjson", "markupsafe", "msgpack", "typing-extensions"} <= names
    assert all(p.hashes for p in lock.pins)


def test_wheelhouse_covers_four_targets_from_the_real_index(project, wheelhouse, lock):
    assert set(wheelhouse["targets"]) == {"manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "musllinux_1_2_x86_64", "musllinux_1_2_aarch64"}
    for target, entries in wheelhouse["targets"].items():
        assert {e["name"] for e in entries} == {p.name for p in lock.pins}, target
        for e in entries:
            assert (project / "wheelhouse" / target / e["filename"]).is_file()
            assert e["sha256"] in lock.pin(e["name"]).hashes
    orjson = {t: next(e for e in es if e["name"] == "orjson") for t, es in wheelhouse["targets"].items()}
    assert orjson["manylinux_2_28_x86_64"]["tag"] == "cp314-cp314-manylinux_2_17_x86_64"
    assert orjson["manylinux_2_28_aarch64"]["tag"] == "cp314-cp314-manylinux_2_17_aarch64"
    assert orjson["musllinux_1_2_aarch64"]["tag"] == "cp314-cp314-musllinux_1_2_aarch64"


def test_images_lock_names_registry_digests_and_an_index(cfg, images, bases, lock):
    assert set(images) == {"images", "index", "tags", "python", "lock_sha256", "wheelhouse_sbom"}
    assert images["python"] == "3.14.8" and images["lock_sha256"] == lock.sha256
    registry = Registry(cfg.registry)
    engine = Engine()
    by_arch = {i["arch"]: i for i in images["images"]}
    assert set(by_arch) == {"amd64", "arm64"}
    for arch, image in by_arch.items():
        assert image["base"] == bases["bases"][arch]["ref"]
        digest = image["ref"].split("@")[1]
        assert registry.manifest("factory-test/app", digest).digest == digest
        info = engine.inspect(image["ref"])
        assert info.platform == f"linux/{arch}"
        assert info.labels["io.factory.lock.sha256"] == lock.sha256
        assert info.labels["org.opencontainers.image.base.digest"] == image["base"].split("@")[1]
        assert info.labels["io.factory.python.version"] == "3.14.8"
        assert len(info.labels["io.factory.toolchain.sha256"]) == 64
        assert engine.client.api.inspect_image(image["ref"])["Config"]["User"] == "10001:10001"
        assert image["size"] > image["base_size"] > 0 and image["compressed_size"] > 0
        assert image["perf"]["cold_start_s"] > 0 and image["perf"]["import_s"] > 0
    index = registry.manifest("factory-test/app", images["index"].split("@")[1])
    assert {(m["platform"]["architecture"], m["digest"]) for m in index.body["manifests"]} == {
        (a, i["ref"].split("@")[1]) for a, i in by_arch.items()
    }
    assert registry.manifest("factory-test/app", f"3.14.8-{lock.sha256[:12]}").digest == images["index"].split("@")[1]


def test_sboms_list_debian_packages_and_python_distributions(project, images, lock):
    wheelhouse_sbom = json.loads((project / images["wheelhouse_sbom"]).read_text())
    assert wheelhouse_sbom["bomFormat"] == "CycloneDX" and wheelhouse_sbom["specVersion"] == "1.6"
    assert {c["name"] for c in wheelhouse_sbom["components"]} == {p.name for p in lock.pins}
    for image in images["images"]:
        doc = json.loads((project / image["sbom"]).read_text())
        purls = {c["purl"].split("@")[0] for c in doc["components"]}
        assert "pkg:deb/debian/python3.14" in purls and "pkg:deb/debian/libc6" in purls
        assert {f"pkg:pypi/{p.name}" for p in lock.pins} <= purls
        assert doc["metadata"]["component"]["version"] == image["ref"].split("@")[1]
        orjson = next(c for c in doc["components"] if c["name"] == "orjson")
        assert orjson["hashes"][0]["content"] in lock.pin("orjson").hashes


def test_final_image_has_no_pip_and_no_wheels(images):
    engine = Engine()
    amd64 = next(i for i in images["images"] if i["arch"] == "amd64")
    status, out = engine.run(
        amd64["ref"],
        ["sh", "-c", "ls /opt/venv/bin; ls /tmp/factory 2>&1; python3 -c 'import pip' 2>&1; echo uid=$(id -u)"],
        platform="linux/amd64",
    )
    assert "pip" not in out.split("No such file")[0].split(), out
    assert "No module named 'pip'" in out
    assert "uid=10001" in out


def test_smoke_passes_on_both_arches(project, images):
    proc = run(project, "smoke", "--images-lock", "images.lock")
    out = proc.stdout + proc.stderr
    assert "smoke amd64: python 3.14.8 x86_64 uid 10001" in out
    assert "smoke arm64: python 3.14.8 aarch64 uid 10001" in out


def test_smoke_names_image_arch_and_module_that_fails(project, cfg, images, tmp_path):
    """A copy of the amd64 image with orjson's extension removed, a setuid file and a pip
    cache must fail smoke, each failure naming the image, the arch and what is wrong."""
    import io
    import tarfile

    from factory.pipeline import make_index
    from factory.smoke import smoke, smoke_image
    from factory.toolchain import tool_wheel

    amd64 = next(i for i in images["images"] if i["arch"] == "amd64")
    dockerfile = (
        f"FROM {amd64['ref']}\nUSER 0\n"
        "RUN rm -f /opt/venv/lib/python3.14/site-packages/orjson/orjson*.so"
        " && cp /bin/true /usr/local/bin/suid-helper && chmod u+s /usr/local/bin/suid-helper"
        " && mkdir -p /root/.cache/pip && touch /root/.cache/pip/selfcheck.json\n"
        "USER 10001:10001\n"
    ).encode()
    ctx = io.BytesIO()
    with tarfile.open(fileobj=ctx, mode="w") as t:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        t.addfile(info, io.BytesIO(dockerfile))
    ctx.seek(0)
    engine = Engine()
    tag = f"{cfg.registry}/factory-test/broken:1"
    engine.build(ctx, tag=tag, platform="linux/amd64")
    pip = tool_wheel(cfg, make_index(cfg), "pip")
    failures = smoke_image(engine, tag, "amd64", "3.14.8", pip).failures
    where = f"image {tag} (amd64): "
    assert any(f.startswith(where + "module orjson (from orjson) does not import") for f in failures), failures
    assert where + "setuid/setgid files: /usr/local/bin/suid-helper" in failures, failures
    assert any(f.startswith(where + "package caches present: /root/.cache/pip") for f in failures), failures
    broken_lock = tmp_path / "images.lock"
    broken_lock.write_text(json.dumps({**images, "images": [{**amd64, "ref": tag}]}))
    with pytest.raises(SmokeError) as e:
        smoke(engine, broken_lock, "3.14.8", pip)
    assert tag in e.value.problem and "(amd64)" in e.value.problem and "3 smoke check(s) failed" in e.value.problem


def test_smoke_checks_hardening_on_both_arches(project, images):
    from factory.pipeline import make_index
    from factory.smoke import smoke_image
    from factory.toolchain import tool_wheel

    cfg = load_config(project / "pyproject.toml")
    pip = tool_wheel(cfg, make_index(cfg), "pip")
    for image in images["images"]:
        result = smoke_image(Engine(), image["ref"], image["arch"], "3.14.8", pip)
        assert result.failures == [] and result.modules >= 4


def test_warm_rerun_reads_no_index_and_rebuilds_nothing(project, images):
    """Nothing changed: wheelhouse and images are reused, with the index on a dead port."""
    dead = f"http://127.0.0.1:{free_port()}/simple/"
    env = {**os.environ, "FACTORY_INDEX_URL": dead}
    for args in (["wheelhouse", "--out", "wheelhouse"], ["images", "--wheelhouse", "wheelhouse", "--images-lock", "images.lock"]):
        proc = subprocess.run([sys.executable, "-m", "factory", *args], cwd=project, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
    again = json.loads((project / "images.lock").read_text())
    assert again == images
    assert "(unchanged inputs, reused)" in proc.stderr


def test_a_python_version_the_base_does_not_have(tmp_path):
    """Bootstrap refuses a base whose interpreter is not the configured patch version."""
    cache = Path(os.environ.get("FACTORY_TEST_CACHE", ROOT / ".cache" / "test"))
    port = free_port()
    (tmp_path / "pyproject.toml").write_text(
        f"""[tool.factory]
python = "3.14.99"
cache-dir = "{cache}"
registry = "127.0.0.1:{port}"
registry-dir = "{tmp_path / 'registry'}"
bases-lock = "bases.lock"
[tool.factory.base.amd64]
recipe = "{ROOT / 'images/recipes/forky-slim.toml'}"
"""
    )
    try:
        proc = run(tmp_path, "bootstrap", check=False)
    finally:
        LocalRegistry(f"127.0.0.1:{port}", tmp_path / "registry").stop()
    assert proc.returncode == 1
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("factory: error: recipe forky-slim.toml gives python3.14 3.14.8-1 on amd64, not python 3.14.99"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "bases.lock").exists()


def test_registry_with_basic_auth(tmp_path):
    """A loopback registry with an htpasswd file: the right credentials push, wrong or no
    credentials get a one-line error, and the password shows up nowhere."""
    import bcrypt

    cache = Path(os.environ.get("FACTORY_TEST_CACHE", ROOT / ".cache" / "test"))
    port = free_port()
    password = "s3cret-" + os.urandom(6).hex()
    (tmp_path / "htpasswd").write_text(f"factory:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}\n")
    (tmp_path / "pyproject.toml").write_text(
        f"""[tool.factory]
cache-dir = "{cache}"
registry = "127.0.0.1:{port}"
registry-dir = "{tmp_path / 'registry'}"
registry-htpasswd = "htpasswd"
base-repository = "factory-auth/python"
bases-lock = "bases.lock"
[tool.factory.base.amd64]
recipe = "{ROOT / 'images/recipes/forky-slim.toml'}"
"""
    )

    def bootstrap(**env):
        return subprocess.run([sys.executable, "-m", "factory", "bootstrap"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=1200, env={**os.environ, **env})

    try:
        for env in ({}, {"FACTORY_REGISTRY_USER": "factory", "FACTORY_REGISTRY_PASSWORD": "wrong-" + password}):
            proc = bootstrap(**env)
            assert proc.returncode == 1
            assert proc.stderr.strip().splitlines()[-1].startswith(f"factory: error: registry 127.0.0.1:{port} rejected the credentials")
            assert password not in proc.stdout + proc.stderr
            assert not (tmp_path / "bases.lock").exists()
        proc = bootstrap(FACTORY_REGISTRY_USER="factory", FACTORY_REGISTRY_PASSWORD=password)
        assert proc.returncode == 0, proc.stderr
        assert password not in proc.stdout + proc.stderr
        lock_text = (tmp_path / "bases.lock").read_text()
        assert password not in lock_text
        ref = json.loads(lock_text)["bases"]["amd64"]["ref"]
        digest = ref.split("@")[1]
        assert Registry(f"127.0.0.1:{port}", ("factory", password)).manifest("factory-auth/python", digest).digest == digest
        assert password not in json.dumps(Engine().client.api.inspect_image(ref))
    finally:
        LocalRegistry(f"127.0.0.1:{port}", tmp_path / "registry").stop()
        engine = Engine()
        for image in engine.client.images.list():
            for tag in image.tags:
                if tag.startswith(f"127.0.0.1:{port}/"):
                    engine.client.images.remove(tag, force=True)


def test_rootfs_is_reproducible(tmp_path):
    """Two bootstraps of the amd64 rootfs from empty caches give the same tarball, byte for byte."""
    from factory.bootstrap import build_rootfs

    digests = []
    for run_dir in ("a", "b"):
        (tmp_path / run_dir).mkdir()
        (tmp_path / run_dir / "pyproject.toml").write_text(
            f"""[tool.factory]
cache-dir = "cache"
[tool.factory.base.amd64]
recipe = "{ROOT / 'images/recipes/forky-slim.toml'}"
"""
        )
        cfg = load_config(tmp_path / run_dir / "pyproject.toml")
        recipe = cfg.base("amd64").recipe
        tar = build_rootfs(cfg, recipe, "amd64", recipe.digest("amd64", cfg.python))
        digests.append((tar.parent / "rootfs.tar.sha256").read_text().strip())
    assert digests[0] == digests[1]
