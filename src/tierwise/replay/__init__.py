"""Offline evaluation of routers on recorded outcomes: metrics, curves, cascades, replay."""

from .metrics import aiq, apgr, cost_for_quality, cpt, pgr, quality_at_cost, upper_hull

__all__ = ["aiq", "apgr", "cost_for_quality", "cpt", "pgr", "quality_at_cost", "upper_hull"]
