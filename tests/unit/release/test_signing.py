"""Signing and attesting with the real cosign (issue 14, parts 2 and 4).

cosign comes from Debian sid's sha256-pinned .deb (``factory.release.cosign.install``); the images
are tiny ones pushed through a loopback registry's API. ``factory sign`` then ``factory
verify`` must pass; a foreign key, an image pushed over its tag and a tampered attestation
must each fail with one line.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from clirun import run_factory
from paths import ROOT
from registrykit import loopback_registry, push_image

from factory.bases import oci
from factory.bases.reproducible import push_oci_image, push_oci_index
from factory.core import debs
from factory.core.errors import SigningError
from factory.core.registry import Registry
from factory.release import cosign, provenance

CACHE = Path(os.environ.get("FACTORY_TEST_CACHE", ROOT / ".cache" / "test"))
REPO = "t/signed"
ANNOTATIONS = oci.Annotations(1767225600, "3.14.8", "base:3.14.8", "sha256:" + "b" * 64, "https://example.org", "app", "app")


def test_a_configured_key_that_does_not_exist_is_one_error(tmp_path):
    tool = cosign.Cosign(tmp_path / "no-cosign")
    with pytest.raises(SigningError, match="does not exist"):
        cosign.signing_key(tool, tmp_path, tmp_path / "cosign.pub", env={"FACTORY_SIGNING_KEY": str(tmp_path / "nokey")})
    assert not (tmp_path / "cosign.pub").exists()


def test_a_deb_with_another_sha256_is_refused_and_not_kept(tmp_path):
    served = tmp_path / "srv"
    served.mkdir()
    (served / "tool_1.0_amd64.deb").write_bytes(b"not the pinned bytes")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/tool_1.0_amd64.deb"
        with pytest.raises(debs.DebError, match="expected sha256"):
            debs.fetch(url, "0" * 64, tmp_path / "debs")
        assert list((tmp_path / "debs").iterdir()) == []
        good = hashlib.sha256(b"not the pinned bytes").hexdigest()
        assert debs.fetch(url, good, tmp_path / "debs").read_bytes() == b"not the pinned bytes"
    finally:
        server.shutdown()


def test_the_provenance_names_every_input_with_its_digest():
    base = "r/python@sha256:" + "a" * 64
    p = provenance.predicate("https://b", [provenance.image_input("base-amd64", base), provenance.Input("lock", "requirements.lock", "c" * 64)], {"python": "3.14.8"})
    deps = p["buildDefinition"]["resolvedDependencies"]
    assert [(d["name"], d["digest"]) for d in deps] == [("base-amd64", {"sha256": "a" * 64}), ("lock", {"sha256": "c" * 64})]
    assert p["runDetails"]["builder"]["id"] == "https://b"
    with pytest.raises(ValueError):
        provenance.predicate("b", [provenance.Input("x", "u")], {})
    with pytest.raises(ValueError):
        provenance.image_input("base", "r/python:3.14.8")


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with loopback_registry(tmp_path_factory.mktemp("cosign-registry")) as reg:
        yield reg


@pytest.fixture(scope="module")
def cosign_binary():
    return cosign.install(CACHE)


def _images_lock(registry: Registry, directory: Path, payload: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    images, entries = [], []
    for arch in ("amd64", "arm64"):
        tag = f"3.14.8-{payload.hex()[:8]}-{arch}"
        digest = push_image(registry, REPO, tag, arch, payload + arch.encode())
        image = push_oci_image(registry, REPO, digest, tag, ANNOTATIONS)
        entries.append((image, arch))
        sbom = directory / f"image-{arch}.cdx.json"
        sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": [{"type": "library", "name": "orjson", "version": "3.13.0"}]}))
        images.append({"arch": arch, "ref": f"{registry.address}/{REPO}@{image.digest}", "tag": f"{registry.address}/{REPO}:{tag}",
                       "base": f"{registry.address}/t/python@sha256:{'b' * 64}", "inputs_sha256": "e" * 64, "sbom": sbom.name,
                       "size": 1000, "compressed_size": 500, "base_size": 800, "base_compressed_size": 400})
    index_tag = f"3.14.8-{payload.hex()[:8]}"
    index = push_oci_index(registry, REPO, [index_tag], entries, ANNOTATIONS)
    (directory / "wheelhouse.cdx.json").write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": []}))
    lock = directory / "images.lock"
    lock.write_text(json.dumps({"images": images, "index": f"{registry.address}/{REPO}@{index}", "tags": [f"{registry.address}/{REPO}:{index_tag}"],
                                "python": "3.14.8", "lock_sha256": "f" * 64, "revision": "1" * 40, "wheelhouse_sbom": "wheelhouse.cdx.json"}))
    return lock


def _one_line_error(proc, *words: str) -> str:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("factory: error: "), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def signed(registry, cosign_binary, tmp_path_factory):
    """An images.lock signed and attested by ``factory sign`` with a key made in the cache."""
    directory = tmp_path_factory.mktemp("signed")
    lock = _images_lock(registry, directory, b"signed build")
    cache = directory / "cache"
    (cache / "tools").mkdir(parents=True)
    os.symlink(cosign_binary.parent, cache / "tools" / cosign_binary.parent.name)  # no second download
    run_factory(directory, "sign", "--images-lock", str(lock), "--cache-dir", str(cache), check=True)
    return lock, cache


@pytest.mark.integration
def test_sign_then_verify_with_the_factory_and_with_cosign_itself(signed, cosign_binary):
    lock, cache = signed
    data = json.loads(lock.read_text())
    assert (cache / "signing" / "cosign.key").is_file()
    assert data["signing"]["public_key"] == "cosign.pub" and (lock.parent / "cosign.pub").is_file()
    assert set(data["signing"]["signatures"]) == {data["index"], *[i["ref"] for i in data["images"]]}
    proc = run_factory(lock.parent, "verify", "--images-lock", str(lock), "--cache-dir", str(cache), check=True)
    assert "3 signatures" in proc.stdout + proc.stderr

    env = {**os.environ, "COSIGN_PASSWORD": ""}
    for ref in data["signing"]["signatures"]:
        subprocess.run([str(cosign_binary), "verify", "--key", str(lock.parent / "cosign.pub"), "--insecure-ignore-tlog=true",
                        "--allow-insecure-registry", ref], check=True, capture_output=True, env=env)
    out = subprocess.run([str(cosign_binary), "verify-attestation", "--key", str(lock.parent / "cosign.pub"), "--type", "slsaprovenance1",
                          "--insecure-ignore-tlog=true", "--allow-insecure-registry", data["index"]], check=True, capture_output=True, text=True, env=env)
    statement = json.loads(base64.b64decode(json.loads(out.stdout.splitlines()[0])["payload"]))
    assert statement["predicateType"] == provenance.PREDICATE_TYPE
    names = {d["name"]: d["digest"] for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert names["lock"] == {"sha256": "f" * 64} and names["base-arm64"] == {"sha256": "b" * 64}
    assert names["wheelhouse-sbom"] == {"sha256": hashlib.sha256((lock.parent / "wheelhouse.cdx.json").read_bytes()).hexdigest()}
    assert names["source"] == {"gitCommit": "1" * 40}
    image = data["images"][1]["ref"]
    out = subprocess.run([str(cosign_binary), "verify-attestation", "--key", str(lock.parent / "cosign.pub"), "--type", "cyclonedx",
                          "--insecure-ignore-tlog=true", "--allow-insecure-registry", image], check=True, capture_output=True, text=True, env=env)
    sbom = json.loads(base64.b64decode(json.loads(out.stdout.splitlines()[0])["payload"]))["predicate"]
    assert sbom["components"][0]["name"] == "orjson"


@pytest.mark.integration
def test_a_foreign_key_fails_with_one_line(signed, cosign_binary, tmp_path):
    lock, cache = signed
    cosign.Cosign(cosign_binary).generate_key_pair(tmp_path / "foreign")
    proc = run_factory(lock.parent, "verify", "--images-lock", str(lock), "--key", str(tmp_path / "foreign" / "cosign.pub"), "--cache-dir", str(cache))
    _one_line_error(proc, "could not verify the signature")


@pytest.mark.integration
def test_verify_refuses_an_unsigned_lock_and_a_missing_key(registry, signed, tmp_path):
    _, cache = signed
    unsigned = _images_lock(registry, tmp_path, b"never signed")
    proc = run_factory(tmp_path, "verify", "--images-lock", str(unsigned), "--cache-dir", str(cache))
    _one_line_error(proc, "never signed")
    proc = run_factory(tmp_path, "verify", "--images-lock", str(unsigned), "--key", str(tmp_path / "nokey.pub"), "--cache-dir", str(cache))
    _one_line_error(proc, "does not exist")


@pytest.mark.integration
def test_an_image_pushed_over_its_tag_is_caught(registry, cosign_binary, tmp_path):
    lock = _images_lock(registry, tmp_path / "over", b"pushed over")
    cache = tmp_path / "cache"
    (cache / "tools").mkdir(parents=True)
    os.symlink(cosign_binary.parent, cache / "tools" / cosign_binary.parent.name)
    run_factory(lock.parent, "sign", "--images-lock", str(lock), "--cache-dir", str(cache), check=True)
    run_factory(lock.parent, "verify", "--images-lock", str(lock), "--cache-dir", str(cache), check=True)
    tag = json.loads(lock.read_text())["images"][0]["tag"].rpartition(":")[2]
    push_image(registry, REPO, tag, "amd64", b"an intruder")
    proc = run_factory(lock.parent, "verify", "--images-lock", str(lock), "--cache-dir", str(cache))
    _one_line_error(proc, "pushed over", tag)


def _tamper_attestation(registry: Registry, ref: str) -> None:
    """Rewrite the predicate inside the DSSE envelope of ``ref``'s attestation, keeping its
    signature, and push the altered bundle back under cosign's ``sha256-<hex>`` tag."""
    digest = ref.partition("@")[2]
    tag = digest.replace(":", "-")
    referrers = registry.manifest(REPO, tag)
    assert referrers is not None
    manifests = []
    tampered = 0
    for entry in referrers.body["manifests"]:
        manifest = registry.manifest(REPO, entry["digest"])
        layer = manifest.body["layers"][0]
        bundle = json.loads(registry.blob(REPO, layer["digest"]))
        envelope = bundle.get("dsseEnvelope")
        statement = json.loads(base64.b64decode(envelope["payload"])) if envelope else None
        if statement is not None and statement["predicateType"] == provenance.PREDICATE_TYPE:
            statement["predicate"]["buildDefinition"]["externalParameters"]["python"] = "3.14.9"
            envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
            data = json.dumps(bundle).encode()
            new_layer = {**layer, "digest": registry.put_blob(REPO, data), "size": len(data)}
            body = json.dumps({**manifest.body, "layers": [new_layer]}).encode()
            new_digest = registry.put_manifest(REPO, "tampered", body, manifest.media_type)
            entry = {**entry, "digest": new_digest, "size": len(body)}
            tampered += 1
        manifests.append(entry)
    assert tampered == 1
    registry.put_manifest(REPO, tag, json.dumps({**referrers.body, "manifests": manifests}).encode(), referrers.media_type)


