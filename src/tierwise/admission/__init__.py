"""Admission: whether a request may be served, before any upstream call.

- :mod:`.keys`: proxy API keys, their roles, the tiers they may reach;
- :mod:`.budgets`: USD budgets per day (per key, per task, overall), reserved atomically and settled;
- :mod:`.limits`: input limits (headers, body, messages, ``max_tokens``), per-key request rate, and
  the bounded prompt view routing strategies read.

They are wired together in :class:`tierwise.resilience.Runtime` (``state.guard``). Nothing is
imported here, so the hot path loads only the module it uses: import from the submodules.
"""

__all__ = ["budgets", "keys", "limits"]
