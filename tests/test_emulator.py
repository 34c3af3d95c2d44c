"""The emulator speaks OpenRouter's protocol: the documentation's own examples and the openai client work."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from docrouter.emulator import Emulator
from emulator_fixtures import api, data_url, emulator, image_body, image_bytes, pdf_body, text_body, text_pdf
from file_server import Files, serving

pytestmark = pytest.mark.slow  # starts servers, subprocesses or Prefect flows

__all__ = ["api", "emulator"]  # fixtures

requests = pytest.importorskip("requests")  # the documentation's examples use requests
PAGE_ONE = "Bitcoin is a peer-to-peer electronic cash system. It needs no trusted third party."
PAGE_TWO = "Transactions are hashed into an ongoing chain. The longest chain proves the sequence of events."


@pytest.fixture
def document_pdf(tmp_path: Path) -> Path:
    path = tmp_path / "document.pdf"
    path.write_bytes(text_pdf(PAGE_ONE, PAGE_TWO))
    return path


@pytest.fixture
def served() -> Iterator[str]:
    """A loopback file server with the documentation's image and PDF (the emulator downloads URL parts)."""
    files = Files(bodies={"/boardwalk.jpg": image_bytes("image/jpeg", 2560, 1920), "/bitcoin.pdf": text_pdf(PAGE_ONE)})
    with serving(files) as base:
        yield base


def test_doc_example_image_url_is_downloaded_and_answered(emulator: Emulator, served: str) -> None:
    # reference: guides/overview/multimodal/image-understanding.mdx "Using Image URLs", url/key/model filled in
    url = f"{emulator.base_url}/chat/completions"
    headers = {"Authorization": f"Bearer {emulator.api_key}", "Content-Type": "application/json"}
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What's in this image?"},
                {
                    "type": "image_url",
                    "image_url": {"url": f"{served}/boardwalk.jpg"},
                },
            ],
        }
    ]
    payload = {"model": "google/gemini-3-flash-preview", "messages": messages}
    response = requests.post(url, headers=headers, json=payload)
    print(response.json())

    answer = response.json()["choices"][0]["message"]["content"]
    assert response.status_code == 200
    assert "JPEG image of 2560x1920 pixels" in answer and served not in answer
    assert response.json()["usage"]["prompt_tokens"] == 258 + 6  # Gemini: 258 per image, plus the text


def test_doc_example_base64_image(emulator: Emulator, tmp_path: Path) -> None:
    image_path = tmp_path / "image.jpg"
    image_path.write_bytes(image_bytes("image/jpeg", 320, 200))

    def encode_image_to_base64(image_path):
        with open(image_path, "rb") as image_file:
            return base64.b64encode(image_file.read()).decode("utf-8")

    url = f"{emulator.base_url}/chat/completions"
    headers = {"Authorization": f"Bearer {emulator.api_key}", "Content-Type": "application/json"}
    base64_image = encode_image_to_base64(image_path)
    data_url = f"data:image/jpeg;base64,{base64_image}"
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What's in this image?"},
                {"type": "image_url", "image_url": {"url": data_url}},
            ],
        }
    ]
    payload = {"model": "google/gemini-3-flash-preview", "messages": messages}
    response = requests.post(url, headers=headers, json=payload)
    print(response.json())

    assert "A JPEG image of 320x200 pixels." in response.json()["choices"][0]["message"]["content"]


def test_doc_example_pdf_with_plugins(emulator: Emulator, document_pdf: Path) -> None:
    def encode_pdf_to_base64(pdf_path):
        with open(pdf_path, "rb") as pdf_file:
            return base64.b64encode(pdf_file.read()).decode("utf-8")

    url = f"{emulator.base_url}/chat/completions"
    headers = {"Authorization": f"Bearer {emulator.api_key}", "Content-Type": "application/json"}
    pdf_path = str(document_pdf)
    base64_pdf = encode_pdf_to_base64(pdf_path)
    data_url = f"data:application/pdf;base64,{base64_pdf}"
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What are the main points in this document?"},
                {"type": "file", "file": {"filename": "document.pdf", "file_data": data_url}},
            ],
        }
    ]
    plugins = [{"id": "file-parser", "pdf": {"engine": "cloudflare-ai"}}]  # defaults to "mistral-ocr"
    payload = {"model": "google/gemma-3-27b-it", "messages": messages, "plugins": plugins}
    response = requests.post(url, headers=headers, json=payload)
    print(response.json())

    message = response.json()["choices"][0]["message"]
    assert message["content"].startswith("[emulated answer by google/gemma-3-27b-it] Bitcoin is a peer-to-peer")
    file = message["annotations"][0]["file"]
    assert file["name"] == "document.pdf"
    assert file["content"][0] == {"type": "text", "text": '<file name="document.pdf">'}
    assert [part["text"] for part in file["content"][1:]] == [PAGE_ONE, PAGE_TWO, "</file>"]  # as recorded
    assert file["hash"] == hashlib.sha256(base64_pdf.encode()).hexdigest()  # of the base64 text, as recorded
    usage = response.json()["usage"]
    details = usage["cost_details"]
    assert "file_parser" not in usage and "file_parser_cost" not in details  # not in the real API
    # cloudflare-ai is free: cost is exactly the two upstream costs
    assert usage["cost"] == pytest.approx(
        details["upstream_inference_prompt_cost"] + details["upstream_inference_completions_cost"]
    )


