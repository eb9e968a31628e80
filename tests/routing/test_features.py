"""The decide path's byte-level helpers match their plain definitions (tokens, number counts)."""

from __future__ import annotations

import random
import re

from tierwise.routing.features import _NUMBER_COUNT_B, _WORD_B, prompt_bytes

# the definitions the faster patterns must match: greedy tokens; numbers with an optional "-"
WORD_PLAIN = re.compile(rb"[a-z0-9]+(?:'[a-z]+)?|[\xc0-\xff][\x80-\xbf]*|[^\sa-z0-9\x80-\xff]")
NUMBER_PLAIN = re.compile(rb"-?\d[\d,]*(?:\.\d+)?")

ALPHABET = ([chr(c) for c in range(0x250)] + ["\u2028", "\u3000", "\u00a0", "漢", "😀", "\ud800", "é"]
            + ["'", "'a", "a'", "don't", " ", "-1", "1,2", ".5", "-", "1.", "1.2.3", "-.5", "1,-2", "A. ", "\nB) "] * 6)


def texts() -> list[str]:
    rng = random.Random(11)
    out = ["Classify the intent of this ticket: 'Hi, I was charged twice for order #4411 -- $12.50, not 12,50.'",
           "", "   ", "x" * 5000 + " 12 34", "naïve café, 1,234.5 - -7 ... 'quoted' don't can't"]
    out += ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 120))) for _ in range(5000)]
    return out


def test_tokens_and_number_counts_match_the_plain_patterns() -> None:
    for text in texts():
        raw, low = prompt_bytes(text, 4000)
        assert _WORD_B.findall(low) == WORD_PLAIN.findall(low), text
        assert len(_NUMBER_COUNT_B.findall(raw)) == len(NUMBER_PLAIN.findall(raw)), text
