"""An image as a base plus one host-made layer, written and pushed without an engine (issue 12 item 2).

Unit tests check the layer tar and the config; the integration test pushes onto a tiny base
in a loopback docker-registry, mounting the base's layer from its repository, and has the
Docker engine pull and export the result.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from registrykit import loopback_registry, push_image

from factory.bases import oci
from factory.core import resources
from factory.core.errors import ImageBuildError
from factory.images import layerimage

EPOCH = 1767225600
RUNTIME = layerimage.RuntimeConfig(env=(("PATH", "/opt/venv/bin:/usr/bin"), ("LANG", "C.UTF-8")), working_dir="/tmp", cmd=("python3",))
ANNOTATIONS = oci.Annotations(EPOCH, "3.14.8", "127.0.0.1:5555/t/base:3.14.8", "sha256:" + "b" * 64, "", "app", "the app")


def _tree(root: Path, order: list[str]) -> Path:
    """A small layer tree, its files created in ``order`` (the tar must not care)."""
    files = {"opt/venv/bin/tool": (b"#!/opt/venv/bin/python\n", 0o755), "opt/venv/lib/a.py": (b"x = 1\n", 0o644), "etc/passwd": (b"root:x:0:0\n", 0o644)}
    for name in order:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[name][0])
        os.chmod(path, files[name][1])
    (root / "opt/venv/bin/python").symlink_to("/usr/bin/python3")
    for path in [*sorted(root.rglob("*"), reverse=True), root]:
        os.utime(path, (EPOCH, EPOCH), follow_symlinks=False)
    return root


def test_the_layer_tar_is_deterministic_sorted_and_owned_by_root(tmp_path):
    one = layerimage.write_layer(_tree(tmp_path / "a", ["etc/passwd", "opt/venv/lib/a.py", "opt/venv/bin/tool"]), tmp_path / "a.tgz")
    two = layerimage.write_layer(_tree(tmp_path / "b", ["opt/venv/bin/tool", "etc/passwd", "opt/venv/lib/a.py"]), tmp_path / "b.tgz")
    assert (one.digest, one.diff_id, one.size) == (two.digest, two.diff_id, two.size)
    data = one.path.read_bytes()
    assert one.digest == "sha256:" + hashlib.sha256(data).hexdigest() and one.size == len(data)
    plain = gzip.decompress(data)
    assert one.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == ["etc", "etc/passwd", "opt", "opt/venv", "opt/venv/bin", "opt/venv/bin/python", "opt/venv/bin/tool", "opt/venv/lib", "opt/venv/lib/a.py"]
    assert all((m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", EPOCH) for m in members)
    assert all(not m.pax_headers for m in members)  # whole-second mtimes: no PAX records
    by_name = {m.name: m for m in members}
    assert by_name["opt/venv/bin/python"].issym() and by_name["opt/venv/bin/python"].linkname == "/usr/bin/python3"
    assert by_name["opt/venv/bin/tool"].mode == 0o755 and by_name["etc/passwd"].mode == 0o644
    assert data[4:8] == b"\0\0\0\0" and not data[3] & 0x08  # gzip header: no mtime, no file name


def test_the_layer_follows_its_files(tmp_path):
    one = layerimage.write_layer(_tree(tmp_path / "a", ["etc/passwd", "opt/venv/lib/a.py", "opt/venv/bin/tool"]), tmp_path / "a.tgz")
    tree = _tree(tmp_path / "b", ["etc/passwd", "opt/venv/lib/a.py", "opt/venv/bin/tool"])
    os.chmod(tree / "opt/venv/lib/a.py", 0o600)
    assert layerimage.write_layer(tree, tmp_path / "b.tgz").diff_id != one.diff_id


BASE_CONFIG = {
    "architecture": "arm64",
    "variant": "v8",
    "os": "linux",
    "created": "2025-01-01T00:00:00Z",
    "container": "abc",
    "config": {"Env": ["PATH=/usr/bin", "KEEP=1"], "Labels": {"base": "yes", "org.opencontainers.image.title": "base"}, "Image": "sha256:old"},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
    "history": [{"created": "2025-01-01T00:00:00Z", "created_by": "bootstrap"}],
}


def test_the_config_extends_the_base():
    layer = layerimage.Layer(Path("x"), "sha256:" + "2" * 64, "sha256:" + "3" * 64, 10)
    data = layerimage.image_config(BASE_CONFIG, layer, RUNTIME, "10001:10001", {"org.opencontainers.image.title": "app"}, EPOCH, "host layer")
    assert data == oci.canonical(json.loads(data))
    config = json.loads(data)
    assert (config["architecture"], config["variant"], config["os"]) == ("arm64", "v8", "linux")
    assert config["created"] == "2026-01-01T00:00:00Z" and "container" not in config
    assert config["rootfs"]["diff_ids"] == ["sha256:" + "1" * 64, "sha256:" + "3" * 64]
    assert [h["created_by"] for h in config["history"]] == ["bootstrap", "host layer"]
    inner = config["config"]
    assert inner["Env"] == ["PATH=/opt/venv/bin:/usr/bin", "KEEP=1", "LANG=C.UTF-8"]  # replaced in place, or appended, as ENV does
    assert (inner["User"], inner["WorkingDir"], inner["Cmd"], inner["Image"]) == ("10001:10001", "/tmp", ["python3"], "")
    assert inner["Labels"] == {"base": "yes", "org.opencontainers.image.title": "app"}
    with pytest.raises(ImageBuildError, match="diff_ids"):
        layerimage.image_config({**BASE_CONFIG, "rootfs": {}}, layer, RUNTIME, "1:1", {}, EPOCH, "x")


def test_the_shipped_runtime_config_loads():
    runtime = layerimage.RuntimeConfig.load(resources.path(layerimage.RUNTIME_CONFIG))
    assert dict(runtime.env)["PATH"].startswith("/opt/venv/bin:") and runtime.cmd == ("python3",)


@pytest.mark.integration
def test_an_image_pushed_onto_a_base_in_another_repository_is_pulled_by_the_engine(tmp_path):
    from factory.core.engine import Engine

    tree = _tree(tmp_path / "layer", ["etc/passwd", "opt/venv/lib/a.py", "opt/venv/bin/tool"])
    layer = layerimage.write_layer(tree, tmp_path / "layer.tgz")
    with loopback_registry(tmp_path / "registry") as registry:
        base_digest = push_image(registry, "t/base", "3.14.8-arm64", "arm64", b"base file\n")
        base_ref = f"{registry.address}/t/base@{base_digest}"

        def config_of(base: dict) -> bytes:
            return layerimage.image_config(base, layer, RUNTIME, "10001:10001", {"app": "1"}, EPOCH, "host layer")

        pushed = layerimage.push_image(registry, "t/app", "3.14.8-abc-arm64", base_ref, layer, config_of, ANNOTATIONS)
        again = layerimage.push_image(registry, "t/app", "3.14.8-abc-arm64", base_ref, layer, config_of, ANNOTATIONS)
        assert again.digest == pushed.digest
        assert pushed.media_type == oci.OCI_MANIFEST and pushed.body["annotations"]["org.opencontainers.image.title"] == "app"
        base_layer = registry.manifest("t/base", base_digest).body["layers"][0]["digest"]
        assert [b["digest"] for b in pushed.body["layers"]] == [base_layer, layer.digest]
        assert registry.has_blob("t/app", base_layer) and registry.has_blob("t/app", layer.digest)

        ref = f"{registry.address}/t/app@{pushed.digest}"
        engine = Engine()
        try:
            info = engine.ensure_local(ref, "linux/arm64")
            assert info.platform == "linux/arm64"
            attrs = engine.client.images.get(ref).attrs["Config"]
            assert attrs["User"] == "10001:10001" and attrs["Cmd"] == ["python3"] and attrs["Labels"]["app"] == "1"
            container = engine.client.containers.create(ref, ["true"], platform="linux/arm64")
            try:
                stream = b"".join(container.export())
            finally:
                container.remove(force=True)
            with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
                files = {m.name.lstrip("./"): m for m in tar.getmembers()}
                assert tar.extractfile(files["hello.txt"]).read() == b"base file\n"  # the base's layer, mounted
                assert tar.extractfile(files["opt/venv/bin/tool"]).read().startswith(b"#!/opt/venv/bin/python")
            assert files["opt/venv/bin/tool"].mode & 0o777 == 0o755 and files["opt/venv/bin/python"].issym()
        finally:
            engine.client.images.remove(ref, force=True)

        with pytest.raises(ImageBuildError, match="not an image of registry"):
            layerimage.push_image(registry, "t/app", "x", "elsewhere.example/t/base@" + base_digest, layer, config_of, ANNOTATIONS)
