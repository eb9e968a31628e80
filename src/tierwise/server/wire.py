"""ASGI plumbing of the hot path: request ids, reading a body, sending an error, and the watcher
that notices a client's disconnect."""

from __future__ import annotations

import asyncio
import collections
import os
from types import TracebackType
from typing import Any, Awaitable, Callable, Mapping

from ..errors import APIError, InvalidRequestError, RequestTooLargeError
from .headers import JSON, Headers, error_headers

__all__ = ["Send", "Receive", "ClientGone", "DisconnectWatch", "new_request_id", "read_body", "send_error",
           "client_retries"]

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class ClientGone(Exception):
    """The client disconnected before the answer was sent."""


# request ids drawn from os.urandom 256 at a time (one system call per 256 requests); deque.popleft
# is atomic, so threads never share an id; a forked child drops the parent's unused ones
_IDS: collections.deque[str] = collections.deque()
os.register_at_fork(after_in_child=_IDS.clear)


def new_request_id() -> str:
    """``req_tw_`` + 96 random bits from ``os.urandom``: unguessable, so a request id names one answer
    to the key that got it (feedback). Cost against the old counter: bench/input_limits.py."""
    try:
        return _IDS.popleft()
    except IndexError:
        raw = os.urandom(12 * 256).hex()
        _IDS.extend(["req_tw_" + raw[i:i + 24] for i in range(24, len(raw), 24)])
        return "req_tw_" + raw[:24]


async def read_body(scope: Mapping[str, Any], receive: Callable[[], Awaitable[Mapping[str, Any]]], limit: int) -> bytes:
    for k, v in scope["headers"]:
        if k == b"content-length":
            try:
                n = int(v)
            except ValueError:
                raise InvalidRequestError("content-length: not a number") from None
            if n > limit:
                raise RequestTooLargeError(f"request body of {n:,} bytes exceeds the limit of {limit:,} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ClientGone("client disconnected before sending the body")
        chunk = msg.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise RequestTooLargeError(f"request body exceeds the limit of {limit:,} bytes")
            chunks.append(chunk)
        if not msg.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_error(send: Send, exc: APIError, request_id: str, extra: Headers | None = None,
                     *, may_retry: bool = True) -> None:
    """An error answer: the upstream's error JSON as it sent it, else tierwise's own (see ``error_headers``)."""
    payload = exc.client_body(request_id)
    headers = [JSON, (b"content-length", str(len(payload)).encode()), *error_headers(exc, request_id, may_retry=may_retry)]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def client_retries(headers: dict[str, str]) -> int:
    """The client's own retry number (``x-stainless-retry-count``, sent by the Python and TypeScript SDKs)."""
    v = headers.get("x-stainless-retry-count")
    if not v:
        return 0
    try:
        return max(0, int(v))
    except ValueError:
        return 0


class DisconnectWatch:
    """One watcher task per request: while the request waits for the upstream, and later while a
    stream is pumped, a client disconnect cancels the request's task (and with it the upstream call
    or stream). ``gone`` tells afterwards whether the client left.

    ``with watch.during("while waiting for the upstream"): ...`` arms it: a disconnect meanwhile
    cancels the block and raises ``ClientGone``; a cancellation from outside (the server's shutdown)
    stays a cancellation. A context manager, not a wrapping coroutine: every resumption of the
    request's task (each chunk of a stream) would pass through one more frame."""

    __slots__ = ("owner", "armed", "fired", "task", "what")

    def __init__(self, receive: Receive) -> None:
        self.owner = asyncio.current_task()
        self.armed = False   # a disconnect now cancels ``owner``
        self.fired = False   # ... and it did
        self.what = ""
        self.task = asyncio.get_running_loop().create_task(self._wait_disconnect(receive))

    async def _wait_disconnect(self, receive: Receive) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                if self.armed and self.owner is not None:
                    self.fired = True
                    self.owner.cancel()
                return

    @property
    def gone(self) -> bool:
        """The client disconnected (the watcher returned)."""
        return self.task.done() and not self.task.cancelled()

    def cancel(self) -> None:
        self.task.cancel()

    def during(self, what: str) -> "DisconnectWatch":
        self.what = what
        return self

    def __enter__(self) -> None:
        self.armed = True

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.armed = False
        if kind is not None and issubclass(kind, asyncio.CancelledError) and self.fired:
            if self.owner is not None:
                self.owner.uncancel()
            raise ClientGone(f"client disconnected {self.what}") from None
