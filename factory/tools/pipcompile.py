"""The lock stage: ``requirements.in`` -> ``requirements.lock`` with pip-compile, under CPython 3.14.

pip-compile runs inside the amd64 base image (the configured Python), not on the host:
the host's Python resolves for itself (e.g. numpy 2.5 needs Python >= 3.12). The
toolchain is installed there from ``toolchain.txt`` with ``--require-hashes``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from ..core.config import Config
from ..core.engine import Engine
from ..core.errors import LockCompileError, LockError
from ..index.client import Index
from ..locks.lockfile import Lock, read_lock
from .toolchain import tool_wheel

PIP_COMPILE_ARGS = [
    "--generate-hashes",
    "--allow-unsafe",
    "--no-emit-index-url",
    "--no-emit-find-links",
    "--strip-extras",
    "--no-config",
]


def compile_lock(cfg: Config, engine: Engine, index: Index, base_ref: str, source: Path, out: Path, command: str) -> Lock:
    """Run pip-compile on ``source`` in the amd64 base image ``base_ref`` (``repo@sha256:…``)
    and write ``out`` atomically.

    ``command`` is what the lock's header says regenerates it. Returns the validated
    new lock. Raises ``LockError`` when ``source`` is missing, ``LockCompileError`` when
    pip-compile fails (with its last lines).
    """
    if not source.is_file():
        raise LockError(f"{source} not found", "write the top-level requirements there")
    pip = tool_wheel(cfg, index, "pip")
    ca = str(cfg.ca_bundle) if cfg.ca_bundle else None
    with tempfile.TemporaryDirectory(prefix="factory-lock-") as tmp:
        work = Path(tmp)
        shutil.copy(source, work / source.name)
        shutil.copy(cfg.toolchain, work / "toolchain.txt")
        if out.exists():  # pip-compile keeps existing pins unless asked to upgrade
            shutil.copy(out, work / "out.txt")
        os.chmod(work, 0o777)
        volumes = {
            str(work): {"bind": "/work", "mode": "rw"},
            str(pip): {"bind": "/opt/factory/pip.whl", "mode": "ro"},
        }
        env = {"CUSTOM_COMPILE_COMMAND": command, "PIP_INDEX_URL": cfg.index_url, "HOME": "/tmp"}
        if ca:
            volumes[ca] = {"bind": "/opt/factory/ca.crt", "mode": "ro"}
            env.update(SSL_CERT_FILE="/opt/factory/ca.crt", PIP_CERT="/opt/factory/ca.crt")
        # python3 runs the steps, not a shell (the bootstrapped base has none); the first
        # failing step's exit status ends it, with that step's own output last.
        steps = [
            ["python3", "-m", "venv", "--without-pip", "/tmp/tc"],
            ["/tmp/tc/bin/python", "/opt/factory/pip.whl/pip", "install", "-q", "--no-cache-dir", "--ignore-installed", "--require-hashes", "-r", "/work/toolchain.txt"],
            ["/tmp/tc/bin/pip-compile", "-q", *PIP_COMPILE_ARGS, "--index-url", cfg.index_url, "-o", "out.txt", source.name],
        ]
        script = f"import subprocess, sys\nfor step in {steps!r}:\n    rc = subprocess.run(step, cwd='/work').returncode\n    if rc:\n        sys.exit(rc)\n"
        status, logs = engine.run(
            base_ref,
            ["python3", "-c", script],
            volumes=volumes,
            environment=env,
            user=f"{os.getuid()}:{os.getgid()}",
            platform="linux/amd64",
            # an index on the host's loopback (a local pypiserver or devpi) is reached through the host's network
            host_network=urlsplit(cfg.index_url).hostname in ("127.0.0.1", "localhost", "::1"),
        )
        if status != 0:
            tail = " | ".join(logs.strip().splitlines()[-4:])
            raise LockCompileError(f"pip-compile failed (exit {status}): {tail[:400]}", "fix the requirements or the index")
        text = (work / "out.txt").read_text()
        staged = out.parent / f".{out.name}.tmp-{os.getpid()}"
        staged.write_text(text)
        try:
            read_lock(staged)
        except LockError:
            staged.unlink()
            raise
        os.replace(staged, out)
    return read_lock(out)
