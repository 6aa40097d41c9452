"""Reading a package index through ``pypi-simple``: PEP 503 HTML, or PEP 691 JSON where served.

Each project page is read once per ``Index`` object (one run). Files are downloaded into the
content-addressed cache and verified against the sha256 the caller expects (from the lock).
"""

from __future__ import annotations

import hashlib
import html
import re
import threading
from collections.abc import Callable
from pathlib import Path

import requests
import requests.adapters
from packaging.utils import canonicalize_name, canonicalize_version
from pypi_simple import ACCEPT_ANY, DistributionPackage, ProgressTracker, ProjectPage, PyPISimple
from pypi_simple.errors import UnsupportedContentTypeError, UnsupportedRepoVersionError

from ..core.cache import FileCache
from ..core.errors import HashMismatchError, IndexResponseError, IndexUnreachableError

TIMEOUT = (15, 120)  # seconds: connect, read
NET_CHUNK = 1 << 16  # bytes per network read: what arrives is on disk (and hashed) at once
ProgressFactory = Callable[[int | None], ProgressTracker]


HTML_TYPES = ("text/html", "application/vnd.pypi.simple.v1+html")
_ANCHOR = re.compile(r"<a\b[^>]*>(.*?)</a\s*>", re.IGNORECASE | re.DOTALL)
SDIST_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip")


def filename_version(filename: str) -> str:
    """The canonical version (``packaging.utils.canonicalize_version``) a distribution file
    name carries: a wheel's second field (PEP 427), an sdist's text after the last ``-``;
    "" when the name has none."""
    if filename.endswith(".whl"):
        parts = filename.split("-")
        raw = parts[1] if len(parts) >= 5 else ""
    else:
        stem = next((filename[: -len(s)] for s in SDIST_SUFFIXES if filename.endswith(s)), "")
        raw = stem.rpartition("-")[2] if "-" in stem else ""
    return canonicalize_version(raw) if raw else ""


def only_version(page: str, version: str) -> tuple[str, int]:
    """``page`` (PEP 503 HTML) with only the anchors of files of ``version`` (canonical) kept,
    everything outside the anchors (head, meta tags) untouched; and how many anchors the
    whole page had."""
    anchors = list(_ANCHOR.finditer(page))
    if not anchors:
        return page, 0
    kept = [m.group(0) for m in anchors if filename_version(html.unescape(m.group(1)).strip()) == version]
    return page[: anchors[0].start()] + "\n".join(kept) + page[anchors[-1].end() :], len(anchors)


def _short(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:200]


