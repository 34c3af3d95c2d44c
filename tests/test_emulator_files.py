"""Files and images through the emulator: engines, annotations and their reuse, validation, billing."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math

import httpx
import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter

from docrouter.emulator import Emulator, Faults
from docrouter.emulator.media import image_size, sniff_mime
from emulator_fixtures import (
    api,
    data_url,
    emulator,
    image_body,
    image_bytes,
    pdf_body,
    scan_with_ocr_layer,
    scanned_pdf,
    text_body,
    text_pdf,
)

pytestmark = pytest.mark.slow  # starts servers, subprocesses or Prefect flows

__all__ = ["api", "emulator"]  # fixtures

TEXT_ONLY = "meta-llama/llama-3.3-70b-instruct"
GPT = "openai/gpt-4o-mini"  # reads files natively; $0.15 / $0.60 per million tokens
SENTENCES = "The archive holds tax records from 1950. Each box has an index card. Scans are kept at 300 dpi."


def chat(client: httpx.Client, body: dict) -> dict:
    response = client.post("/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def parsed_texts(result: dict) -> list[str]:
    """The parsed text parts, between the recorded `<file name=...>` and `</file>` parts."""
    content = result["choices"][0]["message"]["annotations"][0]["file"]["content"]
    assert content[0]["text"].startswith("<file name=") and content[-1] == {"type": "text", "text": "</file>"}
    return [part["text"] for part in content[1:-1]]


def parse_fee(usage: dict) -> float:
    """The file parser's fee: as recorded, only inside `cost`, beyond the two upstream token costs."""
    details = usage["cost_details"]
    return usage["cost"] - details["upstream_inference_prompt_cost"] - details["upstream_inference_completions_cost"]


def test_mistral_ocr_on_a_scan_says_the_page_is_an_image_and_bills_each_page(api: httpx.Client) -> None:
    result = chat(api, pdf_body(scanned_pdf(3), model=TEXT_ONLY, engine="mistral-ocr"))
    assert parsed_texts(result) == [f"[page {n}: image without a text layer]" for n in (1, 2, 3)]
    assert parse_fee(result["usage"]) == pytest.approx(0.006)
    assert "file_parser" not in result["usage"] and "file_parser_cost" not in result["usage"]["cost_details"]


def test_mistral_ocr_reads_an_invisible_ocr_layer(api: httpx.Client) -> None:
    result = chat(api, pdf_body(scan_with_ocr_layer("Recovered by OCR. Second line."), model=TEXT_ONLY))
    assert parsed_texts(result) == ["Recovered by OCR. Second line."]


def test_cloudflare_ai_keeps_only_text_layers_and_is_free(api: httpx.Client, emulator: Emulator) -> None:
    result = chat(api, pdf_body(scanned_pdf(2), model=TEXT_ONLY, engine="cloudflare-ai"))
    assert parsed_texts(result) == []
    assert result["choices"][0]["message"]["content"].endswith("No readable text was provided.")
    assert emulator.records[0].ocr_pages_billed == 0


def test_native_engine_gives_no_annotations_and_bills_pages_as_tokens(api: httpx.Client) -> None:
    result = chat(api, pdf_body(text_pdf("Page one.", "Page two."), model="google/gemini-2.5-flash"))
    assert result["choices"][0]["message"]["annotations"] == []
    assert result["usage"]["prompt_tokens"] == 2 * 258 + math.ceil(len("Summarise this document.") / 4)
    assert parse_fee(result["usage"]) == pytest.approx(0.0)


def test_native_claude_pages_cost_more_with_text_than_as_images(api: httpx.Client) -> None:
    mixed = PdfWriter()
    for source in (text_pdf("Text page."), scanned_pdf(1)):
        mixed.append(PdfReader(io.BytesIO(source)))
    out = io.BytesIO()
    mixed.write(out)
    result = chat(api, pdf_body(out.getvalue(), model="anthropic/claude-haiku-4.5"))
    assert result["usage"]["prompt_tokens"] == 2200 + 1600 + math.ceil(len("Summarise this document.") / 4)


def test_default_engine_is_native_with_file_input_else_mistral_ocr(api: httpx.Client, emulator: Emulator) -> None:
    chat(api, pdf_body(text_pdf("x"), model=GPT))
    chat(api, pdf_body(text_pdf("x"), model=TEXT_ONLY))
    assert [r.engine for r in emulator.records] == ["native", "mistral-ocr"]


def test_native_forced_on_a_model_without_file_input_is_no_endpoint(api: httpx.Client) -> None:
    response = api.post("/chat/completions", json=pdf_body(text_pdf("x"), model=TEXT_ONLY, engine="native"))
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No endpoints found that support file input"


