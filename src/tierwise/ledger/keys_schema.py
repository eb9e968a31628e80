"""Tables for proxy API keys and budget spend (ledger migration 2).

Keys are stored hashed (SHA-256 of a 256-bit random secret: a fast hash is enough for a secret
nobody can guess, and keeps the per-request check in memory cheap); only a short prefix is kept
in clear to tell keys apart in listings.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["keys_metadata", "proxy_keys", "budget_spend", "key_roles"]

keys_metadata = sa.MetaData()

proxy_keys = sa.Table(
    "tierwise_keys",
    keys_metadata,
    sa.Column("id", sa.String(32), primary_key=True),            # key_xxxxxxxx: what ledger rows name
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),  # sha256 hex of the whole key
    sa.Column("prefix", sa.String(24), nullable=False),           # first characters, for listings
    sa.Column("allow_tiers", sa.Text),                            # comma list; NULL = every tier
    sa.Column("deny_tiers", sa.Text),                             # comma list
    sa.Column("rpm", sa.Integer),                                 # requests per minute; NULL = no limit
    sa.Column("budget_nanos", sa.BigInteger),                     # USD per UTC day in 1e-9; NULL = no budget
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
)

budget_spend = sa.Table(
    "tierwise_budget_spend",
    keys_metadata,
    sa.Column("scope", sa.String(160), primary_key=True),         # key:<id> | task:<name> | all
    sa.Column("day", sa.String(10), primary_key=True),            # UTC day
    sa.Column("spent_nanos", sa.BigInteger, nullable=False, default=0),
    sa.Column("reserved_nanos", sa.BigInteger, nullable=False, default=0),
)


# Migration 7: a key's role. A key without a row here is a caller key (every key made before roles
# existed); ``operator`` keys may also read the dashboard, /metrics, /openapi.json and the task list,
# and send feedback on any request. A table of its own so that migration 2 stays as released.
key_roles = sa.Table(
    "tierwise_key_roles",
    keys_metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),        # tierwise_keys.id
    sa.Column("role", sa.String(16), nullable=False),            # caller | operator
)
