"""Stage 1, discover (SPEC §1): what the sources hold, typed by their bytes and identified by SHA-256.

- documents: walking folders, typing files by their bytes, hashing, skipped/failed discoveries.
- names: how a filesystem path is stored in results (UTF-8 text that leads back to one file).
- urls, fetching: http(s) sources, fetched into a bounded content-addressed cache under DIR.

May import: the vocabulary (docrouter.errors, .results, .vocabulary, .budget, .redaction), docrouter.catalogue,
docrouter.pdf.
"""
