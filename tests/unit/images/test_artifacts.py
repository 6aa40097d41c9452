"""Typed image artifacts (images.lock, bases.lock, builders.lock): their JSON Schemas, round
trips and the committed files; the probe files; and the defects they replaced: an SBOM
without its Python components when its probe failed, an index that silently lost an arch,
and a smoke check that rejected packaging tools the lock pins."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from importlib.metadata import version

import jsonschema
import pytest
from paths import FIXTURES, ROOT

from factory.bases.imagelock import ArchImage, BaseImage, BaseImagesLock, BuilderImage, BuilderImagesLock, ImagesLock, Perf, Startup
from factory.core import resources
from factory.core.config import BaseSpec, Config, load_config
from factory.core.errors import ArtifactError, ProbeError, WheelhouseMismatchError
from factory.core.registry import ManifestInfo
from factory.core.targets import parse_target
from factory.images import assemble as images_stage
from factory.images import probes
from factory.images.sbom import image_sbom
from factory.images.smoke import hardening_failures, smoke_image, unpinned_packaging_tools
from factory.locks.lockfile import read_lock
from factory.pipeline import pinned_names
from factory.sdist.builders import read_builders_lock

REPO = "127.0.0.1:5555/factory/app"
H = {c: c * 64 for c in "0123456789abcdef"}


def validator(cls) -> jsonschema.Draft202012Validator:
    schema = json.loads(resources.path(cls.SCHEMA).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def arch_image(arch: str = "amd64", **changes) -> ArchImage:
    image = ArchImage(
        arch=arch,
        ref=f"{REPO}@sha256:{H['a'] if arch == 'amd64' else H['b']}",
        tag=f"{REPO}:3.14.8-{H['1'][:12]}-{arch}",
        base=f"127.0.0.1:5555/factory/python@sha256:{H['c']}",
        size=90_000_000,
        compressed_size=31_000_000,
        base_size=80_000_000,
        base_compressed_size=28_000_000,
        inputs_sha256=H["d"],
        sbom=f"images.lock.sbom/image-{arch}.cdx.json",
        perf=Perf(cold_start_s=0.0413, import_s=0.1237),
        probes_sha256=H["e"],
    )
    return dataclasses.replace(image, **changes)


def images_lock(*entries: ArchImage) -> ImagesLock:
    return ImagesLock(
        images=entries or (arch_image("amd64"), arch_image("arm64")),
        index=f"{REPO}@sha256:{H['f']}",
        tags=(f"{REPO}:3.14.8-{H['1'][:12]}", f"{REPO}:3.14.8"),
        python="3.14.8",
        lock_sha256=H["1"],
        revision="unknown",
        wheelhouse_sbom="wheelhouse/sbom.cdx.json",
    )


# -- images.lock -------------------------------------------------------------------------


def test_images_lock_matches_its_schema_and_round_trips(tmp_path):
    lock = images_lock()
    validator(ImagesLock).validate(lock.to_json())
    assert ImagesLock.from_json(lock.to_json()) == lock
    out = tmp_path / "images.lock"
    lock.dump(out)
    assert ImagesLock.load(out) == lock
    assert json.loads(out.read_text()) == lock.to_json()
    assert [p.name for p in tmp_path.iterdir()] == ["images.lock"]  # no temporary sibling left


def test_a_signed_images_lock_validates_and_loads_with_its_signing_block():
    signing = {"public_key": "cosign.pub", "cosign": "3.1.1", "signatures": {f"{REPO}@sha256:{H['f']}": f"{REPO}:sha256-{H['f']}"}, "attestations": {}}
    lock = dataclasses.replace(images_lock(), signing=signing)
    validator(ImagesLock).validate(lock.to_json())
    assert ImagesLock.from_json(lock.to_json()).signing == signing
    assert "signing" not in images_lock().to_json()  # unsigned: no block at all


def test_images_lock_keeps_the_key_names_on_disk():
    data = images_lock().to_json()
    assert set(data) == {"images", "index", "tags", "python", "lock_sha256", "revision", "wheelhouse_sbom"}
    assert set(data["images"][0]) == {
        "arch", "ref", "tag", "base", "size", "compressed_size", "base_size", "base_compressed_size",
        "inputs_sha256", "sbom", "perf", "probes_sha256",
    }
    assert data["images"][0]["perf"] == {"cold_start_s": 0.0413, "import_s": 0.1237}


def test_an_images_lock_written_before_probes_sha256_still_loads():
    """The form the images stage wrote until now: no probes_sha256 (and perf null before it was measured)."""
    data = images_lock().to_json()
    for entry in data["images"]:
        del entry["probes_sha256"]
    data["images"][1]["perf"] = None
    validator(ImagesLock).validate(data)
    loaded = ImagesLock.from_json(data)
    assert loaded.image("amd64").probes_sha256 == "" and loaded.image("arm64").perf is None
    assert loaded.image("arm64").digest == f"sha256:{H['b']}"


STARTUP = Startup(
    ready="http://:8000/health", runs=5, cold_median_s=0.81, cold_max_s=0.93, limited_median_s=1.42, limited_max_s=1.6, cpus=0.5,
    memory=512 * 2**20, rss_bytes=21_000_000, stop_max_s=0.2, stop_exit_code=0, emulated=False, settings_sha256=H["9"],
)  # fmt: skip


def test_a_service_images_startup_validates_and_round_trips():
    lock = images_lock(arch_image("amd64", startup=STARTUP), arch_image("arm64", startup=dataclasses.replace(STARTUP, emulated=True)))
    validator(ImagesLock).validate(lock.to_json())
    assert ImagesLock.from_json(lock.to_json()) == lock
    assert lock.to_json()["images"][0]["startup"]["limited_max_s"] == 1.6
    assert "startup" not in images_lock().to_json()["images"][0]  # a dependency image has none


def _startup(mutate):
    data = images_lock(arch_image("amd64", startup=STARTUP)).to_json()
    mutate(data["images"][0]["startup"])
    return data


def _broken(mutate):
    data = images_lock().to_json()
    mutate(data)
    return data


BROKEN_IMAGES_LOCKS = {
    "missing index": (_broken(lambda d: d.pop("index")), "lacks index"),
    "size as string": (_broken(lambda d: d["images"][0].update(size="90 MB")), "images[0].size is not an integer"),
    "size as bool": (_broken(lambda d: d["images"][0].update(size=True)), "images[0].size is not an integer"),
    "unknown key": (_broken(lambda d: d["images"][1].update(colour="red")), "images[1] has unknown key(s) colour"),
    "perf without import_s": (_broken(lambda d: d["images"][0]["perf"].pop("import_s")), "images[0].perf lacks import_s"),
    "tag ref": (_broken(lambda d: d["images"][0].update(ref=f"{REPO}:latest")), "not pinned by digest"),
    "images not a list": (_broken(lambda d: d.update(images={})), "images is not a list"),
    "startup without rss": (_startup(lambda s: s.pop("rss_bytes")), "images[0].startup lacks rss_bytes"),
    "startup emulated as string": (_startup(lambda s: s.update(emulated="no")), "images[0].startup.emulated is not true or false"),
}


@pytest.mark.parametrize("name", sorted(BROKEN_IMAGES_LOCKS))
def test_a_broken_images_lock_is_refused_by_schema_and_loader_alike(name):
    data, says = BROKEN_IMAGES_LOCKS[name]
    assert not validator(ImagesLock).is_valid(data)
    with pytest.raises(ArtifactError) as e:
        ImagesLock.from_json(data)
    assert says in e.value.problem and "\n" not in str(e.value)


def test_an_arch_listed_twice_is_refused():
    with pytest.raises(ArtifactError, match="lists an arch twice"):
        ImagesLock.from_json(images_lock(arch_image("amd64"), arch_image("amd64")).to_json())


def test_missing_or_garbled_images_lock_is_one_line(tmp_path):
    with pytest.raises(ArtifactError, match=r"images.lock does not exist \(fix: run `factory images`"):
        ImagesLock.load(tmp_path / "images.lock")
    (tmp_path / "images.lock").write_text('{"images": [')
    with pytest.raises(ArtifactError, match="is not valid JSON"):
        ImagesLock.load(tmp_path / "images.lock")


# -- bases.lock and builders.lock --------------------------------------------------------


@pytest.fixture(scope="module")
def project_cfg() -> Config:
    return load_config(ROOT / "pyproject.toml", env={})


def test_the_committed_bases_lock_reads_validates_and_rewrites_byte_for_byte(project_cfg, tmp_path):
    text = project_cfg.bases_lock.read_text()
    validator(BaseImagesLock).validate(json.loads(text))
    lock = BaseImagesLock.load(project_cfg.bases_lock)
    assert set(lock.bases) == {"amd64", "arm64"}
    for arch, base in lock.bases.items():
        assert base.arch == arch and base.source == "bootstrap" and base.ref.startswith("127.0.0.1:5555/factory/python@sha256:")
        assert len(base.recipe_sha256 or "") == 64 and base.debian_python == "3.14.8-1"
    copy = tmp_path / "bases.lock"
    lock.dump(copy)
    assert copy.read_text() == text  # same keys, same values, same layout: reproducibility compares it


def test_bases_lock_round_trip_with_an_upstream_base(tmp_path):
    upstream = BaseImage("arm64", f"docker.io/library/python:3.14.8-slim@sha256:{H['9']}", "docker.io/library/python:3.14.8-slim", "upstream")
    lock = BaseImagesLock("3.14.8", {"arm64": upstream, "amd64": BaseImage("amd64", f"{REPO}@sha256:{H['a']}", "t", "bootstrap", H["2"], "3.14.8-1")})
    validator(BaseImagesLock).validate(lock.to_json())
    lock.dump(tmp_path / "bases.lock")
    assert BaseImagesLock.load(tmp_path / "bases.lock") == lock


def test_a_bases_lock_entry_under_another_arch_is_refused():
    data = {"python": "3.14.8", "bases": {"arm64": BaseImage("amd64", f"{REPO}@sha256:{H['a']}", "t", "upstream").to_json()}}
    with pytest.raises(ArtifactError, match="bases.arm64 is the entry of arch 'amd64'"):
        BaseImagesLock.from_json(data)


def test_a_builders_lock_reads_validates_and_round_trips(tmp_path):
    recorded = FIXTURES / "artifacts" / "builders.lock"  # as `make images` wrote it
    builders = read_builders_lock(recorded)
    assert set(builders) == {"amd64", "arm64"}
    validator(BuilderImagesLock).validate(json.loads(recorded.read_text()))
    copy = tmp_path / "builders.lock"
    BuilderImagesLock(python="3.14.8", builders=builders).dump(copy)
    assert copy.read_text() == recorded.read_text()
    assert read_builders_lock(tmp_path / "none.lock") == {}


def test_a_legacy_builders_lock_keeps_its_builder_keys(tmp_path):
    """The former bases-shaped form, with the builder key in recipe_sha256, reads with the
    same key, so ensure_builder reuses those builders; the next write uses the new form."""
    legacy = {
        a: {"arch": a, "ref": f"{REPO}@sha256:{H[c]}", "tag": f"{REPO}:{a}", "source": "bootstrap", "recipe_sha256": H[k], "debian_python": "3.14.8-1"}
        for a, c, k in (("amd64", "a", "1"), ("arm64", "b", "2"))
    }  # fmt: skip
    old = tmp_path / "old.lock"
    old.write_text(json.dumps({"python": "3.14.8", "bases": legacy}))
    builders = read_builders_lock(old)
    for arch, builder in builders.items():
        assert builder == BuilderImage(arch, legacy[arch]["ref"], legacy[arch]["tag"], legacy[arch]["recipe_sha256"])
    migrated = tmp_path / "builders.lock"
    BuilderImagesLock(python="3.14.8", builders=builders).dump(migrated)
    validator(BuilderImagesLock).validate(json.loads(migrated.read_text()))
    assert read_builders_lock(migrated) == builders


def test_builders_lock_refuses_a_legacy_entry_without_its_key():
    entry = {"arch": "amd64", "ref": f"{REPO}@sha256:{H['a']}", "tag": "t", "source": "bootstrap", "recipe_sha256": None, "debian_python": None}
    with pytest.raises(ArtifactError, match="no recipe_sha256"):
        BuilderImagesLock.from_json({"python": "3.14.8", "bases": {"amd64": entry}})


# -- probes ------------------------------------------------------------------------------


def _run_probe(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run probe ``name`` from its directory with the test interpreter (3.11+: the same
    standard-library API the 3.14 images have)."""
    return subprocess.run(
        [sys.executable, *args, str(resources.path(f"probes/{name}"))],
        capture_output=True, text=True, timeout=120,
        env={"PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1", **(env or {})},
    )


