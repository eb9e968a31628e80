"""The ledger's migrations, frozen: the DDL each number runs, written out once and never edited.

The live tables (``schema.py`` and the ``*_schema.py`` modules) are what tierwise reads and writes;
they are not what builds a database. A migration here creates exactly what it created when it was
released, whatever the live tables say today, so a new database and an old one upgraded end with the
same columns. A column added later is a new migration made with ``add_columns``, which adds it only
where it is missing (a database a development tree already changed is not broken by it).
``tests/ledger/test_migrations.py`` pins the columns after every number, on SQLite and PostgreSQL,
and that the live tables match the last one.

The DDL is the same for both databases but for the auto-increment id (``ID_TYPE``); every statement is
``IF NOT EXISTS``, so a migration interrupted half-way runs again cleanly.
"""

from __future__ import annotations

from typing import Callable, Mapping

import sqlalchemy as sa

__all__ = ["MIGRATIONS", "DDL", "ID_TYPE", "VERSION_TABLE", "add_columns", "create_version_table"]

# the auto-increment primary key, per database (as SQLAlchemy 2 wrote it when these were released)
ID_TYPE = {"sqlite": "INTEGER", "postgresql": "BIGSERIAL"}

VERSION_TABLE = """CREATE TABLE IF NOT EXISTS tierwise_schema_version (
    version INTEGER NOT NULL,
    name VARCHAR(128) NOT NULL,
    applied_at FLOAT NOT NULL,
    PRIMARY KEY (version)
)"""

