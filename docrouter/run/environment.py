"""The settings docrouter takes from environment variables, read once at the edge and passed down in RunConfig.

The command line (for its checks and `plan`) and each flow run (on whichever worker runs it) call
`Environment.read(os.environ)`; nothing below reads the environment itself. The key and the base URL are
resolved in docrouter.run.config (resolve_api_key, resolve_base_url), DOCROUTER_HOME by prefect.yaml's pull step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from docrouter.discover.fetching import ENV_MAX_BYTES, ENV_TIMEOUT, FetchLimits
from docrouter.errors import ConfigError
from docrouter.inspect.pdfwork import PdfLimits
from docrouter.route.splitting import ENV_MAX_PART_PAGES, ENV_MAX_REQUEST_BYTES, SplitLimits

REFERER = "OPENROUTER_HTTP_REFERER"
TITLE = "OPENROUTER_APP_TITLE"
STOP_GRACE = "DOCROUTER_STOP_GRACE_SECONDS"
DEFAULT_TITLE = "docrouter"
DEFAULT_STOP_GRACE_S = 10.0  # seconds the answers in flight are awaited after Ctrl-C / SIGTERM
# Every variable read here (the README's Configuration table documents them).
VARIABLES = (
    REFERER,
    TITLE,
    STOP_GRACE,
    ENV_MAX_REQUEST_BYTES,
    ENV_MAX_PART_PAGES,
    "DOCROUTER_PDF_TIME_LIMIT_S",
    "DOCROUTER_PDF_MEMORY_MB",
    ENV_TIMEOUT,
    ENV_MAX_BYTES,
)


@dataclass(frozen=True)
class Environment:
    """What the environment sets for a run: attribution headers, split, fetch and PDF limits, stop grace."""

    referer: str | None = None  # OpenRouter's optional HTTP-Referer header
    title: str | None = DEFAULT_TITLE  # its X-OpenRouter-Title header
    split: SplitLimits = field(default_factory=SplitLimits)
    fetch: FetchLimits = field(default_factory=FetchLimits)
    pdf: PdfLimits = field(default_factory=PdfLimits)
    stop_grace_s: float = DEFAULT_STOP_GRACE_S

    @classmethod
    def read(cls, environ: Mapping[str, str]) -> Environment:
        """The settings `environ` gives (the defaults for variables it lacks); a ConfigError for a bad value."""
        return cls(
            referer=environ.get(REFERER) or None,
            title=environ.get(TITLE, DEFAULT_TITLE) or None,
            split=SplitLimits.from_env(environ),
            fetch=FetchLimits.from_env(environ),
            pdf=PdfLimits.from_env(environ),
            stop_grace_s=_grace(environ),
        )


def _grace(environ: Mapping[str, str]) -> float:
    raw = environ.get(STOP_GRACE, "").strip()
    if not raw:
        return DEFAULT_STOP_GRACE_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 3600:
        raise ConfigError(f"{STOP_GRACE} must be a number of seconds from 0 to 3600, not {raw!r}")
    return value
