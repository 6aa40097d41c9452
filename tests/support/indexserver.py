"""A real simple-repository index on loopback for tests: PEP 503 HTML, optionally PEP 691 JSON.

Serves ``/simple/<project>/`` pages and ``/files/<filename>``; counts requests per path.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import socket
import threading
import time
import zipfile
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename


def make_wheel(filename: str, extra: dict[str, bytes] | None = None, tags: list[str] | None = None, requires: tuple[str, ...] = ()) -> bytes:
    """A minimal wheel archive for ``filename`` (METADATA, WHEEL, RECORD, plus ``extra`` files).

    ``tags`` overrides the WHEEL ``Tag:`` lines (default: the filename's tags); ``requires``
    are METADATA ``Requires-Dist`` lines (PEP 508), for a resolver to follow.
    """
    name, version, _, parsed_tags = parse_wheel_filename(filename)
    dist = f"{name.replace('-', '_')}-{version}.dist-info"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        deps = "".join(f"Requires-Dist: {r}\n" for r in requires)
        z.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{deps}")
        declared = tags if isinstance(tags, list) else sorted(map(str, parsed_tags))
        z.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\n" + "".join(f"Tag: {t}\n" for t in declared))
        for path, data in (extra or {}).items():
            z.writestr(path, data)
        z.writestr(f"{dist}/RECORD", "")
    return buf.getvalue()


CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def make_sdist(name: str, version: str, files: dict[str, str], requires: tuple[str, ...] = ("setuptools>=61",)) -> bytes:
    """A PEP 625 sdist (``.tar.gz``) of a setuptools project: ``files`` maps paths under the
    top directory to their text (a ``setup.py`` among them for extensions). Deterministic bytes."""
    import tarfile

    top = f"{name}-{version}"
    pyproject = (
        f'[build-system]\nrequires = {json.dumps(list(requires))}\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\n'
    )
    members = {"pyproject.toml": pyproject, "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", **files}
    buf = io.BytesIO()
    import gzip

    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for path, text in sorted(members.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size, info.mtime, info.mode = len(data), 1700000000, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


SETUPTOOLS = make_wheel("setuptools-80.0.0-py3-none-any.whl")


def lane_project(root: Path, extra: str = "") -> dict[str, dict[str, bytes]]:
    """Write an sdist-lane project into ``root``: ``pyproject.toml`` (cache in ``root/cache``,
    no build overrides, then ``extra`` TOML), a toolchain lock pinning only pip and build
    constraints pinning only setuptools 80.0.0. Returns what the index must serve for those
    constraints (setuptools' wheel), as ``FixtureIndex`` projects."""
    (root / "toolchain.txt").write_text("pip==25.0 --hash=sha256:" + "0" * 64 + "\n")
    (root / "build.txt").write_text(f"setuptools==80.0.0 --hash=sha256:{sha256(SETUPTOOLS)}\n")
    (root / "pyproject.toml").write_text(
        f'[tool.factory]\ncache-dir = "{root / "cache"}"\ntoolchain = "toolchain.txt"\nbuild-constraints = "build.txt"\n'
        f'build-overrides-dir = ""\n{extra}'
    )
    return {"setuptools": {"setuptools-80.0.0-py3-none-any.whl": SETUPTOOLS}}


def free_port() -> int:
    """A loopback TCP port nobody listens on (it was free a moment ago)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FixtureIndex:
    """Files by project: ``{"orjson": {"orjson-3.13.0-...whl": b"..."}}``.

    ``listed_hash`` overrides the ``#sha256=`` a page shows for a file; ``requires_python``
    gives a file's ``data-requires-python`` (PEP 503); ``served`` overrides
    the bytes a download returns (tampering, truncation); ``garbage`` makes pages junk.
    """

    def __init__(self, projects: dict[str, dict[str, bytes]], json_api: bool = False, upstream: str | None = None) -> None:
        self.projects = {canonicalize_name(k): v for k, v in projects.items()}
        self.upstream = upstream  # pages of other projects are relayed from this index
        self.json_api = json_api
        self.listed_hash: dict[str, str] = {}
        self.requires_python: dict[str, str] = {}
        self.served: dict[str, bytes] = {}
        self.garbage = False
        self.raw_pages: dict[str, bytes] = {}
        self.stall: dict[str, float] = {}  # filename -> seconds to stall after sending half
        self.requests: Counter[str] = Counter()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}/simple/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FixtureIndex:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _files(self, project: str) -> dict[str, bytes]:
        return self.projects.get(canonicalize_name(project), {})

    def _handler(self):
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_HEAD(self) -> None:
                # a resolver (uv) asks first whether a file serves byte ranges: it does not
                parts = [p for p in self.path.split("/") if p]
                body = next((fs[parts[1]] for fs in index.projects.values() if len(parts) == 2 and parts[0] == "files" and parts[1] in fs), None)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body) if body is not None else 0))
                self.end_headers()

            def do_GET(self) -> None:
                index.requests[self.path] += 1
                parts = [p for p in self.path.split("/") if p]
                if len(parts) == 2 and parts[0] == "simple":
                    project = parts[1]
                    if project in index.raw_pages:
                        return self._send(200, "text/html", index.raw_pages[project])
                    if canonicalize_name(project) not in index.projects and index.upstream:
                        import requests

                        r = requests.get(f"{index.upstream.rstrip('/')}/{project}/", timeout=60, verify=CA_BUNDLE)
                        return self._send(r.status_code, r.headers.get("Content-Type", "text/html"), r.content)
                    if canonicalize_name(project) not in index.projects:
                        return self._send(404, "text/plain", b"not found")
                    if index.garbage:
                        return self._send(200, "application/octet-stream", b"\x00\x01 garbage")
                    files = index._files(project)
                    if index.json_api and "application/vnd.pypi.simple.v1+json" in self.headers.get("Accept", ""):
                        data = {
                            "meta": {"api-version": "1.0"},
                            "name": project,
                            "files": [
                                {"filename": f, "url": f"/files/{f}", "hashes": {"sha256": index.listed_hash.get(f, sha256(b))}}
                                for f, b in files.items()
                            ],
                        }
                        return self._send(200, "application/vnd.pypi.simple.v1+json", json.dumps(data).encode())
                    def rp(f: str) -> str:
                        return f' data-requires-python="{html.escape(index.requires_python[f])}"' if f in index.requires_python else ""

                    links = "".join(
                        f'<a href="/files/{html.escape(f)}#sha256={index.listed_hash.get(f, sha256(b))}"{rp(f)}>{html.escape(f)}</a><br/>\n'
                        for f, b in files.items()
                    )
                    return self._send(200, "text/html", f"<!DOCTYPE html><html><body>\n{links}</body></html>".encode())
                if len(parts) == 2 and parts[0] == "files":
                    for files in index.projects.values():
                        if parts[1] in files:
                            body = index.served.get(parts[1], files[parts[1]])
                            if parts[1] not in index.stall:
                                return self._send(200, "application/octet-stream", body)
                            self.send_response(200)
                            self.send_header("Content-Type", "application/octet-stream")
                            self.send_header("Content-Length", str(len(body)))
                            self.end_headers()
                            self.wfile.write(body[: len(body) // 2])
                            self.wfile.flush()
                            time.sleep(index.stall[parts[1]])
                            return self.wfile.write(body[len(body) // 2 :])
                return self._send(404, "text/plain", b"not found")

        return Handler