def test_the_dists_probe_lists_name_and_version_pairs():
    proc = _run_probe("dists.py")
    assert proc.returncode == 0, proc.stderr
    dists = json.loads(proc.stdout.strip().splitlines()[-1])
    assert ["jsonschema", version("jsonschema")] in dists
    assert all(isinstance(n, str) and isinstance(v, str) for n, v in dists)


def test_the_smoke_probe_imports_an_installed_module_named_like_a_probe(tmp_path):
    """An installed distribution whose module is called ``dists`` (a probe file's name) is
    imported from site-packages, not from the probes' directory."""
    site = tmp_path / "site"
    (site / "dists_dist-1.0.dist-info").mkdir(parents=True)
    (site / "dists_dist-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: dists-dist\nVersion: 1.0\n")
    (site / "dists_dist-1.0.dist-info" / "top_level.txt").write_text("dists\n")
    (site / "dists.py").write_text("raise ImportError('the installed dists module')\n")
    proc = _run_probe("smoke_probe.py", "-S", env={"PYTHONPATH": str(site)})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["dists"] == {"dists-dist": {"dists": "ImportError: the installed dists module"}}
    assert set(out) == {"version", "machine", "uid", "dists", "raised"}


def test_the_smoke_probe_fails_a_module_that_does_not_load_not_one_that_wants_configuration(tmp_path):
    """ImportError fails a module; a module that loads and then raises from its own code (a
    Django app reading settings only the service sets: ImproperlyConfigured) imports."""
    site = tmp_path / "site"
    for name, body in (("broken", "raise ImportError('libfoo.so.1: cannot open shared object file')\n"),
                       ("djangoapp", "class ImproperlyConfigured(Exception):\n    pass\nraise ImproperlyConfigured('settings are not configured')\n")):  # fmt: skip
        (site / f"{name}-1.0.dist-info").mkdir(parents=True)
        (site / f"{name}-1.0.dist-info" / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (site / f"{name}-1.0.dist-info" / "top_level.txt").write_text(f"{name}\n")
        (site / f"{name}.py").write_text(body)
    proc = _run_probe("smoke_probe.py", "-S", env={"PYTHONPATH": str(site)})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["dists"] == {"broken": {"broken": "ImportError: libfoo.so.1: cannot open shared object file"}, "djangoapp": {"djangoapp": None}}
    assert out["raised"] == {"djangoapp": "ImproperlyConfigured: settings are not configured"}


def test_the_import_time_probe_counts_the_modules(tmp_path):
    site = tmp_path / "site"
    (site / "tiny-1.0.dist-info").mkdir(parents=True)
    (site / "tiny-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny\nVersion: 1.0\n")
    (site / "tiny-1.0.dist-info" / "RECORD").write_text("tiny/__init__.py,,\ntiny_ext.py,,\ntiny-1.0.dist-info/METADATA,,\n")
    (site / "tiny").mkdir()
    (site / "tiny" / "__init__.py").write_text("")
    (site / "tiny_ext.py").write_text("")
    proc = _run_probe("import_time.py", "-S", env={"PYTHONPATH": str(site)})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["modules"] == 2 and out["import_s"] >= 0


def test_probe_results_and_failures():
    assert probes.result("dists.py", "r", "amd64", 0, 'noise\n[["a", "1"]]\n\n') == [["a", "1"]]
    with pytest.raises(ProbeError, match=r"probe dists.py failed in image r \(amd64\): exit 2, last output 'boom'"):
        probes.result("dists.py", "r", "amd64", 2, "Traceback\nboom\n")
    assert probes.command("hardening.py") == ["python3", "/opt/factory/probes/hardening.py"]
    with pytest.raises(FileNotFoundError):
        probes.command("nope.py")


# -- the image SBOM --------------------------------------------------------------------

STATUS = b"Package: libc6\nStatus: install ok installed\nVersion: 2.43-1\nArchitecture: amd64\n\n"


class UnusedEngine:
    """The local engine of a run whose images are built or measured by stand-ins."""

    def emulates(self, arch):
        return True

    def stop(self, label=None):  # what an interrupt would call
        raise AssertionError("no interrupt here")


class SbomEngine:
    """An image with dpkg's one status file, or (``status_d``) distroless status.d records."""

    remote = False  # a local engine, serving every arch

    def for_arch(self, arch):
        return self

    def emulates(self, arch):
        return True

    def __init__(self, code: int, output: str, status_d: dict[str, bytes] | None = None):
        self.code, self.output, self.status_d = code, output, status_d

    def read_file(self, ref, path):
        assert path == "/var/lib/dpkg/status" and self.status_d is None
        return STATUS

    def read_files(self, ref, path):
        assert path == "/var/lib/dpkg/status.d"
        return self.status_d or {}

    def run(self, ref, command, *, volumes=None, platform=None, network=True, **_):
        assert command == probes.command("dists.py") and volumes == probes.volumes() and network is False
        return self.code, self.output


def test_the_image_sbom_lists_debian_and_python_components():
    wheels = [{"name": "orjson", "filename": "orjson-3.13.0-cp314-cp314-manylinux_2_17_x86_64.whl", "sha256": H["7"]}]
    doc = json.loads(image_sbom(SbomEngine(0, '[["orjson", "3.13.0"]]\n'), f"{REPO}@sha256:{H['a']}", "amd64", wheels))
    purls = {c["purl"] for c in doc["components"]}
    assert "pkg:deb/debian/libc6@2.43-1?arch=amd64" in purls and "pkg:pypi/orjson@3.13.0" in purls
    orjson = next(c for c in doc["components"] if c["name"] == "orjson")
    assert orjson["hashes"][0]["content"] == H["7"]


def test_the_image_sbom_reads_distroless_status_records():
    records = {
        "libc6": STATUS.strip(),
        "libc6.md5sums": b"0123  usr/lib/x86_64-linux-gnu/libc.so.6\n",
        "zlib1g": b"Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.3-1\nArchitecture: amd64\n",
    }
    doc = json.loads(image_sbom(SbomEngine(0, "[]\n", records), f"{REPO}@sha256:{H['a']}", "amd64", []))
    assert {c["purl"] for c in doc["components"]} == {"pkg:deb/debian/libc6@2.43-1?arch=amd64", "pkg:deb/debian/zlib1g@1:1.3-1?arch=amd64"}


@pytest.mark.parametrize(
    ("code", "output"),
    [(1, "Traceback (most recent call last):\nModuleNotFoundError: No module named 'json'\n"), (0, "exec format error\n"), (0, '{"a": 1}\n')],
)
def test_an_image_sbom_whose_probe_fails_is_an_error_not_an_sbom_without_python(code, output):
    with pytest.raises(ProbeError) as e:
        image_sbom(SbomEngine(code, output), f"{REPO}@sha256:{H['a']}", "arm64", [])
    assert f"image {REPO}@sha256:{H['a']} (arm64)" in e.value.problem and "\n" not in str(e.value)


# -- the index keeps every arch ----------------------------------------------------------


def _manifest(digest: str) -> ManifestInfo:
    """An app image manifest as the images stage pushes it: OCI, annotated with its epoch."""
    body = {"layers": [], "annotations": {"org.opencontainers.image.created": "2025-11-20T00:00:00Z"}}
    return ManifestInfo(digest=digest, media_type="application/vnd.oci.image.manifest.v1+json", size=500, body=body)


class VanishingRegistry:
    """A registry holding both images, of which ``vanish`` goes after being looked up
    ``lookups`` times (deleted between the reuse check and the index, say)."""

    address = "127.0.0.1:5555"

    def __init__(self, vanish: str = "", lookups: int = 1):
        self.vanish, self.lookups, self.seen = vanish, lookups, 0
        self.lists: dict[str, list[tuple[str, str]]] = {}

    def manifest(self, repository, reference):
        if reference == self.vanish:
            self.seen += 1
            if self.seen > self.lookups:
                return None
        return _manifest(reference)

    def put_manifest(self, repository, tag, body, media_type):
        assert media_type == "application/vnd.oci.image.index.v1+json"
        self.lists[tag] = [(m["digest"], m["platform"]["architecture"]) for m in json.loads(body)["manifests"]]
        return f"sha256:{H['f']}"


@pytest.fixture
def reuse_project(tmp_path, monkeypatch):
    """A project whose images.lock lists amd64 and arm64 built from exactly its current inputs.

    The arm64 SBOM and probes are stand-ins, so the host's QEMU registration is not asked for.
    """
    monkeypatch.setattr(images_stage.binfmt, "require_arm64", lambda root=None: None)
    dockerfile, toolchain = tmp_path / "runtime.Dockerfile", tmp_path / "toolchain.txt"
    dockerfile.write_text("FROM scratch\n")
    toolchain.write_text("")
    (tmp_path / "requirements.lock").write_text(f"six==1.17.0 \\\n    --hash=sha256:{H['5']}\n")
    lock = read_lock(tmp_path / "requirements.lock")
    bases = {a: BaseImage(a, f"127.0.0.1:5555/factory/python@sha256:{H['c']}", "t", "upstream") for a in ("amd64", "arm64")}
    cfg = Config(
        root=tmp_path, python="3.14.8",
        targets=(parse_target("manylinux_2_28_x86_64"), parse_target("manylinux_2_28_aarch64")),
        index_url="http://127.0.0.1:1/simple/", ca_bundle=None, lock=lock.path, toolchain=toolchain,
        bases_lock=tmp_path / "bases.lock", cache_dir=tmp_path / "cache", registry="127.0.0.1:5555", registry_local=False,
        registry_dir=tmp_path / "registry", registry_htpasswd=None, dockerfile=dockerfile, repository="factory/app",
        base_repository="factory/python", uid=10001, jobs=1, builder_recipe=tmp_path / "builder.toml",
        builder_dockerfile=tmp_path / "builder.Dockerfile", builders_lock=tmp_path / "builders.lock", build_constraints=tmp_path / "build.txt",
        bases=(BaseSpec("amd64", image=bases["amd64"].ref), BaseSpec("arm64", image=bases["arm64"].ref)),
    )
    wheelhouse = tmp_path / "wheelhouse"
    targets = {}
    for target in ("manylinux_2_28_x86_64", "manylinux_2_28_aarch64"):
        (wheelhouse / target).mkdir(parents=True)
        targets[target] = [{"name": "six", "version": "1.17.0", "filename": "six-1.17.0-py2.py3-none-any.whl", "sha256": H["5"]}]
    (wheelhouse / "manifest.json").write_text(json.dumps({"lock_sha256": lock.sha256, "targets": targets}))
    pip_wheel = tmp_path / "pip-25.3-py3-none-any.whl"
    out = tmp_path / "images.lock"
    measured_with = probes.digest(*probes.MEASURING)
    entries = []
    for arch, target in (("amd64", "manylinux_2_28_x86_64"), ("arm64", "manylinux_2_28_aarch64")):
        inputs = images_stage.image_inputs(cfg, lock, targets[target], bases[arch], pip_wheel, images_stage.sha256_file(toolchain))
        entries.append(arch_image(arch, inputs_sha256=inputs, probes_sha256=measured_with))
        sbom = tmp_path / f"images.lock.sbom/image-{arch}.cdx.json"
        sbom.parent.mkdir(exist_ok=True)
        sbom.write_text("{}")
    previous = dataclasses.replace(images_lock(*entries), lock_sha256=lock.sha256)
    previous.dump(out)
    return cfg, lock, wheelhouse, bases, pip_wheel, out, previous


def test_an_image_gone_from_the_registry_before_the_index_is_not_dropped_from_it(reuse_project):
    """The reuse check saw arm64's image; by the time the index is pushed the registry no
    longer serves it. The index must still list arm64 (the registry then refuses it, or
    serves it): it used to be pushed without arm64 while images.lock listed arm64."""
    cfg, lock, wheelhouse, bases, pip_wheel, out, previous = reuse_project
    registry = VanishingRegistry(vanish=previous.image("arm64").digest, lookups=1)
    written = images_stage.build_images(cfg, UnusedEngine(), registry, lock, wheelhouse, bases, pip_wheel, out)
    expected = [(previous.image("amd64").digest, "amd64"), (previous.image("arm64").digest, "arm64")]
    assert registry.lists == {"3.14.8-" + lock.sha256[:12]: expected}  # the floating tag is promote's
    assert [i.arch for i in written.images] == ["amd64", "arm64"]
    assert ImagesLock.load(out) == written


def test_an_image_gone_from_the_registry_before_the_run_is_rebuilt(reuse_project, monkeypatch):
    cfg, lock, wheelhouse, bases, pip_wheel, out, previous = reuse_project
    gone = previous.image("arm64")
    rebuilt = dataclasses.replace(gone, ref=f"{REPO}@sha256:{H['8']}", sbom="", perf=None, probes_sha256="")
    calls = []

    def build_image(cfg, engine, registry, lock, wheelhouse, base, pip_wheel, toolchain_sha256, inputs, native=None):
        calls.append(base.arch)
        assert inputs == gone.inputs_sha256
        return rebuilt, _manifest(rebuilt.digest)

    monkeypatch.setattr(images_stage, "build_image", build_image)
    monkeypatch.setattr(images_stage, "image_sbom", lambda engine, ref, arch, wheels: "{}")
    monkeypatch.setattr(images_stage.perf, "measure", lambda engine, ref, arch: Perf(0.05, 0.12))
    registry = VanishingRegistry(vanish=gone.digest, lookups=0)
    written = images_stage.build_images(cfg, UnusedEngine(), registry, lock, wheelhouse, bases, pip_wheel, out)
    assert calls == ["arm64"]
    assert registry.lists["3.14.8-" + lock.sha256[:12]] == [(previous.image("amd64").digest, "amd64"), (rebuilt.digest, "arm64")]
    assert written.image("arm64").ref == rebuilt.ref and written.image("arm64").perf == Perf(0.05, 0.12)


def test_changed_probes_remeasure_a_reused_image_without_rebuilding_it(reuse_project, monkeypatch):
    cfg, lock, wheelhouse, bases, pip_wheel, out, previous = reuse_project
    ImagesLock(**{**previous.__dict__, "images": tuple(dataclasses.replace(i, probes_sha256=H["0"]) for i in previous.images)}).dump(out)
    monkeypatch.setattr(images_stage, "build_image", lambda *a: pytest.fail("rebuilt an image whose inputs did not change"))
    monkeypatch.setattr(images_stage, "image_sbom", lambda engine, ref, arch, wheels: '{"new": true}')
    monkeypatch.setattr(images_stage.perf, "measure", lambda engine, ref, arch: Perf(0.05, 0.12))
    written = images_stage.build_images(cfg, UnusedEngine(), VanishingRegistry(), lock, wheelhouse, bases, pip_wheel, out)
    assert [i.ref for i in written.images] == [i.ref for i in previous.images]
    assert {i.probes_sha256 for i in written.images} == {probes.digest(*probes.MEASURING)}
    assert (out.parent / "images.lock.sbom/image-arm64.cdx.json").read_text() == '{"new": true}'


# -- smoke: packaging tools the lock pins ------------------------------------------------

CLEAN = {"tools": [], "packaging_tools": [], "caches": [], "suid": [], "ca_certs": True, "tzdata": True, "read_only": True}


def test_packaging_tools_are_rejected_only_when_the_lock_does_not_pin_them():
    assert unpinned_packaging_tools(["pip", "setuptools", "wheel"], set()) == ["pip", "setuptools", "wheel"]
    assert unpinned_packaging_tools(["setuptools"], {"setuptools", "six"}) == []
    assert unpinned_packaging_tools(["setuptools", "wheel"], {"SetupTools"}) == ["wheel"]  # any spelling of the pin
    assert unpinned_packaging_tools([], {"pip"}) == []


def test_hardening_failures_follow_the_pins():
    found = {**CLEAN, "packaging_tools": ["setuptools"]}
    assert hardening_failures(found, {"setuptools"}) == []
    assert hardening_failures(found, set()) == ["packaging tool present but not pinned by the lock: setuptools"]
    assert hardening_failures({**CLEAN, "tools": ["gcc"], "read_only": False}, {"gcc"}) == [
        "compiler/build tool present: gcc",
        "root filesystem is writable although started --read-only",
    ]


class SmokeEngine:
    """A container whose probes answer with canned output."""

    remote = False  # a local engine, serving every arch

    def for_arch(self, arch):
        return self

    def emulates(self, arch):
        return True

    def __init__(self, hardening: dict):
        self.hardening, self.mounts, self.commands = hardening, None, []

    def test_container(self, ref, volumes=()):
        import contextlib

        self.mounts = list(volumes)
        return contextlib.nullcontext("container")

    def exec_in(self, container, command, user=""):
        self.commands.append(command)
        if command == probes.command("smoke_probe.py"):
            return 0, json.dumps({"version": "3.14.8", "machine": "x86_64", "uid": 10001, "dists": {"setuptools": {"setuptools": None}}}).encode()
        if command == probes.command("hardening.py"):
            assert user == "0"
            return 0, json.dumps(self.hardening).encode()
        return 0, b"No broken requirements found.\n"


def test_smoke_image_accepts_a_pinned_setuptools_and_names_an_unpinned_one(tmp_path):
    engine = SmokeEngine({**CLEAN, "packaging_tools": ["setuptools"]})
    ref = f"{REPO}@sha256:{H['a']}"
    assert smoke_image(engine, ref, "amd64", "3.14.8", tmp_path / "pip.whl", pinned={"setuptools"}).failures == []
    assert (probes.host_dir(), probes.IN_CONTAINER) in engine.mounts
    assert smoke_image(engine, ref, "amd64", "3.14.8", tmp_path / "pip.whl").failures == [
        f"image {ref} (amd64): packaging tool present but not pinned by the lock: setuptools"
    ]


def test_smoke_names_a_probe_that_printed_garbage(tmp_path):
    class Broken(SmokeEngine):
        def exec_in(self, container, command, user=""):
            return 139, b"Segmentation fault\n"

    failures = smoke_image(Broken(CLEAN), "img", "arm64", "3.14.8", tmp_path / "pip.whl").failures
    assert failures == ["image img (arm64): probe smoke_probe.py failed (exit 139): Segmentation fault"]


def test_smoke_takes_the_pins_of_the_lock_the_images_were_built_from(tmp_path):
    (tmp_path / "requirements.lock").write_text(f"setuptools==80.9.0 \\\n    --hash=sha256:{H['5']}\n")
    lock = read_lock(tmp_path / "requirements.lock")
    assert pinned_names(lock, dataclasses.replace(images_lock(), lock_sha256=lock.sha256)) == {"setuptools"}
    with pytest.raises(WheelhouseMismatchError, match="images.lock was built from lock 111111111111"):
        pinned_names(lock, images_lock())


def test_a_probe_result_longer_than_a_message_line_is_read_whole():
    """A real image's smoke probe prints one JSON line of many kilobytes (every module of
    every distribution); only error messages are cut, never the result that is parsed."""
    from factory.images import probes as probe_files

    dists = {f"dist{i}": {f"module{i}": None} for i in range(200)}
    line = json.dumps({"version": "3.14.8", "machine": "x86_64", "uid": 10001, "dists": dists})
    assert len(line) > 1000
    assert probe_files.result("smoke_probe.py", "r@sha256:" + "a" * 64, "amd64", 0, "noise\n" + line + "\n") == json.loads(line)
    assert len(probe_files.last_line(line)) == 200 and probe_files.last_line(line, limit=None) == line


def test_this_checkout_commits_no_machine_local_builder_refs(project_cfg):
    """A fresh `make images` must leave the checkout clean: builders.lock (digests in a
    loopback registry, not reproducible) lives in the cache, not in git."""
    assert project_cfg.builders_lock.is_relative_to(project_cfg.cache_dir)
    tracked = subprocess.run(["git", "ls-files", "*builders.lock"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert tracked and all(t.startswith("tests/fixtures/") for t in tracked), tracked  # test fixtures and fuzz seeds only
