"""Reading the index: PEP 503 HTML only (as the proxy here serves), PEP 691 JSON when offered."""


import pytest
from indexserver import FixtureIndex, make_wheel, sha256
from packaging.version import Version
from paths import FIXTURES

from factory.core.cache import FileCache
from factory.core.errors import HashMismatchError, IndexResponseError, IndexUnreachableError
from factory.core.targets import parse_target
from factory.index.client import Index
from factory.index.selection import best_wheel
from factory.locks.lockfile import Pin

FIXTURES = FIXTURES
PY = "3.14.8"


def orjson_pin(hashes):
    return Pin(name="orjson", version="3.13.0", hashes=frozenset(hashes), marker=None, line=1)


def test_real_pep503_page_gives_the_2_17_wheel_for_2_28_targets(tmp_path):
    """orjson 3.13.0 ships only manylinux_2_17 wheels; `pip download --platform manylinux_2_28_*` misses them."""
    with FixtureIndex({}) as idx:
        idx.raw_pages["orjson"] = (FIXTURES / "orjson-simple.html").read_bytes()
        index = Index(idx.url, FileCache(tmp_path))
        files = index.files("orjson")
        assert all(f.digests.get("sha256") for f in files)
        pin = orjson_pin(f.digests["sha256"] for f in files if f.version == "3.13.0")
        chosen = {t: best_wheel(pin, parse_target(t), PY, files) for t in (
            "manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "musllinux_1_2_x86_64", "musllinux_1_2_aarch64")}
    assert chosen["manylinux_2_28_x86_64"].package.filename == "orjson-3.13.0-cp314-cp314-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    assert chosen["manylinux_2_28_x86_64"].tag == "cp314-cp314-manylinux_2_17_x86_64"
    assert chosen["manylinux_2_28_aarch64"].package.filename == "orjson-3.13.0-cp314-cp314-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    assert chosen["musllinux_1_2_x86_64"].package.filename == "orjson-3.13.0-cp314-cp314-musllinux_1_2_x86_64.whl"
    assert chosen["musllinux_1_2_aarch64"].package.filename == "orjson-3.13.0-cp314-cp314-musllinux_1_2_aarch64.whl"


def test_a_page_is_read_once_per_run(tmp_path):
    with FixtureIndex({"six": {"six-1.0-py3-none-any.whl": b"x"}}) as idx:
        index = Index(idx.url, FileCache(tmp_path))
        index.files("six")
        index.files("Six")
        index.files("SIX")
        index.files("six")
    # every spelling is the same project (PEP 503 normalization): one page, one request
    assert sum(n for p, n in idx.requests.items() if p.startswith("/simple/")) == 1
    assert index.pages_read == 1


@pytest.mark.parametrize("json_api", [False, True], ids=["pep503-html", "pep691-json"])
def test_both_apis_give_the_same_files(tmp_path, json_api):
    name = "demo-1.0-cp314-cp314-musllinux_1_2_x86_64.whl"
    data = make_wheel(name)
    with FixtureIndex({"demo": {name: data, "demo-1.0.tar.gz": b"sdist"}}, json_api=json_api) as idx:
        files = Index(idx.url, FileCache(tmp_path)).files("demo")
    assert sorted(f.filename for f in files) == ["demo-1.0-cp314-cp314-musllinux_1_2_x86_64.whl", "demo-1.0.tar.gz"]
    assert {f.filename: f.digests["sha256"] for f in files}[name] == sha256(data)


def test_unknown_project_is_an_empty_page(tmp_path):
    with FixtureIndex({}) as idx:
        assert Index(idx.url, FileCache(tmp_path)).files("nothing-here") == []


def test_unreachable_index(tmp_path):
    with FixtureIndex({}) as idx:
        url = idx.url
    with pytest.raises(IndexUnreachableError, match="cannot be reached") as e:
        Index(url, FileCache(tmp_path)).files("six")
    assert "FACTORY_INDEX_URL" in e.value.fix


def test_garbage_page(tmp_path):
    with FixtureIndex({"six": {"six-1.0-py3-none-any.whl": b"x"}}) as idx:
        idx.garbage = True
        with pytest.raises(IndexResponseError, match="neither PEP 503 HTML nor PEP 691 JSON"):
            Index(idx.url, FileCache(tmp_path)).files("six")


def test_fetch_verifies_and_caches(tmp_path):
    name = "six-1.0-py3-none-any.whl"
    data = make_wheel(name)
    with FixtureIndex({"six": {name: data}}) as idx:
        index = Index(idx.url, FileCache(tmp_path))
        (pkg,) = index.files("six")
        first = index.fetch(pkg, sha256(data))
        second = Index(idx.url, FileCache(tmp_path)).fetch(pkg, sha256(data))
    assert first == second and first.read_bytes() == data
    assert idx.requests[f"/files/{name}"] == 1


def test_corrupt_cache_entry_is_evicted_and_fetched_again(tmp_path):
    name = "six-1.0-py3-none-any.whl"
    data = make_wheel(name)
    with FixtureIndex({"six": {name: data}}) as idx:
        cache = FileCache(tmp_path)
        index = Index(idx.url, cache)
        (pkg,) = index.files("six")
        path = index.fetch(pkg, sha256(data))
        path.write_bytes(b"bit rot")
        again = index.fetch(pkg, sha256(data))
    assert again.read_bytes() == data
    assert cache.evicted == [name]
    assert idx.requests[f"/files/{name}"] == 2


@pytest.mark.parametrize("served", [b"tampered bytes", None], ids=["tampered", "truncated"])
def test_download_that_does_not_match_the_lock(tmp_path, served):
    name = "six-1.0-py3-none-any.whl"
    data = make_wheel(name)
    with FixtureIndex({"six": {name: data}}) as idx:
        idx.served[name] = served if served is not None else data[: len(data) // 2]
        index = Index(idx.url, FileCache(tmp_path))
        (pkg,) = index.files("six")
        with pytest.raises(HashMismatchError) as e:
            index.fetch(pkg, sha256(data))
    assert name in e.value.problem and sha256(data) in e.value.problem and sha256(idx.served[name]) in e.value.problem
    assert not any(p.is_file() and p.name == name for p in tmp_path.rglob("*"))


def test_html_page_without_links(tmp_path):
    with FixtureIndex({}) as idx:
        idx.raw_pages["six"] = b"<html><body><p>maintenance</p></body></html>"
        with pytest.raises(IndexResponseError, match="lists no files"):
            Index(idx.url, FileCache(tmp_path)).files("six")


def test_a_version_filtered_page_gives_exactly_that_release_s_files(tmp_path):
    """Parsing only one release's anchors (the cold-fetch speed-up) gives the same files, with
    the same URLs and hashes, as parsing the whole real page and filtering it."""
    with FixtureIndex({}) as idx:
        idx.raw_pages["orjson"] = (FIXTURES / "orjson-simple.html").read_bytes()
        index = Index(idx.url, FileCache(tmp_path))
        every = index.files("orjson")
        for version in ("3.13.0", "3.12.0", "3.12"):  # any PEP 440 spelling of a release
            expected = [(f.filename, f.url, f.digests) for f in every if Version(f.version) == Version(version)]
            got = [(f.filename, f.url, f.digests) for f in index.files("orjson", version)]
            assert got == expected and got, version
        assert index.files("orjson", "0.0.1") == []
        assert sum(n for p, n in idx.requests.items() if p.startswith("/simple/")) == 1  # one page, every version


@pytest.mark.parametrize(
    "filename, version",
    [
        ("orjson-3.13.0-cp314-cp314-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "3.13"),
        ("python-dateutil-2.9.0.post0.tar.gz", "2.9.post0"),
        ("Django-5.1.zip", "5.1"),
        ("pkg-1.0rc1-py3-none-any.whl", "1rc1"),
        ("zope.interface-7.0-cp314-cp314-musllinux_1_2_aarch64.whl", "7"),
        ("README.txt", ""),
    ],
)
def test_filename_versions_are_canonical(filename, version):
    from factory.index.client import filename_version

    assert filename_version(filename) == version
