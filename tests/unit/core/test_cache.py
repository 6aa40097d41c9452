"""FileCache's stamps: an entry checked once is not re-hashed while its size, inode and
mtime are unchanged; any write to it, even right after the check, voids the stamp, and the
next reuse re-hashes and evicts it; ``verify=True`` re-hashes every entry."""

from __future__ import annotations

import hashlib
import os

from factory.core.cache import STAMPED_MTIME_NS, FileCache

DATA = b"wheel bytes " * 1000
SHA = hashlib.sha256(DATA).hexdigest()
NAME = "six-1.0-py3-none-any.whl"


def _stored(tmp_path) -> tuple[FileCache, os.PathLike]:
    cache = FileCache(tmp_path)
    staged = cache.staging(SHA)
    staged.write_bytes(DATA)
    return cache, cache.commit(staged, SHA, NAME)


def test_a_committed_entry_is_reused_without_re_hashing(tmp_path):
    _, path = _stored(tmp_path)
    again = FileCache(tmp_path)
    assert again.get(SHA, NAME) == path and again.get(SHA, NAME) == path
    assert again.hashed == 0
    assert os.stat(path).st_mtime_ns == STAMPED_MTIME_NS


def test_bytes_flipped_in_place_right_after_the_check_are_caught(tmp_path):
    _, path = _stored(tmp_path)
    with open(path, "r+b") as f:  # same size, at once: only the mtime tells
        f.seek(100)
        f.write(b"X")
    again = FileCache(tmp_path)
    assert again.get(SHA, NAME) is None
    assert again.hashed == 1 and again.evicted == [NAME] and not path.exists()


def test_a_tamper_that_restores_the_mtime_is_caught_with_verify(tmp_path):
    _, path = _stored(tmp_path)
    with open(path, "r+b") as f:
        f.write(b"X")
    os.utime(path, ns=(STAMPED_MTIME_NS, STAMPED_MTIME_NS))
    assert FileCache(tmp_path).get(SHA, NAME) == path  # the stamp's limit: it trusts a restored mtime
    strict = FileCache(tmp_path, verify=True)
    assert strict.get(SHA, NAME) is None and strict.evicted == [NAME]


def test_an_entry_without_a_stamp_is_hashed_once_then_trusted(tmp_path):
    _, path = _stored(tmp_path)
    for stamp in (tmp_path / "files" / "stamps").rglob("*.json"):
        stamp.unlink()
    first, second = FileCache(tmp_path), FileCache(tmp_path)
    assert first.get(SHA, NAME) == path and first.hashed == 1
    assert second.get(SHA, NAME) == path and second.hashed == 0


def test_a_passed_check_is_remembered_until_the_entry_changes(tmp_path):
    cache, path = _stored(tmp_path)
    assert not cache.passed(SHA, path, "check-1")
    cache.mark_passed(SHA, path, "check-1")
    assert FileCache(tmp_path).passed(SHA, path, "check-1") and not FileCache(tmp_path).passed(SHA, path, "check-2")
    assert not FileCache(tmp_path, verify=True).passed(SHA, path, "check-1")
    with open(path, "r+b") as f:
        f.write(b"X")
    assert not FileCache(tmp_path).passed(SHA, path, "check-1")


def test_a_stamp_of_the_wrong_form_costs_a_re_hash_not_a_crash(tmp_path):
    _, path = _stored(tmp_path)
    (stamp,) = (tmp_path / "files" / "stamps").rglob("*.json")
    for text in ("", "[]", '{"size": "x"}', "\xff"):
        stamp.write_text(text, errors="surrogateescape")
        cache = FileCache(tmp_path)
        assert cache.get(SHA, NAME) == path and cache.hashed == 1
