"""Service images end to end, from projects whose locks real uv and poetry made
(tests/fixtures/projects): the packaged workspace member's wheel in a layer of its own over
the dependency layer, its command and ports in the OCI config, a code change that rebuilds
only the top layer, an OCI image layout; a virtual project's files with a runtime Debian
package; a poetry project; and the service's bad input.

Each project shares the session project's registry, cache and bases.lock (tests/conftest.py),
so only what a service adds is built here."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from clirun import run_project as run
from paths import FIXTURES

from factory.core.engine import Engine

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

GLIBC = '["manylinux_2_28_x86_64", "manylinux_2_28_aarch64"]'


def service_project(tmp: Path, session_project: Path, fixture: str, table: str, targets: str = GLIBC, own_bases: bool = False) -> Path:
    """Copy the fixture project to ``tmp`` and give its pyproject.toml the session project's
    [tool.factory] (registry, cache, base recipes; no `lock`, so the project's own is found)
    plus ``table`` (more keys of [tool.factory], then sub-tables). ``own_bases``: a bases.lock
    of its own (runtime-packages record other bases, which must not replace the session's)."""
    root = tmp / fixture
    shutil.copytree(FIXTURES / "projects" / fixture, root)
    shared = (session_project / "pyproject.toml").read_text()
    if not own_bases:
        shared = shared.replace('bases-lock = "bases.lock"', f'bases-lock = "{session_project / "bases.lock"}"')
    shared = shared.replace('builders-lock = "builders.lock"', f'builders-lock = "{session_project / "builders.lock"}"')
    shared = shared.replace('lock = "requirements.lock"\n', f"targets = {targets}\n")
    head, _, bases = shared.partition("[tool.factory.base.amd64]")
    text = (root / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(f"{text}\n{head}{table}\n[tool.factory.base.amd64]{bases}")
    return root


def run_image(ref: str, arch: str) -> str:
    """The image's own command's output (its Entrypoint/Cmd; no argv given)."""
    out = Engine().client.containers.run(ref, platform=f"linux/{arch}", remove=True, read_only=True, tmpfs={"/tmp": ""})
    return out.decode()


def config_of(ref: str) -> dict:
    proc = subprocess.run(["skopeo", "inspect", "--config", "--tls-verify=false", f"docker://{ref}"], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)["config"]


def layers_of(ref: str) -> list[str]:
    proc = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"], capture_output=True, text=True, check=True)
    return [layer["digest"] for layer in json.loads(proc.stdout)["layers"]]


def by_arch(images_lock: Path) -> dict[str, dict]:
    return {i["arch"]: i for i in json.loads(images_lock.read_text())["images"]}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, project, bases):
    """The uv workspace's member `svc` shipped as a service, `factory all --oci-layout`."""
    root = service_project(
        tmp_path_factory.mktemp("svc"), project, "uvws",
        'package = "svc"\n[tool.factory.image]\nports = ["8000"]\nenv = { GREETING = "hello" }\nlabels = { team = "payments" }\n',
    )  # fmt: skip
    started = time.monotonic()
    proc = run(root, "all", "--oci-layout", "oci")
    return root, proc, time.monotonic() - started


def test_the_member_ships_with_its_script_as_the_command(workspace):
    root, proc, _ = workspace
    output = proc.stdout + proc.stderr
    assert "lock: uv.lock" in output and "exported by uv" in output
    manifest = json.loads((root / "wheelhouse" / "manifest.json").read_text())
    assert manifest["project"]["name"] == "svc" and manifest["project"]["source"] == "project"
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["project"]["tree_sha256"])
    assert list((root / "wheelhouse" / "project").glob("svc-0.1.0-py3-none-any.whl"))
    for arch, image in by_arch(root / "images.lock").items():
        assert run_image(image["ref"], arch).strip() == "&lt;svc&gt;", arch
        config = config_of(image["ref"])
        assert config["Cmd"] == ["svc"] and "8000/tcp" in config["ExposedPorts"], config
        assert "GREETING=hello" in config["Env"] and config["Labels"]["team"] == "payments"
    assert "service: svc==0.1.0" in output and "command: svc" in output


def test_the_oci_layout_holds_the_index_and_both_images(workspace):
    root, _, _ = workspace
    index = json.loads((root / "oci" / "index.json").read_text())
    assert len(index["manifests"]) == 1
    proc = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{root / 'oci'}"], capture_output=True, text=True, check=True)
    platforms = {m["platform"]["architecture"] for m in json.loads(proc.stdout)["manifests"]}
    assert platforms == {"amd64", "arm64"}


def test_a_code_change_rebuilds_only_the_top_layer(workspace):
    root, _, full = workspace
    before = by_arch(root / "images.lock")
    source = root / "svc" / "src" / "svc" / "__init__.py"
    source.write_text(source.read_text().replace('"<svc>"', '"<svc v2>"'))
    started = time.monotonic()
    run(root, "wheelhouse")
    run(root, "images")
    rebuild = time.monotonic() - started
    after = by_arch(root / "images.lock")
    for arch in ("amd64", "arm64"):
        assert after[arch]["dependencies"] == before[arch]["dependencies"], arch
        assert after[arch]["ref"] != before[arch]["ref"], arch
        old, new = layers_of(before[arch]["ref"]), layers_of(after[arch]["ref"])
        assert len(old) == len(new) and old[:-1] == new[:-1] and old[-1] != new[-1], arch
        assert run_image(after[arch]["ref"], arch).strip() == "&lt;svc v2&gt;"
    print(f"full build {full:.1f} s, rebuild after a code change {rebuild:.1f} s")


@pytest.fixture(scope="module")
def virtual(tmp_path_factory, project, bases):
    """A virtual uv project: app/ as files, libmagic1 added to the base."""
    root = service_project(
        tmp_path_factory.mktemp("virtual"), project, "uvvirtual",
        'app-files = ["app/"]\nruntime-packages = ["libmagic1"]\n[tool.factory.image]\ncommand = ["python3", "/app/app/main.py"]\n',
        own_bases=True,
    )  # fmt: skip
    run(root, "all")
    return root


def test_a_virtual_project_ships_its_files_and_its_runtime_package(virtual, bases):
    for arch, image in by_arch(virtual / "images.lock").items():
        assert run_image(image["ref"], arch).startswith("PDF document, version 1.4"), arch
        assert image["base"] != bases["bases"][arch]["ref"], arch  # a base of its own


def test_runtime_packages_are_in_bases_lock_with_their_sha256(virtual):
    lock = json.loads((virtual / "bases.lock").read_text())
    assert set(lock["bases"]) == {"amd64", "arm64"}
    for arch, base in lock["bases"].items():
        magic = {p["name"]: p for p in base["packages"] if p["name"].startswith("libmagic")}
        assert {"libmagic1t64", "libmagic-mgc"} <= set(magic), arch
        assert all(re.fullmatch(r"[0-9a-f]{64}", p["sha256"]) for p in magic.values())
        assert re.search(rf"-[0-9a-f]{{8}}-{arch}$", base["tag"]), base["tag"]


def test_the_same_runtime_packages_give_the_same_base_digest(virtual, tmp_path):
    """A second bootstrap from nothing (an empty cache, so no rootfs or .deb is reused, and
    another base repository) gives the bases bit for bit."""
    text = (virtual / "pyproject.toml").read_text()
    again = tmp_path / "again"
    shutil.copytree(virtual, again, ignore=shutil.ignore_patterns("wheelhouse*", "images.lock*", "bases.lock", "oci"))
    text = re.sub(r'^cache-dir = ".*"$', f'cache-dir = "{tmp_path / "cache"}"', text, count=1, flags=re.M)
    (again / "pyproject.toml").write_text(text.replace('base-repository = "factory-test/python"', 'base-repository = "factory-test/python-again"'))
    run(again, "bootstrap")
    first = json.loads((virtual / "bases.lock").read_text())["bases"]
    second = json.loads((again / "bases.lock").read_text())["bases"]
    for arch in ("amd64", "arm64"):
        assert first[arch]["ref"].split("@")[1] == second[arch]["ref"].split("@")[1], arch


def test_a_poetry_project_ships(tmp_path, project, bases):
    root = service_project(
        tmp_path, project, "poetryapp",
        'package = "poetryapp"\n[tool.factory.image]\ncommand = ["python3", "-c", "import poetryapp; print(poetryapp.ESCAPED)"]\n',
    )  # fmt: skip
    proc = run(root, "all")
    assert "lock: poetry.lock" in proc.stdout + proc.stderr
    image = by_arch(root / "images.lock")["amd64"]
    assert run_image(image["ref"], "amd64").strip() == "<poetry>"


def test_an_unknown_debian_package_is_one_line(tmp_path, project, bases):
    root = service_project(tmp_path, project, "uvvirtual", 'app-files = ["app/"]\nruntime-packages = ["libnosuchthing1"]\n[tool.factory.image]\ncommand = ["python3"]\n', own_bases=True)
    proc = run(root, "all", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("factory:")]
    assert len(errors) == 1 and "libnosuchthing1" in errors[0], proc.stderr
    assert not (root / "images.lock").exists()


def test_a_project_that_fails_to_build_has_a_cause_in_the_matrix(tmp_path, project, bases):
    root = service_project(tmp_path, project, "uvws", 'package = "svc"\n', targets='["manylinux_2_28_x86_64"]')
    member = root / "svc" / "pyproject.toml"
    text = member.read_text().replace('version = "0.1.0"', 'dynamic = ["version"]')
    member.write_text(text + '\n[tool.hatch.version]\npath = "src/svc/nosuchfile.py"\n')
    proc = run(root, "wheelhouse", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    readiness = json.loads((root / "wheelhouse.failed" / "readiness.json").read_text())
    (row,) = [row for row in readiness["rows"] if row["name"] == "svc"]
    cell = row["cells"]["manylinux_2_28_x86_64"]
    assert cell["status"] == "failed" and cell["reason"], cell
    assert "svc" in proc.stderr