@pytest.mark.integration
def test_a_tampered_attestation_is_caught(registry, cosign_binary, tmp_path):
    lock = _images_lock(registry, tmp_path / "tamper", b"tampered")
    cache = tmp_path / "cache"
    (cache / "tools").mkdir(parents=True)
    os.symlink(cosign_binary.parent, cache / "tools" / cosign_binary.parent.name)
    run_factory(lock.parent, "sign", "--images-lock", str(lock), "--cache-dir", str(cache), check=True)
    index = json.loads(lock.read_text())["index"]
    _tamper_attestation(registry, index)
    with pytest.raises(SigningError):
        cosign.Cosign(cosign_binary).verify_attestation(index, lock.parent / "cosign.pub", "slsaprovenance1")
    proc = run_factory(lock.parent, "verify", "--images-lock", str(lock), "--cache-dir", str(cache))
    _one_line_error(proc, "slsaprovenance1 attestation")


@pytest.mark.integration
def test_signing_again_adds_no_second_signature(signed, registry, cosign_binary):
    lock, cache = signed
    data = json.loads(lock.read_text())
    index_tag = data["index"].partition("@")[2].replace(":", "-")
    before = registry.manifest(REPO, index_tag).body["manifests"]
    run_factory(lock.parent, "sign", "--images-lock", str(lock), "--cache-dir", str(cache), check=True)
    assert registry.manifest(REPO, index_tag).body["manifests"] == before
    assert json.loads(lock.read_text())["signing"]["signatures"] == data["signing"]["signatures"]


