"""Stage 5, write (SPEC §1): a paid answer is on disk (fsynced) before the run moves on.

- store: the durable store of a run (journal first, Parquet parts after) and the readers of a DIR.
- journal, compaction, datasets: the write-ahead journal, its compaction into parts, the Arrow schemas.
- extractions: the extractions dataset (one partition per schema).
- lease: one writer per output folder and shard.

May import: every stage before it (discover, inspect, route, call), docrouter.catalogue, docrouter.pdf and the
vocabulary. Earlier stages never import the store: what they need of it comes through the ledger the session
loads once.
"""
