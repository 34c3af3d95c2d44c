"""Documents: what a file is (by its bytes) and where it was found."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DocumentKind = Literal["pdf", "image"]

SUPPORTED_MIME = {
    "application/pdf": "pdf",
    "image/png": "image",
    "image/jpeg": "image",
    "image/webp": "image",
    "image/gif": "image",
}


@dataclass(frozen=True)
class Document:
    """One file found under a source root; identity is the SHA-256 of its bytes."""

    path: str  # absolute filesystem path, for reading the bytes
    rel_path: str  # POSIX path relative to source_root (what the results show)
    source_root: str  # absolute POSIX path of the source it was found under
    size_bytes: int
    doc_id: str  # sha256 hex of the bytes ("" for files that could not be read)
    mime_type: str  # sniffed from the bytes; "application/octet-stream" when unknown
    kind: DocumentKind | None  # None: not a supported document type (a `skipped` row)
