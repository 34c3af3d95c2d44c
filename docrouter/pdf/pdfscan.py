"""The raw operator scan of a PDF page (pdf-heuristics.md §3.3 stage 1): cheap counts over the content stream.

No text extraction: one regex pass per content stream counts text-show operators, invisible text (Tr 3/7),
image placements (XObjects, including those nested in Form XObjects, and inline images) with the largest
image's share of the page from the CTM, and path-construction operators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pypdf import PageObject

SCAN_LIMIT = 16 * 1024 * 1024  # scan at most this much of one page's content (bytes, decoded)
HUGE_PAGE = 2 * 1024 * 1024  # pages with more content than this are never text-extracted
MAX_FORM_DEPTH = 8
VECTOR_PATHS = 200  # this many path operators with (almost) no text: text drawn as outlines, or a drawing
INVISIBLE_MODES = frozenset({3, 7})
SCAN_COVERAGE = 0.5  # one image over half the page and (almost) no text: a scan
OCR_COVERAGE = 0.8  # one image over 80% of the page under text: a scan with an OCR layer
DEFAULT_PAGE_AREA = 612.0 * 792.0  # US Letter in points, for pages without a usable /MediaBox

_REGULAR = rb"[^\s/\[\]()<>{}%]"  # a PDF "regular" character: not whitespace, not a delimiter
_TOKEN = re.compile(
    rb"(?P<str>\((?:[^()\\]|\\.|\((?:[^()\\]|\\.)*\))*\))"
    rb"|<[0-9A-Fa-f\s]*>|%[^\r\n]*"
    rb"|/(?P<xobj>" + _REGULAR + rb"+)\s*Do(?!" + _REGULAR + rb")"
    rb"|/" + _REGULAR + rb"*"
    rb"|(?<!" + _REGULAR + rb")(?P<op>Tj|TJ|'|\"|q|Q|BI|cm|Tr)(?!" + _REGULAR + rb")",
    re.S,
)
_STRINGS = re.compile(rb"\((?:[^()\\]|\\.|\((?:[^()\\]|\\.)*\))*\)|<[0-9A-Fa-f\s]*>|%[^\r\n]*", re.S)
_TEXT_SHOW = re.compile(rb"(?<!" + _REGULAR + rb")(?:Tj|TJ|'|\")(?!" + _REGULAR + rb")")
_PATH = re.compile(rb"(?<!" + _REGULAR + rb")(?:m|l|c|v|y|re)(?!" + _REGULAR + rb")")
_INLINE_END = re.compile(rb"\sEI(?!" + _REGULAR + rb")")
_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")

Matrix = tuple[float, float, float, float, float, float]
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


@dataclass
class Counts:
    """Operator counts of one content stream (and the forms it draws); areas in its own user space."""

    text_ops: int = 0
    invisible_ops: int = 0
    images: int = 0
    path_ops: int = 0
    max_image_area: float = 0.0  # |det| of the largest image placement's CTM
    sets_render_mode: bool = False

    def add_form(self, form: Counts, ctm: Matrix, inherited_mode: int) -> None:
        """Fold in a form drawn under `ctm`; its text inherits our render mode unless it sets its own."""
        self.text_ops += form.text_ops
        if form.sets_render_mode:
            self.invisible_ops += form.invisible_ops
        elif inherited_mode in INVISIBLE_MODES:
            self.invisible_ops += form.text_ops
        self.images += form.images
        self.path_ops += form.path_ops
        self.max_image_area = max(self.max_image_area, form.max_image_area * abs(_det(ctm)))


@dataclass(frozen=True)
class PageScan:
    """What the raw operator scan saw on one page."""

    text_ops: int = 0
    invisible_ops: int = 0
    images: int = 0
    path_ops: int = 0
    max_image_cov: float = 0.0  # the largest single image's share of the page area, capped at 1
    content_bytes: int = 0
    error: str | None = None  # the page's content could not be read (then the counts are empty)

    @property
    def invisible_share(self) -> float:
        return self.invisible_ops / self.text_ops if self.text_ops else 0.0

    @property
    def huge(self) -> bool:
        return self.content_bytes > HUGE_PAGE

    @property
    def looks(self) -> str:
        """The page's likely nature from operators alone: text|ocr|scan|vector|blank|broken."""
        if self.error is not None:
            return "broken"
        if self.text_ops and (self.invisible_share >= 0.5 or self.max_image_cov >= OCR_COVERAGE):
            return "ocr"
        if self.text_ops < 3 and self.max_image_cov >= SCAN_COVERAGE:
            return "scan"
        if self.text_ops < 3 and self.path_ops >= VECTOR_PATHS:
            return "vector"
        if not self.text_ops and not self.images and not self.path_ops:
            return "blank"
        return "text"

    @property
    def suspicious(self) -> bool:
        """Worth a text-quality check even when not in the even sample (a big image may hide a scan)."""
        return self.looks != "text" or self.invisible_ops > 0 or self.max_image_cov >= SCAN_COVERAGE


def _det(m: Matrix) -> float:
    return m[0] * m[3] - m[1] * m[2]


def _matrix(values: Any) -> Matrix | None:
    """Six numbers as a matrix, or None when they are not six numbers."""
    try:
        a, b, c, d, e, f = (float(v) for v in values)
    except (TypeError, ValueError):
        return None
    return (a, b, c, d, e, f)


def _operands(data: bytes, end: int, count: int) -> list[bytes]:
    """The `count` words just before an operator (read back, so the regex never tries numbers)."""
    return data[max(0, end - 24 * count) : end].split()[-count:]


def _render_mode(words: list[bytes]) -> int:
    return int(words[0]) if words and words[0].isdigit() else 0


