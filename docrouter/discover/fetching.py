"""Fetching URL documents into a content-addressed cache under DIR, and re-checking them before sending.

Layout under DIR/_urls: `blobs/<sha256>` (the bytes, named by their hash), `meta/<url_key>.json` (per full
URL: the validators the server sent and the hash of the bytes they describe). A rerun sends the validators
(If-None-Match / If-Modified-Since); a 304 gives the document back from `meta` with no body fetched, even
after its bytes were evicted (they are fetched again only if the document must be sent). Failures are
documents too (kind None): 404/410 `not_found`, other statuses, timeouts and broken connections `fetch`,
over the size limit `too_large`. Messages show the redacted URL only; the API key is never sent (the run's
client carries no default headers: docrouter.client adds them per request to the API).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from docrouter.discover.documents import (
    CHUNK,
    HEAD,
    OCTET_STREAM,
    SUPPORTED_MIME,
    Document,
    Remote,
    skip_reason,
    sniff_mime,
)
from docrouter.discover.urls import UrlSource, url_key
from docrouter.errors import ConfigError
from docrouter.redaction import protect_all
from docrouter.vocabulary import ErrorType

CACHE_DIR = "_urls"
ENV_TIMEOUT = "DOCROUTER_URL_TIMEOUT_S"
ENV_MAX_BYTES = "DOCROUTER_URL_MAX_BYTES"
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class FetchLimits:
    """How much one URL may take: bytes, seconds per network step and in all, connections per host."""

    max_bytes: int = 512 * 1024**2
    timeout_s: float = 30.0
    total_s: float = 600.0
    per_host: int = 4

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> FetchLimits:
        """The defaults, overridden by DOCROUTER_URL_TIMEOUT_S and DOCROUTER_URL_MAX_BYTES."""
        limits = cls()
        if environ.get(ENV_TIMEOUT):
            limits = dataclasses.replace(limits, timeout_s=_positive(environ, ENV_TIMEOUT))
        if environ.get(ENV_MAX_BYTES):
            limits = dataclasses.replace(limits, max_bytes=int(_positive(environ, ENV_MAX_BYTES)))
        return limits


def _positive(environ: Mapping[str, str], name: str) -> float:
    try:
        value = float(environ[name])
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"{name} must be a positive number, not {environ[name]!r}")
    return value


@dataclass(frozen=True)
class CacheEntry:
    """What the cache knows about one full URL: the hash of its bytes and the validators that describe them."""

    doc_id: str
    size_bytes: int
    mime_type: str
    etag: str | None
    last_modified: str | None


class UrlCache:
    """The bytes of fetched URLs by content hash, and per URL key the validators of the last fetch."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.blobs = folder / "blobs"
        self.meta = folder / "meta"

    def entry(self, key: str) -> CacheEntry | None:
        try:
            return CacheEntry(**json.loads((self.meta / f"{key}.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None  # never fetched (or a torn write): fetch it unconditionally

    def save(self, key: str, entry: CacheEntry) -> None:
        self.meta.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.meta / f"{key}.json", json.dumps(dataclasses.asdict(entry)).encode())

    def blob(self, doc_id: str) -> Path:
        return self.blobs / doc_id

    def temp(self) -> Path:
        self.blobs.mkdir(parents=True, exist_ok=True)
        return self.blobs / f".tmp-{uuid.uuid4().hex}"

    def evict(self, limit_bytes: int, answered: set[str]) -> int:
        """Delete answered documents' bytes, oldest first, until the cache holds at most `limit_bytes`;
        returns the bytes freed (unanswered bytes stay: they are still to be sent)."""
        blobs = [(p.stat().st_mtime_ns, p) for p in self.blobs.glob("*") if not p.name.startswith(".")]
        total = sum(p.stat().st_size for _, p in blobs)
        freed = 0
        for _, path in sorted(blobs):
            if total - freed <= limit_bytes:
                break
            if path.name in answered:
                freed += path.stat().st_size
                path.unlink(missing_ok=True)
        return freed


def _write_atomic(target: Path, data: bytes) -> None:
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    temp.write_bytes(data)
    os.replace(temp, target)


class FetchFailed(Exception):
    """One URL could not be fetched: the error_type of its row and a message showing the redacted URL."""

    def __init__(self, error_type: ErrorType, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


@dataclass
class FetchTotals:
    """What fetching cost the network: bodies fetched, their bytes, and answers that said 'unchanged'."""

    fetched: int = 0
    fetched_bytes: int = 0
    not_modified: int = 0
    failed: int = 0


@dataclass
class Fetcher:
    """Fetches URL documents over the run's client (streamed, bounded, per-host limited) into `cache`."""

    http: httpx.AsyncClient
    cache: UrlCache
    limits: FetchLimits = field(default_factory=FetchLimits)
    totals: FetchTotals = field(default_factory=FetchTotals)
    _hosts: dict[str, asyncio.Semaphore] = field(default_factory=dict)

    async def documents(self, sources: Sequence[UrlSource]) -> list[Document]:
        """One Document per URL, in the order given: fetched, unchanged since the last run, or a failure."""
        protect_all(urlsplit(source.url).query for source in sources)  # whatever a library logs, no signature
        return list(await asyncio.gather(*(self.document(source) for source in sources)))

    async def document(self, source: UrlSource, *, conditional: bool = True) -> Document:
        key = url_key(source.url)
        known = self.cache.entry(key) if conditional else None
        try:
            async with self._host(source.url), asyncio.timeout(self.limits.total_s):
                entry = await self._fetch(source, known)
        except FetchFailed as failure:
            self.totals.failed += 1
            return _failed(source, failure.error_type, failure.message)
        except TimeoutError:
            self.totals.failed += 1
            return _failed(source, "fetch", f"fetching {source.shown} took over {self.limits.total_s:g} s")
        if entry is not known:
            self.cache.save(key, entry)
        return _fetched(source, entry, self.cache.blob(entry.doc_id))

    async def restored(self, documents: Iterable[Document]) -> list[Document]:
        """The documents again, those whose cached bytes were evicted fetched anew (and hashed anew)."""

        async def one(doc: Document) -> Document:
            if doc.remote is None or doc.kind is None or Path(doc.path).exists():
                return doc
            return await self.document(UrlSource(doc.remote.url, doc.source_root), conditional=False)

        return list(await asyncio.gather(*(one(doc) for doc in documents)))

    async def unchanged(self, doc: Document) -> bool:
        """Whether the server says the URL still has the bytes that were hashed (a 304 to a conditional GET)."""
        remote = doc.remote
        if remote is None or not (remote.etag or remote.last_modified):
            return False
        try:
            async with self._host(remote.url), asyncio.timeout(self.limits.total_s):
                request = self.http.stream("GET", remote.url, headers=_validators(remote), timeout=self._timeout)
                async with request as response:
                    return response.status_code == 304
        except (httpx.HTTPError, TimeoutError):
            return False  # cannot tell: upload the cached bytes instead

    @property
    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.limits.timeout_s)

    def _host(self, url: str) -> asyncio.Semaphore:
        host = httpx.URL(url).host
        return self._hosts.setdefault(host, asyncio.Semaphore(self.limits.per_host))

    async def _fetch(self, source: UrlSource, known: CacheEntry | None) -> CacheEntry:
        headers = _validators(Remote(source.url, known.etag, known.last_modified)) if known else {}
        try:
            request = self.http.stream("GET", source.url, headers=headers, timeout=self._timeout, follow_redirects=True)
            async with request as response:
                if response.status_code == 304 and known is not None:
                    self.totals.not_modified += 1
                    return known
                _check_status(response, source)
                return await self._stored(response, source)
        except httpx.TooManyRedirects:
            raise FetchFailed("fetch", f"{source.shown}: more than {MAX_REDIRECTS} redirects") from None
        except httpx.TimeoutException as exc:
            message = f"{source.shown}: no answer within {self.limits.timeout_s:g} s ({type(exc).__name__})"
            raise FetchFailed("fetch", message) from None
        except httpx.HTTPError as exc:  # the text of an httpx error may hold the full URL: only its type
            raise FetchFailed("fetch", f"{source.shown}: {type(exc).__name__} while fetching") from None

    async def _stored(self, response: httpx.Response, source: UrlSource) -> CacheEntry:
        """The body streamed into the cache (hashed on the way, never held whole), as a CacheEntry."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limits.max_bytes:
            raise FetchFailed("too_large", _too_large(source, int(declared), self.limits.max_bytes))
        temp = self.cache.temp()
        try:
            digest, head, size = await self._stream(response, source, temp)
            os.replace(temp, self.cache.blob(digest))
        finally:
            temp.unlink(missing_ok=True)
        self.totals.fetched += 1
        self.totals.fetched_bytes += size
        mime = sniff_mime(head) if size else "application/x-empty"  # Content-Type is ignored, as extensions are
        etag, modified = response.headers.get("etag"), response.headers.get("last-modified")
        return CacheEntry(digest, size, mime, etag, modified)

    async def _stream(self, response: httpx.Response, source: UrlSource, temp: Path) -> tuple[str, bytes, int]:
        sha, head, size = hashlib.sha256(), b"", 0
        with temp.open("wb") as sink:
            async for chunk in response.aiter_bytes(CHUNK):
                size += len(chunk)
                if size > self.limits.max_bytes:
                    raise FetchFailed("too_large", _too_large(source, size, self.limits.max_bytes))
                if len(head) < HEAD:
                    head += chunk[: HEAD - len(head)]
                sha.update(chunk)
                sink.write(chunk)
        return sha.hexdigest(), head, size


def fetch_outside_run(
    sources: Sequence[UrlSource], folder: Path, limits: FetchLimits
) -> tuple[list[Document], FetchTotals]:
    """Fetch URL sources without a run (`plan`): a client of its own, the cache in `folder`."""

    async def fetch() -> tuple[list[Document], FetchTotals]:
        async with httpx.AsyncClient(max_redirects=MAX_REDIRECTS) as http:
            fetcher = Fetcher(http, UrlCache(folder), limits)
            return await fetcher.documents(sources), fetcher.totals

    return asyncio.run(fetch())


def _validators(remote: Remote) -> dict[str, str]:
    headers = {}
    if remote.etag:
        headers["If-None-Match"] = remote.etag
    if remote.last_modified:
        headers["If-Modified-Since"] = remote.last_modified
    return headers


def _check_status(response: httpx.Response, source: UrlSource) -> None:
    status = response.status_code
    if status in (404, 410):
        raise FetchFailed("not_found", f"{source.shown}: HTTP {status} (the server has no such document)")
    if status != 200:
        raise FetchFailed("fetch", f"{source.shown}: HTTP {status} while fetching")


def _too_large(source: UrlSource, size: int, limit: int) -> str:
    return f"{source.shown}: over {limit:,} bytes ({size:,} or more); raise {ENV_MAX_BYTES} to fetch it"


def _fetched(source: UrlSource, entry: CacheEntry, blob: Path) -> Document:
    kind = SUPPORTED_MIME.get(entry.mime_type)
    remote = Remote(source.url, entry.etag, entry.last_modified)
    doc = Document(
        str(blob), source.shown, source.source_root, entry.size_bytes, entry.doc_id, entry.mime_type, kind,
        remote=remote,
    )  # fmt: skip
    if kind is not None:
        return doc
    error_type, message = skip_reason(doc)
    return dataclasses.replace(doc, error_type=error_type, error_message=message.replace("file", "document", 1))


def _failed(source: UrlSource, error_type: ErrorType, message: str) -> Document:
    """A URL without bytes: its identity is a hash of the full URL (so a rerun knows its terminal failure)."""
    doc_id = hashlib.sha256(f"url\0{source.url}".encode()).hexdigest()
    return Document("", source.shown, source.source_root, 0, doc_id, OCTET_STREAM, None, error_type, message,
                    remote=Remote(source.url))  # fmt: skip
