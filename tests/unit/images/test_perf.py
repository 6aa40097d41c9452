"""Perf gates: size +5 %, cold start +10 %, import time +10 % against the previous images.lock;
and a failed measurement is a one-line error naming the image, not a traceback."""

import pytest

from factory.bases.imagelock import ArchImage, ImagesLock, Perf
from factory.core.errors import ProbeError
from factory.images import probes
from factory.images.perf import gate, measure

REF = "127.0.0.1:5555/factory/app@sha256:" + "a" * 64


def image(size, cold=None, imp=None, arch="amd64"):
    return ArchImage(
        arch=arch, ref=REF, tag="t", base="b", size=size, compressed_size=1, base_size=1, base_compressed_size=1,
        inputs_sha256="0" * 64, perf=Perf(cold, imp) if cold is not None else None,
    )


def lock(*images):
    return ImagesLock(images=images, index=REF, tags=(), python="3.14.8", lock_sha256="1" * 64, revision="unknown", wheelhouse_sbom="")


def test_no_previous_lock_no_gate():
    assert gate(None, [image(100, 1.0, 1.0)]) == []


def test_within_limits():
    assert gate(lock(image(100, 1.0, 1.0)), [image(105, 1.1, 1.1)]) == []


def test_each_regression_is_named():
    messages = gate(lock(image(100, 1.0, 1.0)), [image(106, 1.2, 1.5)])
    assert messages == [
        "amd64 size 100 -> 106 (+6 %, limit +5 %)",
        "amd64 cold_start_s 1.0 -> 1.2 (+20 %, limit +10 %)",
        "amd64 import_s 1.0 -> 1.5 (+50 %, limit +10 %)",
    ]


def test_arches_are_compared_with_their_own_kind():
    assert gate(lock(image(100, 1.0, 1.0, "amd64")), [image(300, 3.0, 3.0, "arm64")]) == []


def test_a_previous_lock_without_measurements_gates_size_only():
    assert gate(lock(image(100)), [image(200, 9.0, 9.0)]) == ["amd64 size 100 -> 200 (+100 %, limit +5 %)"]


class FakeEngine:
    """``Engine.run`` answering ``python3 -c pass`` and the import probe with canned output."""

    remote = False  # a local engine, serving every arch

    def for_arch(self, arch):
        return self

    def emulates(self, arch):
        return True

    def __init__(self, probe_output, probe_code=0, pass_code=0):
        self.probe_output, self.probe_code, self.pass_code = probe_output, probe_code, pass_code
        self.commands = []

    def run(self, ref, command, *, volumes=None, platform=None, network=True, **_):
        self.commands.append((command, volumes))
        if command == ["python3", "-c", "pass"]:
            return self.pass_code, ""
        return self.probe_code, self.probe_output


def test_measure_takes_the_median_of_the_probe_runs():
    engine = FakeEngine('some warning\n{"import_s": 0.25, "modules": 4}\n')
    found = measure(engine, REF, "amd64")
    assert found.import_s == 0.25 and found.cold_start_s >= 0
    probe_runs = [(c, v) for c, v in engine.commands if c != ["python3", "-c", "pass"]]
    assert len(probe_runs) == 3
    assert probe_runs[0] == (["python3", f"{probes.IN_CONTAINER}/import_time.py"], probes.volumes())


@pytest.mark.parametrize(
    ("output", "code", "says"),
    [
        ("Traceback (most recent call last):\nImportError: libfoo.so.1: cannot open shared object file\n", 1, "exit 1"),
        ("Segmentation fault (core dumped)\n", 0, "printed no result"),
        ('{"modules": 3}\n', 0, "printed no import_s"),
        ("", 0, "printed no result"),
    ],
)
def test_a_failed_import_probe_is_one_line_naming_the_image_and_its_last_output(output, code, says):
    with pytest.raises(ProbeError) as e:
        measure(FakeEngine(output, probe_code=code), REF, "arm64")
    message = str(e.value)
    assert "\n" not in message
    assert f"image {REF} (arm64)" in message and says in message
    last = output.strip().splitlines()[-1] if output.strip() else ""
    assert repr(last) in message


def test_a_failed_cold_start_is_one_line():
    with pytest.raises(ProbeError, match=r"python3 -c pass failed in image .* \(amd64\): exit 127"):
        measure(FakeEngine('{"import_s": 0.1}', pass_code=127), REF, "amd64")
