"""The service as Kubernetes will run it: time to ready, memory at ready, and shutdown.

For a service image with ``[tool.factory.smoke]`` (``core.smokespec``), on each arch:

1. ``runs`` fresh containers without limits, then ``runs`` at ``cpus`` CPUs and ``memory``
   bytes (no swap), each started with the image's own ``Entrypoint``/``Cmd`` as its user on a
   read-only root with a tmpfs ``/tmp`` (``Engine.service_container``), on an internal test
   network, with ``env`` over the image's ``Env``;
2. the check polled every ``POLL_S`` from this machine, as a kubelet probes a pod: an HTTP
   GET to the container's address (any 2xx), a TCP connect, or ``ready-exec`` through the
   engine (``docker exec``, no shell needed). The time to ready runs from the engine's start
   of the container to the end of the first passing check;
3. at ready, the container's anonymous memory from its cgroup (``ServiceContainer.rss_bytes``);
4. then the stop signal (the image's ``StopSignal``, else ``SIGTERM``) and the seconds to the
   exit, which must come within ``grace-period``.

A container that exits before it is ready, is not ready within ``timeout``, or outlives the
grace period fails smoke: one ``SmokeError`` naming the image, the arch, the phase and the last
lines of its log. An arch whose engine is not of that arch (arm64 under QEMU on x86_64) is
measured and marked ``emulated``; ``gate`` compares only native figures.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Callable, Sequence

from ..bases.imagelock import ArchImage, ImagesLock, Startup
from ..core.engine import Engine, ServiceContainer
from ..core.errors import SmokeError
from ..core.smokespec import ReadyCheck, SmokeSpec
from ..core.targets import Arch

# How often the check is tried: the time to ready is known to within this (plus one check).
POLL_S = 0.02
# Seconds one check may take (a kubelet's timeoutSeconds default is 1).
CHECK_TIMEOUT_S = 1.0
# A time-to-ready change smaller than this is not a regression, whatever its percentage:
# two polling intervals plus a check are the resolution of one measurement.
NOISE_S = 0.05
LOG_LINES = 5


def mebibytes(n: int) -> str:
    """Bytes as MiB with one decimal (cgroups and Kubernetes count in 2**20)."""
    return f"{n / 2**20:.1f} MiB"


def check(ready: ReadyCheck, service: ServiceContainer, endpoint: tuple[str, int] | None) -> str | None:
    """Run the check once against ``service`` (``endpoint``: where its port is reached;
    None for an exec check). None when it passes, else why not, in a few words."""
    if ready.kind == "exec":
        code, out = service.exec(list(ready.argv))
        if code == 0:
            return None
        last = next((line for line in reversed(out.decode(errors="replace").splitlines()) if line.strip()), "")
        return f"{ready.describe()} exited {code}" + (f": {last[:120]}" if last else "")
    assert endpoint is not None
    host, port = endpoint
    if ready.kind == "tcp":
        try:
            with socket.create_connection((host, port), timeout=CHECK_TIMEOUT_S):
                return None
        except OSError as e:
            return f"tcp {host}:{port}: {e.strerror or e}"
    # http.client, not requests: no proxy from the environment may stand between us and the pod.
    conn: http.client.HTTPConnection
    if ready.kind == "https":  # a kubelet does not verify the certificate either
        conn = http.client.HTTPSConnection(host, port, timeout=CHECK_TIMEOUT_S, context=ssl._create_unverified_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=CHECK_TIMEOUT_S)
    try:
        conn.request("GET", ready.path, headers={"User-Agent": "kube-probe/factory", "Accept": "*/*"})
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as e:
        return f"GET {ready.kind}://{host}:{port}{ready.path}: {getattr(e, 'strerror', None) or e or type(e).__name__}"
    finally:
        conn.close()
    return None if 200 <= status < 300 else f"GET {ready.kind}://{host}:{port}{ready.path} answered {status}"


class _Timed:
    """One check in a thread of its own, so that an exec that hangs costs one attempt, not
    the run: ``result`` is the check's answer once ``done``."""

    def __init__(self, run: Callable[[], str | None]) -> None:
        self.result: str | None = "the check did not finish"
        self.done = threading.Event()

        def target() -> None:
            try:
                self.result = run()
            except Exception as e:  # the engine or the socket; reported as the reason
                self.result = f"check failed: {e}"
            finally:
                self.done.set()

        threading.Thread(target=target, daemon=True, name="ready-check").start()


