"""Reading a package index through ``pypi-simple``: PEP 503 HTML, or PEP 691 JSON where served.

Each project page is read once per ``Index`` object (one run). Files are downloaded into the
content-addressed cache and verified against the sha256 the caller expects (from the lock).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import requests
import requests.adapters
from packaging.utils import canonicalize_name
from pypi_simple import ACCEPT_ANY, DistributionPackage, NoSuchProjectError, ProgressTracker, PyPISimple
from pypi_simple.errors import UnsupportedContentTypeError, UnsupportedRepoVersionError

from .cache import FileCache
from .errors import HashMismatchError, IndexResponseError, IndexUnreachableError

TIMEOUT = (15, 120)  # seconds: connect, read
NET_CHUNK = 1 << 16  # bytes per network read: what arrives is on disk (and hashed) at once
ProgressFactory = Callable[[int | None], ProgressTracker]


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
        self._pages: dict[str, list[DistributionPackage]] = {}
        self._lock = threading.Lock()
        self.pages_read = 0

    def _unreachable(self, err: BaseException) -> IndexUnreachableError:
        return IndexUnreachableError(
            f"index {self.url} cannot be reached: {_short(err)}",
            "check the network, FACTORY_INDEX_URL and ca-bundle",
        )

    def files(self, project: str) -> list[DistributionPackage]:
        """Every file the index lists for ``project`` ([] when the project is unknown).

        Raises ``IndexUnreachableError`` on a connection/TLS/HTTP error and
        ``IndexResponseError`` for a page that is neither PEP 503 HTML nor PEP 691 JSON
        or lists no file at all.
        """
        project = canonicalize_name(project)  # one page per project, however the caller spells it
        with self._lock:
            if project in self._pages:
                return self._pages[project]
        url = self._client.get_project_url(project)
        try:
            files = list(self._client.get_project_page(project, timeout=TIMEOUT).packages)
            if not files:
                raise IndexResponseError(f"index page {url} lists no files", "check that the index URL points at a simple index")
        except NoSuchProjectError:
            files = []
        except (UnsupportedContentTypeError, UnsupportedRepoVersionError, ValueError) as e:
            raise IndexResponseError(
                f"index page {url} is neither PEP 503 HTML nor PEP 691 JSON: {_short(e)}",
                "point FACTORY_INDEX_URL at a simple index (…/simple/)",
            ) from None
        except requests.RequestException as e:
            raise self._unreachable(e) from None
        with self._lock:
            self._pages[project] = files
            self.pages_read += 1
        return files

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