def test_doc_example_annotations_follow_up_pays_no_second_ocr_fee(emulator: Emulator, document_pdf: Path) -> None:
    def encode_pdf_to_base64(pdf_path):
        with open(pdf_path, "rb") as pdf_file:
            return base64.b64encode(pdf_file.read()).decode("utf-8")

    url = f"{emulator.base_url}/chat/completions"
    headers = {"Authorization": f"Bearer {emulator.api_key}", "Content-Type": "application/json"}
    pdf_path = str(document_pdf)
    base64_pdf = encode_pdf_to_base64(pdf_path)
    data_url = f"data:application/pdf;base64,{base64_pdf}"
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What are the main points in this document?"},
                {"type": "file", "file": {"filename": "document.pdf", "file_data": data_url}},
            ],
        }
    ]
    payload = {"model": "google/gemma-3-27b-it", "messages": messages}
    response = requests.post(url, headers=headers, json=payload)
    response_data = response.json()
    file_annotations = None
    if response_data.get("choices") and len(response_data["choices"]) > 0:  # noqa: SIM102 (the docs' code, verbatim)
        if "annotations" in response_data["choices"][0]["message"]:
            file_annotations = response_data["choices"][0]["message"]["annotations"]
    if file_annotations:
        follow_up_messages = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What are the main points in this document?"},
                    {"type": "file", "file": {"filename": "document.pdf", "file_data": data_url}},
                ],
            },
            {
                "role": "assistant",
                "content": "The document contains information about...",
                "annotations": file_annotations,
            },
            {"role": "user", "content": "Can you elaborate on the second point?"},
        ]
        follow_up_payload = {"model": "google/gemma-3-27b-it", "messages": follow_up_messages}
        follow_up_response = requests.post(url, headers=headers, json=follow_up_payload)
        print(follow_up_response.json())

    first, second = emulator.records
    assert first.engine == "mistral-ocr" and first.ocr_pages_billed == 2  # gemma has no file input: OCR
    # As recorded, the OCR fee is only inside `cost`: cost minus the two upstream costs.
    assert _fee(response_data["usage"]) == pytest.approx(0.004)
    assert second.ocr_pages_billed == 0 and second.reused_hashes == first.file_hashes
    assert _fee(follow_up_response.json()["usage"]) == pytest.approx(0.0)
    assert emulator.billed_usd == pytest.approx(
        response_data["usage"]["cost"] + follow_up_response.json()["usage"]["cost"]
    )


def test_doc_example_pdf_url_is_downloaded_and_parsed(emulator: Emulator, served: str) -> None:
    headers = {"Authorization": f"Bearer {emulator.api_key}", "Content-Type": "application/json"}
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What are the main points in this document?"},
                {"type": "file", "file": {"filename": "document.pdf", "file_data": f"{served}/bitcoin.pdf"}},
            ],
        }
    ]
    plugins = [{"id": "file-parser", "pdf": {"engine": "mistral-ocr"}}]
    payload = {"model": "anthropic/claude-sonnet-4", "messages": messages, "plugins": plugins}
    response = requests.post(f"{emulator.base_url}/chat/completions", headers=headers, json=payload)

    text = response.json()["choices"][0]["message"]["annotations"][0]["file"]["content"][1]["text"]
    assert "peer-to-peer electronic cash" in text