def time_to_ready(spec: SmokeSpec, service: ServiceContainer, fail: Callable[[str, str], SmokeError]) -> float:
    """Start ``service`` and poll the check until it passes: seconds from the start to the
    end of the first passing check. ``fail(what, fix)`` makes the error raised when the
    container exits first or is not ready within ``spec.timeout``."""
    started = service.start()
    endpoint = service.endpoint(spec.ready.port) if spec.ready.kind != "exec" else None
    reason = "no check answered yet"
    while True:
        attempt = _Timed(lambda: check(spec.ready, service, endpoint))
        attempt.done.wait(CHECK_TIMEOUT_S if spec.ready.kind != "exec" else spec.timeout)
        now = time.monotonic()
        if attempt.done.is_set():
            if attempt.result is None:
                return now - started
            reason = attempt.result
        running, code = service.state()
        if not running:
            raise fail(
                f"the service exited with code {code} {now - started:.1f} s after its start, before it was ready",
                "run the image with its command and fix what its log says (a missing setting belongs in [tool.factory.smoke] env)",
            )
        if now - started > spec.timeout:
            fix = (
                "make ready-exec exit 0 once the service is ready, or raise [tool.factory.smoke] timeout"
                if endpoint is None
                else f"make the service answer {spec.ready.describe()} (listening on 0.0.0.0, not 127.0.0.1), or raise [tool.factory.smoke] timeout"
            )
            raise fail(f"not ready {spec.timeout:g} s after its start (last check: {reason})", fix)
        time.sleep(POLL_S)


def measure(engine: Engine, ref: str, arch: str, spec: SmokeSpec, stop_signal: str = "") -> Startup:
    """Measure the service image ``ref`` of ``arch`` (``linux/<arch>``, already in the engine
    that runs that arch) under ``spec``: ``spec.runs`` cold starts without limits, as many
    under the limits, each stopped with ``stop_signal`` (default ``SIGTERM``).

    Returns the figures as images.lock records them. Raises ``SmokeError`` (one line: image,
    arch, phase, what happened, the log's last lines) for a container that exits before it is
    ready, is not ready within ``spec.timeout``, or outlives ``spec.grace_period``;
    ``EngineError`` when no container can be made.
    """
    engine = engine.for_arch(arch)
    emulated = engine.machine != Arch(arch).machine
    where = f"image {ref} ({arch}{', emulated' if emulated else ''})"
    signal = stop_signal or "SIGTERM"
    cold: list[float] = []
    limited: list[float] = []
    rss: list[int] = []
    stops: list[float] = []
    codes: list[int] = []
    with engine.test_network() as network:
        for limits in (False, True):
            for n in range(1, spec.runs + 1):
                phase = f"startup under {spec.cpus:g} CPU and {mebibytes(spec.memory)}, run {n} of {spec.runs}" if limits else f"cold startup, run {n} of {spec.runs}"
                with engine.service_container(
                    ref, network, environment=dict(spec.env), cpus=spec.cpus if limits else None, memory=spec.memory if limits else None,
                    platform=f"linux/{arch}", ports=[spec.ready.port] if spec.ready.port else [],
                ) as service:  # fmt: skip

                    def fail(what: str, fix: str, phase: str = phase, service: ServiceContainer = service) -> SmokeError:
                        tail = " | ".join(service.log_tail(LOG_LINES)) or "(no output)"
                        return SmokeError(f"{where}, phase {phase}: {what}; last log lines: {tail}", fix)

                    ready = time_to_ready(spec, service, fail)
                    (limited if limits else cold).append(ready)
                    rss.append(service.rss_bytes())
                    code, seconds = service.terminate(signal, spec.grace_period)
                    if code is None:
                        raise fail(
                            f"still running {spec.grace_period:g} s after {signal} (the grace period), killed",
                            f"handle {signal} in the service and exit (as PID 1 a process without a handler ignores it), or raise [tool.factory.smoke] grace-period",
                            f"shutdown after {phase}",
                        )
                    stops.append(seconds)
                    codes.append(code)
    return Startup(
        ready=spec.ready.describe(),
        runs=spec.runs,
        cold_median_s=round(statistics.median(cold), 4),
        cold_max_s=round(max(cold), 4),
        limited_median_s=round(statistics.median(limited), 4),
        limited_max_s=round(max(limited), 4),
        cpus=spec.cpus,
        memory=spec.memory,
        rss_bytes=int(statistics.median(rss)),
        stop_max_s=round(max(stops), 4),
        stop_exit_code=max(codes),
        emulated=emulated,
        settings_sha256=spec.digest(),
    )


