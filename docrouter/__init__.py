"""docrouter: folders of PDFs and images -> OpenRouter answers -> Parquet, for as little money as the job allows."""

from __future__ import annotations

__version__ = "0.1.0"
