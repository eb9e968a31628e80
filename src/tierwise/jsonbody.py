"""Re-serialising a request body the proxy changed (routed, adapted, moved to another upstream).

orjson writes JSON nested at most 255 levels deep, but reads up to 1,024 (and the API accepts
bodies deeper than 255): a body orjson read and cannot write again is written by the standard
library instead, slower and only for such bodies, so a deep body is forwarded, never a 500.
A body the proxy did not change is forwarded as the bytes it came in (server/admit.py).
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import orjson

__all__ = ["dumps", "MAX_DEPTH"]

MAX_DEPTH = 1024          # what orjson.loads reads; a deeper body is a 400 naming this limit
_LOCK = threading.Lock()  # the recursion limit is process-wide: one deep write at a time


def dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:
        if not isinstance(obj, (dict, list)):
            raise
    return _deep_dumps(obj)


def _deep_dumps(obj: Any) -> bytes:
    with _LOCK:
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old, 4 * MAX_DEPTH + 1000))
        try:
            return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8", "surrogatepass")
        finally:
            sys.setrecursionlimit(old)
