"""The go/no-go report (factory/gonogo.py): each checklist item passes on the evidence of a
good run and fails, naming why, when that evidence is missing or over budget; report.json
matches its schema; ``factory report --out`` writes report.json, report.md and report.html."""

from __future__ import annotations

import dataclasses
import json
import shutil

import jsonschema
import pytest
from clirun import run_factory
from paths import FIXTURES

from factory.bases.imagelock import ImagesLock, Startup
from factory.core import resources
from factory.core.errors import ArtifactError
from factory.gonogo import SCHEMA, build_report
from factory.wheelhouse.manifest import Manifest, MissingCell

SEEDS = FIXTURES / "fuzz"
LOCK = "1" * 64


def startup(limited: float = 2.0, rss: int = 100 * 2**20, emulated: bool = False, cpus: float = 0.5) -> Startup:
    return Startup(ready="http://:8000/health", runs=3, cold_median_s=1.0, cold_max_s=1.2, limited_median_s=limited, limited_max_s=limited * 1.1,
                   cpus=cpus, memory=512 * 2**20, rss_bytes=rss, stop_max_s=0.5, stop_exit_code=0, emulated=emulated, settings_sha256="0" * 64)  # fmt: skip


def images(**arch_startups: Startup) -> ImagesLock:
    lock = ImagesLock.load(SEEDS / "images.lock")
    return dataclasses.replace(lock, images=tuple(dataclasses.replace(i, startup=arch_startups.get(i.arch)) for i in lock.images))


@pytest.fixture
def good(tmp_path):
    """A run that passes every item: wheelhouse of the same lock, probes.yaml, a rollback."""
    (tmp_path / "wheelhouse").mkdir()
    manifest = Manifest.load(SEEDS / "manifest.json")
    dataclasses.replace(manifest, lock_sha256=LOCK).dump(tmp_path / "wheelhouse" / "manifest.json")
    images(amd64=startup(), arm64=startup(30.0, emulated=True)).dump(tmp_path / "images.lock")
    shutil.copy(SEEDS / "images.lock", tmp_path / "baseline.lock")
    images(amd64=startup(1.95), arm64=startup(20.0, emulated=True)).dump(tmp_path / "baseline.lock")
    (tmp_path / "probes.yaml").write_text("apiVersion: v1\nkind: Pod\n")
    shutil.copy(SEEDS / "releases.json", tmp_path / "releases.json")
    return tmp_path


def results(report) -> dict[str, str]:
    return {i.id: i.result for i in report.items}


def test_a_good_run_is_go_and_matches_the_schema(good):
    report = build_report(good / "images.lock", good / "wheelhouse", good / "baseline.lock")
    assert results(report) == {
        "wheels-only": "pass", "toolchain-pinned": "pass", "image-pinned": "pass", "startup-budget": "pass",
        "probes-validated": "pass", "rollback-tested": "pass", "free-threaded": "n/a",
    }, report.items  # fmt: skip
    assert report.go
    schema = json.loads(resources.path(SCHEMA).read_text())
    jsonschema.Draft202012Validator(schema).validate(report.to_json())
    assert "emulated, not gated" in next(i.evidence for i in report.items if i.id == "startup-budget")
    assert report.markdown().startswith("# Go/no-go: GO\n")


@pytest.mark.parametrize(
    ("change", "item", "words"),
    [
        (lambda d: (d / "wheelhouse" / "manifest.json").unlink(), "wheels-only", "no manifest.json"),
        (lambda d: images(amd64=startup(2.3)).dump(d / "images.lock"), "startup-budget", "ready 2.30 s (+17.9%)"),  # against 1.95 s: over +10 %
        (lambda d: images(amd64=startup(rss=110 * 2**20)).dump(d / "images.lock"), "startup-budget", "RSS 110.0 MiB (+10.0%)"),
        (lambda d: (d / "probes.yaml").unlink(), "probes-validated", "no probes.yaml"),
        (lambda d: images(amd64=startup(cpus=0)).dump(d / "images.lock"), "probes-validated", "not measured under a CPU limit"),
        (lambda d: (d / "releases.json").write_text('{"releases": []}'), "rollback-tested", "no rollback"),
        (lambda d: dataclasses.replace(Manifest.load(d / "wheelhouse" / "manifest.json"), missing=(MissingCell("x", "1", "manylinux_2_28_x86_64"),))
         .dump(d / "wheelhouse" / "manifest.json"), "wheels-only", "without a wheel"),
        (lambda d: dataclasses.replace(ImagesLock.load(d / "images.lock"), python="3.14").dump(d / "images.lock"), "image-pinned", "not a patch version"),
    ],
    ids=["no-manifest", "slower", "more-rss", "no-probes", "no-cpu-limit", "no-rollback", "missing-cell", "floating-python"],
)
def test_each_item_fails_naming_why(good, change, item, words):
    change(good)
    report = build_report(good / "images.lock", good / "wheelhouse", good / "baseline.lock")
    failed = {i.id: i for i in report.items if i.result == "fail"}
    assert item in failed and words in failed[item].evidence, report.items
    assert not report.go


def test_without_a_baseline_the_startup_item_fails_and_without_smoke_it_does_not_apply(good):
    report = build_report(good / "images.lock", good / "wheelhouse")
    assert results(report)["startup-budget"] == "fail"
    images().dump(good / "images.lock")
    assert results(build_report(good / "images.lock", good / "wheelhouse"))["startup-budget"] == "n/a"


def test_an_emulated_arch_over_budget_does_not_fail_it(good):
    images(amd64=startup(), arm64=startup(60.0, emulated=True)).dump(good / "images.lock")
    assert results(build_report(good / "images.lock", good / "wheelhouse", good / "baseline.lock"))["startup-budget"] == "pass"


def test_a_broken_input_is_one_error(good):
    (good / "baseline.lock").write_text("{}")
    with pytest.raises(ArtifactError):
        build_report(good / "images.lock", good / "wheelhouse", good / "baseline.lock")


def test_factory_report_writes_the_three_files(good):
    (good / "pyproject.toml").write_text('[tool.factory]\ncache-dir = "cache"\nregistry-local = false\n')
    proc = run_factory(good, "report", "--baseline", "baseline.lock", "--out", "out", timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "go/no-go: GO" in out and "✓ Rollback is one action" in out, out
    assert json.loads((good / "out" / "report.json").read_text())["go"] is True
    assert (good / "out" / "report.md").read_text().startswith("# Go/no-go: GO")
    page = (good / "out" / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "default-src 'none'" in page and '<h1 class="go">GO</h1>' in page
    assert page.count('<td class="mark">') == 7 and "No readiness.json" in page  # the fixture wheelhouse has no matrix
