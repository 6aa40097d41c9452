"""End to end on a small real lock: bootstrap both bases, pip-compile under 3.14, a 4-target
wheelhouse from the real index, images for amd64 and arm64 pushed to a real loopback
registry, and testcontainers smoke tests on both arches (arm64 through QEMU).

The expensive steps are session fixtures (tests/conftest.py) shared by the tests below and by
tests/integration/test_sdist_lane.py. Bootstrap rootfs
tarballs are cached in ``.cache/test`` (FACTORY_TEST_CACHE overrides), so a fresh
machine (CI) bootstraps from nothing while a developer's rerun reuses them. The registry,
its data and every image tag are per session and removed at the end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from pathlib import Path

import pytest
import requests
from clirun import run_factory
from clirun import run_project as run
from indexserver import free_port
from paths import ROOT

from factory.bases import oci
from factory.bases.imagelock import ImagesLock
from factory.bases.reproducible import epoch_of
from factory.core.config import load_config
from factory.core.engine import Engine
from factory.core.errors import BinfmtMissingError, SmokeError
from factory.core.registry import LocalRegistry, Registry

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]


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


def test_bases_lock_lists_every_debian_package_with_its_deb_sha256(cfg, bases):
    """Every package dpkg says is installed in the base, with the sha256 of its .deb: the
    interpreter's is fetched from the recipe's mirror and hashed here."""
    recipe = cfg.base("amd64").recipe
    for arch, entry in bases["bases"].items():
        packages = {p["name"]: p for p in entry["packages"]}
        records = Engine().read_files(entry["ref"], "/var/lib/dpkg/status.d")
        assert {n for n in records if not n.endswith(".md5sums")} == set(packages), arch
        assert all(b"\nStatus: install ok installed\n" in records[n] for n in packages), arch
        python = packages["python3.14"]
        assert python["version"] == entry["debian_python"] and python["arch"] == arch
        deb = requests.get(recipe.mirror.rstrip("/") + "/" + python["filename"], timeout=60)
        assert hashlib.sha256(deb.content).hexdigest() == python["sha256"]


def test_a_rebuilt_base_with_other_packages_is_refused(project, cfg, bases, tmp_path):
    """bases.lock names packages the mirror does not give (as a moved mirror would): a
    rebuild of the same recipe fails naming the package, and the lock is left as it was."""
    (tmp_path / "pyproject.toml").write_text(
        (project / "pyproject.toml").read_text().replace('bases-lock = "bases.lock"', f'bases-lock = "{tmp_path / "bases.lock"}"')
        .replace('base-repository = "factory-test/python"', 'base-repository = "factory-test/python-moved"')
    )  # fmt: skip
    lock = json.loads((project / "bases.lock").read_text())
    for entry in lock["bases"].values():
        entry["ref"] = entry["ref"].replace("/factory-test/python@", "/factory-test/python-moved@")  # not in the registry: rebuilt
        next(p for p in entry["packages"] if p["name"] == "tzdata")["version"] = "2020a-1"
    (tmp_path / "bases.lock").write_text(json.dumps(lock))
    proc = run(tmp_path, "bootstrap", check=False)
    assert proc.returncode != 0
    assert "tzdata is " in proc.stderr and "2020a-1 in bases.lock" in proc.stderr and "FACTORY_UPDATE_PACKAGES" in proc.stderr
    assert json.loads((tmp_path / "bases.lock").read_text()) == lock


SLIM_SCAN = """
import os, shutil, sys
files = [os.path.join(r, f) for d in ("/usr/share/man", "/usr/share/locale", "/usr/share/info", "/var/lib/apt", "/var/cache/apt", "/var/log")
         for r, _, fs in os.walk(d) for f in fs]
