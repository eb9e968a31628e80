"""Error and accounting paths of the proxy, driven in-process through the ASGI app with a scripted upstream."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from tierwise.errors import InvalidRequestError
from tierwise.server import create_app
from tierwise.upstream.base import UpstreamResponse
from tierwise.upstream.offline import stream_events, synthesize
from tierwise.upstream.sse import format_event

from ..conftest import make_settings

BODY = {"model": "claude-haiku-5-5", "max_tokens": 40, "messages": [{"role": "user", "content": "Acme Corp, 3 May"}]}


class Scripted:
    """Each call takes the next step: an APIError to raise, "ok", or raw bytes to answer with (non-streaming)."""

    name = "anthropic"

    def __init__(self, script: list[Any] | None = None) -> None:
        self.script = list(script or [])
        self.models: list[str | None] = []
        self.paths: list[str] = []

    async def send(self, path, body, *, headers, stream, model=None):
        self.paths.append(path)
        self.models.append(model)
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, bytes):
            return UpstreamResponse(200, {}, body=step, upstream=self.name)
        if path.endswith("count_tokens"):
            return UpstreamResponse(200, {}, body=b'{"input_tokens": 7}', upstream=self.name)
        params = orjson.loads(body)
        msg = synthesize(dict(params, model=model))
        if stream:
            async def chunks():
                for name, data, _ in stream_events(msg):
                    yield format_event(name, data)

            return UpstreamResponse(200, {}, chunks=chunks(), upstream=self.name)
        return UpstreamResponse(200, {}, body=orjson.dumps(msg), upstream=self.name)

    async def aclose(self):
        pass


class Proxy:
    def __init__(self, tmp_path, upstream: Scripted, **overrides: Any) -> None:
        self.settings = make_settings(tmp_path, **overrides)
        self.app = create_app(self.settings, upstream=upstream)
        self.state = self.app.state
        self.rows: list[dict[str, Any]] = []
        self.state.record = self.rows.append  # capture ledger rows as the proxy hands them over

    async def post(self, body: Any, path: str = "/v1/messages", **headers: str) -> tuple[int, dict[bytes, bytes], bytes]:
        msgs = [{"type": "http.request", "body": orjson.dumps(body), "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive():
            if msgs:
                return msgs.pop(0)
            await asyncio.Event().wait()  # the client stays connected

        async def send(m):
            sent.append(m)

        hdrs = [(b"content-type", b"application/json"), (b"anthropic-version", b"2023-06-01")]
        hdrs += [(k.replace("_", "-").encode(), v.encode("utf-8")) for k, v in headers.items()]
        scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "query_string": b"",
                 "headers": hdrs, "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
                 "http_version": "1.1", "root_path": ""}
        try:
            await self.app(scope, receive, send)
        except Exception:  # noqa: BLE001 - Starlette re-raises after sending its 500
            pass
        start = next(m for m in sent if m["type"] == "http.response.start")
        data = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], dict(start["headers"]), data

    def close(self) -> None:
        if self.state.ledger is not None:
            self.state.ledger.close()


@pytest.fixture
def proxy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    made: list[Proxy] = []

    def make(upstream: Scripted, **overrides: Any) -> Proxy:
        p = Proxy(tmp_path, upstream, **overrides)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


CASCADE = {"routing": {"strategies": {"extract_entities": "cascade"},
                       "task_options": {"extract_entities": {"ladder": ["fast", "balanced", "deep"],
                                                             "verifiers": [{"type": "regex", "pattern": "claude-opus"}]}}}}


async def test_cascade_rung_failure_still_counts_the_paid_rungs(proxy):
    # Haiku answers (and is paid for) but fails the check; Sonnet then fails for good.
    up = Scripted(["ok", InvalidRequestError("nope")])
    p = proxy(up, budgets={"daily_usd": 10}, **CASCADE)
    status, _, _ = await p.post(dict(BODY, model="tierwise/extract_entities"))
    assert status == 400 and up.models == ["claude-haiku-5-5", "claude-sonnet-5-5"]
    row = p.rows[-1]
    attempts = orjson.loads(row["attempts"])
    assert attempts[0]["cost_nanos"] > 0
    assert row["cost_nanos"] == attempts[0]["cost_nanos"]
    spent, reserved = await p.state.guard.budgets.spent("all")
    assert reserved == 0 and spent == row["cost_nanos"]


async def test_cascade_never_escalates_out_of_the_keys_pool(proxy):
    up = Scripted()
    p = proxy(up, **CASCADE)
    _, key = p.state.guard.keys.create("cheap", allow=["fast", "balanced"])
    status, headers, _ = await p.post(dict(BODY, model="tierwise/extract_entities"), x_api_key=key)
    assert status == 200
    assert "claude-opus-5-5" not in up.models and up.models
    assert headers[b"x-tierwise-tier"] in (b"fast", b"balanced")


async def test_budget_downgrade_skips_a_tier_that_cannot_serve_the_request(proxy):
    # security_review -> deep (Opus) is over budget; Sonnet fits the budget but rejects forced tool use: Haiku
    up = Scripted()
    p = proxy(up, budgets={"action": "downgrade", "tasks": {"security_review": 0.015}})
    body = dict(BODY, model="tierwise/security_review", max_tokens=1000, tool_choice={"type": "tool", "name": "t"},
                tools=[{"name": "t", "description": "d", "input_schema": {"type": "object"}}])
    status, headers, _ = await p.post(body)
    assert status == 200 and up.models == ["claude-haiku-5-5"]
    assert b"budget: downgraded from deep" in headers[b"x-tierwise-reason"]
    spent, reserved = await p.state.guard.budgets.spent("task:security_review")
    assert reserved == 0 and spent == p.rows[-1]["cost_nanos"]


async def test_budget_downgrade_that_cannot_adapt_releases_its_reservation(proxy, monkeypatch):
    from tierwise.errors import AdaptationError

    up = Scripted()
    p = proxy(up, budgets={"action": "downgrade", "tasks": {"security_review": 0.015}})

    def refuse(*a, **k):
        raise AdaptationError("cannot adapt")

    monkeypatch.setattr(p.state.guard, "retarget", refuse)
    status, _, data = await p.post(dict(BODY, model="tierwise/security_review", max_tokens=1000))
    assert status == 400 and b"cannot adapt" in data and up.models == []
    assert await p.state.guard.budgets.spent("task:security_review") == (0, 0)


async def test_malformed_usage_from_upstream_is_passed_through_and_recorded(proxy):
    bad = orjson.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-5-5",
                        "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
                        "usage": {"input_tokens": "lots", "output_tokens": 3}})
    up = Scripted([bad])
    p = proxy(up, budgets={"daily_usd": 10})
    status, _, data = await p.post(BODY)
    assert status == 200 and data == bad
    assert len(p.rows) == 1 and p.rows[0]["status"] == 200
    assert (await p.state.guard.budgets.spent("all"))[1] == 0  # the reservation is settled


async def test_count_tokens_checks_the_key_before_routing(proxy):
    up = Scripted()
    p = proxy(up)
    p.state.guard.keys.create("app")
    status, _, data = await p.post({"model": "no-such-model", "messages": BODY["messages"]}, "/v1/messages/count_tokens")
    assert status == 401 and b"claude-haiku-5-5" not in data  # no catalog listing for a caller without a key


async def test_count_tokens_with_a_non_latin1_model_name(proxy):
    up = Scripted()
    p = proxy(up, routing={"unknown_model": "passthrough"})
    status, headers, data = await p.post({"model": "claude-\u2713-x", "messages": BODY["messages"]},
                                         "/v1/messages/count_tokens")
    assert status == 200 and orjson.loads(data) == {"input_tokens": 7}
    status, headers, _ = await p.post(dict(BODY, model="claude-\u2713-x"))
    assert status == 200


async def test_ledger_row_fits_the_column_sizes(proxy):
    from tierwise.ledger.schema import calls

    up = Scripted()
    p = proxy(up, routing={"unknown_model": "passthrough"})
    long_model = "claude-" + "x" * 300
    for body in (dict(BODY, model=long_model), dict(BODY, model=long_model + "y", stream=True)):
        await p.post(body)
    p2 = proxy(Scripted())
    await p2.post(dict(BODY, model=long_model))  # a 404: the model is not in the catalog
    rows = p.rows + p2.rows
    assert len(rows) == 3 and rows[-1]["status"] == 404
    for row in rows:
        for col in calls.columns:
            n = getattr(col.type, "length", None)
            v = row.get(col.name)
            if n and isinstance(v, str):
                assert len(v) <= n, (col.name, len(v), n)


class Hanging(Scripted):
    """Blocks forever: before answering (non-streaming) or after the first events (streaming)."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    async def send(self, path, body, *, headers, stream, model=None):
        self.models.append(model)
        if not stream:
            await asyncio.Event().wait()
        msg = synthesize(dict(orjson.loads(body), model=model))
        events = [format_event(n, d) for n, d, _ in stream_events(msg)]

        async def chunks():
            yield events[0]
            yield events[1]
            await asyncio.Event().wait()

        async def close():
            self.closed = True

        return UpstreamResponse(200, {}, chunks=chunks(), upstream=self.name, _close=close)


