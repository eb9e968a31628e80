"""Shared CLI helpers: loading settings with flags as overrides, and printing errors."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from ..config import Settings, load_settings

console = Console()
err_console = Console(stderr=True)


def settings_from(config: str | None, **overrides: Any) -> Settings:
    """Settings with CLI flags (nested ``{"server": {"port": 1}}``) taking precedence."""
    clean: dict[str, Any] = {}
    for section, values in overrides.items():
        if isinstance(values, dict):
            vals = {k: v for k, v in values.items() if v is not None}
            if vals:
                clean[section] = vals
    return load_settings(config, overrides=clean)
