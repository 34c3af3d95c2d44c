"""Media the emulator receives: data URLs, MIME types sniffed from bytes, image sizes read from headers.

Image sizes come from the format headers, not from decoding: the emulator must answer "too large" for a
200-megapixel image without allocating it (and without Pillow's decompression-bomb warnings).
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass

IMAGE_MIME_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
PDF_MIME = "application/pdf"

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,", re.IGNORECASE)


class MediaError(ValueError):
    """Bytes or a URL that cannot be used, with a message saying why."""


@dataclass(frozen=True)
class DataUrl:
    """A decoded `data:<mime>;base64,...` URL."""

    mime: str
    data: bytes


def decode_data_url(url: str) -> DataUrl:
    """The MIME type and bytes of a base64 data URL (the only data URL form OpenRouter documents)."""
    match = _DATA_URL.match(url)
    if match is None:
        raise MediaError("not a base64 data URL: expected data:<mime type>;base64,<data>")
    payload = url[match.end() :]
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise MediaError("the data URL's base64 payload is not valid base64") from None
    return DataUrl(mime=(match.group("mime") or "").lower(), data=data)


def sniff_mime(data: bytes) -> str | None:
    """The MIME type the bytes really are (PDF, PNG, JPEG, GIF, WebP), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if b"%PDF-" in data[:1024]:  # readers accept junk before the header, so does the API
        return PDF_MIME
    return None


def describe_mime(mime: str | None) -> str:
    """A short name for messages: PDF, PNG, JPEG, ... or 'unrecognised bytes'."""
    if mime is None:
        return "unrecognised bytes"
    return "PDF" if mime == PDF_MIME else mime.split("/")[-1].upper()


def image_size(data: bytes, mime: str) -> tuple[int, int]:
    """(width, height) from the image's header, without decoding it."""
    try:
        if mime == "image/png":
            return struct.unpack(">II", data[16:24])
        if mime == "image/gif":
            return struct.unpack("<HH", data[6:10])
        if mime == "image/webp":
            return _webp_size(data)
        if mime == "image/jpeg":
            return _jpeg_size(data)
    except struct.error:
        pass
    raise MediaError(f"cannot read the dimensions of this {describe_mime(mime)} image (truncated or corrupt)")


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        b0, b1, b2, b3 = data[21:25]
        return 1 + (b0 | (b1 & 0x3F) << 8), 1 + (b1 >> 6 | b2 << 2 | (b3 & 0x0F) << 10)
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        return width, int.from_bytes(data[27:30], "little") + 1
    raise struct.error("unknown WebP chunk")


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Walk the JPEG markers to the first start-of-frame segment."""
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            raise struct.error("not a JPEG marker")
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length
            offset += 2
            continue
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        if marker in _SOF_MARKERS:
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return width, height
        offset += 2 + length
    raise struct.error("no JPEG frame header")