def test_openai_client_completes_and_reports_usage(emulator: Emulator) -> None:
    with openai.OpenAI(base_url=emulator.base_url, api_key=emulator.api_key, max_retries=0) as client:
        completion = client.chat.completions.create(
            model="anthropic/claude-haiku-4.5",
            messages=[{"role": "user", "content": "Hello there. How are you?"}],
            max_tokens=50,
        )
    assert completion.id.startswith("gen-")
    assert (
        completion.choices[0].message.content
        == "[emulated answer by anthropic/claude-haiku-4.5] Hello there. How are you?"
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens == 7
    assert completion.model_extra["provider"] == "Anthropic"


def test_openai_client_streams_with_processing_comments_and_a_usage_chunk(emulator: Emulator) -> None:
    with openai.OpenAI(base_url=emulator.base_url, api_key=emulator.api_key, max_retries=0) as client:
        stream = client.chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=[{"role": "user", "content": "Stream this sentence. And this one."}],
            max_tokens=100,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[emulated answer by openai/gpt-4o-mini] Stream this sentence. And this one."
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.model_extra["cost"] == pytest.approx(emulator.billed_usd)


def test_raw_stream_starts_with_an_openrouter_processing_comment(api: httpx.Client) -> None:
    with api.stream("POST", "/chat/completions", json={**text_body("Hi."), "stream": True}) as response:
        lines = [line for line in response.iter_lines() if line]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert lines[0] == ": OPENROUTER PROCESSING"
    assert lines[-1] == "data: [DONE]"
    assert "usage" in json.loads(lines[-2].removeprefix("data: "))


def test_response_has_the_full_documented_shape(api: httpx.Client) -> None:
    response = api.post("/chat/completions", json=text_body("One. Two."))
    body = response.json()
    assert response.headers["x-generation-id"] == body["id"]
    assert set(body) >= {"id", "provider", "model", "object", "created", "choices", "usage"}
    assert set(body["choices"][0]) >= {"finish_reason", "native_finish_reason", "index", "message", "logprobs"}
    assert set(body["choices"][0]["message"]) >= {"role", "content", "refusal", "reasoning", "annotations"}
    assert set(body["usage"]) >= {"prompt_tokens", "completion_tokens", "total_tokens", "cost", "cost_details"}
    assert body["id"].count("-") == 2 and len(body["id"].split("-")[2]) == 20


def test_answers_are_deterministic(api: httpx.Client) -> None:
    body = pdf_body(text_pdf(PAGE_ONE), model="openai/gpt-4o-mini", engine="cloudflare-ai")
    first, second = (api.post("/chat/completions", json=body).json() for _ in range(2))
    assert first["choices"][0]["message"] == second["choices"][0]["message"]
    assert first["usage"] == second["usage"]


def test_max_tokens_truncates_with_finish_reason_length(api: httpx.Client) -> None:
    body = pdf_body(text_pdf(PAGE_ONE), model="openai/gpt-4o-mini", engine="cloudflare-ai", max_tokens=5)
    result = api.post("/chat/completions", json=body).json()
    assert result["choices"][0]["finish_reason"] == "length"
    assert len(result["choices"][0]["message"]["content"]) == 20
    assert result["usage"]["completion_tokens"] == 5


def test_v1_prefix_serves_the_same_api(emulator: Emulator) -> None:
    headers = {"Authorization": f"Bearer {emulator.api_key}"}
    response = httpx.post(f"{emulator.root_url}/v1/chat/completions", json=text_body(), headers=headers)
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]