tools = [t for t in ("sh", "bash", "dash", "apt", "apt-get", "dpkg", "perl", "debconf") if shutil.which(t)]
print(len(files), files[:3], tools, sys.version.split()[0])
"""


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_base_is_slim_and_distroless(cfg, bases, arch):
    """No docs, apt lists or logs, and no shell, package manager or perl (#12 item 1)."""
    status, out = Engine().run(bases["bases"][arch]["ref"], ["python3", "-c", SLIM_SCAN], platform=f"linux/{arch}")
    assert status == 0, out
    assert out.split() == ["0", "[]", "[]", "3.14.8"], out


# The system libraries a manylinux_2_28 wheel may link without grafting them (PEP 600; the
# lib_whitelist of auditwheel's manylinux policy), less the X11/GL/GLib stack that no slim base
# ships (python:3.14-slim has none of it either).
MANYLINUX_SYSTEM_LIBS = (
    "libgcc_s.so.1", "libstdc++.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libc.so.6",
    "libpthread.so.0", "libresolv.so.2", "libutil.so.1",
)  # fmt: skip


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_base_loads_the_libraries_manylinux_wheels_assume(cfg, bases, arch):
    """numpy's wheels link libstdc++.so.6 from the system: a base without it imports no numpy."""
    code = f"import ctypes\nfor lib in {MANYLINUX_SYSTEM_LIBS!r}:\n    ctypes.CDLL(lib)\nprint('ok')"
    status, out = Engine().run(bases["bases"][arch]["ref"], ["python3", "-c", code], platform=f"linux/{arch}")
    assert (status, out.strip()) == (0, "ok"), out


def test_base_runtime_side_effects(cfg, bases):
    """What the maintainer scripts would have done, redone by factory: accounts, the CA
    bundle that TLS verification uses, the time zone, /etc/services, stdlib pycs."""
    code = (
        "import pwd, grp, ssl, socket, time, glob; "
        "print(pwd.getpwuid(0).pw_name, grp.getgrnam('nogroup').gr_gid, len(ssl.create_default_context().get_ca_certs()), "
        "socket.getservbyname('https'), time.tzname[0], len(glob.glob('/usr/lib/python3.14/**/*.pyc', recursive=True)) > 500)"
    )
    status, out = Engine().run(bases["bases"]["amd64"]["ref"], ["python3", "-c", code], platform="linux/amd64")
    assert status == 0, out
    user, nogroup, cas, https, zone, pycs = out.split()
    assert (user, nogroup, https, zone, pycs) == ("root", "65534", "443", "UTC", "True"), out
    assert int(cas) > 100, out


def test_bases_are_bootstrapped_with_binfmt_disabled(cfg, bases, tmp_path):
    """No arm64 process runs to bootstrap (#12 item 1): with the QEMU handler off, both
    rootfs tarballs are made again in an empty cache and equal the session's, byte for byte."""
    from factory.bases.bootstrap import build_rootfs
    from factory.core import binfmt

    handler = binfmt.BINFMT / binfmt.ENTRY
    empty = dataclasses.replace(cfg, cache_dir=tmp_path / "cache")
    recipe = cfg.base("arm64").recipe
    handler.write_text("0")
    try:
        with pytest.raises(BinfmtMissingError):
            binfmt.require_arm64()  # it is really off
        again = {arch: build_rootfs(empty, recipe, arch, recipe.digest(arch, cfg.python)) for arch in ("arm64", "amd64")}
    finally:
        handler.write_text("1")
    for arch, tar in again.items():
        session = cfg.cache_dir / "bootstrap" / recipe.digest(arch, cfg.python) / "rootfs.tar.sha256"
        assert (tar.parent / "rootfs.tar.sha256").read_text() == session.read_text(), arch


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
    assert set(images) == {"images", "index", "tags", "python", "lock_sha256", "revision", "wheelhouse_sbom", "signing"}
    assert images["python"] == "3.14.8" and images["lock_sha256"] == lock.sha256
    assert images["revision"] == "unknown"  # the test project is not a git checkout
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
    assert images["tags"] == [f"{cfg.registry}/factory-test/app:3.14.8-{lock.sha256[:12]}"]
    assert registry.manifest("factory-test/app", "3.14.8") is None  # the floating tag moves by `factory promote` only


def test_the_index_and_images_are_annotated_oci(cfg, images):
    registry = Registry(cfg.registry)
    index = registry.manifest("factory-test/app", images["index"].split("@")[1])
    assert index.media_type == oci.OCI_INDEX
    assert {m["platform"].get("variant") for m in index.body["manifests"]} == {None, "v8"}
    prefix = "org.opencontainers.image."
    assert index.body["annotations"][prefix + "title"] == "app"  # the app's, not the base's
    assert index.body["annotations"][prefix + "source"] == "https://example.org/factory-test"
    for image in images["images"]:
        manifest = registry.manifest("factory-test/app", image["ref"].split("@")[1])
        assert manifest.media_type == oci.OCI_MANIFEST
        notes = manifest.body["annotations"]
        assert notes[prefix + "version"] == "3.14.8" and notes[prefix + "base.digest"] == image["base"].split("@")[1]
        assert notes[prefix + "created"] == index.body["annotations"][prefix + "created"]
        labels = Engine().inspect(image["ref"]).labels
        assert labels[prefix + "title"] == "app" and "python" in labels[prefix + "description"].lower()


def test_make_images_signs_and_attests_what_it_pushed(project, cfg, images):
    signing = images["signing"]
    assert (project / signing["public_key"]).is_file()
    assert set(signing["signatures"]) == {images["index"], *(i["ref"] for i in images["images"])}
    proc = run(project, "verify", "--images-lock", "images.lock", "--cache-dir", str(cfg.cache_dir))
    assert "verified" in proc.stdout + proc.stderr


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
    _status, out = engine.run(
        amd64["ref"],
        ["python3", "-c", "import os, importlib.util; print(sorted(os.listdir('/opt/venv/bin')), os.path.exists('/tmp/factory'), importlib.util.find_spec('pip'), os.getuid())"],
        platform="linux/amd64",
    )
    bins, leftovers, pip, uid = out.rsplit(" ", 3)
    assert "pip" not in bins and "'python'" in bins, out
    assert (leftovers, pip, uid.strip()) == ("False", "None", "10001"), out


PYC_SCAN = """
import glob, sys
flags = {}
for path in glob.glob("/opt/venv/**/*.pyc", recursive=True) + glob.glob("/usr/lib/python3*/**/*.pyc", recursive=True):
    with open(path, "rb") as f:
        flag = int.from_bytes(f.read(8)[4:8], "little")
    flags.setdefault(flag, []).append(path)
print({k: len(v) for k, v in flags.items()}, [v[0] for k, v in flags.items() if k != 3][:3])
"""


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_final_image_has_only_checked_hash_pycs_and_epoch_mtimes(images, arch):
    """PEP 552 flags of every pyc are 3 (checked hash): none depends on an mtime. The venv's
    files carry the base image's created time (SOURCE_DATE_EPOCH), not the build's clock."""
    engine = Engine()
    image = next(i for i in images["images"] if i["arch"] == arch)
    status, out = engine.run(image["ref"], ["python3", "-c", PYC_SCAN], platform=f"linux/{arch}")
    assert status == 0, out
    counts, offenders = out.strip().rsplit("} ", 1)
    assert offenders == "[]", out
    assert int(counts.split("3: ")[1]) > 100, out
    created = engine.inspect(image["ref"]).created
    base_created = engine.ensure_local(image["base"], f"linux/{arch}").created
    assert created == base_created, (created, base_created)
    newer = (
        "import os, sys; epoch = int(sys.argv[1]); "
        "paths = ['/etc/passwd'] + [os.path.join(r, n) for r, ds, fs in os.walk('/opt/venv') for n in ds + fs]; "
        "print([p for p in paths if os.lstat(p).st_mtime > epoch][:3])"
    )
    status, out = engine.run(image["ref"], ["python3", "-c", newer, str(epoch_of(created))], platform=f"linux/{arch}")
    assert status == 0 and out.strip() == "[]", out


def test_smoke_passes_on_both_arches(project, images):
    proc = run(project, "smoke", "--images-lock", "images.lock")
    out = proc.stdout + proc.stderr
    assert "smoke amd64: python 3.14.8 x86_64 uid 10001" in out
    assert "smoke arm64: python 3.14.8 aarch64 uid 10001" in out


def test_smoke_names_image_arch_and_module_that_fails(project, cfg, images):
    """A copy of the amd64 image with orjson's extension removed, a setuid file and a pip
    cache must fail smoke, each failure naming the image, the arch and what is wrong."""
    import io
    import tarfile

    from factory.images.smoke import smoke, smoke_image
    from factory.pipeline import make_index
    from factory.tools.toolchain import tool_wheel

    amd64 = next(i for i in images["images"] if i["arch"] == "amd64")
    dockerfile = (
        f"FROM {amd64['ref']}\nUSER 0\n"
        # exec form, python3: the base has no shell
        'RUN ["python3", "-c", "import glob, os, shutil; '
        "[os.remove(p) for p in glob.glob('/opt/venv/lib/python3.14/site-packages/orjson/orjson*.so')]; "
        "os.makedirs('/usr/local/bin', exist_ok=True); shutil.copy('/usr/bin/python3.14', '/usr/local/bin/suid-helper'); "
        "os.chmod('/usr/local/bin/suid-helper', 0o4755); "
        "os.makedirs('/root/.cache/pip', exist_ok=True); open('/root/.cache/pip/selfcheck.json', 'w').close()\"]\n"
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
    recorded = ImagesLock.from_json(images)
    broken = dataclasses.replace(recorded, images=(dataclasses.replace(recorded.image("amd64"), ref=tag),))
    with pytest.raises(SmokeError) as e:
        smoke(engine, broken, "3.14.8", pip)
    assert tag in e.value.problem and "(amd64)" in e.value.problem and "3 smoke check(s) failed" in e.value.problem


def test_smoke_checks_hardening_on_both_arches(project, images):
    from factory.images.smoke import smoke_image
    from factory.pipeline import make_index
    from factory.tools.toolchain import tool_wheel

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
        proc = run_factory(project, *args, env=env)
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
recipe = "{ROOT / 'factory/resources/images/recipes/forky-slim.toml'}"
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
recipe = "{ROOT / 'factory/resources/images/recipes/forky-slim.toml'}"
"""
    )

    def bootstrap(**env):
        return run_factory(tmp_path, "bootstrap", env=env, timeout=1200)

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


def _layer_files(ref: str) -> dict[str, tuple]:
    """What the app layer put into image ``ref``: /opt/venv and /etc/passwd, /etc/group,
    read from an exported (never started) container: path -> (type, mode, link, size,
    sha256 of a regular file)."""
    import tarfile

    container = Engine().client.containers.create(ref, ["true"])
    try:
        stream = io.BufferedReader(_Chunks(container.export()))  # type: ignore[arg-type]
        files = {}
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for m in tar:
                name = m.name.lstrip("./")
                if not (name.startswith("opt/venv") or name in ("etc/passwd", "etc/group")):
                    continue
                data = tar.extractfile(m).read() if m.isfile() else b""
                files[name] = (m.type, m.mode, m.linkname, m.size, hashlib.sha256(data).hexdigest() if m.isfile() else "")
        return files
    finally:
        container.remove(force=True)


class _Chunks(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (the SDK's export stream)."""

    def __init__(self, chunks):
        self._chunks, self._rest = iter(chunks), b""

    def readable(self):
        return True

    def readinto(self, buffer):
        while not self._rest:
            try:
                self._rest = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._rest))
        buffer[:n], self._rest = self._rest[:n], self._rest[n:]
        return n