@pytest.mark.integration
def test_a_configured_key_with_a_password_signs_and_a_wrong_password_is_one_line(registry, cosign_binary, tmp_path):
    key, pub = cosign.Cosign(cosign_binary, password="s3cret").generate_key_pair(tmp_path / "team-key")
    lock = _images_lock(registry, tmp_path / "configured", b"configured key")
    cache = tmp_path / "cache"
    (cache / "tools").mkdir(parents=True)
    os.symlink(cosign_binary.parent, cache / "tools" / cosign_binary.parent.name)
    proc = run_factory(lock.parent, "sign", "--images-lock", str(lock), "--cache-dir", str(cache),
                       env={"FACTORY_SIGNING_KEY": str(key), "COSIGN_PASSWORD": "wrong"})
    _one_line_error(proc, "could not read the public key")
    assert "signing" not in json.loads(lock.read_text()) and not (cache / "signing").exists()

    run_factory(lock.parent, "sign", "--images-lock", str(lock), "--cache-dir", str(cache),
                env={"FACTORY_SIGNING_KEY": str(key), "COSIGN_PASSWORD": "s3cret"}, check=True)
    assert not (cache / "signing").exists()  # no key was generated
    assert (lock.parent / "cosign.pub").read_bytes().strip() == pub.read_bytes().strip()
    run_factory(lock.parent, "verify", "--images-lock", str(lock), "--key", str(pub), "--cache-dir", str(cache), check=True)
