"""`stream: true` answers: SSE with `: OPENROUTER PROCESSING` comments and a final usage chunk."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse

from docrouter.emulator.replies import DONE, PROCESSING, Answer, chunk, delta_choice, native_finish_reason

STREAM_PIECES = 4


def _pieces(content: str) -> list[str]:
    """The content in a few deterministic slices, as a model streams it."""
    if not content:
        return []
    size = math.ceil(len(content) / STREAM_PIECES)
    return [content[i : i + size] for i in range(0, len(content), size)]


async def _keep_alive(seconds: float) -> AsyncIterator[str]:
    """Comments while the answer is slow: what keeps long calls alive behind Cloudflare."""
    while seconds > 0:
        await asyncio.sleep(min(1.0, seconds))
        seconds -= 1.0
        yield PROCESSING


async def _answer_events(answer: Answer, slow_seconds: float) -> AsyncIterator[str]:
    model, generation_id = answer.model, answer.generation_id
    yield PROCESSING
    async for comment in _keep_alive(slow_seconds):
        yield comment
    yield chunk(generation_id, model, [delta_choice({"role": "assistant", "content": ""})])
    for piece in _pieces(answer.content):
        yield chunk(generation_id, model, [delta_choice({"content": piece})])
    if answer.annotations:
        yield chunk(generation_id, model, [delta_choice({"annotations": answer.annotations})])
    native = native_finish_reason(model, answer.finish_reason)
    finish = delta_choice({"content": ""} if answer.error else {}, answer.finish_reason, native)
    if answer.error is not None:  # a mid-stream error ends the stream: no usage chunk, no [DONE]
        yield chunk(generation_id, model, [finish], error=answer.error)
        return
    yield chunk(generation_id, model, [finish])
    yield chunk(generation_id, model, [], usage=answer.usage)
    yield DONE


def streamed_answer(answer: Answer, *, headers: dict[str, str], slow_seconds: float = 0.0) -> StreamingResponse:
    """The answer as an event stream (with `answer.error`: it fails mid-stream, finish_reason "error")."""
    events = _answer_events(answer, slow_seconds)
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)