def test_the_host_made_layer_equals_the_emulated_one(project, images):
    """The session images' venv layer was made on the host (pypa/installer, pycs by the
    amd64 base, nothing run on arm64); the Dockerfile route (pip install and compileall in
    the image's own arch, arm64 under QEMU) must give the same files, modes, links, pycs and
    scripts on both arches. Only the installer's own records differ: INSTALLER says who
    installed, and RECORD lists the same files in another order."""
    env = {"FACTORY_IMAGE_ASSEMBLY": "dockerfile", "FACTORY_REPOSITORY": "factory-test/app-dockerfile"}
    run(project, "images", "--wheelhouse", "wheelhouse", "--images-lock", "images-dockerfile.lock", env=env)
    emulated = {i["arch"]: i["ref"] for i in json.loads((project / "images-dockerfile.lock").read_text())["images"]}
    for image in images["images"]:
        host, other = _layer_files(image["ref"]), _layer_files(emulated[image["arch"]])
        assert sorted(host) == sorted(other), image["arch"]
        assert any(p.endswith(".pyc") for p in host) and any(p.startswith("opt/venv/bin/") for p in host)
        differ = sorted(p for p in host if host[p] != other[p])
        assert all(p.endswith(("/INSTALLER", "/RECORD")) for p in differ), (image["arch"], differ[:5], [(host[p], other[p]) for p in differ[:2]])
        assert host["opt/venv/pyvenv.cfg"] == other["opt/venv/pyvenv.cfg"]


