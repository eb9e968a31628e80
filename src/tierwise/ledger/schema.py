"""Ledger tables and numbered migrations (SQLAlchemy Core; SQLite and PostgreSQL).

The tables here are the live ones, what tierwise reads and writes. Databases are built by the
frozen, numbered migrations of ``migrations.py``: a migration is never edited once released (add
a new number). ``tests/ledger/test_migrations.py`` pins the list and the columns after each one.
"""

from __future__ import annotations

import sqlalchemy as sa

from .migrations import MIGRATIONS, create_version_table

__all__ = ["metadata", "calls", "schema_version", "MIGRATIONS", "migrate", "current_version"]

metadata = sa.MetaData()

schema_version = sa.Table(
    "tierwise_schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("applied_at", sa.Float, nullable=False),
)

calls = sa.Table(
    "calls",
    metadata,
    sa.Column("id", sa.Integer().with_variant(sa.BigInteger, "postgresql"), primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),                  # unix time the request arrived
    sa.Column("day", sa.String(10), nullable=False),            # UTC date, for grouping
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("task", sa.String(64)),
    sa.Column("router", sa.String(32)),
    sa.Column("reasons", sa.Text),
    sa.Column("confidence", sa.Float),
    sa.Column("tier", sa.String(32)),
    sa.Column("model", sa.String(128)),                         # the model that answered (and was priced)
    sa.Column("requested_model", sa.String(128)),               # what the client asked for (auto, tierwise/x, an id)
    sa.Column("upstream", sa.String(32)),
    sa.Column("stream", sa.Boolean, nullable=False, default=False),
    sa.Column("batch", sa.Boolean, nullable=False, default=False),
    sa.Column("input_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("output_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("cache_write_5m_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("cache_write_1h_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("cache_read_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("cost_nanos", sa.BigInteger),                     # exact cost, 1e-9 USD; NULL if the model is unpriced
    sa.Column("default_cost_nanos", sa.BigInteger),             # the same usage on the registry's default tier
    sa.Column("latency_ms", sa.Float),
    sa.Column("ttft_ms", sa.Float),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("error_type", sa.String(64)),
    sa.Column("stop_reason", sa.String(32)),
    sa.Column("escalations", sa.Integer, nullable=False, default=0),
    sa.Column("fallbacks", sa.Integer, nullable=False, default=0),
    sa.Column("attempts", sa.Text),                             # JSON list of every attempt, failed ones included
    sa.Column("adapted", sa.Text),                              # what was changed to fit the target model
    sa.Column("arm", sa.String(64)),                            # A/B arm
    sa.Column("key_id", sa.String(64)),                         # proxy key id (never the key)
    sa.Column("client_disconnected", sa.Boolean, nullable=False, default=False),
    sa.Column("prompt", sa.Text),                               # only when ledger.store_prompts is on
)

_INDEXES = [
    sa.Index("ix_calls_ts", calls.c.ts),
    sa.Index("ix_calls_day_tier", calls.c.day, calls.c.tier),
    sa.Index("ix_calls_task", calls.c.task),
    sa.Index("ix_calls_request_id", calls.c.request_id),
]


def current_version(conn: sa.Connection) -> int:
    create_version_table(conn)
    v = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    return int(v or 0)


def migrate(engine: sa.Engine) -> int:
    """Apply pending migrations in order; returns the schema version now in force."""
    import time

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # one migrator at a time across replicas
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7274917)"))
        current_version(conn)  # creates the version table on a new database
        applied = {int(v) for v in conn.execute(sa.select(schema_version.c.version)).scalars()}
        for version, name, upgrade in MIGRATIONS:
            if version not in applied:  # any missing number, not only those above the highest
                upgrade(conn)
                conn.execute(schema_version.insert().values(version=version, name=name, applied_at=time.time()))
                applied.add(version)
    return max(applied, default=0)
