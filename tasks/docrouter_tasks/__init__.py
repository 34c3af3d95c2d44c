"""Prefect tasks: thin wrappers over docrouter's stages that own retries, timeouts and caching policy."""
