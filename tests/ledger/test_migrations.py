"""Pins the ledger's migrations: a released migration is never edited, only appended to."""

from __future__ import annotations

import sqlalchemy as sa

from tierwise.ledger import Ledger
from tierwise.ledger.schema import MIGRATIONS

# Append a line here with every new migration; never change an existing one.
PINNED = [
    (1, "calls ledger"),
    (2, "proxy keys and budgets"),
    (3, "evidence: feedback, registry history, alerts, evaluations, experiments"),
    (4, "eval judgement cache"),
    (5, "message batches: request mapping"),
    (6, "shadow evaluation pairs"),
    (7, "proxy key roles"),
]

CALLS_COLUMNS_V1 = {
    "id", "ts", "day", "request_id", "task", "router", "reasons", "confidence", "tier", "model", "requested_model",
    "upstream", "stream", "batch", "input_tokens", "output_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens",
    "cache_read_tokens", "cost_nanos", "default_cost_nanos", "latency_ms", "ttft_ms", "status", "error_type",
    "stop_reason", "escalations", "fallbacks", "attempts", "adapted", "arm", "key_id", "client_disconnected", "prompt",
}


def test_migration_list_is_pinned():
    have = [(v, name) for v, name, _ in MIGRATIONS]
    assert have == PINNED, "a released migration was changed or reordered, or a new one is not pinned here"
    # numbers increase by one, from 1
    nums = [v for v, _ in have]
    assert nums == sorted(set(nums)) and nums[0] == 1, "migration numbers must increase"
    assert nums == list(range(1, len(nums) + 1)), "migration numbers must be consecutive"


def _check(url: str) -> None:
    led = Ledger(url)
    try:
        assert led.version == MIGRATIONS[-1][0]
        insp = sa.inspect(led.engine)
        cols = {c["name"] for c in insp.get_columns("calls")}
        assert CALLS_COLUMNS_V1 <= cols
        assert "eval_judgements" in insp.get_table_names()
        assert {c["name"] for c in insp.get_columns("batch_requests")} >= {
            "batch_id", "custom_id", "created_at", "key_id", "task", "requested_model", "model", "tier", "recorded_at"}
        # migrating again is a no-op
        again = Ledger(url)
        assert again.version == led.version
        with led.engine.connect() as conn:
            versions = [r[0] for r in conn.execute(sa.text("SELECT version FROM tierwise_schema_version ORDER BY version"))]
        assert versions == [v for v, _, _ in MIGRATIONS]
        again.close()
    finally:
        led.close()


def test_migrations_sqlite(tmp_path):
    _check(f"sqlite:///{tmp_path / 'l.db'}")


def test_migrations_postgresql(pg_url):
    _check(pg_url)


def test_a_missing_lower_migration_is_still_applied(tmp_path):
    """A database that got migration 3 before 2 existed (development trees) still gets 2."""
    import time

    from tierwise.ledger.schema import schema_version
    from tierwise.ledger import make_engine
    from tierwise.ledger.schema import migrate

    url = f"sqlite:///{tmp_path / 'm.db'}"
    eng = make_engine(url)
    with eng.begin() as conn:
        MIGRATIONS[0][2](conn)
        MIGRATIONS[2][2](conn)
        schema_version.create(conn)
        conn.execute(schema_version.insert(), [{"version": 1, "name": "calls ledger", "applied_at": time.time()},
                                               {"version": 3, "name": "x", "applied_at": time.time()}])
    assert migrate(eng) == MIGRATIONS[-1][0]
    with eng.connect() as conn:
        assert [r[0] for r in conn.execute(sa.text("SELECT version FROM tierwise_schema_version ORDER BY version"))] == \
            [v for v, _, _ in MIGRATIONS]
    assert "tierwise_keys" in sa.inspect(eng).get_table_names()
    eng.dispose()
