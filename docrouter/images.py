"""Images made acceptable and cheaper before sending: downscaled past a pixel or byte limit, format kept."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

from PIL import Image

from docrouter.errors import Corrupt, TooLarge

_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF"}
# Full-size decodes at once in this process: each holds width x height x 4 bytes (800 MB at the default
# pixel cap), so a folder of posters must not be decoded by every worker thread at the same time.
_FULL_DECODES = threading.BoundedSemaphore(2)


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
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            frames = getattr(probe, "n_frames", 1)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise Corrupt(f"cannot read image: {exc}") from None
    if width * height > limits.max_source_pixels:
        raise TooLarge(f"image is {width}x{height} ({width * height / 1e6:.0f} MP), over the decode limit")
    if max(width, height) <= limits.max_side and len(data) <= limits.max_bytes and frames == 1:
        return PreparedImage(data, mime_type, width, height, "")
    scaled, new_w, new_h = _downscale(data, mime_type, limits)
    notes = [f"downscaled {width}x{height} -> {new_w}x{new_h}"] if (new_w, new_h) != (width, height) else []
    if frames > 1:
        notes.append(f"animated GIF of {frames} frames sent as its first frame")
    return PreparedImage(scaled, mime_type, new_w, new_h, "; ".join(notes))


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
