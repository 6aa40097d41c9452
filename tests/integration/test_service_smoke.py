"""Smoke of a service as Kubernetes will run it: a stdlib HTTP service shipped through the
service route (app-files, [tool.factory.image]) into real images, started with its own
command as its user on a read-only root, checked from this machine over the test network.

One project is built once (both arches: arm64 is the one case run under QEMU); the failure
cases start the same amd64 image through ``startup.measure`` under other smoke settings, and
the gate case builds a slower second version of the app.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from clirun import run_project as run
from indexserver import free_port
from paths import ROOT

from factory.bases.imagelock import ImagesLock
from factory.core.config import load_config
from factory.core.engine import Engine
from factory.core.errors import SmokeError
from factory.core.registry import LocalRegistry
from factory.images import startup

pytestmark = pytest.mark.integration

# The service: its behaviour is chosen by the environment smoke gives it.
APP = '''import http.server, os, signal, sys, time

if not os.environ.get("SECRET_KEY"):
    sys.exit("SECRET_KEY is not set")
mode = os.environ.get("MODE", "ok")
if mode == "crash":
    print("crashing on purpose at start", flush=True)
    sys.exit(3)
time.sleep(float(os.environ.get("DELAY", "0")))
if mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


print("listening on", os.environ["PORT"], flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Health).serve_forever(poll_interval=0.05)
'''

SMOKE = """[tool.factory.smoke]
ready = "http://:8000/health"
env = { SECRET_KEY = "s3cret" }
runs = 2
timeout = 20
grace-period = 5
cpus = 0.5
memory = "256MiB"
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """The service project, built through ``factory images`` (bootstrap, lock and a
    wheels-only wheelhouse of one pure-Python pin first)."""
    tmp = tmp_path_factory.mktemp("service")
    cache = Path(os.environ.get("FACTORY_TEST_CACHE", ROOT / ".cache" / "test"))
    recipe = ROOT / "factory/resources/images/recipes/forky-slim.toml"
    (tmp / "pyproject.toml").write_text(
        f"""[project]
name = "tinysvc"
version = "1.0"

[tool.factory]
cache-dir = "{cache}"
registry = "127.0.0.1:{free_port()}"
registry-dir = "{tmp / 'registry'}"
repository = "factory-test/svc"
base-repository = "factory-test/python"
bases-lock = "bases.lock"
lock = "requirements.lock"
toolchain = "{ROOT / 'factory/resources/constraints/toolchain.txt'}"
build-constraints = "{ROOT / 'factory/resources/constraints/build.txt'}"
targets = ["manylinux_2_28_x86_64", "manylinux_2_28_aarch64"]
app-files = ["app.py"]
[tool.factory.image]
command = ["python3", "/app/app.py"]
env = {{ PORT = "8000" }}
ports = [8000]
[tool.factory.base.amd64]
recipe = "{recipe}"
[tool.factory.base.arm64]
recipe = "{recipe}"
"""
        + SMOKE
    )
    (tmp / "app.py").write_text(APP)
    (tmp / "requirements.in").write_text("typing-extensions\n")
    run(tmp, "bootstrap")
    run(tmp, "lock")
    run(tmp, "wheelhouse", "--no-build")
    built = run(tmp, "images")
    yield tmp, built
    cfg = load_config(tmp / "pyproject.toml")
    engine = Engine()
    for image in engine.client.images.list():
        for tag in image.tags:
            if tag.startswith(f"{cfg.registry}/"):
                engine.client.images.remove(tag, force=True)
    LocalRegistry(cfg.registry, cfg.registry_dir).stop()


def spec_of(project: Path, **changes):
    return dataclasses.replace(load_config(project / "pyproject.toml").smoke, **changes)


def amd64_ref(project: Path) -> str:
    return ImagesLock.load(project / "images.lock").image("amd64").ref


def test_the_service_is_ready_and_stops_on_both_arches(service):
    project, built = service
    images = ImagesLock.load(project / "images.lock")
    amd64, arm64 = images.image("amd64").startup, images.image("arm64").startup
    assert amd64.ready == "http://:8000/health" and amd64.runs == 2 and (amd64.cpus, amd64.memory) == (0.5, 256 * 2**20)
    assert not amd64.emulated and arm64.emulated
    for s in (amd64, arm64):
        assert 0 < s.cold_median_s <= s.cold_max_s < 20 and 0 < s.limited_median_s <= s.limited_max_s < 20
        assert 1 * 2**20 < s.rss_bytes < 256 * 2**20  # a python3 process, inside the limit
        assert s.stop_exit_code == 0 and s.stop_max_s < 5
    printed = built.stdout + built.stderr
    assert "amd64: ready cold" in printed and "arm64 (emulated): ready cold" in printed
    pod = yaml.safe_load((project / "probes.yaml").read_text())
    kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)
    probe = pod["spec"]["containers"][0]["startupProbe"]
    assert probe["httpGet"] == {"path": "/health", "port": 8000, "scheme": "HTTP"}
    assert probe["failureThreshold"] * probe["periodSeconds"] >= 2 * amd64.limited_max_s  # the native arch sets the budget
    report = run(project, "report")
    assert "service startup: http://:8000/health, 2 fresh containers per figure" in report.stdout + report.stderr
    assert "arm64 (emulated, not gated)" in report.stdout + report.stderr


