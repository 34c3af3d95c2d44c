"""The composition root: the run's settings, the session that `run`, `plan` and `ask` all open, and its parts.

- config, settings, environment: what a run is asked to do (one typed settings object; the environment read once).
- session: opens the run (key, catalogue, client, store, ledger, workers) and runs its stages as plain functions.
- ledger: what DIR holds (answered documents, known failures, stored parses), read once and passed down.
- planning, pilot, forecast: `plan`, the same decisions with no paid call, and its pilot forecast.
- asking: `ask`, a follow-up question about one answered document, through the same session functions.
- progress, summary, stopping, concurrency: live figures, the run's summary, Ctrl-C, the bounds on what runs at once.
- promptroom, references: the prompt's room in the context, and large prompts passed to a flow run by reference.

May import: every stage (discover, inspect, route, call, store), docrouter.catalogue, docrouter.pdf, the vocabulary
and docrouter.emulator (for --offline). Nothing in the library imports this package but itself.
"""