# version -> its statements. Append only: a released entry is never edited.
DDL: dict[int, tuple[str, ...]] = {
    # 1: calls ledger
    1: (
        """CREATE TABLE IF NOT EXISTS calls (
            id {id} NOT NULL,
            ts FLOAT NOT NULL,
            day VARCHAR(10) NOT NULL,
            request_id VARCHAR(64) NOT NULL,
            task VARCHAR(64),
            router VARCHAR(32),
            reasons TEXT,
            confidence FLOAT,
            tier VARCHAR(32),
            model VARCHAR(128),
            requested_model VARCHAR(128),
            upstream VARCHAR(32),
            stream BOOLEAN NOT NULL,
            batch BOOLEAN NOT NULL,
            input_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            cache_write_5m_tokens BIGINT NOT NULL,
            cache_write_1h_tokens BIGINT NOT NULL,
            cache_read_tokens BIGINT NOT NULL,
            cost_nanos BIGINT,
            default_cost_nanos BIGINT,
            latency_ms FLOAT,
            ttft_ms FLOAT,
            status INTEGER NOT NULL,
            error_type VARCHAR(64),
            stop_reason VARCHAR(32),
            escalations INTEGER NOT NULL,
            fallbacks INTEGER NOT NULL,
            attempts TEXT,
            adapted TEXT,
            arm VARCHAR(64),
            key_id VARCHAR(64),
            client_disconnected BOOLEAN NOT NULL,
            prompt TEXT,
            PRIMARY KEY (id)
        )""",
        "CREATE INDEX IF NOT EXISTS ix_calls_ts ON calls (ts)",
        "CREATE INDEX IF NOT EXISTS ix_calls_day_tier ON calls (day, tier)",
        "CREATE INDEX IF NOT EXISTS ix_calls_task ON calls (task)",
        "CREATE INDEX IF NOT EXISTS ix_calls_request_id ON calls (request_id)",
    ),
    # 2: proxy keys and budgets
    2: (
        """CREATE TABLE IF NOT EXISTS tierwise_keys (
            id VARCHAR(32) NOT NULL,
            name VARCHAR(128) NOT NULL,
            hash VARCHAR(64) NOT NULL,
            prefix VARCHAR(24) NOT NULL,
            allow_tiers TEXT,
            deny_tiers TEXT,
            rpm INTEGER,
            budget_nanos BIGINT,
            created_at FLOAT NOT NULL,
            revoked_at FLOAT,
            PRIMARY KEY (id),
            UNIQUE (hash)
        )""",
        """CREATE TABLE IF NOT EXISTS tierwise_budget_spend (
            scope VARCHAR(160) NOT NULL,
            day VARCHAR(10) NOT NULL,
            spent_nanos BIGINT NOT NULL,
            reserved_nanos BIGINT NOT NULL,
            PRIMARY KEY (scope, day)
        )""",
    ),
    # 3: evidence: feedback, registry history, alerts, evaluations, experiments
    3: (
        """CREATE TABLE IF NOT EXISTS feedback (
            id {id} NOT NULL,
            ts FLOAT NOT NULL,
            request_id VARCHAR(64) NOT NULL,
            outcome VARCHAR(8),
            score FLOAT,
            valid BOOLEAN,
            error BOOLEAN NOT NULL,
            task VARCHAR(64),
            source VARCHAR(64),
            note TEXT,
            PRIMARY KEY (id)
        )""",
        """CREATE TABLE IF NOT EXISTS registry_history (
            id {id} NOT NULL,
            ts FLOAT NOT NULL,
            task VARCHAR(64) NOT NULL,
            old_tier VARCHAR(32),
            new_tier VARCHAR(32),
            actor VARCHAR(128) NOT NULL,
            source VARCHAR(32) NOT NULL,
            reason TEXT,
            config_path TEXT,
            undoes INTEGER,
            PRIMARY KEY (id)
        )""",
        """CREATE TABLE IF NOT EXISTS monitor_alerts (
            id {id} NOT NULL,
            ts FLOAT NOT NULL,
            task VARCHAR(64) NOT NULL,
            change_id INTEGER,
            before_rate FLOAT,
            after_rate FLOAT,
            baseline FLOAT,
            n_before INTEGER,
            n_after INTEGER,
            reverted BOOLEAN NOT NULL,
            revert_id INTEGER,
            message TEXT NOT NULL,
            PRIMARY KEY (id)
        )""",
        """CREATE TABLE IF NOT EXISTS eval_runs (
            id VARCHAR(40) NOT NULL,
            ts FLOAT NOT NULL,
            finished_ts FLOAT,
            inputs TEXT,
            inputs_hash VARCHAR(64),
            tiers VARCHAR(256) NOT NULL,
            status VARCHAR(16) NOT NULL,
            spent_nanos BIGINT NOT NULL,
            options TEXT,
            report TEXT,
            PRIMARY KEY (id)
        )""",
        """CREATE TABLE IF NOT EXISTS eval_results (
            id {id} NOT NULL,
            run_id VARCHAR(40) NOT NULL,
            item_id VARCHAR(128) NOT NULL,
            task VARCHAR(64) NOT NULL,
            tier VARCHAR(32) NOT NULL,
            model VARCHAR(128) NOT NULL,
            ts FLOAT NOT NULL,
            status INTEGER NOT NULL,
            error TEXT,
            output TEXT,
            input_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            cost_nanos BIGINT NOT NULL,
            latency_ms FLOAT,
            batch BOOLEAN NOT NULL,
            passed BOOLEAN,
            score FLOAT,
            grades TEXT,
            human BOOLEAN,
            blind_code VARCHAR(16),
            PRIMARY KEY (id),
            CONSTRAINT uq_eval_results_item_tier UNIQUE (run_id, item_id, tier)
        )""",
        """CREATE TABLE IF NOT EXISTS experiments (
            id {id} NOT NULL,
            name VARCHAR(48) NOT NULL,
            started_ts FLOAT NOT NULL,
            ended_ts FLOAT,
            "key" VARCHAR(32) NOT NULL,
            arms TEXT NOT NULL,
            PRIMARY KEY (id)
        )""",
        "CREATE INDEX IF NOT EXISTS ix_feedback_request_id ON feedback (request_id)",
        "CREATE INDEX IF NOT EXISTS ix_registry_history_task ON registry_history (task, ts)",
        "CREATE INDEX IF NOT EXISTS ix_eval_results_run ON eval_results (run_id)",
        "CREATE INDEX IF NOT EXISTS ix_experiments_name ON experiments (name)",
    ),
    # 4: eval judgement cache
    4: (
        """CREATE TABLE IF NOT EXISTS eval_judgements (
            id {id} NOT NULL,
            ts FLOAT NOT NULL,
            run_id VARCHAR(40) NOT NULL,
            item_id VARCHAR(128) NOT NULL,
            answer_hash VARCHAR(64) NOT NULL,
            judge VARCHAR(160) NOT NULL,
            rubric_hash VARCHAR(64) NOT NULL,
            grade TEXT NOT NULL,
            shown TEXT,
            PRIMARY KEY (id),
            CONSTRAINT uq_eval_judgements UNIQUE (run_id, item_id, answer_hash, judge, rubric_hash)
        )""",
    ),
    # 5: message batches: request mapping
    5: (
        """CREATE TABLE IF NOT EXISTS batch_requests (
            batch_id VARCHAR(128) NOT NULL,
            custom_id VARCHAR(64) NOT NULL,
            created_at FLOAT NOT NULL,
            key_id VARCHAR(64),
            task VARCHAR(64),
            requested_model VARCHAR(128),
            model VARCHAR(128),
            tier VARCHAR(32),
            router VARCHAR(32),
            reasons TEXT,
            adapted TEXT,
            upstream VARCHAR(32),
            recorded_at FLOAT,
            PRIMARY KEY (batch_id, custom_id)
        )""",
    ),
    # 6: shadow evaluation pairs
    6: (
        """CREATE TABLE IF NOT EXISTS shadow_pairs (
            id {id} NOT NULL,
            ts FLOAT NOT NULL,
            day VARCHAR(10) NOT NULL,
            request_id VARCHAR(64) NOT NULL,
            kind VARCHAR(64) NOT NULL,
            key_id VARCHAR(64),
            live_model VARCHAR(128) NOT NULL,
            live_tier VARCHAR(32) NOT NULL,
            shadow_model VARCHAR(128) NOT NULL,
            shadow_tier VARCHAR(32) NOT NULL,
            cheap_tier VARCHAR(32) NOT NULL,
            status VARCHAR(16) NOT NULL,
            error TEXT,
            grader VARCHAR(160),
            live_passed BOOLEAN,
            live_score FLOAT,
            shadow_passed BOOLEAN,
            shadow_score FLOAT,
            live_input_tokens BIGINT NOT NULL,
            live_output_tokens BIGINT NOT NULL,
            shadow_input_tokens BIGINT NOT NULL,
            shadow_output_tokens BIGINT NOT NULL,
            live_cost_nanos BIGINT NOT NULL,
            shadow_cost_nanos BIGINT NOT NULL,
            judge_cost_nanos BIGINT NOT NULL,
            replay_cost_nanos BIGINT NOT NULL,
            live_hash VARCHAR(64),
            shadow_hash VARCHAR(64),
            features TEXT,
            feature_spec VARCHAR(64),
            prompt TEXT,
            live_answer TEXT,
            shadow_answer TEXT,
            PRIMARY KEY (id)
        )""",
        "CREATE INDEX IF NOT EXISTS ix_shadow_pairs_kind_ts ON shadow_pairs (kind, ts)",
        "CREATE INDEX IF NOT EXISTS ix_shadow_pairs_request_id ON shadow_pairs (request_id)",
    ),
    # 7: proxy key roles
    7: (
        """CREATE TABLE IF NOT EXISTS tierwise_key_roles (
            key_id VARCHAR(32) NOT NULL,
            role VARCHAR(16) NOT NULL,
            PRIMARY KEY (key_id)
        )""",
    ),
}


