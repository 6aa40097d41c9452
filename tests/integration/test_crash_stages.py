"""Crash safety of the container stages: SIGKILL mid-bootstrap, mid-sdist-build and
mid-push, then rerun. After each kill the rerun completes, no temporary file of ours
remains, every cache entry still hashes right, and nothing names a half-done image.

Uses the session project and registry (tests/conftest.py). Slow: marked ``faults``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from clirun import run_project as run
from clirun import start_factory
from indexserver import FixtureIndex, make_sdist, sha256
from paths import ROOT
from tinysrc import C_SOURCE, c_project

from factory.core.cache import sha256_file
from factory.core.engine import Engine
from factory.core.errors import Interrupted
from factory.sdist.cibw import container_label

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(1800)]


def start(cwd: Path, *args: str, **env: str) -> subprocess.Popen:
    return start_factory(cwd, *args, env=env, stderr=subprocess.STDOUT, text=True)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def ours_left(*roots: Path) -> list[Path]:
    return [p for r in roots if r.exists() for p in r.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]


def assert_build_cache_sound(cache: Path) -> None:
    for outcome in cache.glob("builds/*/outcome.json"):
        data = json.loads(outcome.read_text())
        assert sha256_file(outcome.parent / data["filename"]) == data["sha256"], outcome


def test_sigkill_mid_sdist_build(project, cfg, bases):
    # a unique source: never a cached build, whatever ran on this cache before
    source = C_SOURCE.replace("_tinyc", "_killme") + f"/* {os.getpid()} {time.time_ns()} */\n"
    sdist = make_sdist("killme", "1.0", c_project("killme", "_killme", source))
    (project / "kill.lock").write_text(f"killme==1.0 --hash=sha256:{sha256(sdist)}\n")
    builds = cfg.cache_dir / "builds"
    with FixtureIndex({"killme": {"killme-1.0.tar.gz": sdist}}, upstream=cfg.index_url) as idx:
        args = ("wheelhouse", "--lock", "kill.lock", "--out", "wh-kill", "--target", "manylinux_2_28_x86_64")
        proc = start(project, *args, FACTORY_INDEX_URL=idx.url)

        label = container_label(cfg.cache_dir)

        def compiling() -> bool:
            # cibuildwheel's build container is up (the log itself is written in blocks)
            return bool(list(builds.glob(".*.tmp-*/build.log"))) and bool(Engine().client.containers.list(filters={"label": label}))

        wait_for(compiling, 900, "cibuildwheel to start compiling")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert not (project / "wh-kill").exists()
        rerun = run(project, *args, env={"FACTORY_INDEX_URL": idx.url})
        assert "building killme==1.0" in rerun.stdout + rerun.stderr
    # cibuildwheel died with us (PR_SET_PDEATHSIG) and could not remove its container;
    # the rerun removed it (labelled with the cache), and its own is gone too
    assert Engine().client.containers.list(all=True, filters={"label": label}) == []
    manifest = json.loads((project / "wh-kill" / "manifest.json").read_text())
    (entry,) = manifest["targets"]["manylinux_2_28_x86_64"]
    assert entry["source"] == "built" and entry["sdist_sha256"] == sha256(sdist)
    assert sha256_file(project / "wh-kill" / "manylinux_2_28_x86_64" / entry["filename"]) == entry["sha256"]
    assert ours_left(builds, project) == []
    assert_build_cache_sound(cfg.cache_dir)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_sdist_build_stops_it_and_removes_its_container(project, cfg, bases, signum):
    # setup.py sleeps: the build is running inside cibuildwheel's container when the signal comes
    files = c_project("stopme", "_stopme", C_SOURCE.replace("_tinyc", "_stopme"))
    files["setup.py"] = f"import time; time.sleep(900)  # {os.getpid()} {time.time_ns()}\n" + files["setup.py"]
    sdist = make_sdist("stopme", "1.0", files)
    (project / "stop.lock").write_text(f"stopme==1.0 --hash=sha256:{sha256(sdist)}\n")
    builds, label = cfg.cache_dir / "builds", container_label(cfg.cache_dir)
    with FixtureIndex({"stopme": {"stopme-1.0.tar.gz": sdist}}, upstream=cfg.index_url) as idx:
        args = ("wheelhouse", "--lock", "stop.lock", "--out", "wh-stop", "--target", "manylinux_2_28_x86_64")
        # SIGINT as Ctrl-C sends it, even where this test runs with SIGINT ignored
        proc = start_factory(
            project, *args, env={"FACTORY_INDEX_URL": idx.url}, stderr=subprocess.STDOUT, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip

        def building() -> bool:
            return bool(list(builds.glob(".*.tmp-*/build.log"))) and bool(Engine().client.containers.list(filters={"label": label}))

        wait_for(building, 900, "cibuildwheel to start building")
        time.sleep(5)  # well inside setup.py's sleep
        sent = time.monotonic()
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=120)
        stopped = time.monotonic() - sent
    assert proc.returncode == 128 + signum, out
    assert stopped < 60, f"{stopped:.0f} s to stop"  # not setup.py's 900 s
    assert ("factory: terminated" if signum == signal.SIGTERM else "factory: interrupted") in out
    assert Engine().client.containers.list(all=True, filters={"label": label}) == []  # removed by the run itself
    assert not (project / "wh-stop").exists()
    assert not (builds / "failed" / "stopme-1.0-manylinux_2_28_x86_64.log").exists()  # an interrupted build is no failure
    assert ours_left(builds, project) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_smoke_removes_its_test_containers(project, images, signum):
    # smoke's test containers idle in python3 until removed: one left behind runs for ever
    engine, tc = Engine(), {"label": "org.testcontainers=true"}
    before = {c.id for c in engine.client.containers.list(all=True, filters=tc)}
    proc = start_factory(
        project, "smoke", stderr=subprocess.STDOUT, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip

    def ours() -> list:
        return [c for c in engine.client.containers.list(all=True, filters=tc) if c.id not in before]

    wait_for(lambda: any(c.status == "running" for c in ours()) or proc.poll() is not None, 300, "a smoke container")
    sent = time.monotonic()
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=120)
    stopped = time.monotonic() - sent
    assert proc.returncode == 128 + signum, out  # 0 would mean smoke ended before the signal
    assert stopped < 30, f"{stopped:.0f} s to stop"
    assert ("factory: terminated" if signum == signal.SIGTERM else "factory: interrupted") in out
    assert "failure" not in out  # a probe killed with its container says nothing of the image
    assert ours() == []


def test_engine_stop_ends_the_containers_run_waits_on(bases):
    # the Rust, pure-Python, recipe and import-check containers go through Engine.run
    engine, outcome = Engine(), []
    image = bases["bases"]["amd64"]["tag"]

    def wait() -> None:
        try:
            outcome.append(engine.run(image, ["python3", "-c", "import time; time.sleep(900)"], network=False))
        except Interrupted:
            outcome.append("interrupted")

    waiter = threading.Thread(target=wait)
    waiter.start()
    wait_for(lambda: bool(engine._running) and all(c.reload() or c.status == "running" for c in list(engine._running)), 120, "the container to run")
    (container,) = list(engine._running)
    assert engine.stop("io.factory.test=none") == 1
    waiter.join(60)
    assert outcome == ["interrupted"]
    assert not engine.client.containers.list(all=True, filters={"id": container.id})
    with pytest.raises(Interrupted):
        engine.run(image, ["python3", "-c", "pass"])


def test_sigkill_mid_bootstrap(project, cfg, tmp_path):
    recipe = tmp_path / "recipe.toml"
    text = (ROOT / "factory/resources/images/recipes/forky-slim.toml").read_text()
    # a recipe of its own (a unique, harmless dpkg filter): always a fresh mmdebstrap run
    unique = f'path-exclude = ["/usr/share/factory-kill-{os.getpid()}-{time.time_ns()}/*",'
    recipe.write_text(text.replace("path-exclude = [", unique, 1))
    (tmp_path / "pyproject.toml").write_text(
        f"""[tool.factory]
