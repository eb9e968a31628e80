"""Routing strategies behind one interface: ``decide(request) -> Decision``."""

from .base import Decision, Router, RouteRequest, add_strategy, available, build_router

__all__ = ["Decision", "RouteRequest", "Router", "add_strategy", "available", "build_router"]
