"""Shadow evaluation pairs (ledger migration 6): one row per sampled live call replayed on another tier.

A row holds what the loop needs and nothing more: which tiers answered, the blind grades of both
answers, the tokens and cost of each side (the shadow side is *shadow spend*, kept here and never in
``calls``, so live reports stay live), hashes of the two answers, and the learned router's features
of the prompt computed when the call was sampled. Prompt and answer text are stored only with
``ledger.store_prompts`` on. A column added here needs a new migration in ledger/migrations.py.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["shadow_metadata", "shadow_pairs"]

shadow_metadata = sa.MetaData()
_ID = sa.Integer().with_variant(sa.BigInteger, "postgresql")

shadow_pairs = sa.Table(
    "shadow_pairs",
    shadow_metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),                 # when the live call was sampled
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),    # the live call's x-tierwise-request-id
    sa.Column("kind", sa.String(64), nullable=False),          # the task type, or "auto"
    sa.Column("key_id", sa.String(64)),
    sa.Column("live_model", sa.String(128), nullable=False),
    sa.Column("live_tier", sa.String(32), nullable=False),
    sa.Column("shadow_model", sa.String(128), nullable=False),
    sa.Column("shadow_tier", sa.String(32), nullable=False),
    sa.Column("cheap_tier", sa.String(32), nullable=False),    # the cheaper side of the pair: its error rate is judged
    sa.Column("status", sa.String(16), nullable=False),        # graded | ungraded | failed
    sa.Column("error", sa.Text),                               # why a pair is not graded
    sa.Column("grader", sa.String(160)),                       # "checks" or the judge and its model
    sa.Column("live_passed", sa.Boolean),
    sa.Column("live_score", sa.Float),
    sa.Column("shadow_passed", sa.Boolean),
    sa.Column("shadow_score", sa.Float),
    sa.Column("live_input_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("live_output_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("shadow_input_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("shadow_output_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("live_cost_nanos", sa.BigInteger, nullable=False, default=0),     # what the live answer cost (live spend)
    sa.Column("shadow_cost_nanos", sa.BigInteger, nullable=False, default=0),   # shadow spend: the shadow answer
    sa.Column("judge_cost_nanos", sa.BigInteger, nullable=False, default=0),    # shadow spend: grading
    sa.Column("replay_cost_nanos", sa.BigInteger, nullable=False, default=0),   # shadow spend: a stream's live side re-asked
    sa.Column("live_hash", sa.String(64)),                     # sha256 of the answer texts
    sa.Column("shadow_hash", sa.String(64)),
    sa.Column("features", sa.Text),                            # JSON: the learned router's sparse features of the prompt
    sa.Column("feature_spec", sa.String(64)),                  # hash of the feature spec they were computed with
    sa.Column("prompt", sa.Text),                              # only with ledger.store_prompts
    sa.Column("live_answer", sa.Text),                         # only with ledger.store_prompts
    sa.Column("shadow_answer", sa.Text),                       # only with ledger.store_prompts
)

_INDEXES = [
    sa.Index("ix_shadow_pairs_kind_ts", shadow_pairs.c.kind, shadow_pairs.c.ts),
    sa.Index("ix_shadow_pairs_request_id", shadow_pairs.c.request_id),
]
