"""Stage 2, inspect (SPEC §1): what reading each document needs, measured locally and bounded per file.

- inspection: the verdict per document (text layer, scan, OCR layer, garbled), from the measurements below.
- textquality, pagelabels: per-page text metrics and labels (reference/pdf-heuristics.md).
- images: image facts, and images made acceptable and cheaper before sending (downscaling).
- isolation, pdfwork: worker processes with wall-clock and memory limits for the PDF and image work.

May import: the vocabulary, docrouter.catalogue, docrouter.pdf, docrouter.discover.
"""
