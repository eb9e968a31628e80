"""The HTTP proxy."""

from .app import ProxyApp, create_app

__all__ = ["ProxyApp", "create_app"]