cache-dir = "{cfg.cache_dir}"
registry = "{cfg.registry}"
registry-local = false
base-repository = "factory-test/python-kill"
bases-lock = "bases.lock"
[tool.factory.base.amd64]
recipe = "{recipe}"
"""
    )
    proc = start(tmp_path, "bootstrap")

    def installing() -> bool:
        # the extract route: mmdebstrap has downloaded the .debs and factory is unpacking them
        logs = list(cfg.cache_dir.glob("bootstrap/*/mmdebstrap.log"))
        fresh = [log for log in logs if log.stat().st_mtime > time.time() - 120]
        return any(list(log.parent.glob(".work-*/tree")) for log in fresh)

    wait_for(installing, 600, "the bootstrap to unpack packages")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (tmp_path / "bases.lock").exists()
    run(tmp_path, "bootstrap")
    entry = json.loads((tmp_path / "bases.lock").read_text())["bases"]["amd64"]
    assert entry["ref"].startswith(f"{cfg.registry}/factory-test/python-kill@sha256:")
    assert Engine().inspect(entry["ref"]).platform == "linux/amd64"
    assert list(cfg.cache_dir.glob("bootstrap/*/.rootfs.tar.tmp-*")) == []
    for tar in cfg.cache_dir.glob("bootstrap/*/rootfs.tar"):
        assert sha256_file(tar) == (tar.parent / "rootfs.tar.sha256").read_text().strip()


def test_sigkill_mid_push(project, images):
    args = ("images", "--wheelhouse", "wheelhouse", "--images-lock", "images-push.lock")
    # another uid makes a new layer, so the push really uploads something; another
    # repository keeps the session's index tags where test_pipeline expects them
    env = {"FACTORY_UID": "10002", "FACTORY_REPOSITORY": "factory-test/app-push"}
    killed = run(project, *args, check=False, env={**env, "FACTORY_FAULT": "mid-push"})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert not (project / "images-push.lock").exists()  # nothing names a half-pushed image
    run(project, *args, env=env)
    data = json.loads((project / "images-push.lock").read_text())
    assert {i["arch"] for i in data["images"]} == {"amd64", "arm64"}
    assert ours_left(project) == []
    run(project, "smoke", "--images-lock", "images-push.lock")
