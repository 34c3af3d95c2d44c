"""Prefect flows: the run as SPEC.md section 1 draws it."""
