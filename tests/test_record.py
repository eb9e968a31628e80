"""The ledger row has one owner and one type: ``tierwise.record.CallRecord``."""

from __future__ import annotations

import dataclasses
import datetime as dt

from tierwise.cost import Usage, cost_nanos, price
from tierwise.ledger.schema import calls
from tierwise.record import Attempt, Book, CallRecord, failed_cost


def test_call_record_fields_are_the_calls_columns():
    names = [f.name for f in dataclasses.fields(CallRecord)]
    assert names == [c.name for c in calls.columns if c.name != "id"]
    row = CallRecord.new("r1", 0.0).row()
    assert list(row) == names


def test_price_is_the_one_convention(settings):
    cat = settings.catalog
    u = Usage(1000, 500)
    day = dt.date(2026, 1, 1)
    assert price(cat, "claude-unknown-9", u, day=day) is None  # unpriced: None, never 0
    assert price(cat, None, u, day=day) is None
    model = cat.get("claude-haiku-5-5")
    assert price(cat, "claude-haiku-5-5", u, day=day) == cost_nanos(model, u, when=day)
    assert price(cat, "claude-haiku-5-5", u, day=day, batch=True) == cost_nanos(
        model, u, when=day, batch=True, batch_discount=cat.batch_discount)


def test_record_prices_on_the_calls_day_and_adds_failed_attempts(settings):
    cat = settings.catalog
    book = Book(cat, cat.model_for_tier(settings.default_tier).id)
    wall = 1_767_225_600.0 + 3600  # 2026-01-01T01:00Z
    rec = CallRecord.new("r2", wall, requested="auto").answer(book, "claude-haiku-5-5", Usage(100, 10))
    assert rec.day == "2026-01-01"
    assert rec.cost_nanos == price(cat, "claude-haiku-5-5", Usage(100, 10), day=dt.date(2026, 1, 1))
    answer_cost = rec.cost_nanos
    atts = [Attempt("claude-haiku-5-5", "anthropic", 529, "overloaded_error", 1.0, 7), Attempt("m", "a", 200, None, 1.0)]
    assert failed_cost(atts) == 7
    rec.add_failed(failed_cost(atts)).finish(200, started=None, attempts=atts)
    assert rec.cost_nanos == answer_cost + 7 and rec.latency_ms is None
    assert '"overloaded_error"' in rec.attempts
    unpriced = CallRecord.new("r3", wall).answer(book, "claude-unknown-9", Usage(1, 1))
    assert unpriced.cost_nanos is None and unpriced.add_failed(5).cost_nanos == 5


def test_eval_runner_builds_no_dispatcher(settings, monkeypatch):
    """Rows of an eval run are priced by a ``Book``: no router (learned or other) is built for them."""
    from tierwise import dispatch
    from tierwise.evaluation.runner import EvalRunner
    from tierwise.registry_history import open_db
    from tierwise.upstream.offline import OfflineUpstream

    def refuse(*a, **k):
        raise AssertionError("EvalRunner built a Dispatcher")

    monkeypatch.setattr(dispatch.Dispatcher, "__init__", refuse)
    runner = EvalRunner(settings, OfflineUpstream(latency_scale=0), open_db(settings))
    row = runner._calls_row(run_id="r", item=None, model="claude-haiku-5-5", usage=Usage(10, 10), status=200,
                            started=0.0, wall=1_767_225_600.0, error_type=None, batch=True, router="eval")
    assert row["cost_nanos"] == price(settings.catalog, "claude-haiku-5-5", Usage(10, 10), day=dt.date(2026, 1, 1),
                                      batch=True)
    assert "prompt" not in row and row["batch"] is True
