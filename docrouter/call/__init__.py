"""Stage 4, call (SPEC §1): send each routed document inside the budget, retry what is transient, build rows.

- client: the OpenRouter HTTP client; the only place HTTP statuses become docrouter.errors.
- payloads: request bodies (file part, image_url, local text, combining request).
- dispatch, limits: one document's attempts under the budget, with backoff and adaptive concurrency.
- jobs: one document's way through: one request, or page ranges and a combining request.
- reading: the bytes sent are the bytes discovery hashed.
- extraction, columns, extracting: --schema answers validated (and repaired once) before they count.
- nonanswers: replies that say the document could not be read.
- rows: every outcome of a document as one Result row.

May import: the vocabulary, docrouter.catalogue, docrouter.pdf, docrouter.discover, docrouter.inspect,
docrouter.route.
"""
