"""Native hosts per arch (issue 15 item 5): ``[tool.factory.hosts]`` / FACTORY_DOCKER_HOST_<ARCH>
send an arch's image work and smoke tests to another Docker engine. The integration tests
start a second dockerd on this machine (tests/dockerd.py) to serve arm64; the mounts the
stages bind are staged into that engine's volumes, as they must be for a host elsewhere."""

from __future__ import annotations

import io
import json
import tarfile
import time
import uuid
from pathlib import Path

import pytest
from clirun import run_factory
from dockerd import second_dockerd
from indexserver import FixtureIndex, make_sdist, sha256
from tinysrc import C_SOURCE, c_project

from factory.bases.imagelock import ImagesLock
from factory.core.engine import Engine, staged_mounts, staged_tar
from factory.core.errors import DockerUnavailableError, EngineError
from factory.core.targets import parse_target
from factory.images import perf
from factory.sdist import cibw


def test_files_are_grouped_by_directory_and_directories_keep_their_path(tmp_path):
    (tmp_path / "probes").mkdir()
    (tmp_path / "probes" / "a.py").write_text("print(1)\n")
    (tmp_path / "pip.whl").write_bytes(b"PK")
    (tmp_path / "check.py").write_text("")
    groups = staged_mounts({
        str(tmp_path / "probes"): {"bind": "/opt/factory/probes", "mode": "ro"},
        str(tmp_path / "pip.whl"): {"bind": "/opt/factory/pip.whl", "mode": "ro"},
        str(tmp_path / "check.py"): {"bind": "/opt/factory/import_check.py", "mode": "ro"},
    })  # fmt: skip
    assert groups == {
        "/opt/factory/probes": [(tmp_path / "probes", "")],
        "/opt/factory": [(tmp_path / "pip.whl", "pip.whl"), (tmp_path / "check.py", "import_check.py")],
    }
    with staged_tar(groups["/opt/factory"]) as f, tarfile.open(fileobj=io.BytesIO(f.read())) as tar:
        assert sorted(m.name for m in tar.getmembers()) == ["import_check.py", "pip.whl"]
        assert {m.uid for m in tar.getmembers()} == {0}
    with staged_tar(groups["/opt/factory/probes"]) as f, tarfile.open(fileobj=io.BytesIO(f.read())) as tar:
        assert [m.name for m in tar.getmembers()] == ["a.py"]
    # the volume at /opt/factory is read-only: it must hold the mount point of the probes' one
    with staged_tar(groups["/opt/factory"], ["probes", "x/y"]) as f, tarfile.open(fileobj=io.BytesIO(f.read())) as tar:
        assert [m.name for m in tar.getmembers() if m.isdir()] == ["probes", "x", "x/y"]


def test_a_read_write_mount_is_refused_for_a_remote_host(tmp_path):
    with pytest.raises(EngineError, match="read-write mount"):
        staged_mounts({str(tmp_path): {"bind": "/out", "mode": "rw"}})


def test_a_host_that_does_not_answer_is_named():
    with pytest.raises(DockerUnavailableError, match=r"Docker host unix:///nonexistent/d2\.sock not reachable") as e:
        Engine("unix:///nonexistent/d2.sock")
    assert "FACTORY_DOCKER_HOST_" in e.value.fix


@pytest.fixture(scope="module")
def arm64_host():
    with second_dockerd() as url:
        yield url


def _started_images(engine: Engine, since: int, until: int) -> list[str]:
    events = engine.client.events(since=since, until=until, decode=True, filters={"type": "container", "event": "start"})
    return [e["Actor"]["Attributes"]["image"] for e in events]


@pytest.mark.integration
def test_the_arm64_image_is_built_probed_and_smoke_tested_on_its_native_host(project, images, arm64_host):
    """`factory images` into a new images.lock, then `factory smoke`, with
    FACTORY_DOCKER_HOST_ARM64: the arm64 image, written here and pushed through the registry
    API, is pulled by the second engine and has the digest it had without that host; every arm64
    container (SBOM and perf probes, the smoke probe with the pip wheel and probes staged into
    volumes) starts there, none here; the amd64 ones stay here. No staged volume is left."""
    previous = {i.arch: i for i in ImagesLock.load(project / "images.lock").images}
    here, there = Engine(), Engine(arm64_host)
    env = {"FACTORY_DOCKER_HOST_ARM64": arm64_host}
    since = int(time.time()) - 1
    run_factory(project, "images", "--wheelhouse", "wheelhouse", "--images-lock", "images-host.lock", env=env, timeout=1800, check=True)
    built = {i.arch: i for i in ImagesLock.load(project / "images-host.lock").images}
    refs = {arch: i.ref for arch, i in built.items()}
    # made again from the same inputs: the same digests, whichever engine holds the image
    assert refs == {arch: i.ref for arch, i in previous.items()}
    assert built["arm64"].inputs_sha256 == previous["arm64"].inputs_sha256
    proc = run_factory(project, "smoke", "--images-lock", "images-host.lock", env=env, timeout=900, check=True)
    until = int(time.time()) + 1
    out = proc.stdout + proc.stderr  # the progress lines are on stderr
    assert "smoke arm64: python 3.14" in out and "aarch64" in out, out
    started_there, started_here = _started_images(there, since, until), _started_images(here, since, until)
    assert refs["arm64"] in started_there and refs["amd64"] not in started_there, started_there
    assert refs["amd64"] in started_here and refs["arm64"] not in started_here, started_here
    # the SBOM probe, `python3 -c pass` and the import probe per perf run, the smoke container
    assert started_there.count(refs["arm64"]) == 1 + 2 * perf.RUNS + 1, started_there
    assert not there.client.volumes.list(filters={"label": "io.factory.staged"})


