"""Stage 3, route (SPEC §1): per document the cheapest adequate engine, and what it will cost, before any call.

- routing: the engine decision and its one-line reason (a pure function of inspection, catalogue, prices).
- pricing: the cost model (expected and at most) per engine; the max price sent with every request.
- answers: the expected answer length (history, else a stated prior).
- reasoning: the `--reasoning` setting and the tokens it may take.
- splitting: long documents in page ranges that fit the model's context.

May import: the vocabulary, docrouter.catalogue, docrouter.pdf, docrouter.discover, docrouter.inspect.
"""
