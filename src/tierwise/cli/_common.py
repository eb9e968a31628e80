"""Shared CLI helpers: loading settings with flags as overrides, and printing errors."""

from __future__ import annotations

import datetime as _dt
from typing import Any, NoReturn

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


def fail(message: str) -> NoReturn:
    """A user mistake: one line on stderr, exit code 2, no traceback."""
    import typer
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False)
    raise typer.Exit(2)


def parse_day(value: str | None, flag: str = "--on") -> _dt.date | None:
    """A ``YYYY-MM-DD`` option, or None when not given; a bad value is a one-line error."""
    if not value:
        return None
    try:
        return _dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{flag} {value!r}: expected a date like 2026-11-21 (YYYY-MM-DD)")
