"""Offline evaluation of routers on recorded outcomes: scores (PGR, APGR, CPT, AIQ), curves, cascades, replay."""

from .scores import aiq, apgr, cost_for_quality, cpt, pgr, quality_at_cost, upper_hull

__all__ = ["aiq", "apgr", "cost_for_quality", "cpt", "pgr", "quality_at_cost", "upper_hull"]
