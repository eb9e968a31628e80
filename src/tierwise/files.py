"""Reading a file the user named, with a clear error (never a traceback) for each way it goes wrong."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

__all__ = ["read_user_text"]


def read_user_text(path: str | Path, expected: str, *, label: str = "", kind: str = "file",
                   encoding: str = "utf-8") -> str:
    """The text of ``path``; ``expected`` says what it should be ("a JSONL file"), ``label`` prefixes the
    message (e.g. ``--workload``)."""
    p = Path(path)
    name = f"{label} {p}".strip()
    if not p.exists():
        raise ConfigError(f"{name}: {kind} not found")
    if not p.is_file():
        raise ConfigError(f"{name}: not a file (expected {expected})")
    try:
        return p.read_text(encoding=encoding)
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: not UTF-8 text (expected {expected})") from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror}") from None
