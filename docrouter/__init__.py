"""docrouter: folders of PDFs and images -> OpenRouter answers -> Parquet, for as little money as the job allows.

The package listing is SPEC §1's diagram; every arrow points down (tests/test_layout.py holds it):

    errors results vocabulary budget redaction   the vocabulary: imported by every stage, imports none
    catalogue  pdf/                              shared: the model catalogue, the PDF readers
    discover/ -> inspect/ -> route/ -> call/ -> store/   one folder per stage (SPEC §1: discover, inspect,
                                                         route, call, write); each imports only the vocabulary,
                                                         the shared parts and the stages before it
    run/                                         the composition root: the settings, the session that `run`,
                                                 `plan` and `ask` all open, the ledger, progress, summary
    emulator/                                    an OpenRouter-compatible server (vocabulary, catalogue, pdf)

Outside the library (never imported by it): the Prefect flows (flows/docrouter_flows), the tasks
(tasks/docrouter_tasks) and the command line (commands/docrouter_commands).
"""

from __future__ import annotations

__version__ = "0.1.0"