def test_image_to_a_text_only_model_is_no_endpoint(api: httpx.Client) -> None:
    response = api.post("/chat/completions", json=image_body(data_url("image/png", image_bytes()), model=TEXT_ONLY))
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No endpoints found that support image input"


def test_unknown_model_is_400_model_not_found(api: httpx.Client) -> None:
    response = api.post("/chat/completions", json=text_body(model="nobody/nothing"))
    assert response.status_code == 400
    assert response.json()["error"]["availability"]["code"] == "model_not_found"


def test_unknown_engine_is_400(api: httpx.Client) -> None:
    response = api.post("/chat/completions", json=pdf_body(text_pdf("x"), model=GPT, engine="magic"))
    assert response.status_code == 400 and "unknown file-parser engine" in response.json()["error"]["message"]


def test_declared_mime_must_match_the_bytes(api: httpx.Client) -> None:
    response = api.post("/chat/completions", json=image_body(data_url("image/png", image_bytes("image/jpeg"))))
    assert response.status_code == 400
    assert "says image/png but the bytes are JPEG" in response.json()["error"]["message"]


def test_pdf_data_url_holding_png_bytes_is_rejected(api: httpx.Client) -> None:
    body = pdf_body(text_pdf("x"), model=GPT)
    body["messages"][0]["content"][1]["file"]["file_data"] = data_url("application/pdf", image_bytes())
    response = api.post("/chat/completions", json=body)
    assert response.status_code == 400 and "bytes are PNG" in response.json()["error"]["message"]


def test_unsupported_image_type_and_bad_base64_are_rejected(api: httpx.Client) -> None:
    tiff = api.post("/chat/completions", json=image_body("data:image/tiff;base64,SUkqAA=="))
    broken = api.post("/chat/completions", json=image_body("data:image/png;base64,%%%"))
    assert tiff.status_code == 400 and tiff.json()["error"]["metadata"]["error_type"] == "unsupported_image_format"
    assert broken.status_code == 400 and "not valid base64" in broken.json()["error"]["message"]


def test_image_over_the_pixel_limit_is_400_image_too_large(api: httpx.Client) -> None:
    png = bytearray(image_bytes("image/png", 10, 10))
    png[16:24] = (12000).to_bytes(4, "big") + (9000).to_bytes(4, "big")  # claims 108 megapixels
    response = api.post("/chat/completions", json=image_body(data_url("image/png", bytes(png))))
    assert response.status_code == 400
    assert response.json()["error"]["metadata"]["error_type"] == "image_too_large"


def test_body_over_the_size_limit_is_413() -> None:
    with Emulator(max_body_bytes=20_000) as emu:
        body = text_body("x" * 30_000)
        response = httpx.post(
            f"{emu.base_url}/chat/completions", json=body, headers={"Authorization": f"Bearer {emu.api_key}"}
        )
    assert response.status_code == 413 and emu.records[0].status == 413


