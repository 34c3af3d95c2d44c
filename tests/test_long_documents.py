"""Long PDFs split into page ranges and combined, huge images downscaled, bodies within the limit: real flow."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw

import samples
from docrouter.emulator import Emulator
from docrouter.errors import ConfigError
from docrouter.inspect.images import ImageLimits
from docrouter.route.splitting import ENV_MAX_PART_PAGES, ENV_MAX_REQUEST_BYTES, SplitLimits
from pipeline import results, run_flow

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api_url")]

HOP_BY_HOP = {"connection", "content-length", "content-encoding", "transfer-encoding", "keep-alive"}


class BodyTap:
    """A loopback reverse proxy in front of the emulator that keeps every chat request body it forwards."""

    def __init__(self, upstream: str) -> None:
        self.bodies: list[bytes] = []
        self._upstream = httpx.Client(base_url=upstream, timeout=60.0)
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v1"

    def chat_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body in self.bodies]

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> httpx.Response:
        if path.endswith("/chat/completions"):
            self.bodies.append(body)
        return self._upstream.request(method, path, headers=headers, content=body)

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        tap = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
                response = tap._forward(self.command, self.path, headers, body)
                self.send_response(response.status_code)
                for key, value in response.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            do_GET = do_POST = _relay

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
                pass

        return Handler

    def __enter__(self) -> BodyTap:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        self._upstream.close()


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator(seed=8) as emu:
        monkeypatch.setenv("OPENROUTER_API_KEY", emu.api_key)
        yield emu


@pytest.fixture
def tap(emulator: Emulator) -> Iterator[BodyTap]:
    with BodyTap(emulator.root_url) as proxy:
        yield proxy


def run(folder: Path, tmp_path: Path, tap: BodyTap, **extra: Any) -> Any:
    """One flow run over `folder` through the tap; the single results row."""
    run_flow(sources=[str(folder)], out=str(tmp_path / "out"), base_url=tap.base_url, **extra)
    df = results(tmp_path / "out")
    assert len(df) == 1, df[["path", "status", "error_type"]]
    return df.iloc[0]


def write(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder


def chat_records(emu: Emulator) -> list:
    return [r for r in emu.records if r.path.endswith("/chat/completions")]


def user_content(body: dict[str, Any]) -> Any:
    return body["messages"][0]["content"]


def data_urls(body: dict[str, Any]) -> list[str]:
    """Every file and image data URL of a request body."""
    found = []
    for message in body["messages"]:
        for part in message["content"] if isinstance(message["content"], list) else []:
            if part["type"] == "file":
                found.append(part["file"]["file_data"])
            elif part["type"] == "image_url":
                found.append(part["image_url"]["url"])
    return found


def decoded(url: str) -> tuple[str, bytes]:
    """(MIME type, bytes) of a base64 data URL."""
    head, data = url.split(",", 1)
    return head.removeprefix("data:").removesuffix(";base64"), base64.b64decode(data)


def test_300_page_pdf_is_answered_in_parts_and_combined_into_one_row(
    tmp_path: Path, emulator: Emulator, tap: BodyTap
) -> None:
    folder = write(tmp_path / "docs", "annual_report_300_pages.pdf", samples.text_pdf(300))
    row = run(folder, tmp_path, tap)
    records = chat_records(emulator)
    bodies = tap.chat_bodies()
    pages_per_part = SplitLimits().pages_for("local-text")
    assert pages_per_part < 300  # the default page limit is what splits it
    assert len(records) == 3 and {r.status for r in records} == {200}  # two parts, then one combine
    combine, *parts = sorted((user_content(b) for b in bodies), key=lambda text: "Combine them" not in text)
    first, second = sorted(parts, key=lambda text: "[page 1]\n" not in text)
    assert "[page 1]\n" in first and f"[page {pages_per_part}]\n" in first and "[page 201]" not in first
    assert f"[page {pages_per_part + 1}]\n" in second and "[page 300]\n" in second
    assert '<part pages="1-200">' in combine and '<part pages="201-300">' in combine
    assert row.status == "ok" and row.parts == 2 and row.pages == 300
    assert "2 parts: 1-200 local-text, 201-300 local-text" in row.engine_reason
    assert row.cost_usd == pytest.approx(sum(r.billed_usd for r in records))
    assert row.cost_usd == pytest.approx(emulator.billed_usd) and row.cost_usd > 0
    assert row.prompt_tokens == sum(r.prompt_tokens for r in records)


def test_mixed_pdf_sends_text_pages_as_text_and_only_scanned_pages_as_files(
    tmp_path: Path, emulator: Emulator, tap: BodyTap
) -> None:
    scans = samples.scan_page_numbers(4, 2)
    folder = write(tmp_path / "docs", "report_with_scanned_annexes.pdf", samples.mixed_pdf(4, 2))
    row = run(folder, tmp_path, tap)
    combine, *part_bodies = sorted(tap.chat_bodies(), key=lambda b: "Combine them" not in str(user_content(b)))
    file_parts = [b for b in part_bodies if data_urls(b)]
    text_parts = [b for b in part_bodies if not data_urls(b)]
    sent_pages = [len(_pdf_pages(decoded(data_urls(b)[0])[1])) for b in file_parts]
    assert len(file_parts) == len(scans) and sent_pages == [1] * len(scans)  # each scanned page alone
    engines = {r.engine for r in chat_records(emulator) if r.file_hashes}
    assert engines and engines <= {"native", "mistral-ocr"}
    text = "".join(user_content(b) for b in text_parts)
    text_pages = [p for p in range(6) if p not in scans]
    assert all(f"[page {p + 1}]\n" in text for p in text_pages)
    assert not any(f"[page {p + 1}]\n" in text for p in scans)
    assert "Combine them" in user_content(combine)
    assert row.status == "ok" and row.parts == len(part_bodies) and "local-text" in row.engine_reason
    assert row.cost_usd == pytest.approx(emulator.billed_usd)


def _pdf_pages(data: bytes) -> list:
    from pypdf import PdfReader

    return list(PdfReader(io.BytesIO(data)).pages)


def test_9000x7000_png_is_sent_downscaled_as_a_true_png_and_accepted(
    tmp_path: Path, emulator: Emulator, tap: BodyTap
) -> None:
    poster = Image.new("RGB", (9000, 7000), (235, 230, 220))
    ImageDraw.Draw(poster).rectangle((1000, 1000, 8000, 6000), fill=(20, 60, 120))
    out = io.BytesIO()
    poster.save(out, "PNG", compress_level=1)
    folder = write(tmp_path / "docs", "poster_9000x7000.png", out.getvalue())
    row = run(folder, tmp_path, tap)
    (url,) = data_urls(tap.chat_bodies()[0])
    mime, data = decoded(url)
    with Image.open(io.BytesIO(data)) as sent:
        assert sent.format == "PNG" and max(sent.size) <= ImageLimits().max_side
        assert sent.size == (2048, 1593)  # aspect ratio kept
    assert mime == "image/png" and len(data) <= ImageLimits().max_bytes
    (record,) = chat_records(emulator)
    assert record.status == 200 and record.file_hashes == (hashlib.sha256(data).hexdigest(),)
    assert emulator.state.settings.max_image_pixels < 9000 * 7000  # the original would have been refused
    assert row.status == "ok" and row.mime_type == "image/png" and "downscaled 9000x7000" in row.engine_reason


def test_request_bodies_never_exceed_the_configured_byte_limit(
    tmp_path: Path, emulator: Emulator, tap: BodyTap, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 200_000
    monkeypatch.setenv(ENV_MAX_REQUEST_BYTES, str(limit))
    folder = write(tmp_path / "docs", "uneven_noisy_scan.pdf", uneven_scan_pdf(12))
    assert (folder / "uneven_noisy_scan.pdf").stat().st_size > 2 * limit
    row = run(folder, tmp_path, tap, engine="native")
    sizes = [len(body) for body in tap.bodies]
    assert max(sizes) <= limit, sizes
    assert row.status == "ok" and row.parts >= 3 and len(sizes) == row.parts + 1
    assert {r.status for r in chat_records(emulator)} == {200}


def test_a_page_too_large_for_any_request_fails_the_document_but_keeps_what_its_other_parts_cost(
    tmp_path: Path, emulator: Emulator, tap: BodyTap, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 150_000  # the last pages of this scan alone make bodies over it
    monkeypatch.setenv(ENV_MAX_REQUEST_BYTES, str(limit))
    folder = write(tmp_path / "docs", "scan_with_huge_last_pages.pdf", uneven_scan_pdf(12))
    row = run(folder, tmp_path, tap, engine="native")
    assert tap.bodies and max(len(body) for body in tap.bodies) <= limit
    assert not any("Combine them" in str(user_content(body)) for body in tap.chat_bodies())
    assert row.status == "failed" and row.error_type == "too_large"
    assert re.search(r"\(pages (\d+)-\1\) makes a [\d,]+-byte request, over the limit of 150,000", row.error_message)
    assert row.cost_usd == pytest.approx(emulator.billed_usd) and row.cost_usd > 0


def test_split_limits_come_from_the_environment_and_refuse_nonsense() -> None:
    limits = SplitLimits.from_env({ENV_MAX_REQUEST_BYTES: "1000000", ENV_MAX_PART_PAGES: "25"})
    assert limits.max_body_bytes == 1_000_000 and {limits.pages_for(e) for e in limits.max_pages} == {25}
    assert SplitLimits.from_env({}) == SplitLimits()
    with pytest.raises(ConfigError, match=ENV_MAX_PART_PAGES):
        SplitLimits.from_env({ENV_MAX_PART_PAGES: "0"})


def uneven_scan_pdf(pages: int) -> bytes:
    """A scan whose pages differ a lot in size (noise of growing area), so a byte average misleads."""
    images = [Image.effect_noise((100 + 20 * i, 130 + 25 * i), 90).convert("RGB") for i in range(pages)]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=72.0, quality=95)
    return out.getvalue()


def test_animated_gif_is_sent_as_its_first_frame(tmp_path: Path, emulator: Emulator, tap: BodyTap) -> None:
    animated = samples.gif(240, 160, frames=3)
    with Image.open(io.BytesIO(animated)) as original:
        assert original.n_frames == 3
    folder = write(tmp_path / "docs", "animated_receipt.gif", animated)
    row = run(folder, tmp_path, tap)
    (url,) = data_urls(tap.chat_bodies()[0])
    mime, data = decoded(url)
    with Image.open(io.BytesIO(data)) as sent:
        assert sent.format == "GIF" and getattr(sent, "n_frames", 1) == 1 and sent.size == (240, 160)
    assert mime == "image/gif"
    assert row.status == "ok" and "animated GIF of 3 frames sent as its first frame" in row.engine_reason
