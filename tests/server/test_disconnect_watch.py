"""The disconnect watch (server/wire.py): a client leaving while it is armed ends the work as ``ClientGone``."""

from __future__ import annotations

import asyncio

import pytest

from tierwise.server.wire import ClientGone, DisconnectWatch


def _client() -> tuple[asyncio.Event, object]:
    left = asyncio.Event()

    async def receive() -> dict[str, str]:
        await left.wait()
        return {"type": "http.disconnect"}

    return left, receive


async def test_a_disconnect_while_armed_raises_client_gone():
    left, receive = _client()
    watch = DisconnectWatch(receive)
    with pytest.raises(ClientGone, match="while waiting"):
        with watch.during("while waiting"):
            left.set()
            await asyncio.Event().wait()  # the upstream that never answers
    assert watch.gone and not watch.armed
    assert asyncio.current_task().cancelling() == 0  # uncancelled: the request goes on to answer 499


async def test_a_disconnect_while_not_armed_only_marks_it_gone():
    left, receive = _client()
    watch = DisconnectWatch(receive)
    left.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert watch.gone and not watch.fired


async def test_a_cancellation_from_outside_stays_a_cancellation():
    left, receive = _client()

    async def request() -> None:
        watch = DisconnectWatch(receive)
        try:
            with watch.during("while waiting"):
                await asyncio.Event().wait()
        finally:
            watch.cancel()

    task = asyncio.ensure_future(request())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
