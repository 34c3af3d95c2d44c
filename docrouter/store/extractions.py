"""The extractions dataset: one typed Arrow column per top-level schema property, one partition per schema.

Layout: `DIR/extractions/schema_sha256=<hash>/part-<run_id>-<first_line>.parquet` (hive style, so DuckDB's
`hive_partitioning` and `pandas.read_parquet` of one partition both read it), with the schema itself in
`_schema.json` beside the parts (readers skip names starting with "_"), so that a journal left by a killed
run can be compacted by any later process. The columns and their types: docrouter.call.columns.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from docrouter.call.extraction import ExtractionSchema, as_schema
from docrouter.results import Extraction

EXTRACTIONS_DIR = "extractions"
SCHEMA_FILE = "_schema.json"


def partition(out_dir: Path, schema_sha256: str) -> Path:
    """The folder of one schema's extractions."""
    return Path(out_dir) / EXTRACTIONS_DIR / f"schema_sha256={schema_sha256}"


def write_schema_file(folder: Path, schema: ExtractionSchema) -> bool:
    """Keep the schema beside its parts (once); True when it was written now."""
    target = folder / SCHEMA_FILE
    if target.exists():
        return False
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".{SCHEMA_FILE}.tmp"
    temp.write_text(schema.text, encoding="utf-8")
    temp.replace(target)
    return True


def read_schema_file(folder: Path) -> ExtractionSchema:
    """The schema a partition was written with."""
    return as_schema(json.loads((folder / SCHEMA_FILE).read_text(encoding="utf-8")), str(folder / SCHEMA_FILE))


def partitions(out_dir: Path) -> list[Path]:
    """Every schema's partition folder under DIR/extractions."""
    root = Path(out_dir) / EXTRACTIONS_DIR
    return sorted(p for p in root.glob("schema_sha256=*") if p.is_dir()) if root.is_dir() else []


def journal_row(extraction: Extraction) -> dict[str, Any]:
    """An Extraction as it is journaled (JSON: dates stay strings until compaction types them)."""
    return asdict(extraction)
