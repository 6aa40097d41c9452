"""report.html in a real headless Chromium (Debian's package): ``factory report --out``
writes the page for a 300-pin lock on four targets; Chromium loads it, screenshots it, and
its DOM has one grid cell per pin × target. No request leaves the page: Chromium's network
log (``--log-net-log``) records every URL request it starts, each with the site of the frame
it is for; none is for the report's page (and, so that the check can fail, the one a page
with an external image makes is). Chromium's own background requests (its updater, its
clock, its sign-in) are for no page, and every request goes to a proxy on a closed loopback
port, so none reaches the network."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from clirun import run_factory
from indexserver import free_port
from paths import FIXTURES

from factory.bases.imagelock import ImagesLock, Startup
from factory.wheelhouse.manifest import Manifest
from factory.wheelhouse.readiness import Cell, Readiness, Row, Status

pytestmark = pytest.mark.integration

TARGETS = ("manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "musllinux_1_2_x86_64", "musllinux_1_2_aarch64")
PINS = 300
LOCK = "1" * 64
SEEDS = FIXTURES / "fuzz"
# as little of Chromium's own background traffic as its switches allow
QUIET = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--metrics-recording-only", "--hide-scrollbars",
         "--disable-extensions", "--disable-component-extensions-with-background-pages", "--disable-client-side-phishing-detection",
         "--disable-domain-reliability", "--disable-breakpad", "--no-pings",
         "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,OptimizationGuideModelDownloading,MediaRouter,Translate,"
         "AutofillServerCommunication,InterestFeedContentSuggestions,CertificateTransparencyComponentUpdater"]  # fmt: skip


def chromium() -> str:
    found = shutil.which("chromium")
    assert found, "chromium is not installed: `make deps` installs Debian's package"
    return found


def _startup(limited: float, cold: float, emulated: bool = False) -> Startup:
    return Startup(ready="http://:8000/health", runs=3, cold_median_s=cold, cold_max_s=cold * 1.1, limited_median_s=limited,
                   limited_max_s=limited * 1.1, cpus=0.5, memory=512 * 2**20, rss_bytes=90 * 2**20, stop_max_s=0.4,
                   stop_exit_code=0, emulated=emulated, settings_sha256="0" * 64)  # fmt: skip


def _matrix() -> Readiness:
    rng = random.Random(314)
    statuses = [Status.INDEX] * 16 + [Status.BUILT, Status.BUILT, Status.FAILED, Status.MISSING, Status.NOT_NEEDED]

    def cell(target: str) -> Cell:
        status = rng.choice(statuses)
        if status is Status.INDEX:
            return Cell(status, tag=f"cp314-cp314-{target}")
        if status is Status.BUILT:
            return Cell(status, tag=f"cp314-cp314-{target}", seconds=41.0)
        if status is Status.FAILED:
            return Cell(status, reason="error: command 'gcc' failed with exit code 1 <script>alert(1)</script>", log_tail=("x",), log="")
        if status is Status.MISSING:
            return Cell(status)
        return Cell(status, marker="sys_platform == 'win32'")

    rows = tuple(Row(f"project-{n}", f"1.{n}", {t: cell(t) for t in TARGETS}) for n in range(PINS))
    return Readiness(python="3.14.8", lock_sha256=LOCK, targets=TARGETS, rows=rows)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """``factory report --out`` on a run with a 300 × 4 readiness matrix and a baseline."""
    root = tmp_path_factory.mktemp("report")
    (root / "wheelhouse").mkdir()
    manifest = Manifest.load(SEEDS / "manifest.json")
    dataclasses.replace(manifest, lock_sha256=LOCK).dump(root / "wheelhouse" / "manifest.json")
    _matrix().dump(root / "wheelhouse" / "readiness.json")
    lock = ImagesLock.load(SEEDS / "images.lock")
    now = {"amd64": _startup(2.1, 1.0), "arm64": _startup(28.0, 12.0, emulated=True)}
    before = {"amd64": _startup(2.0, 0.9), "arm64": _startup(26.0, 11.0, emulated=True)}
    for path, startups in ((root / "images.lock", now), (root / "baseline.lock", before)):
        dataclasses.replace(lock, images=tuple(dataclasses.replace(i, startup=startups[i.arch]) for i in lock.images)).dump(path)
    (root / "probes.yaml").write_text("apiVersion: v1\nkind: Pod\n")
    shutil.copy(SEEDS / "releases.json", root / "releases.json")  # records a rollback
    (root / "pyproject.toml").write_text('[tool.factory]\ncache-dir = "cache"\nregistry-local = false\n')
    proc = run_factory(root, "report", "--baseline", "baseline.lock", "--out", "out", timeout=120)
    assert proc.returncode == 0, proc.stderr
    return root / "out" / "report.html"


class Grid(HTMLParser):
    """Counts the cells (``td``) of ``table.grid`` and collects their status classes."""

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.cells, self.classes = 0, 0, set[str]()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs).get("class") or ""
        if tag == "table" and "grid" in names.split():
            self.depth = 1
        elif self.depth and tag == "td":
            self.cells += 1
            self.classes.add(names)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.depth = 0


def _load(url: str, cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Chromium on ``url``: its run, and the URLs of the requests it started for a page (the
    network log's ``URL_REQUEST_START_JOB`` events whose network isolation key is a page's
    site, ``file://`` here), other than the page's own file."""
    netlog = cwd / f"net-{len(list(cwd.glob('net-*')))}.json"
    proc = subprocess.run(
        [chromium(), *QUIET, f"--user-data-dir={cwd / 'profile'}", f"--proxy-server=http://127.0.0.1:{free_port()}",
         f"--log-net-log={netlog}", *args, url],
        cwd=cwd, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requested = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] == start and "file://" in params.get("network_isolation_key", "") and not params.get("url", "").startswith("file:"):
            requested.append(params["url"])
    return proc, requested


def test_the_page_renders_its_grid_and_requests_nothing(page, tmp_path):
    shot = tmp_path / "report.png"
    proc, requested = _load(page.as_uri(), tmp_path, "--window-size=1280,1600", f"--screenshot={shot}")
    assert shot.is_file() and shot.stat().st_size > 20_000, proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    proc, more = _load(page.as_uri(), tmp_path, "--dump-dom")
    assert requested == [] and more == [], requested + more
    dom = proc.stdout
    grid = Grid()
    grid.feed(dom)
    assert grid.cells == PINS * len(TARGETS)
    assert grid.classes == {"index", "built", "failed", "missing", "na"}
    assert "<script>alert(1)</script>" not in dom  # the failure reason is escaped, not run
    assert "<h1 class=\"go\">GO</h1>" in dom
    data = json.loads((page.parent / "report.json").read_text())
    assert data["go"] is True and len(data["items"]) == 7
    assert page.stat().st_size < 400_000


def test_the_network_log_shows_what_a_page_with_an_external_resource_asks_for(tmp_path):
    """The control: without the report's Content-Security-Policy, an external image is a request."""
    leaky = tmp_path / "leaky.html"
    leaky.write_text('<!doctype html><html><body><img src="http://images.example/pixel.png"></body></html>')
    _, requested = _load(leaky.as_uri(), tmp_path, "--dump-dom")
    assert requested == ["http://images.example/pixel.png"]
