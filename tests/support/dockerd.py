"""A second Docker engine on this machine, started by a test: its own socket, data root,
exec root and bridge, sharing only the kernel (QEMU binfmt included) and loopback.

It stands in for a native host of one arch (``[tool.factory.hosts]``). Its bridge is one
of its own: ``--bridge=none`` would make dockerd delete the default ``docker0`` bridge,
which the machine's own engine uses."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker

BRIDGE = "factory-d2"
BRIDGE_ADDRESS = "172.31.254.1/24"


@contextlib.contextmanager
def second_dockerd(timeout: float = 60) -> Iterator[str]:
    """Start the engine; yield its ``unix://`` Docker host URL; stop it and remove its bridge
    and state. ``RuntimeError`` with the log's tail if it does not answer in ``timeout`` s."""
    root = Path(tempfile.mkdtemp(prefix="fd2-", dir="/tmp"))  # short: unix socket paths are limited
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
    subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE], check=True)
    subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True)
    (root / "daemon.json").write_text("{}\n")  # not the machine's /etc/docker/daemon.json
    url = f"unix://{root}/docker.sock"
    with open(root / "dockerd.log", "wb") as log:
        proc = subprocess.Popen(
            ["dockerd", "--config-file", str(root / "daemon.json"), "--host", url, "--data-root", str(root / "data"),
             "--exec-root", str(root / "x"), "--pidfile", str(root / "dockerd.pid"), "--bridge", BRIDGE,
             "--iptables=false", "--ip6tables=false"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                docker.DockerClient(base_url=url, timeout=5).ping()
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = (root / "dockerd.log").read_text(errors="replace").strip().splitlines()[-3:]
                    raise RuntimeError(f"second dockerd did not start: {' | '.join(tail)}") from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
        for mount in reversed(Path("/proc/self/mounts").read_text().splitlines()):
            point = mount.split()[1]
            if point.startswith(str(root)):
                subprocess.run(["umount", "-l", point], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
