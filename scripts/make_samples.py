"""Write data/samples/: a small folder covering every kind of input a run meets (byte-for-byte reproducible).

Usage: .venv/bin/python scripts/make_samples.py [OUT_DIR]
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # runnable from a checkout without `pip install -e .`

import samples  # noqa: E402

SAMPLES: dict[str, Callable[[], bytes]] = {
    "born_digital_text.pdf": lambda: samples.text_pdf(3),
    "scanned_no_text_layer.pdf": lambda: samples.scanned_pdf(2),
    "mixed_text_and_scan.pdf": lambda: samples.mixed_pdf(3, 1),
    "scan_with_good_ocr_layer.pdf": lambda: samples.ocr_layer_pdf(1, good=True),
    "scan_with_junk_ocr_layer.pdf": lambda: samples.ocr_layer_pdf(1, good=False),
    "scan_text_only_page_numbers.pdf": lambda: samples.page_numbers_only_scan_pdf(2),
    "text_drawn_as_vector_outlines.pdf": samples.vector_text_pdf,
    "blank_pages.pdf": lambda: samples.blank_pdf(2),
    "owner_password_only.pdf": lambda: samples.encrypted_pdf(None, "owner"),
    "needs_user_password.pdf": lambda: samples.encrypted_pdf("secret", "owner"),
    "truncated_download.pdf": samples.truncated_pdf,
    "receipt.png": samples.png,
    "receipt.jpg": samples.jpeg,
    "receipt.webp": samples.webp,
    "receipt_animated.gif": lambda: samples.gif(frames=3),
    "png_named_as.pdf": lambda: samples.png(240, 160),
    "unsupported_receipt.tiff": samples.tiff,
    "unsupported_notes.txt": lambda: b"Plain text is not a document type docrouter sends.\n",
    "copies/born_digital_text_copy.pdf": lambda: samples.text_pdf(3),  # same bytes: a duplicate
}


def write_samples(out: Path) -> list[Path]:
    """Recreate `out` with every sample; returns the paths written."""
    if out.exists():
        shutil.rmtree(out)
    written = []
    for name, make in SAMPLES.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make())
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else REPO / "data" / "samples"
    written = write_samples(out)
    total = sum(p.stat().st_size for p in written)
    print(f"wrote {len(written)} samples, {total / 1024:.1f} KiB, to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
