"""A live stream passed on event by event, in the request's task, metered as it goes; its ledger
row is written before its last byte reaches the client."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..errors import APIError
from ..upstream.sse import StreamMeter, format_event
from . import account
from .call import Answer, Call
from .headers import SSE, Headers
from .wire import ClientGone, DisconnectWatch, Send

if TYPE_CHECKING:
    from ..resilience import Runtime
    from ..upstream.base import UpstreamResponse
    from .state import ProxyState

__all__ = ["LiveStream"]


class LiveStream:
    """One stream: ``pass_on`` sends it; the status and error type to record are set as it fails;
    ``finish`` builds the row once."""

    __slots__ = ("state", "call", "answer", "meter", "status", "error_type", "disconnected", "total", "recorded")

    def __init__(self, state: "ProxyState", call: Call, answer: Answer) -> None:
        assert answer.live is not None
        self.state = state
        self.call = call
        self.answer = answer
        self.meter = answer.live.meter or StreamMeter()
        self.status = 200
        self.error_type: str | None = None
        self.disconnected = False
        self.total = 0        # what the call cost, to settle
        self.recorded = False

    async def pass_on(self, rt: "Runtime", send: Send, watch: DisconnectWatch, headers: Headers) -> None:
        """While it runs, a client disconnect cancels it (as while waiting for the upstream)."""
        live = self.answer.live
        assert live is not None
        resp = live.resp
        try:
            if watch.gone:  # the client left between the upstream's answer and now
                self.disconnected = True
            else:
                with watch.during("during the stream"):
                    await self._pump(send, resp, live.first, headers)
                watch.cancel()
        except ClientGone:
            self.disconnected = True
        except asyncio.CancelledError:
            # cancelled from outside (e.g. the server's graceful-shutdown timeout): stop the watcher too
            watch.cancel()
            if not self.meter.completed:
                self.status, self.error_type = 503, "cancelled"
            raise
        except OSError:
            watch.cancel()
            self.disconnected = True
        except Exception as exc:  # noqa: BLE001 - the row must still be written
            watch.cancel()
            self.status, self.error_type = 500, "api_error"
            self.state.log.error("stream %s failed: %r", self.call.request_id, exc)
        finally:
            await resp.aclose()
            self.finish()
            if self.call.reservation is not None:
                await account.settle(self.state, rt, self.call, self.total)
        account.offer_shadow(self.state, self.call, self.answer)

    def finish(self) -> None:
        """The row, built and journaled once: before the stream's last byte reaches the client
        (``_pump`` calls it ahead of the chunk holding message_stop, an error event or the end),
        else when the stream ends otherwise (a disconnect, a cancellation)."""
        if self.recorded:
            return
        self.recorded = True
        if self.answer.live is not None:
            self.answer.live.feed_first()  # the stream ended before its first chunk was sent on
        meter, answer, call, state = self.meter, self.answer, self.call, self.state
        status, error_type = self.status, self.error_type
        if meter.error_type and error_type is None:
            error_type = meter.error_type
            status = 529 if meter.error_type == "overloaded_error" else 500
        if self.disconnected and not meter.completed:
            status, error_type = 499, error_type or "client_disconnected"
        answer.answered = meter.priced_model or answer.model_id
        if meter.signatures and state.dispatcher.affinity is not None:
            state.dispatcher.affinity.remember(meter.signatures, answer.answered)
        answer.usage, answer.stop_reason, answer.ttft = meter.usage, meter.stop_reason, meter.first_token_at
        answer.status, answer.error_type, answer.disconnected = status, error_type, self.disconnected
        if status != 200 and call.attempts:
            last = call.attempts[-1]
            last.status, last.error_type = status, error_type
        rec = account.answered(state, call, answer)
        self.total = rec.cost_nanos or 0

    async def _pump(self, send: Send, resp: "UpstreamResponse", first: bytes | None, headers: Headers) -> None:
        """Send the stream's start, its chunks as they arrive (metered), and its end; an upstream
        failure mid-stream becomes an ``error`` event (nothing is replayed). The first chunk is
        metered after it is sent (``Outcome.feed_first``): nothing but the plan's headers comes
        between the upstream's first byte and the client's."""
        meter = self.meter
        await send({"type": "http.response.start", "status": 200, "headers": [*SSE, *headers]})
        try:
            if first:
                await send({"type": "http.response.body", "body": first, "more_body": True})
            live = self.answer.live
            if live is not None:
                live.feed_first()
            assert resp.chunks is not None
            async for chunk in resp.chunks:
                meter.feed(chunk)
                if meter.completed:
                    self.finish()
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except APIError as exc:
            # The stream already reached the client: never replay, send an Anthropic error event.
            self.status, self.error_type = exc.status, exc.error_type
            await self._error_event(send, exc.error_type, exc.message)
        else:
            if not meter.completed and meter.error_type is None:
                # the upstream ended the stream early without saying why: tell the client
                self.status, self.error_type = 502, "api_error"
                await self._error_event(send, "api_error", "upstream ended the stream before message_stop")
        self.finish()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _error_event(self, send: Send, error_type: str, message: str) -> None:
        self.finish()
        await send({"type": "http.response.body", "more_body": True, "body": format_event(
            "error", {"type": "error", "error": {"type": error_type, "message": message},
                      "request_id": self.call.request_id})})
