"""The request as phases: what the client is told it cost is what the ledger row says, to the nano-dollar."""

from __future__ import annotations

import orjson

from tierwise.errors import OverloadedError

from .test_error_paths import BODY, CASCADE, Scripted, proxy  # noqa: F401 - the fixture


def _header_nanos(headers: dict[bytes, bytes]) -> int:
    return round(float(headers[b"x-tierwise-cost-usd"]) * 1e9)


async def test_header_cost_is_the_row_cost(proxy):  # noqa: F811
    p = proxy(Scripted())
    status, headers, _ = await p.post(BODY)
    assert status == 200
    row = p.rows[-1]
    assert row["cost_nanos"] > 0
    assert headers[b"x-tierwise-cost-usd"] == f"{row['cost_nanos'] / 1e9:.9f}".encode()
    assert _header_nanos(headers) == row["cost_nanos"] == orjson.loads(row["attempts"])[-1]["cost_nanos"]


async def test_header_cost_is_the_row_cost_after_a_retry(proxy):  # noqa: F811
    p = proxy(Scripted([OverloadedError("busy")]), resilience={"backoff_base": 0.0, "backoff_max": 0.0})
    status, headers, _ = await p.post(BODY)
    assert status == 200
    row = p.rows[-1]
    assert [a["status"] for a in orjson.loads(row["attempts"])] == [529, 200]
    assert _header_nanos(headers) == row["cost_nanos"]


async def test_header_cost_is_the_row_cost_of_a_cascade(proxy):  # noqa: F811
    p = proxy(Scripted(), **CASCADE)
    status, headers, _ = await p.post(dict(BODY, model="tierwise/extract_entities"))
    assert status == 200 and headers[b"x-tierwise-escalations"] == b"2"
    row = p.rows[-1]
    attempts = orjson.loads(row["attempts"])
    assert [a["verified"] for a in attempts] == [False, False, True]
    assert _header_nanos(headers) == row["cost_nanos"] == sum(a["cost_nanos"] for a in attempts)


async def test_every_failure_is_recorded_once(proxy):  # noqa: F811
    p = proxy(Scripted([OverloadedError("busy")] * 5))
    status, headers, _ = await p.post(BODY)
    assert status == 529 and len(p.rows) == 1
    row = p.rows[0]
    assert row["status"] == 529 and row["error_type"] == "overloaded_error"
    assert headers[b"x-tierwise-attempts"] == str(len(orjson.loads(row["attempts"]))).encode()
    assert b"x-tierwise-cost-usd" not in headers
    status, _, _ = await p.post({"model": "auto"})  # refused at admission: still one row
    assert status == 400 and len(p.rows) == 2 and p.rows[1]["status"] == 400


async def test_a_rate_limited_call_is_recorded_under_its_key(proxy):  # noqa: F811
    """Admission names the key in the row before its requests-per-minute refuse the call."""
    p = proxy(Scripted())
    _, key = p.state.guard.keys.create("slow", rpm=1)
    assert (await p.post(BODY, x_api_key=key))[0] == 200
    status, _, _ = await p.post(BODY, x_api_key=key)
    assert status == 429 and p.rows[-1]["status"] == 429
    assert p.rows[-1]["key_id"] == p.rows[0]["key_id"] is not None