@pytest.mark.integration
def test_an_arch_whose_host_does_not_answer_fails_with_one_line(project, images):
    proc = run_factory(project, "smoke", env={"FACTORY_DOCKER_HOST_ARM64": "unix:///nonexistent/d2.sock"}, timeout=900, check=False)
    assert proc.returncode != 0
    assert "Docker host unix:///nonexistent/d2.sock not reachable" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_build_container_on_a_native_host_mounts_that_engines_volumes():
    mounts = cibw.Mounts(Path("/h/deps"), Path("/h/zigroot"), Path("/h/zig-cache"), Path("/h/res"), Path("/h/libs"))
    target = parse_target("manylinux_2_28_aarch64")
    here = cibw.cibuildwheel_env("3.14.8", target, "b", mounts, 0)["CIBW_CONTAINER_ENGINE"]
    assert "--volume=/h/deps:/opt/factory/deps:ro" in here and "--volume=/h/zigroot/zig:/opt/factory/zig:ro" in here
    sources = {cibw.DEPS: "v-deps", cibw.ZIG: "v-zig", cibw.ZIG_BIN: "v-bin", cibw.ZIG_CACHE: "v-cache", cibw.CONTAINER_RESOURCES: "v-res", cibw.LIBS: "v-libs"}
    there = cibw.cibuildwheel_env("3.14.8", target, "b", mounts, 0, sources=sources)["CIBW_CONTAINER_ENGINE"]
    assert "/h/" not in there
    for path, volume in sources.items():
        assert f"--volume={volume}:{path}" in there
    assert set(cibw.mount_points(mounts)) == set(sources)


@pytest.mark.integration
@pytest.mark.timeout(3600)
def test_an_arm64_cell_builds_on_its_native_host(project, cfg, bases, arm64_host):
    """A C sdist for manylinux_2_28_aarch64 with FACTORY_DOCKER_HOST_ARM64: the builder,
    cibuildwheel's build container (zig of that host's arch, the build dependencies and the
    wheel's resources staged into that engine's volumes) and the import check in the arm64
    base all run on the second engine; nothing of arm64 starts on this machine's."""
    # new bytes each session: the build cache (shared by sessions) must not have this cell
    source = f"/* {uuid.uuid4()} */\n" + C_SOURCE.replace("_tinyc", "_tinyhost")
    sdist = make_sdist("tinyhost", "1.0", c_project("tinyhost", "_tinyhost", source))
    (project / "host.lock").write_text(f"tinyhost==1.0 --hash=sha256:{sha256(sdist)}\n")
    here, there = Engine(), Engine(arm64_host)
    since = int(time.time()) - 1
    with FixtureIndex({"tinyhost": {"tinyhost-1.0.tar.gz": sdist}}, upstream=cfg.index_url) as idx:
        env = {"FACTORY_INDEX_URL": idx.url, "FACTORY_DOCKER_HOST_ARM64": arm64_host}
        proc = run_factory(project, "wheelhouse", "--lock", "host.lock", "--out", "wh-host", "--target", "manylinux_2_28_aarch64", env=env, timeout=2400, check=True)
    until = int(time.time()) + 1
    assert f"for manylinux_2_28_aarch64 on {arm64_host}" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    (entry,) = json.loads((project / "wh-host" / "manifest.json").read_text())["targets"]["manylinux_2_28_aarch64"]
    assert entry["source"] == "built" and entry["filename"].startswith("tinyhost-1.0-cp314-cp314-") and entry["filename"].endswith("_aarch64.whl")
    builder = f"{cfg.registry}/{cfg.builder_repository}@"
    started_there = _started_images(there, since, until)
    assert any(i.startswith(builder) for i in started_there), started_there  # cibuildwheel's build container
    assert bases["bases"]["arm64"]["ref"] in started_there, started_there  # the import check
    assert not any(i.startswith(builder) or i == bases["bases"]["arm64"]["ref"] for i in _started_images(here, since, until))
    volumes = {v.name for v in there.client.volumes.list()}
    assert any(v.startswith("factory-zig-") and v.endswith("-zig") for v in volumes) and "factory-zig-cache" in volumes, volumes
    assert not there.client.volumes.list(filters={"label": "io.factory.staged"})
