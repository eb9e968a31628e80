"""Reports: what tierwise tells you after the fact, one module per report. Nothing here runs on the
request path, and nothing prints except the renderers named below.

- :mod:`.spend`: the ledger's spend, calls, tokens, savings and latency by any grouping (``tierwise report``,
  the dashboard);
- :mod:`.ab`: a live A/B experiment's arms compared, with intervals and a verdict (``tierwise ab report``);
- :mod:`.evaluation`: an evaluation run per task and tier, and the recommended registry (``tierwise eval``);
- :mod:`.replay`: replay results of routers on recorded outcomes as tables, JSON and plots (``tierwise bench``).

Nothing is imported here: import from the submodules.
"""

__all__ = ["ab", "evaluation", "replay", "spend"]