def test_encrypted_and_corrupt_pdfs_fail_to_parse(api: httpx.Client) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf("secret"))))
    writer.encrypt("user-password", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    encrypted = api.post("/chat/completions", json=pdf_body(out.getvalue(), model=TEXT_ONLY))
    corrupt = api.post("/chat/completions", json=pdf_body(b"%PDF-1.7\nnot really a pdf", model=TEXT_ONLY))
    assert encrypted.status_code == 400 and "encrypted" in encrypted.json()["error"]["message"]
    assert corrupt.status_code == 400 and corrupt.json()["error"]["message"].startswith("Failed to parse doc.pdf")


def test_annotations_for_another_file_do_not_skip_the_parse(api: httpx.Client, emulator: Emulator) -> None:
    first = chat(api, pdf_body(text_pdf(SENTENCES), model=TEXT_ONLY))
    body = pdf_body(text_pdf("A different document."), model=TEXT_ONLY)
    body["messages"].append(
        {"role": "assistant", "content": "ok", "annotations": first["choices"][0]["message"]["annotations"]}
    )
    body["messages"].append({"role": "user", "content": "And now?"})
    chat(api, body)
    assert [r.ocr_pages_billed for r in emulator.records] == [1, 1]
    assert emulator.records[1].reused_hashes == ()


def test_retry_with_annotations_from_a_502_pays_no_second_fee() -> None:
    pdf = text_pdf(SENTENCES)
    with Emulator(faults=Faults(fail_first_attempts=1, fail_first_kind="502_with_annotations")) as emu:
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        with httpx.Client(base_url=emu.base_url, headers=headers) as client:
            failed = client.post("/chat/completions", json=pdf_body(pdf, model=TEXT_ONLY))
            retry = pdf_body(pdf, model=TEXT_ONLY)
            annotations = failed.json()["error"]["metadata"]["file_annotations"]
            retry["messages"] += [{"role": "assistant", "content": "...", "annotations": annotations}]
            answer = chat(client, retry)
    recorded_rule = hashlib.sha256(base64.b64encode(pdf)).hexdigest()  # of the base64 text, not of the bytes
    assert failed.status_code == 502 and annotations[0]["file"]["hash"] == recorded_rule
    assert [r.ocr_pages_billed for r in emu.records] == [1, 0]
    assert emu.billed_usd == pytest.approx(0.002 + answer["usage"]["cost"])


def test_cost_is_tokens_at_catalogue_prices_plus_the_ocr_fee() -> None:
    with Emulator(ocr_fee_per_page=0.01) as emu:
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        with httpx.Client(base_url=emu.base_url, headers=headers) as client:
            result = chat(client, pdf_body(text_pdf(SENTENCES, "Second page."), model=TEXT_ONLY, engine="mistral-ocr"))
            generation = client.get("/generation", params={"id": result["id"]}).json()["data"]
    usage = result["usage"]
    expected = usage["prompt_tokens"] * 0.00000013 + usage["completion_tokens"] * 0.0000004 + 2 * 0.01
    assert usage["cost"] == pytest.approx(expected)
    assert generation["total_cost"] == usage["cost"] and emu.billed_usd == pytest.approx(usage["cost"])


def test_prompt_tokens_count_text_and_parsed_content_at_four_characters(api: httpx.Client) -> None:
    result = chat(api, pdf_body(text_pdf(SENTENCES), model=TEXT_ONLY, engine="cloudflare-ai"))
    wrappers = len('<file name="doc.pdf">') + len("</file>")  # the recorded parts around the parsed text
    expected = math.ceil(len("Summarise this document.") / 4) + math.ceil((wrappers + len(SENTENCES)) / 4)
    assert result["usage"]["prompt_tokens"] == expected


@pytest.mark.parametrize(("size", "tokens"), [((64, 48), 5), ((2000, 2000), 1568)])
def test_image_tokens_scale_with_pixels_up_to_a_cap(api: httpx.Client, size: tuple[int, int], tokens: int) -> None:
    result = chat(api, image_body(data_url("image/png", image_bytes("image/png", *size))))
    assert result["usage"]["prompt_tokens"] == tokens + math.ceil(len("What is in this image?") / 4)


@pytest.mark.parametrize(
    ("mime", "options"),
    [
        ("image/png", {}),
        ("image/gif", {}),
        ("image/jpeg", {}),
        ("image/jpeg", {"progressive": True}),
        ("image/webp", {}),
        ("image/webp", {"lossless": True}),
        ("image/webp", {"mode": "RGBA"}),  # translucent: the extended (VP8X) header
    ],
)
def test_image_size_reads_headers_of_every_format(mime: str, options: dict) -> None:
    mode = options.pop("mode", "RGB")
    out = io.BytesIO()
    Image.new(mode, (123, 45), (10, 20, 30, 128)[: len(mode)]).save(out, mime.split("/")[1].upper(), **options)
    assert sniff_mime(out.getvalue()) == mime
    assert image_size(out.getvalue(), mime) == (123, 45)


def test_text_with_lone_surrogates_is_answered_as_valid_utf8(api: httpx.Client) -> None:
    raw = json.dumps(text_body("Broken font map: \udb62 here.")).encode()  # JSON escapes the lone surrogate
    response = api.post("/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert "Broken font map: ? here." in response.json()["choices"][0]["message"]["content"]


def test_ocr_annotations_may_carry_page_images_and_come_back_without_a_second_fee() -> None:
    with Emulator(faults=Faults(ocr_image_parts=True)) as emu:
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        with httpx.Client(base_url=emu.base_url, headers=headers) as client:
            body = pdf_body(scanned_pdf(2), model=TEXT_ONLY, engine="mistral-ocr")
            first = chat(client, body)
            annotations = first["choices"][0]["message"]["annotations"]
            body["messages"] += [{"role": "assistant", "content": "...", "annotations": annotations}]
            again = chat(client, body)
    content = annotations[0]["file"]["content"]
    images = [part for part in content if part["type"] == "image_url"]
    assert len(images) == 2 and all(p["image_url"]["url"].startswith("data:image/png;base64,") for p in images)
    assert content[-1] == {"type": "text", "text": "</file>"}
    assert parse_fee(first["usage"]) == pytest.approx(0.004) and parse_fee(again["usage"]) == pytest.approx(0.0)
