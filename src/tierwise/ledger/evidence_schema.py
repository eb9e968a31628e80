"""Evidence tables (migration 3): feedback, registry history, monitor alerts, evaluations, experiments.

They live in the ledger database next to ``calls`` and join it on ``request_id`` (feedback) or
by time and task type (registry history, alerts). A column added here needs a new
migration in ledger/migrations.py (add_columns).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["evidence_metadata", "feedback", "registry_history", "monitor_alerts", "eval_runs", "eval_results",
           "experiments"]

evidence_metadata = sa.MetaData()
_ID = sa.Integer().with_variant(sa.BigInteger, "postgresql")

# A downstream outcome for one proxied request (POST /v1/feedback, tierwise.feedback.record_feedback).
feedback = sa.Table(
    "feedback",
    evidence_metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(8)),                 # "ok" | "bad" | NULL
    sa.Column("score", sa.Float),                       # 0..1, optional
    sa.Column("valid", sa.Boolean),                     # a validator's verdict, optional
    sa.Column("error", sa.Boolean, nullable=False),     # the verdict the monitor and A/B reports count
    sa.Column("task", sa.String(64)),                   # as given by the caller (the call's own task wins)
    sa.Column("source", sa.String(64)),                 # who reported it (validator name, service...)
    sa.Column("note", sa.Text),
)

# Every change of a [registry] entry: by hand, by `eval apply`, or by the monitor's revert.
registry_history = sa.Table(
    "registry_history",
    evidence_metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("task", sa.String(64), nullable=False),
    sa.Column("old_tier", sa.String(32)),               # NULL: the task type was not in the registry
    sa.Column("new_tier", sa.String(32)),               # NULL: the entry was removed
    sa.Column("actor", sa.String(128), nullable=False),  # user name, "monitor", ...
    sa.Column("source", sa.String(32), nullable=False),  # "cli" | "eval apply" | "monitor" | "undo" | "api"
    sa.Column("reason", sa.Text),
    sa.Column("config_path", sa.Text),
    sa.Column("undoes", sa.Integer),                    # id of the change this one reverts
)

monitor_alerts = sa.Table(
    "monitor_alerts",
    evidence_metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("task", sa.String(64), nullable=False),
    sa.Column("change_id", sa.Integer),                 # the registry change the error rate climbed after
    sa.Column("before_rate", sa.Float),
    sa.Column("after_rate", sa.Float),
    sa.Column("baseline", sa.Float),
    sa.Column("n_before", sa.Integer),
    sa.Column("n_after", sa.Integer),
    sa.Column("reverted", sa.Boolean, nullable=False, default=False),
    sa.Column("revert_id", sa.Integer),                 # the registry change that reverted it
    sa.Column("message", sa.Text, nullable=False),
)

eval_runs = sa.Table(
    "eval_runs",
    evidence_metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("finished_ts", sa.Float),
    sa.Column("inputs", sa.Text),                       # path of the inputs file
    sa.Column("inputs_hash", sa.String(64)),
    sa.Column("tiers", sa.String(256), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # running | done | capped | interrupted
    sa.Column("spent_nanos", sa.BigInteger, nullable=False, default=0),
    sa.Column("options", sa.Text),                      # JSON: batch id, threshold, ...
    sa.Column("report", sa.Text),                       # JSON summary of the last report
)

eval_results = sa.Table(
    "eval_results",
    evidence_metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("item_id", sa.String(128), nullable=False),
    sa.Column("task", sa.String(64), nullable=False),
    sa.Column("tier", sa.String(32), nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),    # 200, or the upstream's error status
    sa.Column("error", sa.Text),
    sa.Column("output", sa.Text),
    sa.Column("input_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("output_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("cost_nanos", sa.BigInteger, nullable=False, default=0),
    sa.Column("latency_ms", sa.Float),                  # NULL for batch results (asynchronous)
    sa.Column("batch", sa.Boolean, nullable=False, default=False),
    sa.Column("passed", sa.Boolean),                    # NULL until graded
    sa.Column("score", sa.Float),
    sa.Column("grades", sa.Text),                       # JSON list of each grader's verdict
    sa.Column("human", sa.Boolean),                     # a person's grade (overrides ``passed`` when set)
    sa.Column("blind_code", sa.String(16)),
    sa.UniqueConstraint("run_id", "item_id", "tier", name="uq_eval_results_item_tier"),
)

experiments = sa.Table(
    "experiments",
    evidence_metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(48), nullable=False),
    sa.Column("started_ts", sa.Float, nullable=False),
    sa.Column("ended_ts", sa.Float),
    sa.Column("key", sa.String(32), nullable=False),
    sa.Column("arms", sa.Text, nullable=False),         # JSON: arm -> policy
)

_INDEXES = [
    sa.Index("ix_feedback_request_id", feedback.c.request_id),
    sa.Index("ix_registry_history_task", registry_history.c.task, registry_history.c.ts),
    sa.Index("ix_eval_results_run", eval_results.c.run_id),
    sa.Index("ix_experiments_name", experiments.c.name),
]