@pytest.mark.parametrize("stream", [False, True])
async def test_cancelled_handler_still_records_and_releases_the_budget(proxy, stream):
    # e.g. uvicorn's graceful-shutdown timeout cancels the requests still running
    up = Hanging()
    p = proxy(up, budgets={"daily_usd": 10})
    task = asyncio.ensure_future(p.post(dict(BODY, stream=stream)))
    for _ in range(1000):  # until the upstream has the call (the budget reservation runs in a thread)
        if up.models:
            break
        await asyncio.sleep(0.005)
    for _ in range(20):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(p.rows) == 1 and p.rows[0]["status"] != 200
    assert (await p.state.guard.budgets.spent("all"))[1] == 0
    if stream:
        assert up.closed
    await asyncio.sleep(0)
    helpers = [t for t in asyncio.all_tasks() if not t.done() and t.get_coro().__name__ in ("pump", "_wait_disconnect")]
    assert helpers == []  # the stream pump and the disconnect watcher do not outlive the request


async def test_response_headers_never_carry_control_characters(proxy):
    # uvicorn refuses such a header value with a RuntimeError: the client would get a bare 500 instead
    # of its (already paid) answer. Text in x-tierwise-* comes from the caller (a passed-through model
    # id) or from a model (the llm router's reason).
    import re

    from tierwise.errors import NotFoundError

    bad = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
    up = Scripted(["ok", NotFoundError("no such model")])
    p = proxy(up, routing={"unknown_model": "passthrough"})
    for expected in (200, 404):
        status, headers, _ = await p.post(dict(BODY, model="claude-x\r\nset-cookie: a=b\x00"))
        assert status == expected
        assert not [v for v in headers.values() if bad.search(v)], headers


