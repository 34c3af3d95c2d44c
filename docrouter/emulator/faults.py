"""Fault knobs: which failures the emulator injects, how often, and a seeded picker so runs reproduce."""

from __future__ import annotations

import dataclasses
import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

# Fault kinds, in the order a draw walks them. "Gateway" faults happen before any parsing or billing;
# "upstream" ones after the file was parsed, so a parse fee is billed; "answer" ones are billed answers.
GATEWAY_FAULTS = ("429", "429_no_retry_after", "429_bare", "403", "drop_connection")
UPSTREAM_FAULTS = ("5xx", "408", "524", "524_html", "503_html", "502_with_annotations", "200_error_body")
ANSWER_FAULTS = ("200_finish_error", "empty_content", "drop_after_billing", "unreadable_reply")
FAULT_KINDS = (*GATEWAY_FAULTS, *UPSTREAM_FAULTS, *ANSWER_FAULTS, "slow")


@dataclass(frozen=True)
class Faults:
    """Rates in [0, 1] per fault kind (one draw per request picks at most one), plus switches."""

    rate_429: float = 0.0  # 429 with Retry-After and X-RateLimit-* (reset in epoch ms)
    rate_429_no_retry_after: float = 0.0  # free-tier style: X-RateLimit-* only, echoed in metadata.headers
    rate_429_bare: float = 0.0  # upstream provider 429: no Retry-After, no X-RateLimit-*
    rate_403: float = 0.0  # moderation flag
    rate_drop_connection: float = 0.0  # headers sent, then the connection dies; nothing billed
    rate_5xx: float = 0.0  # 500, 502, 503 or 529 (JSON), after the parse fee was billed
    rate_408: float = 0.0
    rate_524: float = 0.0  # the documented JSON 524
    rate_524_html: float = 0.0  # Cloudflare's HTML 524 page
    rate_503_html: float = 0.0  # Cloudflare's HTML 503 page ("Worker exceeded resource limits")
    rate_502_with_annotations: float = 0.0  # 502 carrying error.metadata.file_annotations
    rate_200_error_body: float = 0.0  # HTTP 200, {"error": ...}, no choices (or a mid-stream error)
    rate_200_finish_error: float = 0.0  # HTTP 200, finish_reason "error", partial content, billed
    rate_empty_content: float = 0.0  # HTTP 200, content "", prompt billed
    rate_drop_after_billing: float = 0.0  # the answer was billed, then the connection died mid-body
    rate_unreadable_reply: float = 0.0  # HTTP 200, billed, saying it cannot read the document (recorded wording)
    rate_slow: float = 0.0  # the answer takes slow_seconds longer
    retry_after: float = 1.0  # seconds, for Retry-After and X-RateLimit-Reset
    slow_seconds: float = 2.0
    fail_401: bool = False  # every authenticated call answers 401 (a revoked key)
    fail_first_attempts: int = 0  # the first N attempts per document (file hash) fail with...
    fail_first_kind: str = "429"  # ...this fault kind
    cloudflare_fails: bool = False  # cloudflare-ai/pdf-text answer 400 "Failed to parse" (field incident)
    pdf_text_rejected: bool = False  # the deprecated name pdf-text answers 400 instead of redirecting
    generation_404_seconds: float = 0.0  # GET /generation says 404 for this long after the call
    credits_need_management_key: bool = False  # GET /credits answers 403 to an ordinary key
    invalid_json_answers: int = 0  # the next N answers to requests with a JSON schema are cut mid-JSON
    context_refusal_bills_ocr: bool = False  # a 400 over the context window still bills the OCR it did
    ocr_image_parts: bool = False  # mistral-ocr annotations also carry an image_url part per image-only page
    unavailable_models: str = ""  # comma-separated model ids that answer 503: a request's `models` falls back

    def __post_init__(self) -> None:
        rates = self.rates()
        for kind, rate in rates:
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"rate_{kind} must be within [0, 1], not {rate}")
        if sum(rate for _, rate in rates) > 1.0 + 1e-9:
            raise ValueError("fault rates add up to more than 1: one request gets at most one fault")
        if self.fail_first_kind not in FAULT_KINDS:
            raise ValueError(f"fail_first_kind must be one of {', '.join(FAULT_KINDS)}")
        if min(self.fail_first_attempts, self.invalid_json_answers, self.retry_after, self.slow_seconds) < 0:
            raise ValueError(
                "fail_first_attempts, invalid_json_answers, retry_after and slow_seconds cannot be negative"
            )

    def rates(self) -> list[tuple[str, float]]:
        """(kind, rate) for every fault kind, in draw order."""
        return [(kind, float(getattr(self, f"rate_{kind}"))) for kind in FAULT_KINDS]

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Faults:
        """Faults from JSON-ish values (admin endpoint, CLI); unknown names are an error, not ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)


def parse_fault_flag(text: str) -> tuple[str, Any]:
    """One `--fault NAME=VALUE` flag as a Faults field: `429=0.2` means rate_429=0.2; booleans as true/false."""
    name, sep, raw = text.partition("=")
    if not sep:
        raise ValueError(f"--fault {text!r}: expected NAME=VALUE, e.g. 429=0.2 or fail_401=true")
    name = name.strip().replace("-", "_")
    field = f"rate_{name}" if name in FAULT_KINDS else name
    fields = {f.name: f for f in dataclasses.fields(Faults)}
    if field not in fields:
        raise ValueError(f"--fault {text!r}: unknown fault; kinds: {', '.join(FAULT_KINDS)}")
    return field, _convert(fields[field].type, raw.strip(), text)


def _convert(kind: object, raw: str, text: str) -> Any:
    try:
        if kind == "bool":
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1", "yes")
        if kind == "int":
            return int(raw)
        if kind == "str":
            return raw
        return float(raw)
    except ValueError:
        raise ValueError(f"--fault {text!r}: {raw!r} is not a valid {kind}") from None


class FaultPicker:
    """Picks each request's fault from a seeded RNG (thread-safe), after the first-N-attempts rule."""

    def __init__(self, faults: Faults, seed: int) -> None:
        self._lock = threading.Lock()
        self._faults = faults
        self._rng = random.Random(seed)
        self._attempts: Counter[str] = Counter()
        self._invalid_json_given = 0

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def set(self, faults: Faults) -> None:
        """Replace the knobs; per-document attempt counts start again."""
        with self._lock:
            self._faults = faults
            self._attempts.clear()
            self._invalid_json_given = 0

    def take_invalid_json(self) -> bool:
        """True for the first `invalid_json_answers` schema answers (since the knobs were last set)."""
        with self._lock:
            if self._invalid_json_given >= self._faults.invalid_json_answers:
                return False
            self._invalid_json_given += 1
            return True

    def pick(self, key: str) -> str | None:
        """The fault for this attempt of the document `key`, or None."""
        with self._lock:
            faults = self._faults
            attempt = self._attempts[key]
            self._attempts[key] += 1
            draw = self._rng.random()  # drawn every time, so one knob does not shift the others' sequence
            if attempt < faults.fail_first_attempts:
                return faults.fail_first_kind
            for kind, rate in faults.rates():
                if draw < rate:
                    return kind
                draw -= rate
            return None

    def choose(self, options: tuple[int, ...]) -> int:
        """A seeded choice among statuses (e.g. which 5xx)."""
        with self._lock:
            return self._rng.choice(options)
