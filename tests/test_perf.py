"""Perf gates: size +5 %, cold start +10 %, import time +10 % against the previous images.lock."""

from factory.perf import gate


def lock(size, cold, imp, arch="amd64"):
    return {"images": [{"arch": arch, "size": size, "perf": {"cold_start_s": cold, "import_s": imp}}]}


def test_no_previous_lock_no_gate():
    assert gate(None, lock(100, 1.0, 1.0)) == []


def test_within_limits():
    assert gate(lock(100, 1.0, 1.0), lock(105, 1.1, 1.1)) == []


def test_each_regression_is_named():
    messages = gate(lock(100, 1.0, 1.0), lock(106, 1.2, 1.5))
    assert messages == [
        "amd64 size 100 -> 106 (+6 %, limit +5 %)",
        "amd64 cold_start_s 1.0 -> 1.2 (+20 %, limit +10 %)",
        "amd64 import_s 1.0 -> 1.5 (+50 %, limit +10 %)",
    ]


def test_arches_are_compared_with_their_own_kind():
    assert gate(lock(100, 1.0, 1.0, "amd64"), lock(300, 3.0, 3.0, "arm64")) == []


def test_a_previous_lock_without_measurements_gates_size_only():
    previous = {"images": [{"arch": "amd64", "size": 100}]}
    assert gate(previous, lock(200, 9.0, 9.0)) == ["amd64 size 100 -> 200 (+100 %, limit +5 %)"]
