"""Every reader of outside input, fuzzed (tests/support/fuzzing.py): for random bytes and for
valid inputs mutated one field or line at a time, each reader succeeds or raises the error its
contract names, in one line, in bounded time, writing nothing beside its input.

The example count is bounded (FUZZ_EXAMPLES, default 40 per property) so this runs in seconds;
``make fuzz`` runs the same targets coverage-guided under atheris for minutes.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import pytest
from fuzzing import TARGETS, check, mutate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = sorted(TARGETS)


def run(name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        check(TARGETS[name], data, Path(d))


@pytest.mark.parametrize("name", NAMES)
def test_every_target_has_a_seed_that_it_reads(name):
    target = TARGETS[name]
    assert target.seeds and all(s.exists() for s in target.seeds), target.seeds
    for seed in target.seeds:
        run(name, seed.read_bytes())


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes(name, data):
    run(name, data)


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(rng=st.randoms(use_true_random=False), rounds=st.integers(1, 4), pick=st.integers(0, 7))
def test_mutated_seeds(name, rng: random.Random, rounds, pick):
    target = TARGETS[name]
    seed = target.seeds[pick % len(target.seeds)].read_bytes()
    run(name, mutate(target, seed, rng, rounds))


def test_every_minimised_crash_is_a_seed_of_its_target():
    """A crash input committed under tests/fixtures/fuzz/crashes is run by
    ``test_every_target_has_a_seed_that_it_reads`` only if its name prefix claims it."""
    from fuzzing import SEEDS

    crashes = {p.resolve() for p in (SEEDS / "crashes").iterdir()}
    claimed = {s.resolve() for t in TARGETS.values() for s in t.seeds}
    assert crashes and crashes <= claimed, sorted(p.name for p in crashes - claimed)


def test_the_property_fails_on_a_reader_that_breaks_its_contract(tmp_path):
    # the check must be able to fail: a reader raising outside its contract, or in two lines
    from dataclasses import replace

    from factory.core.errors import LockError

    def crashes(path: Path) -> None:
        raise KeyError("x")

    def two_lines(path: Path) -> None:
        raise LockError("first\nsecond", "fix")

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(KeyError):
        check(replace(TARGETS["requirements"], read=crashes), b"", tmp_path / "a")
    with pytest.raises(AssertionError, match="not one line"):
        check(replace(TARGETS["requirements"], read=two_lines), b"", tmp_path / "b")


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("requirements", bytes(range(128, 256)) * 12, "not a text file"),
        ("requirements", b"six==1.17.0\x00\n", "NUL byte"),
        ("config", b'[tool.factory]\ntargets = "x86"\n', "unknown target 'x86'"),
        ("config", b"[tool.factory]\ntargets = [1]\n", "not a list of target names"),
    ],
    ids=["binary", "nul", "targets-string", "targets-not-names"],
)
def test_the_reported_defects_are_one_line(name, data, words):
    from factory.core.errors import FactoryError

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / TARGETS[name].filename
        path.write_bytes(data)
        with pytest.raises(FactoryError) as e:
            TARGETS[name].read(path)
    assert words in str(e.value) and "\n" not in str(e.value)
