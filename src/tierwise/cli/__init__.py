"""The ``tierwise`` command line: one module per command, registered on one typer app."""

from __future__ import annotations

import importlib
import sys

import typer

from ..errors import ConfigError, TierwiseError

__all__ = ["app", "main"]

app = typer.Typer(
    name="tierwise",
    help="Route every Claude request to the cheapest tier that does it well, and account for every cent.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



@app.callback()
def _root() -> None:
    """Route every Claude request to the cheapest tier that does it well, and account for every cent."""


# Each module registers its command(s) on ``app`` when imported.
COMMAND_MODULES = ("serve", "route", "models", "report", "demo", "cost", "train", "score", "bench", "calibrate", "fake_upstream",
                   "eval", "ab", "registry", "monitor", "keys", "shadow")


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise


def main(argv: list[str] | None = None) -> int:
    _load_commands()
    try:
        app(args=argv, standalone_mode=True)
    except (ConfigError, TierwiseError) as exc:  # user mistakes: a message, not a traceback
        typer.secho(f"error: {exc}", err=True, fg="red")
        return 2
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def run() -> None:  # pragma: no cover - console entry point
    sys.exit(main())
