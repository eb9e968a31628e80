"""The judge's verdicts, cached per answer (ledger migration 4), so a resumed evaluation never
pays the judge twice for the same answer.

One row per (run, item, answer text hash, judge, rubric hash): the judge's grade of that answer
(JSON), and the answers shown in the same judge call, in the order shown (their hashes; never
tier or model names, so the cache leaks nothing the blind judge did not see). The key holds no
position: an answer's grade is reused whichever other answers it was judged with, and wherever
the blind shuffle put it.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["judgements_metadata", "eval_judgements"]

judgements_metadata = sa.MetaData()
_ID = sa.Integer().with_variant(sa.BigInteger, "postgresql")

eval_judgements = sa.Table(
    "eval_judgements",
    judgements_metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("item_id", sa.String(128), nullable=False),
    sa.Column("answer_hash", sa.String(64), nullable=False),   # sha256 of the answer text
    sa.Column("judge", sa.String(160), nullable=False),        # the judge and its model, e.g. llm-judge:claude-sonnet-5-5
    sa.Column("rubric_hash", sa.String(64), nullable=False),   # sha256 of rubric, task input, reference and pass mark
    sa.Column("grade", sa.Text, nullable=False),               # JSON: the Grade
    sa.Column("shown", sa.Text),                               # JSON: the answer hashes of that call, in the order shown
    sa.UniqueConstraint("run_id", "item_id", "answer_hash", "judge", "rubric_hash", name="uq_eval_judgements"),
)