class Index:
    """A simple-repository index at ``url`` (ending in ``/simple/``), read with ``ca_bundle``."""

    def __init__(self, url: str, cache: FileCache, ca_bundle: Path | None = None) -> None:
        self.url = url
        self.cache = cache
        session = requests.Session()
        # One pool per index, sized for the download threads, so connections are reused.
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        if ca_bundle is not None:
            session.verify = str(ca_bundle)
        self._session = session
        self._client = PyPISimple(endpoint=url, session=session, accept=ACCEPT_ANY)
        self._pages: dict[tuple[str, str | None], list[DistributionPackage]] = {}
        self._responses: dict[str, requests.Response | None] = {}
        self._page_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self.pages_read = 0
        # canonical project name -> the Index a lock pins it to (PEP 751 `index`), when not this one
        self.routes: dict[str, Index] = {}

    def route(self, project: str, index: Index) -> None:
        """Read ``project``'s files from ``index`` instead of this one (a lock pins it there)."""
        self.routes[canonicalize_name(project)] = index

    def index_of(self, project: str) -> Index:
        """The Index ``project``'s files come from: its route, else this one."""
        return self.routes.get(canonicalize_name(project), self)

    def _unreachable(self, err: BaseException) -> IndexUnreachableError:
        return IndexUnreachableError(
            f"index {self.url} cannot be reached: {_short(err)}",
            "check the network, FACTORY_INDEX_URL and ca-bundle",
        )

    def files(self, project: str, version: str | None = None) -> list[DistributionPackage]:
        """The files the index lists for ``project`` ([] when the project is unknown); with
        ``version`` (PEP 440, any spelling), only that release's files. A routed project
        (``route``) is read from its own index.

        The page is fetched once per project and run, whatever the spelling of the name or
        the versions asked for. A PEP 503 page lists every release a project ever had (tens
        of thousands of links for some); with ``version``, the page's other anchors are set
        aside before pypi-simple parses it, which is what makes a cold fetch fast. PEP 691
        JSON is parsed whole, then filtered.

        Raises ``IndexUnreachableError`` on a connection/TLS/HTTP error and
        ``IndexResponseError`` for a page that is neither PEP 503 HTML nor PEP 691 JSON
        or lists no file at all.
        """
        project = canonicalize_name(project)  # one page per project, however the caller spells it
        if project in self.routes:
            return self.routes[project].files(project, version)
        key = (project, canonicalize_version(version) if version else None)
        with self._lock:
            if key in self._pages:
                return self._pages[key]
            page_lock = self._page_locks.setdefault(project, threading.Lock())
        with page_lock:
            with self._lock:
                if key in self._pages:
                    return self._pages[key]
            response = self._page(project)
            files = [] if response is None else self._parse(project, response, key[1])
            with self._lock:
                self._pages[key] = files
        return files

    def _page(self, project: str) -> requests.Response | None:
        """The project page's response (read once per run), or None for an unknown project."""
        with self._lock:
            if project in self._responses:
                return self._responses[project]
        url = self._client.get_project_url(project)
        try:
            response = self._session.get(url, headers={"Accept": ACCEPT_ANY}, timeout=TIMEOUT)
            if response.status_code == 404:
                found = None
            else:
                response.raise_for_status()
                found = response
        except requests.RequestException as e:
            raise self._unreachable(e) from None
        with self._lock:
            self._responses[project] = found
            self.pages_read += 1
        return found

    def _parse(self, project: str, response: requests.Response, version: str | None) -> list[DistributionPackage]:
        media_type = response.headers.get("content-type", "text/html").split(";")[0].strip().lower()
        try:
            if version is not None and media_type in HTML_TYPES:
                html, anchors = only_version(response.text, version)
                if anchors == 0:
                    raise IndexResponseError(f"index page {response.url} lists no files", "check that the index URL points at a simple index")
                return list(ProjectPage.from_html(project, html, base_url=response.url).packages)
            files = list(ProjectPage.from_response(response, project).packages)
        except (UnsupportedContentTypeError, UnsupportedRepoVersionError, ValueError) as e:
            raise IndexResponseError(
                f"index page {response.url} is neither PEP 503 HTML nor PEP 691 JSON: {_short(e)}",
                "point FACTORY_INDEX_URL at a simple index (…/simple/)",
            ) from None
        if not files:
            raise IndexResponseError(f"index page {response.url} lists no files", "check that the index URL points at a simple index")
        return files if version is None else [f for f in files if filename_version(f.filename) == version]

    def fetch(self, pkg: DistributionPackage, sha256: str, progress: ProgressFactory | None = None) -> Path:
        """The file ``pkg`` as a path in the cache, downloaded only if not cached already.

        ``sha256`` is the hex digest the lock allows. The bytes are hashed while they stream
        to a staged file (one pass, 64 KiB reads, over the index's pooled connection) and
        committed to the cache only when they match. Raises ``HashMismatchError`` with the
        expected and actual hashes, or ``IndexUnreachableError``.
        """
        cached = self.cache.get(sha256, pkg.filename)
        if cached is not None:
            return cached
        staged = self.cache.staging(sha256)
        try:
            try:
                actual = self._download(pkg.url, staged, progress)
            except requests.RequestException as e:
                raise self._unreachable(e) from None
            if actual != sha256:
                raise HashMismatchError(
                    f"{pkg.filename}: expected sha256 {sha256}, got {actual}",
                    "the index served different bytes than the lock pins; check the index or regenerate the lock",
                )
            return self.cache.commit(staged, sha256, pkg.filename)
        finally:
            staged.unlink(missing_ok=True)

    def _download(self, url: str, dest: Path, progress: ProgressFactory | None) -> str:
        """Stream ``url`` into ``dest``; return the sha256 hex of the bytes written."""
        digest = hashlib.sha256()
        with self._session.get(url, stream=True, timeout=TIMEOUT) as response:
            response.raise_for_status()
            size = int(response.headers.get("Content-Length") or 0) or None
            tracker = progress(size) if progress is not None else None
            with open(dest, "wb") as out:
                for chunk in response.iter_content(NET_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    if tracker is not None:
                        tracker.update(len(chunk))
        return digest.hexdigest()