def _dialect(conn: sa.Connection) -> str:
    name = conn.dialect.name
    if name not in ID_TYPE:
        from ..errors import ConfigError

        raise ConfigError(f"ledger.url: the ledger runs on SQLite or PostgreSQL, not {name}")
    return name


def create_version_table(conn: sa.Connection) -> None:
    _dialect(conn)
    conn.execute(sa.text(VERSION_TABLE))


def _run(version: int) -> Callable[[sa.Connection], None]:
    def upgrade(conn: sa.Connection) -> None:
        id_type = ID_TYPE[_dialect(conn)]
        for stmt in DDL[version]:
            conn.execute(sa.text(stmt.replace("{id}", id_type)))

    upgrade.__name__ = f"upgrade_{version}"
    return upgrade


def add_columns(table: str, columns: Mapping[str, "str | Mapping[str, str]"]) -> Callable[[sa.Connection], None]:
    """A migration adding ``columns`` (name -> its SQL type and constraints, or one per database) to
    ``table``, each only when the table lacks it."""

    def upgrade(conn: sa.Connection) -> None:
        dialect = _dialect(conn)
        have = {c["name"] for c in sa.inspect(conn).get_columns(table)}
        for name, spec in columns.items():
            if name in have:
                continue
            sql = spec if isinstance(spec, str) else spec[dialect]
            conn.execute(sa.text(f'ALTER TABLE {table} ADD COLUMN "{name}" {sql}'))

    return upgrade


# (version, name, upgrade). Append only.
MIGRATIONS: list[tuple[int, str, Callable[[sa.Connection], None]]] = [
    (1, "calls ledger", _run(1)),
    (2, "proxy keys and budgets", _run(2)),
    (3, "evidence: feedback, registry history, alerts, evaluations, experiments", _run(3)),
    (4, "eval judgement cache", _run(4)),
    (5, "message batches: request mapping", _run(5)),
    (6, "shadow evaluation pairs", _run(6)),
    (7, "proxy key roles", _run(7)),
]
