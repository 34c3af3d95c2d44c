"""Per-page labels (pdf-heuristics.md §3.3): which pages to read closely, and what each page is."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from docrouter.inspect.textquality import TextQuality
from docrouter.pdf.pdfscan import OCR_COVERAGE, SCAN_COVERAGE, VECTOR_PATHS, PageScan

MIN_CHARS = 50  # fewer characters than this on a page is not a text layer worth reading
PICTURE_COVERAGE = 0.05  # a page with no text but an image this big shows that image: it needs reading
MAX_SAMPLED = 32  # pages whose text is extracted, at most (evenly spaced plus suspicious)

# What an unsampled page most likely is, when no sampled page looked the same.
_DEFAULT_FOR_LOOKS = {
    "scan": "image-only",
    "ocr": "ocr-poor",
    "vector": "vector",
    "blank": "blank",
    "broken": "garbled",
}


def choose_sample(scans: Sequence[PageScan | None], sample_pages: int) -> list[int]:
    """0-based pages to extract: `sample_pages` evenly spaced, plus the suspicious ones, MAX_SAMPLED at most.

    Even spacing takes the middle of each stretch, so covers and blank backs are not over-weighted.
    Heavy, broken, blank-looking and unscanned pages are never extracted.
    """
    n = len(scans)
    wanted = min(n, max(1, sample_pages))
    even = {int((i + 0.5) * n / wanted) for i in range(wanted)}
    flagged = [i for i, scan in enumerate(scans) if scan is not None and scan.suspicious and i not in even]
    room = max(0, MAX_SAMPLED - len(even))
    if len(flagged) > room:
        flagged = [flagged[int((j + 0.5) * len(flagged) / room)] for j in range(room)] if room else []
    return sorted(i for i in even.union(flagged) if _extractable(scans[i]))


def _extractable(scan: PageScan | None) -> bool:
    return scan is not None and scan.error is None and not scan.huge and scan.looks != "blank"


def label_page(scan: PageScan, quality: TextQuality) -> str:
    """The label of a page whose text was extracted (first match wins)."""
    if quality.chars < MIN_CHARS:
        if scan.max_image_cov >= SCAN_COVERAGE or (not quality.chars and scan.max_image_cov >= PICTURE_COVERAGE):
            return "image-only"
        if scan.path_ops >= VECTOR_PATHS:
            return "vector"
        if quality.garbled:
            return "garbled"
        return "text" if quality.chars else "blank"  # a short title page is still text
    if scan.invisible_share >= 0.5 or scan.max_image_cov >= OCR_COVERAGE:
        return "ocr-good" if quality.good_ocr else "ocr-poor"
    if quality.garbled:
        return "garbled"
    return "text-degraded" if quality.degraded else "text"


def label_unread(scan: PageScan | None, like: dict[str, str]) -> str:
    """The label of a page whose text was not extracted, from its operators and similar sampled pages.

    `like` maps a raw look (PageScan.looks) to the most common label of the sampled pages with that look.
    """
    if scan is None:
        return "unsampled"  # past the time budget: not even scanned
    if scan.error is not None:
        return "garbled"  # its content cannot be decoded, so neither can its text
    if scan.huge:
        return "image-only" if scan.max_image_cov >= SCAN_COVERAGE else "vector"
    look = scan.looks
    if look == "text":
        return "unsampled"
    return like.get(look) or _DEFAULT_FOR_LOOKS[look]


def labels_by_look(scans: Sequence[PageScan | None], labels: dict[int, str]) -> dict[str, str]:
    """For each raw look, the most common label among the sampled pages that had it."""
    seen: dict[str, Counter[str]] = {}
    for index, label in labels.items():
        scan = scans[index]
        if scan is not None:
            seen.setdefault(scan.looks, Counter())[label] += 1
    return {look: counts.most_common(1)[0][0] for look, counts in seen.items()}
