"""Upstreams: the one seam through which tierwise reaches a model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from .base import Upstream, UpstreamResponse, call_json

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["Upstream", "UpstreamResponse", "call_json", "build_upstream", "points_at"]


def build_upstream(settings: "Settings", environ: Mapping[str, str] | None = None) -> Upstream:
    """The upstream the settings ask for: the Anthropic API (or a gateway at ``upstream.url``),
    or the offline upstream when no API key is set and ``upstream.kind`` is ``auto``."""
    import os

    env = os.environ if environ is None else environ
    up = settings.upstream
    kind = settings.upstream_kind(env)
    if kind == "offline":
        from .offline import OfflineUpstream

        o = up["offline"]
        quality = None
        if o.get("quality"):
            from .quality import QualityModel

            quality = QualityModel()
        return OfflineUpstream(latency_scale=float(o.get("latency_scale", 1.0)), seed=int(o.get("seed", 0)),
                               fault_rate=float(o.get("fault_rate", 0.0)), fault_status=int(o.get("fault_status", 529)),
                               quality=quality)
    from .anthropic import AnthropicUpstream

    return AnthropicUpstream(up["url"], env.get(up["api_key_env"]) or None, timeout=float(up["timeout"]),
                             connect_timeout=float(up["connect_timeout"]), max_connections=int(up["max_connections"]),
                             first_byte_timeout=float(up["first_byte_timeout"]),
                             stream_idle_timeout=float(up["stream_idle_timeout"]),
                             max_response_bytes=int(up["max_response_bytes"]))


def _addresses(name: str) -> set[Any]:
    """The IP addresses ``name`` stands for, resolved only when that needs no network: an address
    literal, ``localhost`` (``*.localhost``), or this machine's own host name (/etc/hosts)."""
    import ipaddress
    import socket

    try:
        return {ipaddress.ip_address(name)}
    except ValueError:
        pass
    lowered = name.lower().rstrip(".")
    if lowered != "localhost" and not lowered.endswith(".localhost") and lowered not in (socket.gethostname().lower(),):
        return set()  # a remote name: the run-time hop check (x-tierwise-hop) catches a loop through it
    if lowered == "localhost" or lowered.endswith(".localhost"):
        return {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return set()
    return {ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos}


def points_at(url: str, host: str, port: int) -> bool:
    """Does the upstream ``url`` reach the proxy itself, listening on ``host``:``port``?

    Equal ports and: the same address; both loopback (127.0.0.1, ::1, ``localhost``); or the proxy
    listening on every address (0.0.0.0, ::) and the URL naming a loopback, unspecified or this
    machine's own address. Pure but for local name look-ups (no DNS query for remote names)."""
    import ipaddress
    import socket
    from urllib.parse import urlsplit

    loopback = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    try:
        u = urlsplit(url)
        uport = u.port or {"http": 80, "https": 443}.get(u.scheme.lower())
    except ValueError:
        return False
    if not u.hostname or uport != int(port):
        return False
    targets = _addresses(u.hostname)
    if not targets:
        return False
    wildcard = host in ("", "0.0.0.0", "::", "*")
    own = _addresses(socket.gethostname()) if wildcard else set()
    listen = set() if wildcard else _addresses(host)
    for t in targets:
        if t.is_unspecified:  # connecting to 0.0.0.0 / :: reaches this machine
            return True
        if wildcard and (t.is_loopback or t in own):
            return True
        for a in listen:
            if t == a or (t in loopback and a in loopback) or a.is_unspecified:
                return True
    return False
