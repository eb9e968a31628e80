"""Message Batches: which request of which batch tierwise routed where, and whether its result is
in the ledger yet (ledger migration 5).

One row per (batch id, custom id), written when the batch is created through the proxy: the key
and task it belongs to, what was asked for and where it was routed. When the results are fetched
each result claims its row (``recorded_at`` from NULL to a time, in the same transaction as its
``calls`` row), so a result fetched twice is counted once. A result whose row is missing (a batch
created around the proxy) gets one on the spot, claimed at once.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["batches_metadata", "batch_requests"]

batches_metadata = sa.MetaData()

batch_requests = sa.Table(
    "batch_requests",
    batches_metadata,
    sa.Column("batch_id", sa.String(128), primary_key=True),
    sa.Column("custom_id", sa.String(64), primary_key=True),   # the API allows 64 characters
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("key_id", sa.String(64)),
    sa.Column("task", sa.String(64)),
    sa.Column("requested_model", sa.String(128)),
    sa.Column("model", sa.String(128)),                         # where tierwise sent it
    sa.Column("tier", sa.String(32)),
    sa.Column("router", sa.String(32)),
    sa.Column("reasons", sa.Text),
    sa.Column("adapted", sa.Text),
    sa.Column("upstream", sa.String(32)),
    sa.Column("recorded_at", sa.Float),                         # when its result became a ledger row; NULL: not yet
)