def test_factory_smoke_starts_the_service_and_keeps_the_figures(service):
    project, _ = service
    before = (project / "images.lock").read_bytes()
    smoked = run(project, "smoke")
    printed = smoked.stdout + smoked.stderr
    assert "service amd64: ready cold" in printed and "service arm64 (emulated): ready cold" in printed and "over 1 runs each" in printed
    assert (project / "images.lock").read_bytes() == before


def test_time_to_ready_follows_the_services_delay(service):
    project, _ = service
    engine, ref = Engine(), amd64_ref(project)
    base = spec_of(project)
    quick = startup.measure(engine, ref, "amd64", dataclasses.replace(base, env=(*base.env, ("DELAY", "0"))))
    slow = startup.measure(engine, ref, "amd64", dataclasses.replace(base, env=(*base.env, ("DELAY", "1.5"))))
    # The delay is a sleep before listening: the same 1.5 s cold and under the CPU limit.
    assert 1.2 < slow.cold_median_s - quick.cold_median_s < 1.9, (quick, slow)
    assert 1.2 < slow.limited_median_s - quick.limited_median_s < 1.9, (quick, slow)


def test_a_service_never_ready_fails_naming_the_phase(service):
    project, _ = service
    spec = spec_of(project, ready=dataclasses.replace(spec_of(project).ready, port=8001), timeout=3.0)
    with pytest.raises(SmokeError) as e:
        startup.measure(Engine(), amd64_ref(project), "amd64", spec)
    problem = e.value.problem
    assert f"image {amd64_ref(project)} (amd64), phase cold startup, run 1 of 2: not ready 3 s after its start" in problem
    assert ":8001/health: Connection refused" in problem and "last log lines: listening on 8000" in problem
    assert "listening on 0.0.0.0" in e.value.fix


def test_a_service_that_crashes_on_start_fails_with_its_log(service):
    project, _ = service
    base = spec_of(project)
    with pytest.raises(SmokeError) as e:
        startup.measure(Engine(), amd64_ref(project), "amd64", dataclasses.replace(base, env=(*base.env, ("MODE", "crash"))))
    assert "phase cold startup, run 1 of 2: the service exited with code 3" in e.value.problem
    assert e.value.problem.endswith("last log lines: crashing on purpose at start")


def test_a_service_that_ignores_sigterm_fails_on_the_grace_period(service):
    project, _ = service
    base = spec_of(project)
    with pytest.raises(SmokeError) as e:
        startup.measure(Engine(), amd64_ref(project), "amd64", dataclasses.replace(base, env=(*base.env, ("MODE", "ignore-term")), grace_period=2.0))
    assert "phase shutdown after cold startup, run 1 of 2: still running 2 s after SIGTERM (the grace period), killed" in e.value.problem
    assert "handle SIGTERM" in e.value.fix


def test_a_required_variable_fails_without_smoke_env_and_passes_with_it(service):
    project, _ = service
    with pytest.raises(SmokeError) as e:
        startup.measure(Engine(), amd64_ref(project), "amd64", spec_of(project, env=()))
    assert "exited with code 1" in e.value.problem and "last log lines: SECRET_KEY is not set" in e.value.problem
    assert startup.measure(Engine(), amd64_ref(project), "amd64", spec_of(project, runs=1)).cold_median_s > 0  # SECRET_KEY from env


def test_a_slower_service_trips_the_gate_under_strict_and_leaves_images_lock(service):
    project, _ = service
    before = (project / "images.lock").read_bytes()
    probes_before = (project / "probes.yaml").read_bytes()
    (project / "app.py").write_text(APP.replace('print("listening on"', 'time.sleep(1.0)\nprint("listening on"'))
    try:
        gated = run(project, "images", "--strict", check=False)
    finally:
        (project / "app.py").write_text(APP)
    out = gated.stdout + gated.stderr
    assert gated.returncode != 0, out
    assert "perf gate: amd64 ready_cold_s" in out and "perf gate: amd64 ready_limited_s" in out
    assert "note: arm64 startup measured under emulation: reported, not gated" in out
    assert "perf regression(s) against images.lock" in out
    assert (project / "images.lock").read_bytes() == before
    assert (project / "probes.yaml").read_bytes() == probes_before
    assert json.loads(before)["images"][0]["startup"]["cold_median_s"] > 0
