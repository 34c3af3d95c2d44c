"""PDF work in bounded worker processes: the per-file limits, send-time text extraction, and the run's PDF log.

Inspection and the text extraction of local-text both run in worker processes under the same per-file time
and memory limits (pypdf and PDFium on a hostile file can take minutes or gigabytes). A file that overruns
the time limit is `too_complex` (terminal: the same bytes would overrun again), one that overruns memory is
`too_large`, and one that kills its worker is `corrupt`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from docrouter.errors import ConfigError, Corrupt, DocumentError, TooComplex, TooLarge
from docrouter.inspect.isolation import Failure, WorkerPool
from docrouter.pdf.pdfreading import PDFIUM_FROM_PAGES, extract_text, log, pypdf_messages

PYPDF_SHARE = 0.5  # of the time limit: pypdf's turn at a document's pages; PDFium reads what is left


@dataclass(frozen=True)
class PdfLimits:
    """The per-file limits of local PDF work (inspection and text extraction)."""

    time_s: float = 30.0
    memory_mb: int = 1024

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> PdfLimits:
        """DOCROUTER_PDF_TIME_LIMIT_S and DOCROUTER_PDF_MEMORY_MB, or the defaults; a ConfigError for bad values."""
        return cls(
            time_s=_positive(environ, "DOCROUTER_PDF_TIME_LIMIT_S", cls.time_s, float),
            memory_mb=int(_positive(environ, "DOCROUTER_PDF_MEMORY_MB", cls.memory_mb, int)),
        )


def _positive(environ: Mapping[str, str], name: str, default: float, kind: type[float] | type[int]) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise ConfigError(f"{name}={raw!r} must be a positive number")
    return value


def failure_error(failure: Failure, what: str) -> DocumentError:
    """The document error for local PDF work whose worker had to be stopped."""
    if failure.kind == "timeout":
        return TooComplex(f"{what} {failure.message}; the file is too complex to read here: split or re-save it")
    if failure.kind == "memory":
        return TooLarge(f"{what} {failure.message}; split or compress the file")
    return Corrupt(f"{what} {failure.message}; the file is probably damaged: re-save it")


@dataclass(frozen=True)
class Extracted:
    """A document's page texts as a worker read them, and what the PDF libraries said meanwhile."""

    pages: list[str]
    notes: tuple[str, ...]


def extract_in_worker(request: tuple[str, Sequence[int] | None, float]) -> Extracted | DocumentError:
    """extract_text with pypdf's turn bounded and long ranges read by PDFium (runs inside a worker): the text,
    or the document's error."""
    path, pages, pypdf_s = request
    with pypdf_messages() as notes:
        try:
            deadline = time.monotonic() + pypdf_s
            texts = extract_text(path, pages, deadline=deadline, pdfium_from=PDFIUM_FROM_PAGES)
            return Extracted(texts, tuple(notes))
        except DocumentError as exc:
            return exc


# One worker of TextWorkers: (path, pages, pypdf's seconds) in, the page texts or the document's error out.
_TextPool = WorkerPool[tuple[str, Sequence[int] | None, float], Extracted | DocumentError]


class PdfLog:
    """The run's log of what the PDF libraries said about each file (DIR/logs/<run_id>.log), and a file count."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: set[str] = set()
        self._lock = threading.Lock()

    def record(self, name: str, notes: Sequence[str]) -> None:
        """Append a file's notes (nothing when it has none); thread-safe."""
        if not notes:
            return
        lines = "".join(f"{name}: {note}\n" for note in notes)
        with self._lock:
            self.files.add(name)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8", errors="replace") as file:
                file.write(lines)
        log.debug("%s: %d notes from the PDF libraries", name, len(notes))

    def summary(self) -> str | None:
        """'pypdf warned about 37 files (repairs, PDFium fallbacks); details in DIR/logs/<run>.log', or None."""
        if not self.files:
            return None
        count = len(self.files)
        files = f"{count} file{'s' if count != 1 else ''}"
        return f"pypdf warned about {files} (repairs, PDFium fallbacks); details in {self.path}"


class TextWorkers:
    """Send-time text extraction in worker processes, for many threads at once: each call takes a free worker.

    Each worker is its own one-process pool, started on first use (a run without local-text starts none)
    and reused after; a worker stopped at a limit is replaced.
    """

    def __init__(self, limits: PdfLimits, *, workers: int = 2, log: PdfLog | None = None) -> None:
        self.limits, self.log = limits, log
        self._free: queue.SimpleQueue[_TextPool] = queue.SimpleQueue()
        self._all = [
            WorkerPool(extract_in_worker, workers=1, timeout_s=limits.time_s, memory_mb=limits.memory_mb)
            for _ in range(max(1, workers))
        ]
        for pool in self._all:
            self._free.put(pool)

    def extract(self, path: str, pages: Sequence[int] | None = None) -> list[str]:
        """Per-page text, as extract_text gives it; raises the document's error (TooComplex past the time limit)."""
        pool = self._free.get()
        try:
            ((_, outcome),) = list(pool.map([(path, pages, self.limits.time_s * PYPDF_SHARE)]))
        finally:
            self._free.put(pool)
        if isinstance(outcome, Failure):
            raise failure_error(outcome, "text extraction")
        if isinstance(outcome, DocumentError):
            raise outcome
        if self.log is not None:
            self.log.record(path, outcome.notes)
        return outcome.pages

    def close(self) -> None:
        for pool in self._all:
            pool.close()

    def __enter__(self) -> TextWorkers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
