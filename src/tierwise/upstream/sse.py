"""Reading an Anthropic SSE stream as it passes through, without changing a byte.

``StreamMeter.feed(chunk)`` is called with each raw chunk the proxy forwards; it keeps
partial lines between chunks and parses only the few events that carry accounting
(``message_start``, ``message_delta``, a ``fallback`` block, ``error``) and the signatures of
thinking blocks (``signature_delta``, a ``redacted_thinking`` block), which
:mod:`tierwise.affinity` remembers.
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

from ..cost import Usage

__all__ = ["StreamMeter", "format_event"]

# a data line is parsed only when it names an event that carries accounting (one C-level search;
# several times cheaper per line than testing each name with ``in``)
_INTERESTING = re.compile(rb'"(?:message_start|message_delta|fallback|error|signature_delta|redacted_thinking)"')


# the same names, each searched for in a run of lines
_NAMES = (b'"message_start"', b'"message_delta"', b'"fallback"', b'"error"', b'"signature_delta"', b'"redacted_thinking"')


def _event_line(data: bytes, name: bytes, skip: int) -> int:
    """Where the first ``event:`` line of ``data`` naming ``name`` starts (not the one starting at
    ``skip``), or -1."""
    at = data.find(name)
    while at >= 0:
        start = data.rfind(b"\n", 0, at) + 1
        if start != skip and data[start:start + 6] == b"event:":
            return start
        end = data.find(b"\n", at)
        if end < 0:
            return -1
        at = data.find(name, end)
    return -1


# A line longer than this is passed through but not parsed (the accounting events are a few KB;
# a redacted_thinking block can be larger): what the meter holds per stream stays bounded.
MAX_LINE_BYTES = 8 * 1024 * 1024


class StreamMeter:
    __slots__ = ("usage", "model", "answered_model", "stop_reason", "error_type", "error_message",
                 "first_token_at", "events", "_parts", "_pending", "_skip", "completed", "signatures",
                 "max_line", "oversized")

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.usage = Usage()
        self.model: str | None = None
        self.answered_model: str | None = None
        self.stop_reason: str | None = None
        self.error_type: str | None = None
        self.error_message: str | None = None
        self.first_token_at: float | None = None
        self.events = 0
        self.completed = False
        self._parts: list[bytes] = []   # pieces of the unfinished last line, joined once it ends
        self._pending = 0               # their total length
        self._skip = False              # the unfinished line grew past max_line: drop it up to its newline
        self.max_line = max_line
        self.oversized = 0              # lines passed through unparsed for their size
        self.signatures: list[str] = []  # of the thinking blocks streamed (see tierwise.affinity)

    def feed(self, chunk: bytes) -> None:
        # Linear in the bytes fed: a chunk without a newline is only appended (never re-joined with
        # what came before), and a line is joined once, when its newline arrives.
        nl = chunk.find(b"\n")
        if nl < 0:
            self._hold(chunk)
            return
        if self._parts or self._skip:
            head = chunk[:nl]
            if self._skip:
                self._skip = False
            else:
                self._parts.append(head)
                self._line(b"".join(self._parts))
            self._parts.clear()
            self._pending = 0
            chunk = chunk[nl + 1:]
        end = chunk.rfind(b"\n")
        if end > 0:
            self._lines(chunk[:end])
        last = chunk[end + 1:]  # the unfinished last line (b"" when the chunk ends with a newline)
        if last:
            self._hold(last)

    def _hold(self, piece: bytes) -> None:
        if self._skip:
            return
        self._pending += len(piece)
        if self._pending > self.max_line:
            self._parts.clear()
            self._pending = 0
            self._skip = True
            self.oversized += 1
            return
        self._parts.append(piece)

    def _lines(self, data: bytes) -> None:
        """Whole lines (``data``: lines joined by newlines), as ``_line`` on each would read them, with the
        searching done by C-level scans of the whole run (``bytes.find``, no regex: a JSON line is full
        of quotes, each a start for an alternation) rather than a Python call per line: a stream's chunk
        holds dozens of lines, a handful of which are read."""
        if len(data) > self.max_line:  # a line may be past the bound (counted, not parsed): one by one
            for line in data.split(b"\n"):
                self._line(line)
            return
        self.events += data.count(b"\nevent:") + (data[:6] == b"event:")
        first_delta = -1  # where the line that dated the first token starts (``_line``: no stop test on it)
        if self.first_token_at is None:
            first_delta = _event_line(data, b"content_block_delta", -1)
            if first_delta >= 0:
                self.first_token_at = time.perf_counter()
        if not self.completed and _event_line(data, b"message_stop", first_delta) >= 0:
            self.completed = True
        starts = set()
        for name in _NAMES:
            at = data.find(name)
            while at >= 0:
                start = data.rfind(b"\n", 0, at) + 1
                starts.add(start)
                end = data.find(b"\n", at)
                if end < 0:
                    break
                at = data.find(name, end)
        for start in sorted(starts):
            if data[start:start + 5] == b"data:":
                end = data.find(b"\n", start)
                self._data(data[start + 5:end if end >= 0 else len(data)])

    def _line(self, line: bytes) -> None:
        if line[:5] == b"data:":
            if len(line) > self.max_line:
                self.oversized += 1
            elif _INTERESTING.search(line):
                self._data(line[5:])
        elif line[:6] == b"event:":
            self.events += 1
            if self.first_token_at is None and b"content_block_delta" in line:
                self.first_token_at = time.perf_counter()
            elif b"message_stop" in line:
                self.completed = True

    def _data(self, payload: bytes) -> None:
        try:
            obj: Any = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if not isinstance(obj, dict):
            return
        try:
            self._event(obj)
        except (AttributeError, TypeError, ValueError):
            pass  # a malformed accounting field: the bytes still pass through unchanged

    def _event(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if kind == "message_start":
            msg = obj.get("message") or {}
            self.model = msg.get("model")
            self.usage = Usage.from_api(msg.get("usage"))
        elif kind == "message_delta":
            usage = obj.get("usage")
            if isinstance(usage, dict):
                self.usage = self.usage.merged(usage)
            self.stop_reason = (obj.get("delta") or {}).get("stop_reason") or self.stop_reason
        elif kind == "content_block_delta":
            delta = obj.get("delta") or {}
            if delta.get("type") == "signature_delta" and isinstance(delta.get("signature"), str):
                self.signatures.append(delta["signature"])
        elif kind == "content_block_start":
            block = obj.get("content_block") or {}
            if block.get("type") == "redacted_thinking" and isinstance(block.get("data"), str):
                self.signatures.append(block["data"])
            elif block.get("type") == "fallback":
                self.answered_model = ((block.get("to") or {}).get("model")) or self.answered_model
        elif kind == "error":
            err = obj.get("error")
            if not isinstance(err, dict):
                err = {}
            self.error_type = err.get("type") or "api_error"
            self.error_message = err.get("message")

    @property
    def priced_model(self) -> str | None:
        """The model that actually answered (the fallback's target when the API fell back)."""
        return self.answered_model or self.model


def format_event(event: str, data: Any) -> bytes:
    """One SSE event the way the API writes it: ``event:`` line, ``data:`` line, blank line."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def message_events(message: dict[str, Any]) -> bytes:
    """A complete Message re-told as the SSE stream the API would have sent (text, tool_use and
    thinking blocks). Used when an answer had to be finished before it could be streamed (a cascade
    verifies the whole answer first)."""
    usage = dict(message.get("usage") or {})
    start = dict(message, content=[], stop_reason=None, stop_sequence=None, usage=dict(usage, output_tokens=1))
    out = [format_event("message_start", {"type": "message_start", "message": start})]
    for i, block in enumerate(message.get("content") or ()):
        kind = block.get("type")
        if kind == "text":
            out.append(format_event("content_block_start", {"type": "content_block_start", "index": i,
                                                            "content_block": {"type": "text", "text": ""}}))
            text = block.get("text", "")
            for j in range(0, max(len(text), 1), 64):
                out.append(format_event("content_block_delta", {"type": "content_block_delta", "index": i,
                                                                "delta": {"type": "text_delta", "text": text[j:j + 64]}}))
        elif kind == "tool_use":
            out.append(format_event("content_block_start", {"type": "content_block_start", "index": i, "content_block":
                                                            dict(block, input={})}))
            out.append(format_event("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                "type": "input_json_delta", "partial_json": orjson.dumps(block.get("input", {})).decode()}}))
        elif kind == "thinking":
            out.append(format_event("content_block_start", {"type": "content_block_start", "index": i,
                                                            "content_block": {"type": "thinking", "thinking": ""}}))
            out.append(format_event("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                "type": "thinking_delta", "thinking": block.get("thinking", "")}}))
            if block.get("signature"):
                out.append(format_event("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                    "type": "signature_delta", "signature": block["signature"]}}))
        else:
            out.append(format_event("content_block_start", {"type": "content_block_start", "index": i, "content_block": block}))
        out.append(format_event("content_block_stop", {"type": "content_block_stop", "index": i}))
    out.append(format_event("message_delta", {"type": "message_delta", "delta": {
        "stop_reason": message.get("stop_reason"), "stop_sequence": message.get("stop_sequence")}, "usage": usage}))
    out.append(format_event("message_stop", {"type": "message_stop"}))
    return b"".join(out)
