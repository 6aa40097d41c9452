"""Coverage-guided fuzzing of one reader (tests/support/fuzzing.py) under atheris (libFuzzer).

    python tests/fuzz/atheris_main.py TARGET SECONDS [CORPUS_DIR]

Each input's first byte chooses between the raw bytes (libFuzzer's own mutations) and a
seed mutated by ``fuzzing.mutate`` with a ``random.Random`` seeded from the rest, so the
run also reaches past the first line of each format. A property violation or an exception
outside the reader's contract stops the run with libFuzzer's report (the input is written
as ``crash-*``); libFuzzer's last line, ``Done N runs in T second(s)``, gives the
executions, and the exit status is libFuzzer's (0: no crash).
"""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "support")]

import atheris  # noqa: E402

with atheris.instrument_imports(include=["factory"]):
    import fuzzing

    import factory.bases.imagelock
    import factory.core.config
    import factory.locks.lockfile  # noqa: F401


def main() -> None:
    name, seconds = sys.argv[1], int(sys.argv[2])
    corpus = sys.argv[3:4]
    target = fuzzing.TARGETS[name]
    seeds = [s.read_bytes() for s in target.seeds]
    work = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    runs = [0]

    def one(data: bytes) -> None:
        runs[0] += 1
        if data[:1] and data[0] % 2:
            rng = random.Random(data[1:])
            data = fuzzing.mutate(target, seeds[data[0] % len(seeds)], rng, 1 + data[0] % 4)
        directory = work / str(runs[0] % 2)
        directory.mkdir(exist_ok=True)
        for leftover in directory.iterdir():
            leftover.unlink()
        fuzzing.check(target, data, directory)

    if not corpus:  # libFuzzer adds what it finds to the corpus: start from a copy of the seeds
        corpus = [str(work / "corpus")]
        Path(corpus[0]).mkdir()
        for i, seed in enumerate(seeds):
            (Path(corpus[0]) / f"seed-{i}").write_bytes(seed)
    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", "-rss_limit_mb=4096", "-max_len=16384", *corpus], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
