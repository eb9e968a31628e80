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
- ``max_connections``: past this many open connections, room is made by closing, oldest first, a
  connection that has been sending its headers for longer than ``HEADER_GRACE`` (a slow or silent
  client), else an idle keep-alive connection with nothing waiting to be read; never one whose
  request is arriving normally, being answered, or queued in the kernel. With none to close, the new
  connection is answered 529 ``overloaded_error`` (``retry-after: 1``) and closed once its request
  has been read (no reset), so a client sees a retryable API error, not a broken connection.
- keep-alive: uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``; when its
  timer fires on a connection whose next request is already waiting in the kernel (the event loop
  was late), the connection is kept and the request served instead of reset.

Every connection the guard closes is counted by cause (``stats``: ``header_timeout``, ``too_big``,
``body_timeout``, ``evicted``, ``refused``, ``keepalive_closed``, ``keepalive_spared``); evictions
and refusals are logged loudly (``tierwise.guard``, at most every 10 s), and the totals are logged
when the process exits.

One timer per connection, re-armed only when it fires (activity just moves a deadline), so a busy
connection costs a clock read per body chunk. A client still sending its headers after half a second
is read in pauses (1, 2, 4... s; its bytes wait in the kernel meanwhile, and the last are read at
the deadline), so thousands of byte-a-second drips cost a few reads each, not one per byte. Wired in by ``tierwise serve`` (cli/serve.py); the
figures are in bench/slowloris.py.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import random
import socket
from typing import Any

__all__ = ["guarded_protocol"]

log = logging.getLogger("tierwise.guard")

HEADER_GRACE = 0.5  # seconds a client may take over its headers before it is read in pauses
DEFER = 64          # connections past the cap that may wait QUIET x 5 for room before being turned away
QUIET = 0.01        # partial headers then this much silence: not a request arriving normally (eviction order)

_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n")
_529 = (b"HTTP/1.1 529 Site Overloaded\r\ncontent-type: application/json\r\nconnection: close\r\nretry-after: 1\r\n"
        b"x-should-retry: true\r\ncontent-length: %d\r\n\r\n")
_431 = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: %d\r\n\r\n")


def _error(head: bytes, kind: str, message: str) -> bytes:
    from ..errors import error_body

    body = error_body(kind, message, "req_tw_guard")  # built once: a flood of timeouts costs one write each
    return head % len(body) + body