def test_unknown_path_answers_json_404(api: httpx.Client) -> None:
    response = api.get("/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == 404


def test_data_url_with_an_image_in_a_file_part_is_rejected(api: httpx.Client) -> None:
    part = {"type": "file", "file": {"filename": "x.png", "file_data": data_url("image/png", image_bytes())}}
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": [part]}]}
    response = api.post("/chat/completions", json=body)
    assert response.status_code == 400 and "must be PDFs" in response.json()["error"]["message"]


def test_image_url_request_body_helper_round_trips(api: httpx.Client) -> None:
    response = api.post("/chat/completions", json=image_body(data_url("image/webp", image_bytes("image/webp", 30, 20))))
    assert "A WEBP image of 30x20 pixels." in response.json()["choices"][0]["message"]["content"]


def test_models_are_paginated_with_decimal_string_prices(emulator: Emulator) -> None:
    pages, url = [], f"{emulator.root_url}/api/v1/models?limit=5"
    while url:
        pages.append(httpx.get(url).json())
        following = pages[-1]["links"]["next"]
        url = f"{emulator.root_url}{following}" if following else ""
    models = [m for page in pages for m in page["data"]]
    assert [len(p["data"]) for p in pages] == [5, 5, 2] and pages[0]["total_count"] == 12
    assert all(isinstance(v, str) for m in models for v in m["pricing"].values())
    assert "file" in next(m for m in models if m["id"] == "openai/gpt-4o-mini")["architecture"]["input_modalities"]
    served = {m["id"] for m in models}
    snapshot = {m["id"] for m in json.loads((Path(__file__).parents[1] / "data" / "models.json").read_text())["data"]}
    assert snapshot <= served and len(served) == 12


def test_models_filter_by_input_modalities(emulator: Emulator) -> None:
    models = httpx.get(f"{emulator.base_url}/models", params={"input_modalities": "file"}).json()["data"]
    assert models and all("file" in m["architecture"]["input_modalities"] for m in models)


@pytest.mark.parametrize(
    ("header", "message"), [(None, "No auth credentials found"), ("Bearer sk-or-v1-wrong", "User not found.")]
)
def test_requests_without_the_key_are_401(emulator: Emulator, header: str | None, message: str) -> None:
    headers = {"Authorization": header} if header else {}
    response = httpx.post(f"{emulator.base_url}/chat/completions", json=text_body(), headers=headers)
    assert response.status_code == 401 and response.json()["error"]["message"] == message
    assert httpx.get(f"{emulator.base_url}/key", headers=headers).status_code == 401


def test_generation_reports_the_calls_total_cost(api: httpx.Client) -> None:
    answer = api.post("/chat/completions", json=text_body("Cost me.")).json()
    data = api.get("/generation", params={"id": answer["id"]}).json()["data"]
    assert data["id"] == answer["id"] and data["total_cost"] == answer["usage"]["cost"]
    assert data["tokens_prompt"] == answer["usage"]["prompt_tokens"] and data["provider_name"] == "OpenAI"
    assert api.get("/generation", params={"id": "gen-0-unknown"}).status_code == 404


def test_key_auth_key_and_credits_report_the_balance() -> None:
    with Emulator(credits_usd=2.0) as emu, httpx.Client(base_url=emu.base_url) as client:
        client.headers["Authorization"] = f"Bearer {emu.api_key}"
        client.post("/chat/completions", json=text_body())
        key = client.get("/key").json()["data"]
        legacy = client.get("/auth/key").json()["data"]
        credits = client.get("/credits").json()["data"]
    assert key["limit"] == 2.0 and key["limit_remaining"] == pytest.approx(2.0 - emu.billed_usd)
    assert key["usage"] == pytest.approx(emu.billed_usd) and emu.api_key not in json.dumps(key)
    assert set(legacy) == {"label", "usage", "limit", "limit_remaining", "is_free_tier", "rate_limit"}
    assert credits == {"total_credits": 2.0, "total_usage": emu.billed_usd}


def test_stop_closes_the_port_and_ends_the_thread() -> None:
    emu = Emulator().start()
    base_url = emu.base_url
    emu.stop()
    emu.stop()  # twice is harmless
    assert not [t for t in threading.enumerate() if t.name == "docrouter-emulator"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/models")


def test_image_detail_is_accepted_or_rejected_by_the_documented_enum(api: httpx.Client) -> None:
    body = image_body(data_url("image/png", image_bytes()))
    body["messages"][0]["content"][1]["image_url"]["detail"] = "low"
    assert api.post("/chat/completions", json=body).status_code == 200
    body["messages"][0]["content"][1]["image_url"]["detail"] = "ultra"
    assert api.post("/chat/completions", json=body).status_code == 400


def test_catalogue_can_be_exactly_the_snapshot() -> None:
    with Emulator(doc_models=False) as emu:
        served = httpx.get(f"{emu.base_url}/models").json()
    snapshot = json.loads((Path(__file__).parents[1] / "data" / "models.json").read_text())
    assert served["data"] == snapshot["data"] and served["total_count"] == len(snapshot["data"])


def _fee(usage: dict) -> float:
    """What `usage.cost` holds beyond the upstream token costs: the file parser's fee (recorded 2025-12, 2026-08)."""
    details = usage["cost_details"]
    return usage["cost"] - details["upstream_inference_prompt_cost"] - details["upstream_inference_completions_cost"]
