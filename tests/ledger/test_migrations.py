"""Pins the ledger's migrations: a released migration is never edited, only appended to."""

from __future__ import annotations

import sqlalchemy as sa

from tierwise.ledger import Ledger
from tierwise.ledger.schema import MIGRATIONS

# Append a line here with every new migration; never change an existing one.
PINNED = [
    (1, "calls ledger"),
]

CALLS_COLUMNS_V1 = {
    "id", "ts", "day", "request_id", "task", "router", "reasons", "confidence", "tier", "model", "requested_model",
    "upstream", "stream", "batch", "input_tokens", "output_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens",
    "cache_read_tokens", "cost_nanos", "default_cost_nanos", "latency_ms", "ttft_ms", "status", "error_type",
    "stop_reason", "escalations", "fallbacks", "attempts", "adapted", "arm", "key_id", "client_disconnected", "prompt",
}


def test_migration_list_is_pinned():
    have = [(v, name) for v, name, _ in MIGRATIONS]
    assert have[: len(PINNED)] == PINNED, "a released migration was changed or reordered"
    assert [v for v, _ in have] == list(range(1, len(have) + 1)), "migration numbers must be consecutive"


def _check(url: str) -> None:
    led = Ledger(url)
    try:
        assert led.version == len(MIGRATIONS)
        insp = sa.inspect(led.engine)
        cols = {c["name"] for c in insp.get_columns("calls")}
        assert CALLS_COLUMNS_V1 <= cols
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
