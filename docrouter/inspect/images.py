"""Images made acceptable and cheaper before sending: downscaled past a pixel or byte limit, format kept."""

from __future__ import annotations

import asyncio
import io
import struct
import threading
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image

from docrouter.errors import Corrupt, DocumentError, TooLarge
from docrouter.inspect.isolation import WorkerPool
from docrouter.vocabulary import ErrorType

_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF"}
# Full-size decodes at once in this process: each holds width x height x 4 bytes (800 MB at the default
# pixel cap), so a folder of posters must not be decoded by several threads at the same time.
_FULL_DECODES = threading.BoundedSemaphore(1)
# What Pillow raises on damaged bytes (OSError covers "image file is truncated").
DECODE_FAILURES = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError)


@dataclass(frozen=True)
class ImageLimits:
    """What providers accept without complaint (Anthropic: 8000 px and 5 MB per image; most downscale
    anything past ~2000 px themselves, so sending more only costs more)."""

    max_side: int = 2048
    max_bytes: int = 5 * 1024 * 1024
    max_source_pixels: int = 200_000_000  # refuse to decode beyond this (decompression bombs)


@dataclass(frozen=True)
class PreparedImage:
    """The bytes to send, their true MIME type and size, and what was done to them."""

    data: bytes
    mime_type: str
    width: int
    height: int
    note: str  # "" when sent as is


def prepare_image(data: bytes, mime_type: str, limits: ImageLimits = ImageLimits()) -> PreparedImage:
    """The image as is when within limits, else downscaled in its own format.

    An animated GIF is always sent as its first frame (still a GIF): OpenAI's vision models accept only
    non-animated GIFs, and the others read a single frame anyway.
    """
    as_is = image_as_is(data, mime_type, limits)
    return as_is if as_is is not None else decode_image(data, mime_type, limits)


def image_as_is(data: bytes, mime_type: str, limits: ImageLimits = ImageLimits()) -> PreparedImage | None:
    """The image unchanged when its header shows it within limits, None when it must be decoded (header only)."""
    width, height, frames = _probe(data, limits)
    if max(width, height) <= limits.max_side and len(data) <= limits.max_bytes and frames == 1:
        return PreparedImage(data, mime_type, width, height, "")
    return None


def decode_image(data: bytes, mime_type: str, limits: ImageLimits = ImageLimits()) -> PreparedImage:
    """The image downscaled past its limits (a full decode); Corrupt or TooLarge when it cannot be."""
    width, height, frames = _probe(data, limits)
    try:
        scaled, new_w, new_h = _downscale(data, mime_type, limits)
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"image is {width}x{height}: {exc}") from None
    except MemoryError:
        raise TooLarge(f"decoding the {width}x{height} image needs more memory than allowed") from None
    except DECODE_FAILURES as exc:  # truncated or damaged pixel data behind a readable header
        raise Corrupt(f"cannot decode image ({type(exc).__name__}: {exc}); re-save it from an editor") from None
    notes = [f"downscaled {width}x{height} -> {new_w}x{new_h}"] if (new_w, new_h) != (width, height) else []
    if frames > 1:
        notes.append(f"animated GIF of {frames} frames sent as its first frame")
    return PreparedImage(scaled, mime_type, new_w, new_h, "; ".join(notes))