async def test_key_pools_hold_under_capability_routing(proxy):
    # review_code -> balanced (Sonnet 5.5), which rejects forced tool use; the cheapest tier is fast, but
    # the key may use balanced and deep only: Opus 5.5; a key with balanced alone gets a 400 naming its pool
    up = Scripted()
    p = proxy(up)
    _, mid = p.state.guard.keys.create("mid", allow=["balanced", "deep"])
    _, sonnet = p.state.guard.keys.create("sonnet-only", allow=["balanced"])
    body = dict(BODY, model="tierwise/review_code", tool_choice={"type": "tool", "name": "t"},
                tools=[{"name": "t", "input_schema": {"type": "object"}}])
    status, headers, _ = await p.post(body, x_api_key=mid)
    assert status == 200 and up.models == ["claude-opus-5-5"]
    assert b"forced tool use: Sonnet 5.5 rejects it" in headers[b"x-tierwise-reason"]
    status, _, data = await p.post(body, x_api_key=sonnet)
    err = orjson.loads(data)["error"]
    assert status == 400 and err["type"] == "invalid_request_error" and up.models == ["claude-opus-5-5"]
    assert "forced tool use: Sonnet 5.5 rejects it" in err["message"] and "proxy key key_" in err["message"]
    assert "(balanced)" in err["message"]
