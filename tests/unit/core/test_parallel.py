"""Parallel sdist cells: how many run at once, what each compile gets, and that cells
sharing a builder or a lock file do not step on each other. Unit level: no engine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from factory.bases.imagelock import BuilderImage
from factory.core import parallel
from factory.core.children import Children
from factory.core.config import load_config
from factory.core.errors import ConfigError, EngineError, Interrupted
from factory.core.targets import parse_target
from factory.locks.lockfile import Pin
from factory.sdist.build import SdistBuilder
from factory.sdist.buildcache import cell_key
from factory.sdist.builders import read_builders_lock, record_builder
from factory.sdist.cibw import Mounts, cibuildwheel_env
from factory.sdist.outcome import BuildOutcome, BuildRequest

GIB = 1024**3
TARGETS = [parse_target(t) for t in ("manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "musllinux_1_2_x86_64")]


def test_auto_jobs_one_per_core_bounded_by_memory():
    assert parallel.auto_build_jobs(ncores=8, memory=64 * GIB) == 8
    assert parallel.auto_build_jobs(ncores=8, memory=5 * GIB) == 2  # 2 GiB a cell
    assert parallel.auto_build_jobs(ncores=2, memory=GIB) == 1  # never 0
    assert parallel.cores_per_cell(2, ncores=8) == 4
    assert parallel.cores_per_cell(16, ncores=2) == 1


def test_available_memory_reads_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   2097152 kB\n")
    assert parallel.available_memory(meminfo) == 2 * GIB
    assert parallel.available_memory(tmp_path / "absent") is None


def test_build_jobs_setting(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.factory]\nbuild-jobs = 3\n")
    assert load_config(tmp_path / "pyproject.toml", env={}).build_jobs == 3
    assert load_config(tmp_path / "pyproject.toml", env={"FACTORY_BUILD_JOBS": "auto"}).build_jobs == parallel.auto_build_jobs()
    for bad in ("0", "many"):
        with pytest.raises(ConfigError, match="build-jobs"):
            load_config(tmp_path / "pyproject.toml", env={"FACTORY_BUILD_JOBS": bad})


def test_compile_jobs_reach_the_cell_but_not_its_cache_key():
    target = TARGETS[0]
    mounts = Mounts(Path("/d"), Path("/z"), Path("/zc"), Path("/r"))
    env = cibuildwheel_env("3.14.8", target, "b@sha256:1", mounts, 1, compile_jobs=3)
    assert "MAKEFLAGS=-j3" in env["CIBW_ENVIRONMENT"] and "CMAKE_BUILD_PARALLEL_LEVEL=3" in env["CIBW_ENVIRONMENT"]
    assert "GRPC_PYTHON_BUILD_EXT_COMPILER_JOBS=3" in env["CIBW_ENVIRONMENT"]
    assert "CARGO_BUILD_JOBS=3" in env["CIBW_ENVIRONMENT"]
    assert "MAKEFLAGS" not in cibuildwheel_env("3.14.8", target, "b@sha256:1", mounts, 1)["CIBW_ENVIRONMENT"]
    key = cell_key(
        python="3.14.8", target=target, builder="b@sha256:1", zig=True, sdist_sha256="0" * 64, epoch=1,
        toolchain_sha256="1" * 64, build_constraints_sha256="2" * 64,
    )  # fmt: skip
    assert "MAKEFLAGS" not in str(key.environment)


def test_keyed_locks_serialise_one_key_only():
    locks = parallel.KeyedLocks()
    inside: list[str] = []
    both = threading.Barrier(2, timeout=5)

    def hold(key: str) -> None:
        with locks(key):
            inside.append(key)
            both.wait()  # raises BrokenBarrierError unless the other key's holder is inside too

    threads = [threading.Thread(target=hold, args=(k,)) for k in ("amd64", "arm64")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(inside) == ["amd64", "arm64"]
    with locks("amd64"):
        got = threading.Event()
        t = threading.Thread(target=lambda: (locks("amd64").__enter__(), got.set()), daemon=True)
        t.start()
        assert not got.wait(0.3)  # the same key waits


def test_concurrent_builder_records_keep_both_arches(tmp_path):
    path = tmp_path / "builders.lock"
    entries = [BuilderImage(arch=a, ref=f"r/b@sha256:{a[-1] * 64}", tag=f"r/b:{a}", inputs_sha256="k" * 64) for a in ("amd64", "arm64")]
    threads = [threading.Thread(target=record_builder, args=(path, "3.14.8", e)) for e in entries * 10]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(read_builders_lock(path)) == {"amd64", "arm64"}


class _CellBuilder(SdistBuilder):
    """An SdistBuilder whose cells only record when and where they ran (no Docker)."""

    def __init__(
        self, tmp_path: Path, jobs: int, fail_on: str = "", make_seconds: dict[str, float] | None = None, child: list[str] | None = None
    ) -> None:
        (tmp_path / "pyproject.toml").write_text(f"[tool.factory]\nbuild-jobs = {jobs}\ncache-dir = 'cache'\n")
        super().__init__(load_config(tmp_path / "pyproject.toml", env={}), index=None, connect=lambda: None)  # type: ignore[arg-type,return-value]
        self.started: list[tuple[str, str]] = []
        self.in_flight = self.peak = 0
        self.fail_on = fail_on
        self.make_seconds = make_seconds or {}
        self.child = child  # a command each cell runs as the run's child, as cibuildwheel is
        self._count = threading.Lock()

    def request(self, pin, target):  # type: ignore[no-untyped-def]
        if pin.name == "nosdist":
            return BuildOutcome(pin.name, pin.version, target.name, ok=False, sdist="", sdist_sha256="", reason="no sdist")
        return BuildRequest(pin, target, None, "0" * 64)  # type: ignore[arg-type]

    def build(self, req):  # type: ignore[no-untyped-def]
        with self._count:
            self.started.append((req.pin.name, req.target.name))
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        if req.pin.name == self.fail_on:
            raise EngineError("the Docker engine stopped answering", "start it")
        if self.child:
            self.children.run(self.child)
        arch = req.target.docker_arch
        if not self.plan.builder_made(req.target):  # as builder_for: the first cell of an arch makes its builder
            time.sleep(self.make_seconds.get(arch, 0.2))
            self.plan._builders[arch] = f"builder-{arch}"
        else:
            time.sleep(0.05)
        with self._count:
            self.in_flight -= 1
        return BuildOutcome(req.pin.name, req.pin.version, req.target.name, ok=True, sdist="s", sdist_sha256="0" * 64)


def _cells() -> list[tuple[Pin, object]]:
    pins = [Pin(name=n, version="1.0", hashes=frozenset({"0" * 64}), marker=None, line=1) for n in ("aaa", "bbb", "nosdist")]
    return [(p, t) for t in TARGETS for p in pins]  # target-major, as wheelhouse.select lists them


def test_cells_run_jobs_at_a_time_and_answer_in_order(tmp_path):
    builder = _CellBuilder(tmp_path, jobs=2)
    cells = _cells()
    outcomes = builder.build_cells(cells)  # type: ignore[arg-type]
    assert [(o.name, o.target) for o in outcomes] == [(p.name, t.name) for p, t in cells]  # type: ignore[attr-defined]
    assert builder.peak == 2
    assert [o.ok for o in outcomes if o.name == "nosdist"] == [False] * len(TARGETS)
    # pin by pin across targets: the first two cells need the builders of both arches
    assert {t for _, t in builder.started[:2]} == {"manylinux_2_28_x86_64", "manylinux_2_28_aarch64"}


def test_one_job_is_one_cell_at_a_time(tmp_path):
    builder = _CellBuilder(tmp_path, jobs=1)
    builder.build_cells(_cells())  # type: ignore[arg-type]
    assert builder.peak == 1


def test_an_environment_error_in_a_cell_is_raised(tmp_path):
    builder = _CellBuilder(tmp_path, jobs=2, fail_on="bbb")
    with pytest.raises(EngineError, match="stopped answering"):
        builder.build_cells(_cells())  # type: ignore[arg-type]


def test_cells_go_on_with_one_arch_while_the_other_arch_builder_is_made(tmp_path):
    builder = _CellBuilder(tmp_path, jobs=2, make_seconds={"arm64": 1.5, "amd64": 0.1})
    builder.build_cells(_cells())  # type: ignore[arg-type]
    aarch64 = [k for k, (_, t) in enumerate(builder.started) if t.endswith("aarch64")]
    x86_64 = [k for k, (_, t) in enumerate(builder.started) if t.endswith("x86_64")]
    assert len(aarch64) == 2 and len(x86_64) == 4
    # every x86_64 cell starts while the arm64 builder is made, before the second aarch64 cell
    assert max(x86_64) < aarch64[1]


def test_an_interrupt_ends_the_running_cells_and_starts_no_more(tmp_path):
    # as SIGINT/SIGTERM reach the CLI: an Interrupted raised in the main thread while it waits
    builder = _CellBuilder(tmp_path, jobs=2, child=["sleep", "120"])

    def interrupted(signum, frame):
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGUSR1, interrupted)
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGUSR1)).start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            builder.build_cells(_cells())  # type: ignore[arg-type]
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert time.monotonic() - started < 15  # not the children's 120 s
    assert len(builder.started) == 2  # the two running cells; none started after
    assert builder.children.stopping and not builder.children._running
    sleeping = subprocess.run(["pgrep", "-f", "^sleep 120$", "-P", str(os.getpid())], capture_output=True, text=True)
    assert sleeping.stdout == ""


def test_children_run_to_their_status_or_timeout_and_refuse_after_stop(tmp_path):
    children = Children()
    assert children.run(["sh", "-c", "exit 3"]) == 3
    assert children.run(["sleep", "30"], timeout=0.3) is None
    waiter = threading.Thread(target=lambda: results.append(_outcome(children, ["sleep", "30"])))
    results: list[object] = []
    waiter.start()
    time.sleep(0.5)
    assert children.stop(grace=5) == 1
    waiter.join(10)
    assert results == ["interrupted"]
    with pytest.raises(Interrupted):
        children.run(["true"])


def _outcome(children: Children, cmd: list[str]) -> object:
    try:
        return children.run(cmd)
    except Interrupted:
        return "interrupted"


# A stand-in for cibuildwheel: says when it runs, records a SIGINT it gets, exits 1 on it.
_CHILD = """
import os, pathlib, signal, sys, time
mark = pathlib.Path(sys.argv[1])
def on_sigint(*_):
    mark.with_suffix(".sigint").write_text("")
    sys.exit(1)