def _probe(data: bytes, limits: ImageLimits) -> tuple[int, int, int]:
    """(width, height, frames) from the header; Corrupt, or TooLarge past the decode limit."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # judged below, by our own limit
            with Image.open(io.BytesIO(data)) as probe:
                width, height = probe.size
                frames = getattr(probe, "n_frames", 1)
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"{exc}; downscale the image before sending it") from None
    except DECODE_FAILURES as exc:
        raise Corrupt(f"cannot read image: {exc}") from None
    if width * height > limits.max_source_pixels:
        raise TooLarge(f"image is {width}x{height} ({width * height / 1e6:.0f} MP), over the decode limit")
    return width, height, frames


def _downscale(data: bytes, mime_type: str, limits: ImageLimits) -> tuple[bytes, int, int]:
    fmt = _FORMATS.get(mime_type, "PNG")
    side = limits.max_side
    frame = _first_frame(data, fmt, side, limits)
    while True:
        encoded = _encode(frame, fmt)
        if len(encoded) <= limits.max_bytes or side <= 256:
            return encoded, frame.width, frame.height
        side = int(side * 0.75)
        frame = frame.copy()
        frame.thumbnail((side, side), Image.Resampling.LANCZOS)


def _first_frame(data: bytes, fmt: str, side: int, limits: ImageLimits) -> Image.Image:
    """The first frame, already within side x side: the full-size decode is held once, never copied."""
    previous_pixels = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limits.max_source_pixels
    try:
        with _FULL_DECODES, Image.open(io.BytesIO(data)) as source:
            if fmt == "JPEG":
                source.draft("RGB", (side, side))  # decode at a reduced scale: far less memory and time
            source.thumbnail((side, side), Image.Resampling.LANCZOS)
            return source.copy()
    finally:
        Image.MAX_IMAGE_PIXELS = previous_pixels


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
    elif fmt == "WEBP":
        image.save(out, "WEBP", quality=85)
    elif fmt == "GIF":
        image.save(out, "GIF")
    else:
        image.save(out, "PNG", optimize=True)
    return out.getvalue()


@dataclass(frozen=True)
class DecodeFailed:
    """Why a worker could not decode an image (an error_type of ours and its message), as a picklable value."""

    error_type: ErrorType
    message: str


def decode_or_failure(item: tuple[bytes, str, ImageLimits]) -> PreparedImage | DecodeFailed:
    """decode_image for a worker process: the image, or why not (its DocumentError as data)."""
    try:
        return decode_image(*item)
    except DocumentError as exc:
        return DecodeFailed(exc.error_type, exc.message)


def image_pool(
    *, workers: int = 1, timeout_s: float = 120.0, memory_mb: int = 1536
) -> WorkerPool[Any, PreparedImage | DecodeFailed]:
    """Worker processes for full-size decodes (the run's Concurrency.image_decodes: one), under a memory
    limit, off the run's process; the pool maps one image at a time.

    A 169-megapixel PNG is 657 KB on disk and 676 MB decoded (Pillow keeps 4 bytes per pixel); at the
    200 MP decode limit, 800 MB plus the reduced copy: 1.5 GB of address space is headroom for that.
    """
    return WorkerPool(decode_or_failure, workers=workers, timeout_s=timeout_s, memory_mb=memory_mb)


class ImageDecoder:
    """Prepares images for sending: the header read here, a full decode (downscale) in `pool`, one at a time."""

    def __init__(self, pool: WorkerPool[Any, PreparedImage | DecodeFailed] | None = None) -> None:
        self.pool = pool
        self._turn = asyncio.Lock()  # waiting happens on the event loop, not in a blocked thread

    async def prepare(self, data: bytes, mime_type: str, limits: ImageLimits = ImageLimits()) -> PreparedImage:
        """The image as is, or downscaled; Corrupt or TooLarge when it cannot be read or decoded."""
        as_is = await asyncio.to_thread(image_as_is, data, mime_type, limits)
        if as_is is not None:
            return as_is
        async with self._turn:
            if self.pool is None:
                return await asyncio.to_thread(decode_image, data, mime_type, limits)
            return await asyncio.to_thread(self._decode_isolated, data, mime_type, limits)

    def _decode_isolated(self, data: bytes, mime_type: str, limits: ImageLimits) -> PreparedImage:
        assert self.pool is not None
        [(_, outcome)] = list(self.pool.map([(data, mime_type, limits)]))
        if isinstance(outcome, PreparedImage):
            return outcome
        if isinstance(outcome, DecodeFailed):
            raise (TooLarge if outcome.error_type == TooLarge.error_type else Corrupt)(outcome.message)
        if outcome.kind in ("memory", "timeout"):
            raise TooLarge(f"decoding the image {outcome.message}; downscale it before sending it")
        raise Corrupt(f"decoding the image {outcome.message}; the file is probably damaged: re-save it")
