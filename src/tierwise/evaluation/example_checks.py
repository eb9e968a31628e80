"""Example ``python`` checks used by the bundled example inputs (``tierwise eval example``).

A python check is ``f(output, item)`` returning a bool, a 0..1 score, or ``(bool, "why")``.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["no_refusal", "email_shape"]

_REFUSAL = re.compile(r"(?i)\b(i can(?:not|'t) (?:help|assist|do)|i'm unable to|as an ai\b)")


def no_refusal(output: str, item: Any) -> tuple[bool, str]:
    """The answer does not refuse or hedge about being an AI."""
    m = _REFUSAL.search(output)
    return (m is None, f"refusal: {m.group(0)!r}" if m else "no refusal")


def email_shape(output: str, item: Any) -> float:
    """A rough 0..1 score for an email draft: enough substance, not a wall of text, no placeholders left."""
    words = len(output.split())
    score = 1.0
    if words < 25:
        score -= 0.6
    if words > 400:
        score -= 0.3
    if re.search(r"\[(?:name|company|date)\]", output, re.I):
        score -= 0.5
    return max(0.0, score)
