"""URL sources: http(s) documents named on the command line or in list files, and how they are shown.

A URL is a document like a file: its bytes are fetched (see docrouter.fetching) into a content-addressed
cache under DIR, typed by their bytes and hashed. URLs often carry credentials in their query string (signed
URLs), so every place a person or a dataset sees one shows `redact(url)`; only the fetch itself, the cache's
key (`url_key`) and a request that sends the document by URL use the full text.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from docrouter.errors import ConfigError

URL_SCHEMES = ("http://", "https://")
COMMAND_LINE_ROOT = "urls"  # source_root of URLs given on the command line
COMMAND_LINE_LIST = "command-line-"  # name prefix of the list file `docrouter run` stores them in
SEND_URLS = ("auto", "never")
DEFAULT_CACHE_BYTES = 2 * 1024**3  # --url-cache-size


def parse_size(text: str) -> int:
    """A byte count such as 500000, 200M or 2G (K, M, G: powers of 1024); ValueError otherwise."""
    text = text.strip().upper().removesuffix("B")
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
    number = float(text[:-1] if scale > 1 else text)
    if not number >= 0 or number == float("inf"):
        raise ValueError(text)
    return int(number * scale)


def size_text(size: int) -> str:
    """A byte count as parse_size reads it, in the largest unit that divides it (2147483648: 2G)."""
    for suffix, scale in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size and size % scale == 0:
            return f"{size // scale}{suffix}"
    return str(size)


@dataclass(frozen=True)
class UrlSource:
    """One URL to fetch, and the source it came from (a list file's path, or `urls`)."""

    url: str  # the full URL, query string included: fetch with it, never show it
    source_root: str

    @property
    def shown(self) -> str:
        return redact(self.url)


def is_url(source: str | os.PathLike[str]) -> bool:
    """Whether a SOURCE is an http(s) URL rather than a path."""
    return isinstance(source, str) and source.lower().startswith(URL_SCHEMES)


def redact(url: str) -> str:
    """The URL as shown anywhere: no user info, and its query string and fragment replaced by `?REDACTED`."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    query = "REDACTED" if parts.query else ""
    return urlunsplit((parts.scheme, host, parts.path or "/", query, ""))


def url_filename(url: str) -> str:
    """The last segment of the URL's path (never its query), as a file name for the API."""
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] or "document"


def url_key(url: str) -> str:
    """SHA-256 of the full URL: what the cache keys its validators on (distinct signatures, distinct keys)."""
    return hashlib.sha256(url.encode()).hexdigest()


def read_url_list(path: str | Path) -> list[str]:
    """The URLs in a list file: one per line with `#` comments, or a CSV with a `url` column."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read --urls {path}: {exc}") from None
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)]
    lines = [(n, line) for n, line in lines if line and not line.startswith("#")]
    if lines and not is_url(lines[0][1]) and "url" in _header(lines[0][1]):
        return _csv_urls(path, "\n".join(line for _, line in lines))
    for number, line in lines:
        if not is_url(line):
            raise ConfigError(f"--urls {path} line {number}: not an http(s) URL: {redact(line)[:80]}")
    return [line for _, line in lines]


def _header(line: str) -> list[str]:
    return [name.strip().lower() for name in next(csv.reader([line]))]


def _csv_urls(path: str | Path, text: str) -> list[str]:
    reader = csv.DictReader(io.StringIO(text))
    column = next(name for name in reader.fieldnames or () if name.strip().lower() == "url")
    urls = []
    for number, record in enumerate(reader, 2):
        value = (record.get(column) or "").strip()
        if not is_url(value):
            raise ConfigError(f"--urls {path} row {number}: the url column is not an http(s) URL")
        urls.append(value)
    return urls


def url_sources(sources: Iterable[str], lists: Sequence[str]) -> list[UrlSource]:
    """Every URL to fetch: those among SOURCEs (root `urls`), then those of each list file (root: the file)."""
    found = [UrlSource(s, COMMAND_LINE_ROOT) for s in sources if is_url(s)]
    for listed in lists:
        root = _list_root(listed)
        found.extend(UrlSource(url, root) for url in read_url_list(listed))
    return found


def _list_root(listed: str) -> str:
    """A list file's source_root: its absolute path, or `urls` for the one holding command-line URLs."""
    path = Path(listed).absolute()
    return COMMAND_LINE_ROOT if path.name.startswith(COMMAND_LINE_LIST) else str(path)


def check_url_lists(lists: Sequence[str]) -> None:
    """A ConfigError when a list file cannot be read or holds something that is not a URL."""
    for listed in lists:
        read_url_list(listed)


def stash_command_line_urls(sources: Sequence[str]) -> tuple[tuple[str, ...], str | None]:
    """(the sources without URLs, a private temporary list file holding them, or None): a flow's parameters
    then carry a path, never a signed URL, and nothing under DIR keeps it. The caller deletes the file."""
    urls = [s for s in sources if is_url(s)]
    if not urls:
        return tuple(sources), None
    fd, name = tempfile.mkstemp(prefix=COMMAND_LINE_LIST, suffix=".txt")  # mode 0600
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.writelines(f"{url}\n" for url in urls)
    return tuple(s for s in sources if not is_url(s)), name
