"""Issue 15's measurement: one worker against two workers sharing a registry build cache,
plus the merge, on the same lock, each from an empty cache (not a test).

usage: python bench/twoworkers.py PROJECT_DIR

PROJECT_DIR is a factory project whose bases and builders exist (``factory bootstrap`` and
one sdist build have run: ``bases.lock``/``builders.lock`` name images the registry holds).
Lock: tinyc, tinycpp and tinylibs (the sdist lane's test sdists, served by a loopback
index) on ``manylinux_2_28_x86_64`` and ``musllinux_1_2_x86_64``. Prints one line with the
wall times and the ratio (two workers + merge) / one worker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from indexserver import FixtureIndex, make_sdist, sha256  # noqa: E402
from tinysrc import C_SOURCE, CPP_SOURCE, c_project, libs_project  # noqa: E402

from factory.core.config import load_config  # noqa: E402

TARGETS = ["manylinux_2_28_x86_64", "musllinux_1_2_x86_64"]
FACTORY = [sys.executable, "-m", "factory"]


def main(project: Path) -> None:
    sdists = {
        "tinyc": make_sdist("tinyc", "1.0", c_project("tinyc", "_tinyc", C_SOURCE)),
        "tinycpp": make_sdist("tinycpp", "1.0", c_project("tinycpp", "_tinycpp", CPP_SOURCE, "cpp")),
        "tinylibs": make_sdist("tinylibs", "1.0", libs_project()),
    }
    (project / "tw.lock").write_text("".join(f"{n}==1.0 --hash=sha256:{sha256(d)}\n" for n, d in sdists.items()))
    cfg = load_config(project / "pyproject.toml")
    cells = [f"{n}-1.0-{t}" for n in sdists for t in TARGETS]
    targets = [a for t in TARGETS for a in ("--target", t)]
    stamp = str(time.time_ns())
    with FixtureIndex({n: {f"{n}-1.0.tar.gz": d} for n, d in sdists.items()}, upstream=cfg.index_url) as idx, tempfile.TemporaryDirectory() as tmp:

        def env(cache: str, remote: bool) -> dict[str, str]:
            e = dict(os.environ, FACTORY_INDEX_URL=idx.url, FACTORY_CACHE_DIR=f"{tmp}/{cache}")
            return e | ({"FACTORY_REMOTE_CACHE": f"{cfg.registry}/factory/bench-{stamp}"} if remote else {})

        for out in ("tw-one", "tw-merged"):
            shutil.rmtree(project / out, ignore_errors=True)
        started = time.monotonic()
        subprocess.run([*FACTORY, "wheelhouse", "--lock", "tw.lock", "--out", "tw-one", *targets], cwd=project, env=env("one", False), check=True)
        one = time.monotonic() - started
        started = time.monotonic()
        workers = [
            subprocess.Popen(
                ["sh", "-c", " && ".join(" ".join([*FACTORY, "wheelhouse", "--lock", "tw.lock", "--only", c]) for c in half)],
                cwd=project, env=env(f"worker{i}", True),
            )
            for i, half in enumerate((cells[0::2], cells[1::2]))
        ]  # fmt: skip
        if [w.wait() for w in workers] != [0, 0]:
            raise SystemExit("a worker failed")
        two = time.monotonic() - started
        started = time.monotonic()
        subprocess.run([*FACTORY, "wheelhouse", "--lock", "tw.lock", "--out", "tw-merged", *targets], cwd=project, env=env("merge", True), check=True)
        merge = time.monotonic() - started
    print(f"one worker: {one:.0f} s; two workers: {two:.0f} s + merge {merge:.0f} s = {two + merge:.0f} s; ratio {(two + merge) / one:.2f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