def _multiply(m: Matrix, n: Matrix) -> Matrix:
    """m x n: apply m, then n (how `cm` composes with the current CTM)."""
    return (
        m[0] * n[0] + m[1] * n[2],
        m[0] * n[1] + m[1] * n[3],
        m[2] * n[0] + m[3] * n[2],
        m[2] * n[1] + m[3] * n[3],
        m[4] * n[0] + m[5] * n[2] + n[4],
        m[4] * n[1] + m[5] * n[3] + n[5],
    )


@dataclass
class FormCache:
    """Form XObject counts per document (share one across its pages): a logo on every page is scanned once."""

    done: dict[int, Counts] = field(default_factory=dict)
    active: set[int] = field(default_factory=set)


def scan_page(page: PageObject, forms: FormCache | None = None) -> PageScan:
    """The raw operator scan of one page; raises what pypdf raises on a broken page (caller records it)."""
    data = content_bytes(page)
    counts = count_operators(data[:SCAN_LIMIT], _dict(page.get("/Resources")), forms or FormCache(), 0)
    return PageScan(
        text_ops=counts.text_ops,
        invisible_ops=counts.invisible_ops,
        images=counts.images,
        path_ops=counts.path_ops,
        max_image_cov=min(1.0, counts.max_image_area / page_area(page)),
        content_bytes=len(data),
    )


def page_area(page: PageObject) -> float:
    """The crop box's area; US Letter when the page has no usable box (readers default to it, the content
    is still there)."""
    try:
        box = page.cropbox
        return abs(float(box.width) * float(box.height)) or 1.0
    except (ValueError, TypeError, LookupError, AttributeError):
        return DEFAULT_PAGE_AREA


def content_bytes(page: PageObject) -> bytes:
    """The page's decoded content streams, joined (b"" for a page without content)."""
    contents = page.get("/Contents")
    if contents is None:
        return b""
    contents = contents.get_object()
    streams = contents if isinstance(contents, list) else [contents]
    return b"\n".join(s.get_object().get_data() for s in streams if s is not None)


def _dict(value: Any) -> dict[str, Any]:
    value = value.get_object() if value is not None else None
    return value if isinstance(value, dict) else {}


def count_operators(data: bytes, resources: dict[str, Any], forms: FormCache, depth: int) -> Counts:
    """Counts for one content stream, recursing into the Form XObjects it draws."""
    bare = _STRINGS.sub(b" ", data)
    # Counting needs no order; only images and render modes need the (slower) walk in drawing order.
    walked = b"Do" in bare or b"BI" in bare or b"Tr" in bare
    counts = _walk_operators(data, resources, forms, depth) if walked else Counts()
    counts.text_ops += len(_TEXT_SHOW.findall(bare))
    counts.path_ops += len(_PATH.findall(bare))
    return counts


def _walk_operators(data: bytes, resources: dict[str, Any], forms: FormCache, depth: int) -> Counts:
    """Invisible text, images and forms in drawing order, tracking the CTM and render mode through q/Q."""
    counts = Counts()
    ctm, mode = IDENTITY, 0
    stack: list[tuple[Matrix, int]] = []
    pos = 0
    while match := _TOKEN.search(data, pos):
        pos = match.end()
        kind = match.lastgroup
        if kind == "op":
            op = match.group("op")
            if op in (b"Tj", b"TJ", b"'", b'"'):
                counts.invisible_ops += mode in INVISIBLE_MODES
            elif op == b"q":
                if len(stack) < 256:
                    stack.append((ctm, mode))
            elif op == b"Q":
                ctm, mode = stack.pop() if stack else (ctm, mode)
            elif op == b"cm":
                ctm = _multiply(_matrix(_operands(data, match.start(), 6)) or IDENTITY, ctm)
            elif op == b"Tr":
                mode, counts.sets_render_mode = _render_mode(_operands(data, match.start(), 1)), True
            else:  # BI: an inline image, drawn in the unit square; skip its binary data
                counts.images += 1
                counts.max_image_area = max(counts.max_image_area, abs(_det(ctm)))
                end = _INLINE_END.search(data, pos)
                pos = end.end() if end else len(data)
        elif kind == "xobj":
            _draw(counts, match.group("xobj"), resources, forms, depth, ctm, mode)
    return counts


def _draw(
    counts: Counts, name: bytes, resources: dict[str, Any], forms: FormCache, depth: int, ctm: Matrix, mode: int
) -> None:
    """An XObject placement: an image (area from the CTM) or a form (its own counts, scaled)."""
    key = "/" + _NAME_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), name).decode("latin-1")
    ref = _dict(resources.get("/XObject")).get(key)
    xobject = ref.get_object() if ref is not None else None
    if not isinstance(xobject, dict):
        return
    subtype = xobject.get("/Subtype")
    if subtype == "/Image":
        counts.images += 1
        counts.max_image_area = max(counts.max_image_area, abs(_det(ctm)))
    elif subtype == "/Form" and depth < MAX_FORM_DEPTH:
        form = _form_counts(ref, xobject, resources, forms, depth)
        matrix = _matrix(xobject.get("/Matrix") or ())
        counts.add_form(form, _multiply(matrix, ctm) if matrix else ctm, mode)


def _form_counts(ref: Any, xobject: Any, resources: dict[str, Any], forms: FormCache, depth: int) -> Counts:
    """A form's counts in its own space, cached by object number; a form drawing itself counts as empty."""
    key = ref.idnum if hasattr(ref, "idnum") else id(xobject)
    if key in forms.done:
        return forms.done[key]
    if key in forms.active:
        return Counts()
    forms.active.add(key)
    try:
        own = _dict(xobject.get("/Resources")) or resources
        counts = count_operators(xobject.get_data()[:SCAN_LIMIT], own, forms, depth + 1)
    finally:
        forms.active.discard(key)
    forms.done[key] = counts
    return counts