signal.signal(signal.SIGINT, on_sigint)
mark.write_text(str(os.getpid()))
time.sleep(60)
"""

# A factory stand-in in a process group of its own: a worker thread runs the child, then
# Ctrl-C is sent as a terminal sends it, to the whole group, and the main thread stops.
_CTRL_C = """
import os, signal, sys, threading, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal: a background job starts with SIGINT ignored
from factory.core.children import Children
from factory.core.errors import Interrupted
children, outcome = Children(), []
def work():
    try:
        outcome.append(children.run([sys.executable, "-c", sys.argv[1], sys.argv[2]]))
    except Interrupted:
        outcome.append("interrupted")
worker = threading.Thread(target=work)
worker.start()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
try:
    os.killpg(0, signal.SIGINT)
    time.sleep(30)
except KeyboardInterrupt:
    time.sleep(1)  # the main thread may take a moment to get here; the child must not end first
    children.stop(grace=5)
worker.join(30)
print(outcome)
"""


def test_a_terminal_ctrl_c_reaches_the_factory_not_its_children(tmp_path):
    mark = tmp_path / "child"
    proc = subprocess.run(
        [sys.executable, "-c", _CTRL_C, _CHILD, str(mark)], capture_output=True, text=True, timeout=60,
        start_new_session=True,  # the group the Ctrl-C goes to holds pytest otherwise
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not mark.with_suffix(".sigint").exists()  # the child had its own session
    assert proc.stdout.strip() == "['interrupted']"  # ended by stop, not a failed build


def test_a_keyboard_interrupt_while_running_on_the_main_thread_ends_the_child(tmp_path):
    mark = tmp_path / "child"

    def interrupt_once_started() -> None:
        while not mark.exists() or not mark.read_text():
            time.sleep(0.05)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    sender = threading.Thread(target=interrupt_once_started)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # pytest run as a background job ignores SIGINT
    try:
        sender.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            Children().run([sys.executable, "-c", _CHILD, str(mark)])
        sender.join(10)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - started < 20  # not the child's 60 s
    with pytest.raises(ProcessLookupError):
        os.kill(int(mark.read_text()), 0)  # ended and reaped


def test_sigterm_interrupts_only_while_open():
    from factory.core.children import sigterm_interrupts

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as raised, sigterm_interrupts():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
    assert raised.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) == before