def _waiting_bytes(transport: Any) -> bool:
    """Whether the kernel holds bytes this connection has not read yet (a peek on a duplicate of its
    socket: uvloop's transports hand out a pseudo-socket that cannot recv)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    try:
        dup = socket.fromfd(sock.fileno(), getattr(sock, "family", socket.AF_INET), socket.SOCK_STREAM)
    except (OSError, ValueError):
        return False
    try:
        return bool(dup.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except OSError:  # BlockingIOError: nothing waiting; anything else: treat as nothing
        return False
    finally:
        dup.close()


class _Totals:
    """What the guard closed (or spared), by cause, since the process started. Logged, cumulative, at
    most every 10 s while anything happens: WARNING when a connection was evicted or turned away at
    the cap, timed out or refused for its headers, INFO when only idle keep-alive connections closed."""

    QUIET = ("keepalive_closed",)

    def __init__(self, max_connections: int) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.max_connections = max_connections
        self._logged_at = -1e9
        self._loud_logged = 0
        self._pending: asyncio.TimerHandle | None = None

    def add(self, cause: str, now: float) -> None:
        self.counts[cause] += 1
        if now - self._logged_at >= 10.0:
            self.report(now)
        elif self._pending is None:  # log the rest once the 10 s are up (a burst's last counts are not lost)
            try:
                self._pending = asyncio.get_running_loop().call_at(self._logged_at + 10.0, self._flush)
            except RuntimeError:
                pass

    def _flush(self) -> None:
        self._pending = None
        self.report(asyncio.get_running_loop().time())

    def report(self, now: float) -> None:
        self._logged_at = now
        loud = sum(v for k, v in self.counts.items() if k not in self.QUIET)
        level = logging.WARNING if loud > self._loud_logged else logging.INFO
        self._loud_logged = loud
        log.log(level, "connection guard totals (server.max_connections %d): %s", self.max_connections,
                ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())))


def guarded_protocol(*, header_timeout: float = 10.0, body_timeout: float = 30.0, max_header_bytes: int = 64 * 1024,
                     max_connections: int = 4096) -> type:
    """A subclass of uvicorn's HttpToolsProtocol with the bounds above (pass it as ``http=``)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    # connections still sending their headers, oldest first, and idle keep-alive ones, longest idle
    # first (shared by every connection of the server)
    waiting: dict[Any, None] = {}
    idle: dict[Any, None] = {}
    deferred = [0]  # connections past the cap waiting for a decision
    totals = _Totals(max_connections)
    timeout_408 = _error(_408, "timeout_error", f"request headers not received within {header_timeout:g} s")
    too_big_431 = _error(_431, "invalid_request_error", f"request headers exceed {max_header_bytes:,} bytes")
    full_529 = _error(_529, "overloaded_error", f"the proxy has {max_connections:,} open connections (server.max_connections); "
                      "try again shortly")
    # each connection's header timeout is drawn in [header_timeout, 2 x header_timeout): connections
    # opened together (a flood) do not all time out, and come back, in the same instant
    rand = random.Random().random

    class GuardedHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc]
        stats = totals.counts

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._deadline = 0.0          # when the current phase times out
            self._timer: asyncio.TimerHandle | None = None
            self._phase = 0               # 0 idle, 1 headers, 2 body, 3 app, 4 refused (reading to the end, then close)
            self._hbytes = 0
            self._hbuf = bytearray()      # header bytes not yet given to the parser
            self._started = 0.0           # when the header phase began
            self._rx = 0.0                # when header bytes last arrived
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
            if self._phase == 4:
                if self.transport is not None and not self.transport.is_closing():
                    self.transport.close()
                return
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
                totals.add("header_timeout", now)
                self._refuse(timeout_408)
            elif self.flow is not None and self.flow.read_paused:
                self._arm(body_timeout)  # the app is not reading yet (flow control): the client is not the slow one
            else:
                totals.add("body_timeout", now)
                self.transport.close()  # the app sees a disconnect while reading the body

        def _refuse(self, payload: bytes) -> None:
            waiting.pop(self, None)
            self._phase = 0
            try:
                self.transport.write(payload)
            finally:
                self.transport.close()

        def _turn_away(self) -> None:
            """At the cap with nothing to close: answer 529 now, read (and drop) what the client sends
            for up to a second, then close, so it reads the answer instead of a reset."""
            totals.add("refused", self.loop.time())
            waiting.pop(self, None)
            self._disarm()
            self._phase = 4
            self.transport.write(full_529)
            self._deadline = self.loop.time() + 1.0
            self._timer = self.loop.call_at(self._deadline, self._fire)

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

        def _make_room(self) -> bool:
            """Close one connection that is not serving anyone, in this order: the oldest header
            sender past HEADER_GRACE (slow or silent), the longest-idle keep-alive connection with
            nothing waiting, the oldest that sent part of its headers and then nothing for QUIET
            seconds. Never one that just connected and has not sent yet, one whose bytes are arriving
            (a normal request), nor one being answered. False when there is none."""
            now = self.loop.time()
            for victim in waiting:
                if now - victim._started < HEADER_GRACE:
                    break  # the rest are newer
                return self._evict(victim, now)
            for victim in list(itertools.islice(idle, 64)):
                idle.pop(victim, None)
                if victim.transport is None or victim.transport.is_closing() or _waiting_bytes(victim.transport):
                    continue  # its next request is already here
                return self._evict(victim, now)
            for victim in itertools.islice(waiting, 256):
                if victim._hbytes and now - victim._rx >= QUIET:
                    return self._evict(victim, now)
            return False

        @staticmethod
        def _evict(victim: Any, now: float) -> bool:
            waiting.pop(victim, None)
            idle.pop(victim, None)
            victim._phase = 0
            victim.transport.close()
            totals.add("evicted", now)
            return True

        # -- the protocol ---------------------------------------------------------------
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._start_headers()
            if len(self.connections) > max_connections and not self._make_room():
                # Nothing to close yet: connections accepted together have not shown what they are
                # (a flood of half-open ones, or clients about to send). Decide a moment later; at
                # most DEFER such connections at once, past that the new one is turned away now.
                if deferred[0] < DEFER:
                    deferred[0] += 1
                    self.loop.call_later(QUIET * 5, self._recheck)
                else:
                    self._turn_away()

        def _recheck(self) -> None:
            deferred[0] -= 1
            if self.transport is None or self.transport.is_closing() or len(self.connections) <= max_connections:
                return
            if not self._make_room() and self._phase == 1:
                self._turn_away()  # still over the cap, and this one is not being served: 529

        def connection_lost(self, exc: Exception | None) -> None:
            waiting.pop(self, None)
            idle.pop(self, None)
            self._phase = 0
            self._disarm()
            if self._napping is not None:
                self._napping.cancel()
                self._napping = None
            super().connection_lost(exc)

        def timeout_keep_alive_handler(self) -> None:
            if self.transport.is_closing():
                return
            if _waiting_bytes(self.transport):  # the next request is here; the loop was late to read it
                totals.add("keepalive_spared", self.loop.time())
                return
            idle.pop(self, None)
            totals.add("keepalive_closed", self.loop.time())
            self.transport.close()

        def data_received(self, data: bytes) -> None:
            phase = self._phase
            if phase == 4:
                return  # turned away: drop what it sends until the close
            if phase == 0:
                idle.pop(self, None)
                self._start_headers()  # the next request on a keep-alive connection
                phase = 1
            if phase == 1:
                # Headers arriving in pieces are held here and parsed once their end is in: a client
                # dripping a byte at a time costs an append and a search, not a parser call per byte.
                self._hbytes += len(data)
                self._rx = self.loop.time()
                buf = self._hbuf
                if buf:
                    start = max(len(buf) - 3, 0)
                    buf += data
                    ended = buf.find(b"\n\r\n", start) >= 0 or buf.find(b"\n\n", start) >= 0
                else:
                    ended = b"\n\r\n" in data or b"\n\n" in data
                if not ended:
                    if self._hbytes > max_header_bytes:
                        totals.add("too_big", self.loop.time())
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
                totals.add("too_big", self.loop.time())
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
                if not self.transport.is_closing():
                    idle[self] = None

    return GuardedHttpToolsProtocol
