"""A tiny hand-rolled PDF assembler for the sample documents: fixed /ID, no dates, optional RC4 encryption.

Hand-rolled rather than pypdf's writer because the samples must be byte-for-byte reproducible, and pypdf
draws random file identifiers and salts.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image

PAGE_W, PAGE_H = 612, 792  # US Letter, in points
_FILE_ID = hashlib.md5(b"docrouter sample").digest()
_PAD = bytes.fromhex("28bf4e5e4e758a4164004e56fffa01082e2e00b6d0683e802f0ca9fe6453697a")


def escape(line: str) -> bytes:
    """A PDF literal string body (without the parentheses)."""
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1", "replace")


@dataclass
class PdfAssembly:
    """Objects in order of number; each is (dictionary bytes, stream bytes or None)."""

    objects: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    pages: list[int] = field(default_factory=list)

    def add(self, head: bytes, stream: bytes | None = None) -> int:
        self.objects.append((head, stream))
        return len(self.objects)

    def reserve(self) -> int:
        return self.add(b"null")

    def set(self, num: int, head: bytes, stream: bytes | None = None) -> None:
        self.objects[num - 1] = (head, stream)

    def stream(self, entries: bytes, data: bytes, *, compress: bool = True) -> int:
        if compress:
            data, entries = zlib.compress(data, 9), entries + b" /Filter /FlateDecode"
        return self.add(b"<< " + entries + b" /Length %d >>" % len(data), data)

    def page(self, content: bytes, *, image: Image.Image | None = None, font: bool = True) -> None:
        resources = [b"/Font << /F1 %d 0 R >>" % self._font()] if font else []
        if image is not None:
            resources.append(b"/XObject << /Im1 %d 0 R >>" % self._image(image))
        contents = self.stream(b"", content)
        self.pages.append(
            self.add(
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << %s >> /Contents %d 0 R >>"
                % (PAGE_W, PAGE_H, b" ".join(resources), contents)
            )
        )

    def _font(self) -> int:
        head = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
        for num, (existing, _) in enumerate(self.objects, 1):
            if existing == head:
                return num
        return self.add(head)

    def _image(self, image: Image.Image) -> int:
        entries = b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent %d"
        bits = 1 if image.mode == "1" else 8
        return self.stream(entries % (image.width, image.height, bits), image.tobytes())

    def build(self, *, producer: str = "docrouter samples", encrypt: tuple[str, str] | None = None) -> bytes:
        kids = b" ".join(b"%d 0 R" % p for p in self.pages)
        self.set(1, b"<< /Type /Catalog /Pages 2 0 R >>")
        self.set(2, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(self.pages)))
        trailer = b"/Root 1 0 R /ID [<%s> <%s>]" % (_FILE_ID.hex().encode(), _FILE_ID.hex().encode())
        key = None
        if encrypt is not None:
            key, entry = _rc4_security(*encrypt)
            trailer += b" /Encrypt %d 0 R" % self.add(entry)
        else:
            trailer += b" /Info %d 0 R" % self.add(b"<< /Producer (" + escape(producer) + b") >>")
        return _serialise(self.objects, trailer, key)


def new_pdf() -> PdfAssembly:
    """An empty assembly with objects 1 (catalogue) and 2 (page tree) reserved."""
    pdf = PdfAssembly()
    pdf.reserve(), pdf.reserve()  # 1: catalog, 2: page tree, filled in by build()
    return pdf


def _serialise(objects: Sequence[tuple[bytes, bytes | None]], trailer: bytes, key: bytes | None) -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = [0] * len(objects)
    # The catalogue and page tree go last, as many writers do, so a cut-off file loses them.
    for num in [*range(3, len(objects) + 1), 1, 2]:
        head, stream = objects[num - 1]
        offsets[num - 1] = out.tell()
        out.write(b"%d 0 obj\n%s" % (num, head))
        if stream is not None:
            data = stream if key is None else _rc4_object(key, num, stream)
            out.write(b"\nstream\n" + data + b"\nendstream")
        out.write(b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d %s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer, xref))
    return out.getvalue()


def _rc4(key: bytes, data: bytes) -> bytes:
    """RC4, written out so encrypted samples need no deprecated cipher and stay deterministic."""
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def _rc4_rounds(key: bytes, data: bytes) -> bytes:
    for i in range(20):
        data = _rc4(bytes(b ^ i for b in key), data)
    return data


def _rc4_security(user_password: str, owner_password: str) -> tuple[bytes, bytes]:
    """The file key and /Encrypt dictionary of the standard handler, revision 3, RC4 128-bit."""
    padded_user = (user_password.encode("latin-1") + _PAD)[:32]
    owner_key = hashlib.md5((owner_password.encode("latin-1") + _PAD)[:32]).digest()
    for _ in range(50):
        owner_key = hashlib.md5(owner_key).digest()
    o_value = _rc4_rounds(owner_key, padded_user)
    permissions = -3904  # print, copy and the rest allowed
    key = hashlib.md5(padded_user + o_value + struct.pack("<i", permissions) + _FILE_ID).digest()
    for _ in range(50):
        key = hashlib.md5(key).digest()
    u_value = _rc4_rounds(key, hashlib.md5(_PAD + _FILE_ID).digest()) + bytes(16)
    entry = b"<< /Filter /Standard /V 2 /R 3 /Length 128 /P %d /O <%s> /U <%s> >>" % (
        permissions,
        o_value.hex().encode(),
        u_value.hex().encode(),
    )
    return key, entry


def _rc4_object(key: bytes, num: int, data: bytes) -> bytes:
    return _rc4(hashlib.md5(key + num.to_bytes(3, "little") + b"\0\0").digest(), data)