def describe(image: ArchImage) -> str:
    """One line of ``image``'s startup figures (for the console and the summary)."""
    s = image.startup
    if s is None:
        return f"{image.arch}: no startup measured"
    return (
        f"{image.arch}{' (emulated)' if s.emulated else ''}: ready cold {s.cold_median_s:.2f} s median, {s.cold_max_s:.2f} s max; "
        f"at {s.cpus:g} CPU, {mebibytes(s.memory)} {s.limited_median_s:.2f} s median, {s.limited_max_s:.2f} s max; "
        f"RSS {mebibytes(s.rss_bytes)}; stop {s.stop_max_s:.2f} s (exit {s.stop_exit_code}) over {s.runs} runs each"
    )


def gate(previous: ImagesLock | None, current: Sequence[ArchImage], spec: SmokeSpec) -> tuple[list[str], list[str]]:
    """(regressions, notes) of the ``current`` images' startup against the ``previous``
    images.lock's, same arch (None: nothing to compare with).

    Time to ready (cold and under the limits, medians) may grow by ``spec.ready_regression``
    (and always by ``NOISE_S``), RSS at ready by ``spec.rss_regression``. Figures measured
    under emulation on either side, or under other settings (``settings_sha256``), are not
    compared; a note says so.
    """
    if previous is None:
        return [], []
    regressions, notes = [], []
    for image in current:
        old = previous.image(image.arch)
        new = image.startup
        if old is None or old.startup is None or new is None:
            continue
        if new.emulated or old.startup.emulated:
            notes.append(f"{image.arch} startup measured under emulation: reported, not gated (a native host in [tool.factory.hosts] gates it)")
            continue
        if new.settings_sha256 != old.startup.settings_sha256:
            notes.append(f"{image.arch} startup measured under other [tool.factory.smoke] settings than the previous images.lock: not compared")
            continue
        pairs: list[tuple[str, float, float, float, float]] = [
            ("ready_cold_s", old.startup.cold_median_s, new.cold_median_s, spec.ready_regression, NOISE_S),
            ("ready_limited_s", old.startup.limited_median_s, new.limited_median_s, spec.ready_regression, NOISE_S),
            ("rss_bytes", old.startup.rss_bytes, new.rss_bytes, spec.rss_regression, 0),
        ]
        for key, a, b, limit, floor in pairs:
            if a and b > a * (1 + limit) and b - a > floor:
                shown = (mebibytes(int(a)), mebibytes(int(b))) if key == "rss_bytes" else (f"{a:g} s", f"{b:g} s")
                regressions.append(f"{image.arch} {key} {shown[0]} -> {shown[1]} (+{(b / a - 1) * 100:.0f} %, limit +{limit * 100:.0f} %)")
    return regressions, notes
