"""URL sources (issue 19): list files, redaction, fetching into the cache, and re-checks, on a loopback server."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

import samples
from docrouter.discover.documents import Document
from docrouter.discover.fetching import Fetcher, FetchLimits, UrlCache
from docrouter.discover.urls import UrlSource, parse_size, read_url_list, redact, stash_command_line_urls, url_sources
from docrouter.errors import ConfigError
from docrouter.redaction import redacted
from docrouter.run.config import RunConfig, config_from_parameters, flow_parameters
from file_server import Files, serving

T = TypeVar("T")
PNG = samples.png(64, 48)
PDF = samples.text_pdf(1, text="A letter about URLs. " * 30)
DEFAULT_LIMITS = FetchLimits()


def test_redact_drops_the_query_string_fragment_and_user_info() -> None:
    assert (
        redact("https://u:pw@host.example/a/b.png?X-Amz-Signature=abc&e=1#f") == "https://host.example/a/b.png?REDACTED"
    )
    assert redact("http://host:8080/plain.pdf") == "http://host:8080/plain.pdf"


def test_a_list_file_has_one_url_a_line_with_comments(tmp_path: Path) -> None:
    listed = tmp_path / "list.txt"
    listed.write_text("# scans\nhttps://a.example/1.png\n\n  http://b.example/2.pdf?sig=1  \n")
    assert read_url_list(listed) == ["https://a.example/1.png", "http://b.example/2.pdf?sig=1"]


def test_a_csv_list_reads_its_url_column(tmp_path: Path) -> None:
    listed = tmp_path / "list.csv"
    listed.write_text('id,URL,title\n1,https://a.example/1.png,"one, two"\n2,https://a.example/2.pdf,x\n')
    assert read_url_list(listed) == ["https://a.example/1.png", "https://a.example/2.pdf"]


def test_a_line_that_is_no_url_is_a_one_line_error_that_shows_no_query(tmp_path: Path) -> None:
    listed = tmp_path / "list.txt"
    listed.write_text("https://a.example/1.png\nftp://host/x.pdf?secret=1\n")
    with pytest.raises(ConfigError, match=r"line 2: not an http\(s\) URL") as caught:
        read_url_list(listed)
    assert "secret" not in str(caught.value)


def test_sources_mix_folders_command_line_urls_and_list_files(tmp_path: Path) -> None:
    listed = tmp_path / "list.txt"
    listed.write_text("https://a.example/1.png\n")
    found = url_sources([str(tmp_path), "https://b.example/2.pdf"], [str(listed)])
    assert found == [UrlSource("https://b.example/2.pdf", "urls"), UrlSource("https://a.example/1.png", str(listed))]


def test_command_line_urls_go_to_a_private_list_file_outside_the_parameters(tmp_path: Path) -> None:
    sources, stashed = stash_command_line_urls([str(tmp_path), "https://a.example/1.png?sig=s3cret"])
    assert stashed is not None and sources == (str(tmp_path),)
    try:
        assert url_sources([], [stashed]) == [UrlSource("https://a.example/1.png?sig=s3cret", "urls")]
        assert Path(stashed).stat().st_mode & 0o077 == 0
    finally:
        Path(stashed).unlink()


def test_url_settings_travel_as_flow_parameters_and_are_checked() -> None:
    config = RunConfig(sources=(), out="o", urls=("l.txt",), send_urls="never", url_cache_size=10)
    assert config_from_parameters(flow_parameters(config)) == config
    with pytest.raises(ConfigError, match="--send-urls"):
        RunConfig(sources=("a",), out="o", send_urls="sometimes")
    with pytest.raises(ConfigError, match="SOURCE"):
        RunConfig(sources=(), out="o")


def test_cache_sizes_take_suffixes() -> None:
    assert parse_size("2G") == 2 * 1024**3 and parse_size("500m") == 500 * 1024**2 and parse_size("0") == 0
    with pytest.raises(ValueError):
        parse_size("lots")


@pytest.fixture
def files() -> Files:
    return Files(
        bodies={"/a.png": PNG, "/letter.pdf": PDF, "/notes.png": b"just some text, not an image\n"},
        content_types={"/a.png": "image/png", "/letter.pdf": "text/html", "/notes.png": "image/png"},
    )


@pytest.fixture
def base(files: Files) -> Iterator[str]:
    with serving(files) as url:
        yield url


def _fetch(cache: Path, call: Callable[[Fetcher], Awaitable[T]], limits: FetchLimits = DEFAULT_LIMITS) -> T:
    async def go() -> T:
        async with httpx.AsyncClient() as http:
            return await call(Fetcher(http, UrlCache(cache), limits))

    return asyncio.run(go())


def _documents(cache: Path, urls: list[str], limits: FetchLimits = DEFAULT_LIMITS) -> list[Document]:
    return _fetch(cache, lambda f: f.documents([UrlSource(u, "urls") for u in urls]), limits)


@pytest.mark.slow
def test_a_url_is_typed_by_its_bytes_and_hashed_like_a_file(tmp_path: Path, base: str) -> None:
    image, pdf, text = _documents(tmp_path, [f"{base}/a.png?sig=1", f"{base}/letter.pdf", f"{base}/notes.png"])
    assert (image.kind, image.doc_id, image.rel_path) == (
        "image",
        hashlib.sha256(PNG).hexdigest(),
        f"{base}/a.png?REDACTED",
    )
    assert Path(image.path).read_bytes() == PNG and image.remote is not None and image.remote.etag
    assert (pdf.kind, pdf.mime_type) == ("pdf", "application/pdf")  # served as text/html: the bytes decide
    assert (text.kind, text.error_type) == (None, "unsupported")  # served as image/png: the bytes decide


@pytest.mark.slow
def test_a_second_fetch_gets_304s_and_no_body_and_no_key_reaches_the_host(
    tmp_path: Path, base: str, files: Files
) -> None:
    urls = [f"{base}/a.png", f"{base}/letter.pdf"]
    first = _documents(tmp_path, urls)
    mark = len(files.hits)
    again = _documents(tmp_path, urls)
    assert [(d.doc_id, d.path) for d in again] == [(d.doc_id, d.path) for d in first]
    assert [(h.status, h.body_bytes) for h in files.hits_since(mark)] == [(304, 0), (304, 0)]
    assert all(h.authorization is None for h in files.hits)


@pytest.mark.slow
def test_missing_failing_slow_and_large_urls_are_rows_with_their_error_type(
    tmp_path: Path, base: str, files: Files
) -> None:
    files.status.update({"/gone.pdf": 410, "/broken.pdf": 500})
    files.bodies["/slow.png"], files.slow_s["/slow.png"] = PNG, 2.0
    files.bodies["/big.pdf"] = PDF
    urls = [f"{base}/missing.png?token=t0p", f"{base}/gone.pdf", f"{base}/broken.pdf", f"{base}/slow.png"]
    docs = _documents(tmp_path, [*urls, f"{base}/big.pdf"], FetchLimits(timeout_s=0.5, max_bytes=len(PDF) - 1))
    assert [(d.kind, d.error_type) for d in docs] == [
        (None, "not_found"), (None, "not_found"), (None, "fetch"), (None, "fetch"), (None, "too_large"),
    ]  # fmt: skip
    assert all("t0p" not in (d.error_message or "") + d.rel_path for d in docs)
    assert docs[0].doc_id == hashlib.sha256(f"url\0{base}/missing.png?token=t0p".encode()).hexdigest()
    assert redacted(f"GET {base}/missing.png?token=t0p") == f"GET {base}/missing.png?[REDACTED]"  # logs too


@pytest.mark.slow
def test_changed_content_is_a_new_document(tmp_path: Path, base: str, files: Files) -> None:
    [before] = _documents(tmp_path, [f"{base}/a.png"])
    files.bodies["/a.png"] = samples.png(65, 48)
    [after] = _documents(tmp_path, [f"{base}/a.png"])
    assert after.doc_id == hashlib.sha256(files.bodies["/a.png"]).hexdigest() != before.doc_id


@pytest.mark.slow
def test_the_send_time_recheck_says_unchanged_only_on_a_304(tmp_path: Path, base: str, files: Files) -> None:
    [doc] = _documents(tmp_path, [f"{base}/a.png"])
    assert _fetch(tmp_path, lambda f: f.unchanged(doc)) is True
    files.bodies["/a.png"] = samples.png(66, 48)
    assert _fetch(tmp_path, lambda f: f.unchanged(doc)) is False


@pytest.mark.slow
def test_eviction_keeps_unanswered_bytes_and_validators_survive_it(tmp_path: Path, base: str, files: Files) -> None:
    image, pdf = _documents(tmp_path, [f"{base}/a.png", f"{base}/letter.pdf"])
    freed = UrlCache(tmp_path).evict(0, answered={image.doc_id})
    assert freed == len(PNG) and not Path(image.path).exists() and Path(pdf.path).exists()
    mark = len(files.hits)
    [again] = _documents(tmp_path, [f"{base}/a.png"])
    assert [h.status for h in files.hits_since(mark)] == [304] and again.doc_id == image.doc_id
    [restored] = _fetch(tmp_path, lambda f: f.restored([again]))
    assert Path(restored.path).read_bytes() == PNG and files.hits[-1].status == 200
