"""Bootstrap pieces that need no Docker: the Release date for SOURCE_DATE_EPOCH, dpkg versions,
bases.lock read and write."""

import functools
import io
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from indexserver import free_port

from factory.bases.bootstrap import debian_version_in, read_bases_lock, release_epoch, write_bases_lock
from factory.bases.imagelock import BaseImage
from factory.core.errors import ArtifactError, BootstrapError


@pytest.fixture
def mirror(tmp_path):
    (tmp_path / "dists" / "forky").mkdir(parents=True)
    (tmp_path / "dists" / "forky" / "Release").write_text(
        "Origin: Debian\nSuite: testing\nCodename: forky\nDate: Fri, 30 Oct 2026 08:08:01 UTC\nValid-Until: Fri, 06 Nov 2026 08:08:01 UTC\n"
    )
    (tmp_path / "dists" / "nodate").mkdir()
    (tmp_path / "dists" / "nodate" / "Release").write_text("Origin: Debian\n")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def test_release_date_is_the_epoch(mirror):
    assert release_epoch(mirror, "forky") == 1793347681  # 2026-10-30T08:08:01Z


def test_release_without_date(mirror):
    with pytest.raises(BootstrapError, match="has no Date: field"):
        release_epoch(mirror, "nodate")


def test_missing_suite_and_dead_mirror(mirror):
    with pytest.raises(BootstrapError, match="cannot read .*/dists/bookwormish/Release"):
        release_epoch(mirror, "bookwormish")
    with pytest.raises(BootstrapError, match="cannot read"):
        release_epoch(f"http://127.0.0.1:{free_port()}/debian", "forky")


def test_debian_version_from_dpkg_status(tmp_path):
    status = (
        b"Package: python3.14\nStatus: install ok installed\nVersion: 3.14.8-1\n\n"
        b"Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n"
    )
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        info = tarfile.TarInfo("./var/lib/dpkg/status")
        info.size = len(status)
        tar.addfile(info, io.BytesIO(status))
    assert debian_version_in(rootfs, "python3.14") == "3.14.8-1"
    assert debian_version_in(rootfs, "gone") is None


def test_bases_lock_is_written_whole_and_read_back(tmp_path):
    path = tmp_path / "images" / "bases.lock"
    assert read_bases_lock(path) == {}
    amd64 = BaseImage("amd64", "r/python@sha256:" + "a" * 64, "r/python:3.14.8-slim-forky-amd64", "bootstrap", "b" * 64, "3.14.8-1")
    write_bases_lock(path, "3.14.8", {"amd64": amd64})
    assert read_bases_lock(path) == {"amd64": amd64}
    assert sorted(p.name for p in path.parent.iterdir()) == ["bases.lock"]


def test_a_garbled_bases_lock_is_a_one_line_error(tmp_path):
    path = tmp_path / "bases.lock"
    path.write_text('{"python": "3.14.8", "bases": {"amd64": {"arch": "amd64"}}}')
    with pytest.raises(ArtifactError, match=r"bases.amd64 lacks ref, source, tag \(fix: delete it and run `factory bootstrap`\)"):
        read_bases_lock(path)
    path.write_text("{")
    with pytest.raises(ArtifactError, match="is not valid JSON"):
        read_bases_lock(path)
