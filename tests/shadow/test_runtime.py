"""The shadow sampler in a running proxy: off the request path, graded pairs recorded, nothing leaked."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import anthropic
import pytest
import sqlalchemy as sa

from tierwise.ledger.shadow_schema import shadow_pairs

OFFLINE_SIM = {"kind": "offline", "offline": {"latency_scale": 0.0, "quality": "sim"}}
SECRET = "Draft a polite email to Zanzibar-Quokka-7731 about the invoice delay expected around Monday."


def _wait_pairs(engine: sa.Engine, n: int, deadline: float = 30.0) -> list[dict]:
    end = time.monotonic() + deadline
    rows: list = []
    while time.monotonic() < end:
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.select(shadow_pairs).order_by(shadow_pairs.c.id))]
        if len(rows) >= n:
            return rows
        time.sleep(0.05)
    return rows


def _client(p) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=p.url, api_key="test", max_retries=0)


def test_sampled_calls_are_replayed_graded_and_recorded(proxy_factory, tmp_path):
    p = proxy_factory(upstream=dict(OFFLINE_SIM), shadow={"enabled": True, "sample": 1.0, "auto": 1.0})
    c = _client(p)
    plain = c.messages.create(model="tierwise/draft_email", max_tokens=300, messages=[{"role": "user", "content": SECRET}])
    c.messages.create(model="tierwise/classify_intent", max_tokens=20,
                      messages=[{"role": "user", "content": "Classify the intent: my parcel is late"}])
    with c.messages.stream(model="tierwise/review_code", max_tokens=300,
                           messages=[{"role": "user", "content": "Review this function for bugs: def f(x): return 1/x"}]) as s:
        streamed = s.get_final_text()
    rows = _wait_pairs(p.state.ledger.engine, 3)
    assert len(rows) == 3, rows
    by_kind = {r["kind"]: r for r in rows}
    email = by_kind["draft_email"]
    # the registry sends draft_email to balanced: the shadow replays on the next cheaper tier
    assert (email["live_tier"], email["shadow_tier"], email["cheap_tier"]) == ("balanced", "fast", "fast")
    assert email["status"] == "graded" and email["grader"].startswith("offline-judge")
    assert email["live_passed"] == ("[check: pass]" in plain.content[0].text)
    assert email["live_request_id" if False else "request_id"].startswith("req_tw_")
    assert email["shadow_cost_nanos"] > 0 and email["live_cost_nanos"] > 0 and email["features"]
    # a task on the cheapest tier is compared with the next stronger one
    ci = by_kind["classify_intent"]
    assert (ci["live_tier"], ci["shadow_tier"]) == ("fast", "balanced")
    # a streamed call: the live answer is not kept on the path, so its live side was re-asked (shadow spend)
    rc = by_kind["review_code"]
    assert rc["replay_cost_nanos"] > 0 and rc["status"] == "graded" and streamed
    # the client's answer is what the live model wrote: the shadow call changed nothing
    assert plain.model == "claude-sonnet-5-5"
    assert p.state.shadow.counts["sampled"] == 3


def test_no_prompt_text_in_the_database_with_store_prompts_off(proxy_factory, tmp_path):
    p = proxy_factory(upstream=dict(OFFLINE_SIM), shadow={"enabled": True, "sample": 1.0})
    _client(p).messages.create(model="tierwise/draft_email", max_tokens=300, messages=[{"role": "user", "content": SECRET}])
    rows = _wait_pairs(p.state.ledger.engine, 1)
    assert rows and rows[0]["prompt"] is None and rows[0]["live_answer"] is None
    p.state.ledger.flush()
    blob = b"".join(f.read_bytes() for f in Path(tmp_path).glob("ledger.db*"))
    assert b"Zanzibar-Quokka-7731" not in blob
    assert b"shadow_pairs" in blob  # the table is there: the grep looked at the right file


def test_prompt_text_stored_only_when_store_prompts_on(proxy_factory, tmp_path):
    p = proxy_factory(upstream=dict(OFFLINE_SIM), shadow={"enabled": True, "sample": 1.0}, ledger={"store_prompts": True})
    _client(p).messages.create(model="tierwise/draft_email", max_tokens=300, messages=[{"role": "user", "content": SECRET}])
    rows = _wait_pairs(p.state.ledger.engine, 1)
    assert "Zanzibar-Quokka-7731" in rows[0]["prompt"]


def test_side_effect_tools_and_excluded_tasks_are_never_replayed(proxy_factory):
    p = proxy_factory(upstream=dict(OFFLINE_SIM), shadow={"enabled": True, "sample": 1.0, "exclude_tasks": ["review_code"],
                                                          "read_only_tools": ["lookup_order"]})
    c = _client(p)
    tool = {"name": "refund_order", "description": "refunds", "input_schema": {"type": "object", "properties": {}}}
    c.messages.create(model="tierwise/draft_email", max_tokens=100, tools=[tool],
                      messages=[{"role": "user", "content": "Draft an email and refund order 7"}])
    c.messages.create(model="tierwise/review_code", max_tokens=100, messages=[{"role": "user", "content": "Review this"}])
    ro = dict(tool, name="lookup_order")
    c.messages.create(model="tierwise/draft_email", max_tokens=100, tools=[ro],
                      messages=[{"role": "user", "content": "Draft an email about order 7"}])
    rows = _wait_pairs(p.state.ledger.engine, 1)
    assert len(rows) == 1 and rows[0]["kind"] == "draft_email"   # only the read-only-tool request
    assert p.state.shadow.counts["excluded"] == 2
    assert any("refund_order" in why for why in p.state.shadow.excluded_why)


def test_explicit_models_are_not_sampled(proxy_factory):
    p = proxy_factory(upstream=dict(OFFLINE_SIM), shadow={"enabled": True, "sample": 1.0, "auto": 1.0})
    _client(p).messages.create(model="claude-haiku-5-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    time.sleep(0.2)
    assert p.state.shadow.counts["sampled"] == 0


def _runtime(tmp_path, **shadow):
    from tests.conftest import make_settings
    from tierwise.dispatch import Dispatcher
    from tierwise.ledger import Ledger
    from tierwise.shadow import build_shadow
    from tierwise.upstream.offline import OfflineUpstream
    from tierwise.upstream.quality import QualityModel

    s = make_settings(tmp_path, shadow={"enabled": True, "sample": 1.0, **shadow})
    up = OfflineUpstream(latency_scale=0.0, quality=QualityModel())
    led = Ledger.from_settings(s)
    return s, build_shadow(s, up, led, Dispatcher(s, upstream=up)), led


def _offer(rt, s, n: int, task: str = "draft_email") -> None:
    import orjson

    from tierwise.dispatch import Dispatcher

    d = Dispatcher(s)
    for i in range(n):
        body = {"model": f"tierwise/{task}", "max_tokens": 200,
                "messages": [{"role": "user", "content": f"Draft a polite email number {i}"}]}
        plan = d.plan(body)
        rt.offer(request_id=f"req_{i}", plan=plan, body=body, sent=orjson.dumps(body), answer=None, headers={},
                 key_id=None)


def test_a_full_queue_drops_and_counts_never_waits(tmp_path):
    s, rt, led = _runtime(tmp_path, queue_size=2, concurrency=1)

    async def go() -> None:
        _offer(rt, s, 10)             # no await in between: the workers cannot run, the queue fills
        assert rt.counts["sampled"] == 2 and rt.counts["dropped_queue_full"] == 8
        await rt.drain()
        await rt.aclose()

    asyncio.run(go())
    led.close()


def test_the_daily_cap_stops_shadow_calls(tmp_path):
    s, rt, led = _runtime(tmp_path, daily_usd=0.01, concurrency=1)

    async def go() -> tuple[int, int]:
        _offer(rt, s, 30)
        await rt.drain()
        spent = await rt.spent_today()
        await rt.aclose()
        return spent

    spent, reserved = asyncio.run(go())
    with led.engine.connect() as conn:
        recorded = conn.execute(sa.select(sa.func.sum(shadow_pairs.c.shadow_cost_nanos + shadow_pairs.c.replay_cost_nanos
                                                      + shadow_pairs.c.judge_cost_nanos))).scalar()
    assert rt.counts["dropped_budget"] > 0 and rt.counts["graded"] > 0
    assert reserved == 0 and spent == recorded <= 10_000_000
    led.close()


def test_a_shadow_upstream_failure_is_recorded_not_raised(tmp_path):
    s, rt, led = _runtime(tmp_path, concurrency=1)

    class Failing:
        name = "failing"

        async def send(self, *a, **k):
            from tierwise.errors import error_for_status

            raise error_for_status(529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', {})

        async def aclose(self):
            return None

    rt.upstream = Failing()

    async def go() -> None:
        _offer(rt, s, 1)
        await rt.drain()
        await rt.aclose()

    asyncio.run(go())
    assert rt.counts["failed"] == 1
    led.close()


@pytest.mark.parametrize("check,expect", [
    ({"type": "regex", "pattern": r"\[check: pass\]"}, "checks"),
])
def test_registered_checks_grade_without_a_judge(proxy_factory, check, expect):
    p = proxy_factory(upstream=dict(OFFLINE_SIM), shadow={"enabled": True, "sample": 1.0, "checks": {"draft_email": [check]}})
    msg = _client(p).messages.create(model="tierwise/draft_email", max_tokens=300,
                                     messages=[{"role": "user", "content": SECRET}])
    rows = _wait_pairs(p.state.ledger.engine, 1)
    assert rows[0]["grader"] == expect
    assert rows[0]["live_passed"] == ("[check: pass]" in msg.content[0].text)


def test_labels_and_agree_checks():
    from tierwise.config import load_settings
    from tierwise.shadow.grading import PairGrader

    s = load_settings(None, environ={}, overrides={"ledger": {"url": "sqlite://"}, "shadow": {"checks": {
        "classify_intent": [{"type": "labels", "values": ["billing", "shipping"]}, {"type": "agree"}]}}})
    from tierwise.ledger import Ledger
    from tierwise.upstream.offline import OfflineUpstream

    led = Ledger("sqlite://")
    g = PairGrader(s, OfflineUpstream(latency_scale=0), led.engine)

    def grade(live, shadow, live_is_cheap):
        return asyncio.run(g.grade("classify_intent", "p", {"messages": []}, live, shadow, seed="x",
                                   live_is_cheap=live_is_cheap))

    v = grade("Billing", "billing.", live_is_cheap=False)      # both labels, the cheaper (shadow) agrees
    assert (v.live_passed, v.shadow_passed, v.grader) == (True, True, "checks")
    v = grade("billing", "shipping", live_is_cheap=False)      # the cheaper one disagrees with the stronger
    assert (v.live_passed, v.shadow_passed) == (True, False)
    v = grade("refunds", "billing", live_is_cheap=True)        # not a label at all
    assert v.live_passed is False
    led.close()


def test_the_clients_answer_is_the_same_with_shadow_on_and_off(proxy_factory):
    off = proxy_factory(upstream=dict(OFFLINE_SIM))
    on = proxy_factory(upstream=dict(OFFLINE_SIM), shadow={"enabled": True, "sample": 1.0, "auto": 1.0})
    req = {"model": "tierwise/draft_email", "max_tokens": 300, "messages": [{"role": "user", "content": SECRET}]}
    a = _client(off).messages.with_raw_response.create(**req)
    b = _client(on).messages.with_raw_response.create(**req)
    assert a.http_response.status_code == b.http_response.status_code == 200
    strip = lambda m: {k: v for k, v in m.model_dump().items() if k != "id"}  # noqa: E731
    assert strip(a.parse()) == strip(b.parse())
    tw = lambda r: {k: v for k, v in r.headers.items() if k.startswith("x-tierwise-") and k != "x-tierwise-request-id"}  # noqa: E731
    assert tw(a.http_response) == tw(b.http_response)
    assert _wait_pairs(on.state.ledger.engine, 1)
