"""The one way the tests run the ``factory`` CLI: ``python -m factory`` with this
interpreter, in a directory, with extra environment variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def command(*args: str) -> list[str]:
    """The argv of ``factory ARGS`` under the interpreter running the tests."""
    return [sys.executable, "-m", "factory", *args]


def run_factory(cwd: Path | str, *args: str, env: dict[str, str] | None = None, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``factory ARGS`` in ``cwd`` to completion (text output captured).

    With ``check``, a non-zero exit raises ``AssertionError`` carrying the output's tails."""
    proc = subprocess.run(command(*args), cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"factory {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def start_factory(cwd: Path | str, *args: str, env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen[Any]:
    """Start ``factory ARGS`` in ``cwd`` without waiting (for tests that kill or race it)."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(command(*args), cwd=cwd, env={**os.environ, **(env or {})}, **popen)


def run_project(cwd: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``factory ARGS`` in the project ``cwd`` with the integration tests' time bound (40 min)."""
    return run_factory(cwd, *args, env=env, timeout=2400, check=check)
