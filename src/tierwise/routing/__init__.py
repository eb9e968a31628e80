"""Routing strategies behind one interface: ``decide(request) -> Decision``."""

from .base import Decision, RouteRequest, Router, available, build_router, register

__all__ = ["Decision", "RouteRequest", "Router", "available", "build_router", "register"]
