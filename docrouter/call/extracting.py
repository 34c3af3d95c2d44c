"""Answers checked against --schema: one repair request for an invalid answer, and split documents merged.

Every request here goes through the run's dispatcher, so the repair and combine requests are reserved
against the budget like any other, and their cost lands in the document's row.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from docrouter import errors
from docrouter.budget import Bound
from docrouter.call.client import Completion
from docrouter.call.columns import check_extraction
from docrouter.call.dispatch import Attempted, Dispatcher
from docrouter.call.extraction import Extracting, ExtractionSchema, combine_prompt, merge_arrays, repair_prompt
from docrouter.call.payloads import RequestOptions, encode, message_request

TextBound = Callable[[int], Bound]  # the most a text request of so many characters may cost


@dataclass(frozen=True)
class Extracted:
    """A document's answer after checking: `attempted` totals every request; `validity` is valid | repaired |
    invalid, or None when there was no answer to check."""

    attempted: Attempted
    value: dict[str, Any] | None = None
    validity: str | None = None


async def checked_answer(
    extracting: Extracting,
    schema: ExtractionSchema,
    options: RequestOptions,
    attempted: Attempted,
    dispatcher: Dispatcher,
    bound: TextBound,
) -> Extracted:
    """The answer validated; when invalid, one repair request with the errors; after that, invalid_output
    with the last reply kept (in the row's content)."""
    if attempted.completion is None:
        return Extracted(attempted)
    reply = attempted.completion.content
    checked = check_extraction(schema, reply)
    if checked.value is not None:
        return Extracted(_with_content(attempted, checked.value), checked.value, "valid")
    repair_options = dataclasses.replace(
        options,
        prompt=extracting.prompt_for(schema, repair_prompt(reply, checked.problems)),
        response_format=extracting.response_format(schema),
    )
    body = message_request(repair_options, repair_options.prompt)
    most = bound(len(encode(body)))
    repaired = await dispatcher.send(lambda _: body, max_usd=lambda _: most, failure_charge_usd=lambda _: 0.0)
    total = added(attempted, repaired)
    if repaired.completion is None:
        assert repaired.error is not None
        unrepaired = dataclasses.replace(total, completion=None, error=repaired.error, reply=reply)
        return Extracted(unrepaired, None, "invalid")
    rechecked = check_extraction(schema, repaired.completion.content)
    if rechecked.value is not None:
        return Extracted(_with_content(total, rechecked.value), rechecked.value, "repaired")
    problems = "; ".join(rechecked.problems)
    error = errors.InvalidOutput(f"the answer does not follow --schema, also after one repair request: {problems}")
    return Extracted(dataclasses.replace(total, completion=None, error=error, reply=repaired.completion.content),
                     None, "invalid")  # fmt: skip


async def merged_parts(
    extracting: Extracting,
    options: RequestOptions,
    parts: Sequence[tuple[str, Extracted]],
    dispatcher: Dispatcher,
    bound: TextBound,
) -> Extracted:
    """One object for a document answered in page ranges: array properties concatenated in page order, the
    others from a combine request that sees every part's object (none when the schema is all arrays)."""
    schema = extracting.schema
    values = [e.value or {} for _, e in parts]
    arrays = merge_arrays(schema, values)
    scalars = [name for name in schema.properties if name not in schema.array_properties]
    validity = "repaired" if any(e.validity == "repaired" for _, e in parts) else "valid"
    if not scalars:
        return _final(schema, _no_request(options), arrays, validity)
    sub = schema.subschema(scalars)
    partials = [(label, {k: v[k] for k in scalars if k in v}) for (label, _), v in zip(parts, values, strict=True)]
    prompt = extracting.prompt_for(sub, combine_prompt(extracting.prompt, partials))
    combine_options = dataclasses.replace(options, prompt=prompt, response_format=extracting.response_format(sub))
    body = message_request(combine_options, prompt)
    most = bound(len(encode(body)))
    combined = await dispatcher.send(lambda _: body, max_usd=lambda _: most, failure_charge_usd=lambda _: 0.0)
    checked = await checked_answer(extracting, sub, combine_options, combined, dispatcher, bound)
    if checked.value is None:
        return checked
    validity = "repaired" if checked.validity == "repaired" else validity
    return _final(schema, checked.attempted, {**checked.value, **arrays}, validity)


def _final(schema: ExtractionSchema, attempted: Attempted, value: dict[str, Any], validity: str) -> Extracted:
    """The merged object, checked against the whole schema once more."""
    problems = schema.errors(value)
    if problems:
        error = errors.InvalidOutput(f"the merged parts do not follow --schema: {'; '.join(problems)}")
        return Extracted(dataclasses.replace(attempted, completion=None, error=error, reply=json.dumps(value)),
                         None, "invalid")  # fmt: skip
    return Extracted(_with_content(attempted, value), value, validity)


def _no_request(options: RequestOptions) -> Attempted:
    """No combine request was needed: an answer of nothing, to carry the merged object."""
    return Attempted(Completion(None, options.model, "", "stop", 0, 0, 0.0), None, 0, 0.0)


def _with_content(attempted: Attempted, value: dict[str, Any]) -> Attempted:
    """The answer with its content the validated object as JSON text (what the results row keeps)."""
    assert attempted.completion is not None
    completion = dataclasses.replace(attempted.completion, content=json.dumps(value, ensure_ascii=False))
    return dataclasses.replace(attempted, completion=completion)


def added(first: Attempted, second: Attempted) -> Attempted:
    """`second` with the attempts, cost, tokens and annotations of `first` added in."""
    completion = second.completion
    if completion is not None and first.completion is not None:
        completion = dataclasses.replace(
            completion,
            prompt_tokens=completion.prompt_tokens + first.completion.prompt_tokens,
            completion_tokens=completion.completion_tokens + first.completion.completion_tokens,
        )
    return dataclasses.replace(
        second,
        completion=completion,
        attempts=first.attempts + second.attempts,
        cost_usd=first.cost_usd + second.cost_usd,
        annotations=first.annotations + second.annotations,
    )
