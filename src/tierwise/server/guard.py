"""Slow and idle clients: the connection-level bounds uvicorn does not have.

uvicorn times out an idle keep-alive connection only *after* a response; a connection that opens
and sends nothing, or sends its headers a byte at a time (slowloris), or stops half-way through
its body, is held forever, and with it a file descriptor. ``guarded_protocol`` returns uvicorn's
httptools protocol with:

- ``header_timeout``: the request line and headers must arrive within this many seconds (up to a
  quarter more, drawn per connection so a flood does not expire at once) of the connection opening
  (or of the previous answer on a keep-alive connection); else 408 and close;
- ``body_timeout``: while a body is being received, no silence longer than this; else the
  connection is closed (the request sees a disconnect and is recorded as such);
- ``max_header_bytes``: more bytes than this before the headers end is a 431 and close (the parser
  would otherwise buffer them);
- ``max_connections``: past this many open connections, the oldest connection still sending its
  headers is closed to make room (a client that holds thousands half-open cannot lock out others);
  with none to close, the new connection is refused.

One timer per connection, re-armed only when it fires (activity just moves a deadline), so a busy
connection costs a clock read per body chunk. A client still sending its headers after half a second
is read in pauses (1, 2, 4... s; its bytes wait in the kernel meanwhile, and the last are read at
the deadline), so thousands of byte-a-second drips cost a few reads each, not one per byte. Wired in by ``tierwise serve`` (cli/serve.py); the
figures are in bench/slowloris.py.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

__all__ = ["guarded_protocol"]

HEADER_GRACE = 0.5  # seconds a client may take over its headers before it is read in pauses

_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n")
_431 = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: %d\r\n\r\n")


def _error(head: bytes, kind: str, message: str) -> bytes:
    from ..errors import error_body

    body = error_body(kind, message, "req_tw_guard")  # built once: a flood of timeouts costs one write each
    return head % len(body) + body


def guarded_protocol(*, header_timeout: float = 10.0, body_timeout: float = 30.0, max_header_bytes: int = 64 * 1024,
                     max_connections: int = 4096) -> type:
    """A subclass of uvicorn's HttpToolsProtocol with the bounds above (pass it as ``http=``)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    # connections still sending their headers, oldest first (shared by every connection of the server)
    waiting: dict[Any, None] = {}
    timeout_408 = _error(_408, "timeout_error", f"request headers not received within {header_timeout:g} s")
    too_big_431 = _error(_431, "invalid_request_error", f"request headers exceed {max_header_bytes:,} bytes")
    # each connection's header timeout is drawn in [header_timeout, 2 x header_timeout): connections
    # opened together (a flood) do not all time out, and come back, in the same instant
    rand = random.Random().random

    class GuardedHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._deadline = 0.0          # when the current phase times out
            self._timer: asyncio.TimerHandle | None = None
            self._phase = 0               # 0 idle, 1 headers, 2 body, 3 app
            self._hbytes = 0
            self._hbuf = bytearray()      # header bytes not yet given to the parser
            self._started = 0.0           # when the header phase began
            self._nap = 1.0               # the next pause of a slow header sender, seconds
            self._napping: asyncio.TimerHandle | None = None
            self._final = False           # the header deadline passed: one last read, then 408

        # -- the timer ------------------------------------------------------------------
        def _arm(self, seconds: float) -> None:
            self._deadline = self.loop.time() + seconds
            if self._timer is None:
                self._timer = self.loop.call_at(self._deadline, self._fire)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _fire(self) -> None:
            self._timer = None
            if self._phase not in (1, 2) or self.transport is None or self.transport.is_closing():
                return
            now = self.loop.time()
            if now < self._deadline:  # activity moved the deadline: sleep until then
                self._timer = self.loop.call_at(self._deadline, self._fire)
                return
            if self._phase == 1:
                if self._napping is not None and not self._final:
                    # reading was paused: read what the client sent meanwhile, then decide
                    self._wake()
                    self._final = True
                    self._deadline = now + 0.25
                    self._timer = self.loop.call_at(self._deadline, self._fire)
                    return
                self._refuse(timeout_408)
            elif self.flow is not None and self.flow.read_paused:
                self._arm(body_timeout)  # the app is not reading yet (flow control): the client is not the slow one
            else:
                self.transport.close()  # the app sees a disconnect while reading the body

        def _refuse(self, payload: bytes) -> None:
            waiting.pop(self, None)
            self._phase = 0
            try:
                self.transport.write(payload)
            finally:
                self.transport.close()

        def _doze(self) -> None:
            """A client still sending its headers after HEADER_GRACE: stop reading it for a while (its
            bytes wait in the kernel), 1, 2, 4... seconds with jitter, so a byte-a-second drip costs a
            handful of reads per connection instead of one per byte."""
            self.transport.pause_reading()
            nap = self._nap * (0.5 + rand())
            self._nap *= 2
            self._napping = self.loop.call_later(nap, self._wake)

        def _wake(self) -> None:
            if self._napping is not None:
                self._napping.cancel()
                self._napping = None
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()

        def _start_headers(self) -> None:
            self._phase = 1
            self._started = self.loop.time()
            self._nap = 1.0
            self._final = False
            self._hbytes = 0
            self._hbuf.clear()
            waiting[self] = None
            self._arm(header_timeout * (1.0 + rand()))

        # -- the protocol ---------------------------------------------------------------
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                victim = next(iter(waiting), None)
                if victim is None:
                    self.transport.close()
                    return
                waiting.pop(victim, None)
                victim._phase = 0
                victim.transport.close()
            self._start_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            waiting.pop(self, None)
            self._phase = 0
            self._disarm()
            if self._napping is not None:
                self._napping.cancel()
                self._napping = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            phase = self._phase
            if phase == 0:
                self._start_headers()  # the next request on a keep-alive connection
                phase = 1
            if phase == 1:
                # Headers arriving in pieces are held here and parsed once their end is in: a client
                # dripping a byte at a time costs an append and a search, not a parser call per byte.
                self._hbytes += len(data)
                buf = self._hbuf
                if buf:
                    start = max(len(buf) - 3, 0)
                    buf += data
                    ended = buf.find(b"\n\r\n", start) >= 0 or buf.find(b"\n\n", start) >= 0
                else:
                    ended = b"\n\r\n" in data or b"\n\n" in data
                if not ended:
                    if self._hbytes > max_header_bytes:
                        self._refuse(too_big_431)
                        return
                    if not buf:
                        buf += data
                    if not self._final and self.loop.time() - self._started > HEADER_GRACE:
                        self._doze()
                    return
                if buf:
                    data = bytes(buf)
                    buf.clear()
            elif phase == 2:
                self._deadline = self.loop.time() + body_timeout
            super().data_received(data)
            # bytes that did not finish the headers count against max_header_bytes (a chunk that
            # finishes them may carry the start of the body: that part is not counted)
            if self._phase == 1 and self._hbytes > max_header_bytes and not self.transport.is_closing():
                self._refuse(too_big_431)

        def on_headers_complete(self) -> None:
            waiting.pop(self, None)
            self._phase = 2
            self._arm(body_timeout)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._phase = 3
            self._disarm()
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._phase == 3:
                self._phase = 0  # idle: uvicorn's keep-alive timer runs; the next byte starts a header phase

    return GuardedHttpToolsProtocol
