"""Requests for the learned router's pinned decisions (tests/routing/data/learned_decisions.json.gz): the
realistic set's dev split and synthetic prompts of every shape (ASCII and not, apostrophes, code, numbers,
options, long), plain and with a system prompt and earlier turns."""

from __future__ import annotations

import random
from typing import Any

from tierwise import evaldata

SHAPES = ["", " ", "\n", "A. x", "Which? \nA) 1\nB) 2\n C. 3", "x" * 9000, "word " * 3000, "Résumé naïve café — 東京の天気は？",
          "lone surrogate \ud800 here", "emoji 🙂 tabs\tand\u00a0nbsp\u3000", "$ 5 and $12 and $x", "IF unless IF, given that",
          "first do x then y", "def f():\n  return 1\n```py\n```", "12,345.67 -8 9.", "not NOT never least false incorrect",
          "Write a SQL query; fix the bug in the function", "document 1 and doc #2, exhibit a, <document>",
          "don't won't it's o'clock rock'n'roll 'quoted' '' a' 'b x'1 1'a", "K\u212a İstanbul ǅ",
          "Classify the intent of this support ticket into one of: billing, shipping, account, other. Ticket: 'Hi, I was "
          "charged twice for order #4411 last week and still see both charges today.'"]
ALPHABET = [chr(c) for c in range(0x250)] + ["\u2028", "\u3000", "漢", "😀", "é", " if ", " then ", " first ", "A. ", "\nB) ",
                                             "$3", " total ", "```", " sql ", " fix ", "'", " don't ", "1,2.5", "#", "_", ";"]


def bodies() -> list[tuple[dict[str, Any], str | None]]:
    rng = random.Random(5)
    texts = SHAPES + ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 400))) for _ in range(150)]
    texts += [" ".join(rng.choice(ALPHABET[0x250:] + ["the", "of", "and", "prove", "compare", "contract", "42"])
                       for _ in range(rng.randint(1, 300))) for _ in range(50)]
    out: list[tuple[dict[str, Any], str | None]] = []
    for i, t in enumerate(texts):
        out.append(({"model": "auto", "max_tokens": 100, "messages": [{"role": "user", "content": t}]}, None))
        out.append(({"model": "auto", "max_tokens": 100, "system": "You are a helper. " + t[:50],
                     "messages": [{"role": "user", "content": t}, {"role": "assistant", "content": "ok"},
                                  {"role": "user", "content": [{"type": "text", "text": t[::-1]}]}]},
                    ("code", "chat", None)[i % 3]))
    out += [(item.body(), item.task_type) for item in evaldata.load("dev")]
    return out
