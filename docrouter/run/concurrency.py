"""Every bound on what a run does at once, in one place, each with the reason for its size.

The session builds one `Concurrency` from --concurrency and --batch-size and hands each number to the part
it bounds (the stages take plain numbers: they sit below the composition root). Memory and money at risk
both follow from these: nothing else in the run decides how much happens at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Concurrency:
    """How much of each kind of work a run does at once."""

    # Requests in flight: --concurrency (AdaptiveLimiter halves it on rate limits and never goes past it).
    request_slots: int
    # Documents whose file bytes are read, encoded and held (until answered, for retries): no more than can
    # be sent at once, so memory follows --concurrency, not the batches in flight times their page ranges.
    bodies_in_memory: int
    # Documents sent or answered but not yet fsynced: a kill -9 costs at most this many paid answers.
    unrecorded_answers: int
    # Batches in flight (inspect -> route -> call): enough to keep every request slot busy while one batch
    # tails off and the next is inspected (two left the limiter idle at each boundary); it also bounds memory.
    batch_window: int
    # Batches whose inspection is under way: one maps on the inspection workers while the next waits its turn,
    # so inspection runs ahead of the calls without inspecting the whole window at once.
    inspecting_batches: int = 2
    # Inspection worker processes: each may hold a hostile PDF up to its memory limit (DOCROUTER_PDF_MEMORY_MB).
    inspection_workers: int = 2
    # Full-size image decodes (the decode pool's workers): one 200-megapixel decode holds 800 MB, so a folder of
    # posters goes one at a time (images._FULL_DECODES keeps it so among the threads of one process too).
    image_decodes: int = 1

    @classmethod
    def of(cls, concurrency: int, batch_size: int) -> Concurrency:
        """The limits for --concurrency and --batch-size."""
        return cls(
            request_slots=concurrency,
            bodies_in_memory=concurrency,
            unrecorded_answers=concurrency,
            batch_window=2 + -(-concurrency // batch_size),
        )