def test_an_arm64_image_is_assembled_with_binfmt_disabled(project, cfg, images, bases, lock):
    """No arm64 process runs to assemble an image: with the QEMU handler switched off (so
    any arm64 exec fails), the arm64 image is written and pushed again and comes out as the
    very image of the session (same digest)."""
    from factory.bases.bootstrap import read_bases_lock
    from factory.core import binfmt
    from factory.core.cache import sha256_file
    from factory.images import assemble as images_stage
    from factory.locks.lockfile import read_lock
    from factory.pipeline import make_index
    from factory.tools.toolchain import tool_wheel

    handler = binfmt.BINFMT / binfmt.ENTRY
    no_cache = dataclasses.replace(cfg, engine_cache=False)
    entries = read_bases_lock(cfg.bases_lock)
    pip = tool_wheel(cfg, make_index(cfg), "pip")
    registry = Registry(cfg.registry)
    handler.write_text("0")
    try:
        with pytest.raises(BinfmtMissingError):
            binfmt.require_arm64()  # it is really off
        image, _ = images_stage.build_image(
            no_cache, Engine(), registry, read_lock(project / "requirements.lock"), project / "wheelhouse", entries["arm64"],
            pip, sha256_file(cfg.toolchain), "binfmt-off", native=entries["amd64"],
        )  # fmt: skip
    finally:
        handler.write_text("1")
    session = next(i for i in images["images"] if i["arch"] == "arm64")
    assert image.digest == session["ref"].split("@")[1]
