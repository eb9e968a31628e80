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


# the tables each migration creates, their exact columns in order, and their indexes. Pinned: a released
# migration never changes these; a new column is a new migration (and a new entry here).
COLUMNS_AFTER: dict[int, dict[str, tuple[str, ...]]] = {
    1: {
        "calls": ("id", "ts", "day", "request_id", "task", "router", "reasons", "confidence", "tier", "model",
            "requested_model", "upstream", "stream", "batch", "input_tokens", "output_tokens",
            "cache_write_5m_tokens", "cache_write_1h_tokens", "cache_read_tokens", "cost_nanos",
            "default_cost_nanos", "latency_ms", "ttft_ms", "status", "error_type", "stop_reason", "escalations",
            "fallbacks", "attempts", "adapted", "arm", "key_id", "client_disconnected", "prompt"),
    },
    2: {
        "tierwise_budget_spend": ("scope", "day", "spent_nanos", "reserved_nanos"),
        "tierwise_keys": ("id", "name", "hash", "prefix", "allow_tiers", "deny_tiers", "rpm", "budget_nanos", "created_at",
            "revoked_at"),
    },
    3: {
        "eval_results": ("id", "run_id", "item_id", "task", "tier", "model", "ts", "status", "error", "output", "input_tokens",
            "output_tokens", "cost_nanos", "latency_ms", "batch", "passed", "score", "grades", "human", "blind_code"),
        "eval_runs": ("id", "ts", "finished_ts", "inputs", "inputs_hash", "tiers", "status", "spent_nanos", "options",
            "report"),
        "experiments": ("id", "name", "started_ts", "ended_ts", "key", "arms"),
        "feedback": ("id", "ts", "request_id", "outcome", "score", "valid", "error", "task", "source", "note"),
        "monitor_alerts": ("id", "ts", "task", "change_id", "before_rate", "after_rate", "baseline", "n_before", "n_after",
            "reverted", "revert_id", "message"),
        "registry_history": ("id", "ts", "task", "old_tier", "new_tier", "actor", "source", "reason", "config_path", "undoes"),
    },
    4: {
        "eval_judgements": ("id", "ts", "run_id", "item_id", "answer_hash", "judge", "rubric_hash", "grade", "shown"),
    },
    5: {
        "batch_requests": ("batch_id", "custom_id", "created_at", "key_id", "task", "requested_model", "model", "tier", "router",
            "reasons", "adapted", "upstream", "recorded_at"),
    },
    6: {
        "shadow_pairs": ("id", "ts", "day", "request_id", "kind", "key_id", "live_model", "live_tier", "shadow_model",
            "shadow_tier", "cheap_tier", "status", "error", "grader", "live_passed", "live_score", "shadow_passed",
            "shadow_score", "live_input_tokens", "live_output_tokens", "shadow_input_tokens",
            "shadow_output_tokens", "live_cost_nanos", "shadow_cost_nanos", "judge_cost_nanos", "replay_cost_nanos",
            "live_hash", "shadow_hash", "features", "feature_spec", "prompt", "live_answer", "shadow_answer"),
    },
    7: {
        "tierwise_key_roles": ("key_id", "role"),
    },
}

INDEXES_AFTER: dict[int, dict[str, set[str]]] = {
    1: {"calls": {"ix_calls_day_tier", "ix_calls_request_id", "ix_calls_task", "ix_calls_ts"}},
    3: {"eval_results": {"ix_eval_results_run"}, "experiments": {"ix_experiments_name"},
        "feedback": {"ix_feedback_request_id"}, "registry_history": {"ix_registry_history_task"}},
    6: {"shadow_pairs": {"ix_shadow_pairs_kind_ts", "ix_shadow_pairs_request_id"}},
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

    from tierwise.ledger import make_engine
    from tierwise.ledger.schema import migrate, schema_version

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


def _step_by_step(url: str) -> None:
    """Each migration alone, in order, on a new database: exactly the pinned tables, columns and indexes."""
    from tierwise.ledger import make_engine
    from tierwise.ledger.schema import current_version

    eng = make_engine(url)
    want_cols: dict[str, tuple[str, ...]] = {}
    want_ix: dict[str, set[str]] = {}
    try:
        for version, _, upgrade in MIGRATIONS:
            with eng.begin() as conn:
                current_version(conn)
                upgrade(conn)
                upgrade(conn)  # a migration run twice (interrupted, retried) changes nothing
            want_cols.update(COLUMNS_AFTER[version])
            want_ix.update(INDEXES_AFTER.get(version, {}))
            insp = sa.inspect(eng)
            tables = set(insp.get_table_names()) - {"tierwise_schema_version"}
            assert tables == set(want_cols), f"after migration {version}"
            for t, cols in want_cols.items():
                assert tuple(c["name"] for c in insp.get_columns(t)) == cols, f"{t} after migration {version}"
                ixs = {i["name"] for i in insp.get_indexes(t) if not i.get("duplicates_constraint")}  # not UNIQUE ones
                assert ixs == want_ix.get(t, set()), f"{t} after migration {version}"
    finally:
        eng.dispose()


def test_each_migration_creates_exactly_its_pinned_columns_sqlite(tmp_path):
    _step_by_step(f"sqlite:///{tmp_path / 's.db'}")


def test_each_migration_creates_exactly_its_pinned_columns_postgresql(pg_url):
    _step_by_step(pg_url)


def test_the_live_tables_match_the_migrated_database(tmp_path):
    """A column added to a live table without a migration fails here (and not silently in migration 1)."""
    from tierwise.ledger.batches_schema import batches_metadata
    from tierwise.ledger.evidence_schema import evidence_metadata
    from tierwise.ledger.judgements_schema import judgements_metadata
    from tierwise.ledger.keys_schema import keys_metadata
    from tierwise.ledger.schema import metadata
    from tierwise.ledger.shadow_schema import shadow_metadata

    led = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        insp = sa.inspect(led.engine)
        live = {}
        for md in (metadata, keys_metadata, evidence_metadata, judgements_metadata, batches_metadata, shadow_metadata):
            live.update({t.name: tuple(c.name for c in t.columns) for t in md.tables.values()})
        assert set(live) == set(insp.get_table_names())
        for name, cols in live.items():
            assert tuple(c["name"] for c in insp.get_columns(name)) == cols, name
    finally:
        led.close()


def _guarded(url: str) -> None:
    from tierwise.ledger import make_engine
    from tierwise.ledger.migrations import add_columns

    eng = make_engine(url)
    try:
        with eng.begin() as conn:
            conn.execute(sa.text("CREATE TABLE tw_guard (id INTEGER PRIMARY KEY, a TEXT)"))
        add = add_columns("tw_guard", {"a": "TEXT", "b": {"sqlite": "INTEGER", "postgresql": "BIGINT"},
                                       "c": "TEXT NOT NULL DEFAULT ''"})
        for _ in range(2):  # the second run finds every column there and adds nothing
            with eng.begin() as conn:
                add(conn)
        assert [c["name"] for c in sa.inspect(eng).get_columns("tw_guard")] == ["id", "a", "b", "c"]
    finally:
        eng.dispose()


def test_column_additions_are_guarded_sqlite(tmp_path):
    _guarded(f"sqlite:///{tmp_path / 'g.db'}")


def test_column_additions_are_guarded_postgresql(pg_url):
    _guarded(pg_url)
