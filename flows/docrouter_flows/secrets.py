"""The API key: from a Prefect Secret block when one is named, else the environment; never a parameter."""

from __future__ import annotations

from prefect.blocks.system import Secret

from docrouter.errors import ConfigError
from docrouter.run.config import resolve_api_key


async def load_api_key(block_name: str | None) -> str:
    """The key from Secret block `block_name`, or OPENROUTER_API_KEY; ConfigError naming both options."""
    if block_name:
        try:
            secret: Secret[str] = await Secret.aload(block_name)
        except ValueError as exc:
            raise ConfigError(f"cannot load Prefect Secret block {block_name!r}: {exc}") from None
        return resolve_api_key(str(secret.get()))
    return resolve_api_key(None)
