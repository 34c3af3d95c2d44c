"""Reading PDFs, shared by inspection, splitting and the emulator: pypdf first, PDFium as the fallback.

- pdfscan: the raw operator scan of a page's content stream (cheap counts).
- pdfreading: opening with pypdf and reading page text, its failures as DocumentErrors or data.
- pdfium: the PDFium (pypdfium2) opener and extractor for what pypdf cannot read.

May import: the vocabulary (docrouter.errors, .results, .vocabulary, .budget, .redaction).
"""
