"""Startup gates: time to ready +10 % and RSS +5 % (configurable) against the previous
images.lock, only between native measurements made under the same settings."""

import dataclasses

from factory.bases.imagelock import ArchImage, ImagesLock, Startup
from factory.core.smokespec import ReadyCheck, SmokeSpec
from factory.images.startup import describe, gate

REF = "127.0.0.1:5555/factory/app@sha256:" + "a" * 64
SPEC = SmokeSpec(ready=ReadyCheck("http", 8000, "/health"))


def startup(cold=1.0, limited=2.0, rss=20_000_000, emulated=False, settings=SPEC.digest()):
    return Startup(
        ready="http://:8000/health", runs=5, cold_median_s=cold, cold_max_s=cold * 1.2, limited_median_s=limited, limited_max_s=limited * 1.2,
        cpus=0.5, memory=512 * 2**20, rss_bytes=rss, stop_max_s=0.3, stop_exit_code=0, emulated=emulated, settings_sha256=settings,
    )  # fmt: skip


def image(s, arch="amd64"):
    return ArchImage(arch=arch, ref=REF, tag="t", base="b", size=1, compressed_size=1, base_size=1, base_compressed_size=1, inputs_sha256="0" * 64, startup=s)


def lock(*images):
    return ImagesLock(images=images, index=REF, tags=(), python="3.14.8", lock_sha256="1" * 64, revision="unknown", wheelhouse_sbom="")


def test_nothing_to_compare_with():
    assert gate(None, [image(startup())], SPEC) == ([], [])
    assert gate(lock(image(None)), [image(startup())], SPEC) == ([], [])


def test_within_the_playbooks_budget():
    assert gate(lock(image(startup())), [image(startup(cold=1.09, limited=2.19, rss=20_999_999))], SPEC) == ([], [])


def test_each_regression_is_named():
    regressions, notes = gate(lock(image(startup())), [image(startup(cold=1.2, limited=2.5, rss=22_000_000))], SPEC)
    assert regressions == [
        "amd64 ready_cold_s 1 s -> 1.2 s (+20 %, limit +10 %)",
        "amd64 ready_limited_s 2 s -> 2.5 s (+25 %, limit +10 %)",
        "amd64 rss_bytes 19.1 MiB -> 21.0 MiB (+10 %, limit +5 %)",
    ]
    assert notes == []


def test_the_limits_are_configurable():
    loose = dataclasses.replace(SPEC, ready_regression=0.5, rss_regression=0.2)
    assert gate(lock(image(startup())), [image(startup(cold=1.2, limited=2.5, rss=22_000_000))], loose) == ([], [])


def test_a_change_under_the_measurements_resolution_is_not_a_regression():
    # +40 % of 0.1 s is 0.04 s: two polls and a check.
    assert gate(lock(image(startup(cold=0.1, limited=0.1))), [image(startup(cold=0.14, limited=0.14))], SPEC)[0] == []


def test_emulated_figures_are_reported_not_gated():
    regressions, notes = gate(lock(image(startup(), "arm64")), [image(startup(cold=9, emulated=True), "arm64")], SPEC)
    assert regressions == [] and notes == ["arm64 startup measured under emulation: reported, not gated (a native host in [tool.factory.hosts] gates it)"]
    assert "arm64 (emulated): ready cold 9.00 s median" in describe(image(startup(cold=9, emulated=True), "arm64"))


def test_figures_under_other_settings_are_not_compared():
    regressions, notes = gate(lock(image(startup(settings="f" * 64))), [image(startup(cold=5))], SPEC)
    assert regressions == [] and "under other [tool.factory.smoke] settings" in notes[0]
