"""POST /v1/feedback and the Python helpers: outcomes recorded against request ids."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tierwise.errors import InvalidRequestError
from tierwise.feedback import parse_feedback, record_feedback, send_feedback
from tierwise.ledger.evidence_schema import feedback as fb_table

from .evidence_helpers import feedback, send


def _rows(proxy):
    with proxy.state.ledger.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(fb_table).order_by(fb_table.c.id))]


def test_feedback_endpoint_records_outcomes(proxy_factory):
    proxy = proxy_factory(monitor={"interval": 0})
    (r,) = send(proxy, "draft_email")
    rid = r.headers["x-tierwise-request-id"]
    ok = feedback(proxy, rid, outcome="ok", source="qa-bot")
    assert ok.status_code == 200 and ok.json()["error"] is False and ok.json()["request_id"] == rid
    assert feedback(proxy, rid, score=0.2).json()["error"] is True          # below monitor.bad_score
    assert feedback(proxy, rid, valid=False, note="schema failed").json()["error"] is True
    rows = _rows(proxy)
    assert [(x["outcome"], x["score"], x["valid"], x["error"]) for x in rows] == [
        ("ok", None, None, False), (None, 0.2, None, True), (None, None, False, True)]
    assert rows[0]["source"] == "qa-bot" and rows[2]["note"] == "schema failed"
    # the Python helper speaks to the same endpoint
    out = send_feedback(proxy.url, rid, outcome="bad")
    assert out["error"] is True and len(_rows(proxy)) == 4


@pytest.mark.parametrize("body, message", [
    ({}, "request_id: required"),
    ({"request_id": "r"}, "at least one of"),
    ({"request_id": "r", "outcome": "meh"}, "outcome: expected"),
    ({"request_id": "r", "score": 3}, "score: expected a number from 0 to 1"),
    ({"request_id": "r", "valid": "yes"}, "valid: expected true or false"),
    ({"request_id": "r", "outcome": "ok", "colour": "red"}, "unknown feedback field"),
])
def test_bad_feedback_is_a_400_in_anthropic_format(proxy_factory, body, message):
    proxy = proxy_factory(monitor={"interval": 0})
    import httpx2

    r = httpx2.post(proxy.url + "/v1/feedback", json=body)
    assert r.status_code == 400
    err = r.json()
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error" and message in err["error"]["message"]
    r = httpx2.post(proxy.url + "/v1/feedback", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]


def test_helper_errors_and_direct_record(proxy_factory, settings):
    from tierwise.registry_history import open_db

    proxy = proxy_factory(monitor={"interval": 0})
    with pytest.raises(InvalidRequestError, match="outcome"):
        send_feedback(proxy.url, "req_x", outcome="nope")
    engine = open_db(settings)
    row = record_feedback(engine, {"request_id": "req_1", "score": 0.9})
    assert row["error"] is False and row["id"] >= 1
    with pytest.raises(InvalidRequestError):
        parse_feedback({"request_id": "r", "score": float("nan")})
