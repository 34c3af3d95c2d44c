"""The model catalogue: lenient parsing of GET /models, a TTL cache, and fallbacks to cache then snapshot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from docrouter.catalogue import (
    SNAPSHOT_CANDIDATES,
    Catalogue,
    ModelInfo,
    cache_name,
    default_snapshot,
    load_catalogue,
    parse_models,
)
from docrouter.errors import ConfigError, ConnectionFailed, ServerError

# reference/openrouter-api.md §4.5, verbatim (REC-2025, live 2025-08-06; description shortened there).
GPT_41_MINI_2025 = json.loads("""
{
  "id": "openai/gpt-4.1-mini",
  "canonical_slug": "openai/gpt-4.1-mini-2025-04-14",
  "hugging_face_id": "",
  "name": "OpenAI: GPT-4.1 Mini",
  "created": 1744651381,
  "description": "GPT-4.1 Mini is a mid-sized model delivering performance competitive with GPT-4o …",
  "context_length": 1047576,
  "architecture": {"modality": "text+image->text", "input_modalities": ["image", "text", "file"],
                   "output_modalities": ["text"], "tokenizer": "GPT", "instruct_type": null},
  "pricing": {"prompt": "0.0000004", "completion": "0.0000016", "request": "0", "image": "0", "audio": "0",
              "web_search": "0", "internal_reasoning": "0", "input_cache_read": "0.0000001"},
  "top_provider": {"context_length": 1047576, "max_completion_tokens": 32768, "is_moderated": true},
  "per_request_limits": null,
  "supported_parameters": ["frequency_penalty", "logit_bias", "logprobs", "max_tokens", "presence_penalty",
    "response_format", "seed", "stop", "structured_outputs", "temperature", "tool_choice", "tools",
    "top_logprobs", "top_p", "web_search_options"]
}
""")

# reference/openrouter-api.md §4.5, verbatim (REC-2026, live 2026-08-04): zero prices omitted, overrides.
CLAUDE_SONNET_4_2026 = json.loads("""
{
  "id": "anthropic/claude-sonnet-4",
  "canonical_slug": "anthropic/claude-4-sonnet-20250522",
  "hugging_face_id": "",
  "name": "Anthropic: Claude Sonnet 4",
  "created": 1747930371,
  "description": "Claude Sonnet 4 significantly enhances the capabilities of its predecessor, Sonnet 3.7, ...",
  "context_length": 1000000,
  "architecture": {"modality": "text+image+file->text", "input_modalities": ["image", "text", "file"],
                   "output_modalities": ["text"], "tokenizer": "Claude", "instruct_type": null},
  "pricing": {"prompt": "0.000003", "completion": "0.000015", "web_search": "0.01",
              "input_cache_read": "0.0000003", "input_cache_write": "0.00000375", "input_cache_write_1h": "0.000006",
              "overrides": [{"min_prompt_tokens": 200000, "prompt": "0.000006", "completion": "0.0000225",
                             "input_cache_read": "0.0000006", "input_cache_write": "0.0000075",
                             "input_cache_write_1h": "0.000012"}]},
  "top_provider": {"context_length": 200000, "max_completion_tokens": 64000, "is_moderated": true},
  "per_request_limits": null,
  "supported_parameters": ["include_reasoning", "max_tokens", "reasoning", "stop", "temperature",
                           "tool_choice", "tools", "top_k", "top_p"],
  "default_parameters": {"temperature": null, "top_p": null, "top_k": null, "frequency_penalty": null,
                         "presence_penalty": null, "repetition_penalty": null},
  "supported_voices": null,
  "knowledge_cutoff": "2025-01-31",
  "expiration_date": null,
  "links": {"details": "/api/v1/models/anthropic/claude-4-sonnet-20250522/endpoints"},
  "benchmarks": {"design_arena": [{"arena": "models", "category": "3d", "elo": 1195, "win_rate": 57.8, "rank": 46}],
                 "artificial_analysis": {"intelligence_index": 28.9, "coding_index": 37.6, "agentic_index": 16.6}},
  "reasoning": {"mandatory": false}
}
""")

SNAPSHOT = SNAPSHOT_CANDIDATES[0]


class FakeModelsApi:
    """GET /models in pages of `per_page`, recording each (offset, limit) asked for."""

    def __init__(self, models: list[dict[str, Any]], per_page: int = 2, fail: Exception | None = None) -> None:
        self.models, self.per_page, self.fail = models, per_page, fail
        self.calls: list[tuple[int, int]] = []

    def __call__(self, offset: int, limit: int) -> Any:
        self.calls.append((offset, limit))
        if self.fail is not None:
            raise self.fail
        page = self.models[offset : offset + self.per_page]
        more = offset + self.per_page < len(self.models)
        next_link = f"/api/v1/models?offset={offset + self.per_page}" if more else None
        return {"data": page, "total_count": len(self.models), "links": {"next": next_link}}


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def snapshot_models() -> list[dict[str, Any]]:
    return json.loads(SNAPSHOT.read_text())["data"]


def test_2025_example_parses_prices_capabilities_and_limits() -> None:
    model = parse_models({"data": [GPT_41_MINI_2025]})["openai/gpt-4.1-mini"]
    assert model == ModelInfo(
        id="openai/gpt-4.1-mini",
        input_modalities=frozenset({"image", "text", "file"}),
        prompt_price=0.0000004,
        completion_price=0.0000016,
        context_length=1047576,
        max_completion_tokens=32768,
        tokenizer="GPT",
        structured_outputs=True,  # listed in its supported_parameters
        top_context_length=1047576,
    )
    assert model.takes_files and model.takes_images
    without = {**GPT_41_MINI_2025, "supported_parameters": ["tools"]}
    assert not parse_models({"data": [without]})[model.id].structured_outputs
    assert not model.reasoning and not model.reasoning_mandatory and model.overrides == ()


def test_2026_example_with_omitted_zero_prices_and_overrides_uses_the_default_prices() -> None:
    payload = {"data": [CLAUDE_SONNET_4_2026], "total_count": 1, "links": {"next": None}}
    model = parse_models(payload)["anthropic/claude-sonnet-4"]
    assert (model.prompt_price, model.completion_price) == (0.000003, 0.000015)
    assert (model.image_price, model.request_price) == (0.0, 0.0)
    assert model.max_completion_tokens == 64000 and model.tokenizer == "Claude"


def test_2026_example_reads_reasoning_the_served_context_and_the_long_prompt_override() -> None:
    model = parse_models({"data": [CLAUDE_SONNET_4_2026]})["anthropic/claude-sonnet-4"]
    assert model.reasoning and not model.reasoning_mandatory  # "reasoning": {"mandatory": false}, listed
    assert (model.context_length, model.top_context_length, model.usable_context) == (1000000, 200000, 200000)
    assert model.prices_at(199_999) == (0.000003, 0.000015)
    assert model.prices_at(200_000) == (0.000006, 0.0000225)  # the override: 2x prompt, 1.5x completion


def test_mandatory_reasoning_and_windowed_overrides() -> None:
    item = {
        "id": "x/thinker",
        "reasoning": {"mandatory": True},
        "pricing": {
            "prompt": "0.000001",
            "completion": "0.000002",
            "overrides": [
                {"utc_start": "2026-01-01T00:00:00Z", "utc_end": "2026-01-02T00:00:00Z", "prompt": "0.5"},
                {"min_prompt_tokens": 1000, "prompt": "0.000004"},
                "junk",
            ],
        },
    }
    model = parse_models({"data": [item]})["x/thinker"]
    assert model.reasoning and model.reasoning_mandatory
    assert model.prices_at(999) == (0.000001, 0.000002)
    assert model.prices_at(5000) == (0.000004, 0.000002)  # a key the override omits keeps the default price
    assert len(model.overrides) == 1  # time windows are not modelled; junk is skipped


def test_prices_as_numbers_missing_or_garbage_are_read_leniently() -> None:
    item = {
        "id": "x/lenient",
        "architecture": {"input_modalities": ["TEXT", "Image"]},
        "pricing": {"prompt": 0.000001, "completion": "oops", "request": "-1", "image": None, "discount": 0.25},
        "context_length": None,
        "brand_new_field": {"anything": True},
    }
    model = parse_models({"data": [item]})["x/lenient"]
    assert model.input_modalities == frozenset({"text", "image"})
    assert (model.prompt_price, model.completion_price, model.request_price, model.image_price) == (1e-6, 0, 0, 0)
    assert model.discount == 0.25 and model.context_length == 0 and model.max_completion_tokens is None


def test_modality_string_is_used_only_when_the_array_is_missing() -> None:
    item = {"id": "x/old", "architecture": {"modality": "text+image->text"}, "pricing": {}}
    assert parse_models([item])["x/old"].input_modalities == frozenset({"text", "image"})
    assert parse_models([{"id": "x/bare"}])["x/bare"].input_modalities == frozenset({"text"})


def test_entries_without_an_id_and_bodies_without_data_are_skipped() -> None:
    assert parse_models({"data": [{"name": "no id"}, "junk", {"id": ""}]}) == {}
    assert parse_models({"error": {"code": 500}}) == {}
    assert parse_models("not json at all") == {}


def test_bundled_snapshot_parses_every_model_with_its_capabilities() -> None:
    models = parse_models(json.loads(SNAPSHOT.read_text()))
    assert len(models) == 9
    assert models["google/gemini-2.5-flash"].takes_files
    assert not models["mistralai/mistral-small-3.2-24b-instruct"].takes_files
    assert models["mistralai/mistral-small-3.2-24b-instruct"].takes_images
    assert models["meta-llama/llama-3.3-70b-instruct"].input_modalities == frozenset({"text"})
    assert all(m.prompt_price > 0 and m.completion_price > 0 for m in models.values())


def test_default_snapshot_is_found_beside_the_package() -> None:
    assert default_snapshot() == SNAPSHOT and SNAPSHOT.is_file()


def test_unknown_model_is_a_config_error_naming_close_matches() -> None:
    catalogue = Catalogue(parse_models(json.loads(SNAPSHOT.read_text())), "snapshot")
    with pytest.raises(ConfigError) as caught:
        catalogue.get("gemini-2.5-flash")
    assert "google/gemini-2.5-flash" in caught.value.message
    assert "\n" not in caught.value.message
    with pytest.raises(ConfigError, match="openai/gpt-4o-mini"):
        catalogue.get("openai/gpt-4o-mnii")


def test_offline_uses_the_snapshot_only(tmp_path: Path) -> None:
    catalogue = load_catalogue(None, cache_path=tmp_path / "models.json")
    assert catalogue.source == "snapshot" and len(catalogue.models) == 9
    assert not (tmp_path / "models.json").exists()


def test_pagination_is_followed_until_next_is_null(tmp_path: Path) -> None:
    api = FakeModelsApi(snapshot_models(), per_page=4)
    catalogue = load_catalogue(api, cache_path=tmp_path / "models.json", now=Clock())
    assert catalogue.source == "api" and len(catalogue.models) == 9
    assert [offset for offset, _ in api.calls] == [0, 4, 8]


def test_server_ignoring_offset_does_not_loop_forever(tmp_path: Path) -> None:
    def same_page(offset: int, limit: int) -> dict[str, Any]:
        return {"data": snapshot_models()[:2], "links": {"next": "/api/v1/models?offset=2"}}

    catalogue = load_catalogue(same_page, cache_path=tmp_path / "models.json", now=Clock())
    assert catalogue.source == "api" and len(catalogue.models) == 2


def test_fresh_cache_is_used_without_fetching(tmp_path: Path) -> None:
    clock, cache = Clock(), tmp_path / "cache" / "models.json"
    load_catalogue(FakeModelsApi(snapshot_models()), cache_path=cache, now=clock)
    clock.t += 3599
    again = FakeModelsApi(snapshot_models())
    catalogue = load_catalogue(again, cache_path=cache, ttl_s=3600, now=clock)
    assert catalogue.source == "cache" and again.calls == [] and len(catalogue.models) == 9


def test_expired_cache_is_refreshed_from_the_api(tmp_path: Path) -> None:
    clock, cache = Clock(), tmp_path / "models.json"
    load_catalogue(FakeModelsApi(snapshot_models()[:3]), cache_path=cache, now=clock)
    clock.t += 3601
    catalogue = load_catalogue(FakeModelsApi(snapshot_models()), cache_path=cache, ttl_s=3600, now=clock)
    assert catalogue.source == "api" and len(catalogue.models) == 9
    assert len(json.loads(cache.read_text())["payload"]["data"]) == 9


def test_fetch_failure_falls_back_to_the_stale_cache(tmp_path: Path) -> None:
    clock, cache = Clock(), tmp_path / "models.json"
    load_catalogue(FakeModelsApi(snapshot_models()[:3]), cache_path=cache, now=clock)
    clock.t += 7200
    down = FakeModelsApi([], fail=ConnectionFailed("connection refused"))
    catalogue = load_catalogue(down, cache_path=cache, ttl_s=3600, now=clock)
    assert catalogue.source == "cache" and len(catalogue.models) == 3
    assert "connection refused" in catalogue.note and "2.0 h ago" in catalogue.note


def test_fetch_failure_without_cache_falls_back_to_the_snapshot(tmp_path: Path) -> None:
    down = FakeModelsApi([], fail=ServerError("HTTP 503"))
    catalogue = load_catalogue(down, cache_path=tmp_path / "models.json", now=Clock())
    assert catalogue.source == "snapshot" and "HTTP 503" in catalogue.note and len(catalogue.models) == 9


@pytest.mark.parametrize(
    "garbage",
    [["a", "list"], {"error": {"code": 502}}, {"data": []}, {"data": [{"no": "id"}]}, "<html>"],
    ids=["list", "error-body", "empty", "no-ids", "html"],
)
def test_garbage_from_the_api_falls_back_to_the_snapshot(tmp_path: Path, garbage: Any) -> None:
    catalogue = load_catalogue(lambda o, n: garbage, cache_path=tmp_path / "models.json", now=Clock())
    assert catalogue.source == "snapshot"
    assert not (tmp_path / "models.json").exists()


def test_corrupt_cache_is_ignored(tmp_path: Path) -> None:
    cache = tmp_path / "models.json"
    cache.write_text('{"fetched_at": 1, "payl')
    catalogue = load_catalogue(FakeModelsApi(snapshot_models()), cache_path=cache, now=Clock())
    assert catalogue.source == "api"
    assert json.loads(cache.read_text())["fetched_at"] == Clock()()


def test_no_api_no_cache_no_snapshot_is_a_config_error(tmp_path: Path) -> None:
    down = FakeModelsApi([], fail=ConnectionFailed("connection refused"))
    with pytest.raises(ConfigError, match="no model catalogue: GET /models failed"):
        load_catalogue(down, cache_path=tmp_path / "m.json", snapshot_path=tmp_path / "missing.json")


def test_unwritable_cache_still_gives_the_api_list_with_a_note(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    catalogue = load_catalogue(FakeModelsApi(snapshot_models()), cache_path=blocker / "models.json", now=Clock())
    assert catalogue.source == "api" and "could not be cached" in catalogue.note


def test_cache_name_differs_per_base_url() -> None:
    assert cache_name("https://openrouter.ai/api/v1") == "models-openrouter-ai-api-v1.json"
    assert cache_name("http://127.0.0.1:8123/api/v1") != cache_name("http://127.0.0.1:8124/api/v1")
