"""``tierwise serve``: run the proxy."""

from __future__ import annotations

import logging
import os
from typing import Any, Optional

import typer

from . import app
from ._common import console, fail, settings_from


def uvicorn_options(settings: Any, fd_limit: int | None = None) -> dict[str, Any]:
    """The uvicorn settings for the proxy: the guarded httptools protocol (header and body timeouts,
    a cap on connections; tierwise.server.guard) and the keep-alive timeout, from ``[server]``.
    ``fd_limit``: the process's limit on open files; the connection cap stays below it (minus room for
    the upstream pools and the ledger), or a full table of descriptors would refuse everyone."""
    from ..server.guard import guarded_protocol

    srv = settings.raw["server"]
    lim = settings.raw["limits"]
    cap = int(srv["max_connections"])
    if fd_limit is not None:
        cap = max(16, min(cap, fd_limit - min(int(settings.upstream["max_connections"]), fd_limit // 4) - 64))
    protocol = guarded_protocol(header_timeout=float(srv["header_timeout"]), body_timeout=float(srv["body_timeout"]),
                                max_header_bytes=int(lim["max_header_bytes"]) + 8 * 1024,  # + the request line
                                max_connections=cap)
    # the listen backlog: a burst of new connections up to the cap waits in the kernel instead of being
    # dropped (the kernel caps it at net.core.somaxconn)
    return {"http": protocol, "timeout_keep_alive": float(srv["keep_alive"]), "backlog": max(2048, min(cap, _somaxconn()))}


def _somaxconn() -> int:
    try:
        with open("/proc/sys/net/core/somaxconn") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return 4096


def raise_fd_limit(wanted: int) -> int:
    """Lift the soft limit on open files toward ``wanted`` (at most the hard limit); the limit now."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            return soft
    return wanted if soft == resource.RLIM_INFINITY else soft


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, help="Address to listen on (default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port to listen on (default 8787)."),
    upstream_url: Optional[str] = typer.Option(None, "--upstream-url", help="Anthropic API base URL (a gateway or test server)."),
    offline: bool = typer.Option(False, "--offline", help="Serve synthetic answers from the built-in offline upstream."),
    ledger_url: Optional[str] = typer.Option(None, "--ledger-url", help="sqlite:///path.db or postgresql://..."),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Path to tierwise.toml."),
    log_level: Optional[str] = typer.Option(None, help="debug, info, warning, error (default: server.log_level)."),
) -> None:
    """Run the Claude routing proxy (POST /v1/messages, streaming and not)."""
    import uvicorn

    from ..server import create_app

    upstream: dict = {"url": upstream_url}
    if offline:
        upstream["kind"] = "offline"
    elif upstream_url:
        upstream["kind"] = "anthropic"
    settings = settings_from(config, server={"host": host, "port": port}, upstream=upstream, ledger={"url": ledger_url})
    kind = settings.upstream_kind()
    if kind != "offline":
        from ..upstream import points_at

        url = settings.upstream["url"]
        if points_at(url, settings.host, settings.port):
            fail(f"the upstream {url} (set by {settings.upstream_from}) is this proxy's own address "
                 f"{settings.host}:{settings.port}: every request would come back to the proxy. Point the proxy at the "
                 "API with TIERWISE_UPSTREAM_URL=https://api.anthropic.com (it wins over ANTHROPIC_BASE_URL, which "
                 "clients use to reach the proxy), [upstream] url in tierwise.toml, or --upstream-url")
    log_level = (log_level or settings.raw["server"]["log_level"]).lower()  # the flag over [server] log_level
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    application = create_app(settings)
    where = f"http://{settings.host}:{settings.port}"
    console.print(f"[bold]tierwise[/bold] proxy on [cyan]{where}[/cyan]  (config: {settings.source})")
    if kind == "offline":
        console.print("[bold yellow]OFFLINE upstream[/bold yellow]: no ANTHROPIC_API_KEY set, so answers are synthetic "
                      "and labelled (header x-tierwise-upstream: offline). Set ANTHROPIC_API_KEY to reach the real API.")
    else:
        key = "server key from $" + settings.upstream["api_key_env"] if os.environ.get(settings.upstream["api_key_env"]) else "the client's own key"
        console.print(f"upstream: [green]{settings.upstream['url']}[/green] (from {settings.upstream_from}) using {key}")
    console.print(f"ledger: {settings.ledger_url.split('@')[-1]}   auto router: {settings.routing['auto']}   "
                  f"tiers: " + ", ".join(f"{t}={settings.catalog.tiers[t]}" for t in settings.catalog.tier_order))
    console.print(f"try: curl -s {where}/v1/messages -H 'content-type: application/json' -H 'x-api-key: any' "
                  "-d '{\"model\":\"auto\",\"max_tokens\":200,\"messages\":[{\"role\":\"user\",\"content\":\"Classify: I want a refund\"}]}'")
    # Everything built so far (catalog, router weights, config) lives as long as the process: move it out
    # of the garbage collector's way, and collect young objects less often (the hot path allocates a few
    # hundred short-lived objects per request, nearly all freed by reference counting).
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    loop = "uvloop"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        loop = "asyncio"
    # every connection holds a file descriptor: room for max_connections plus the upstream pools
    fds = raise_fd_limit(int(settings.raw["server"]["max_connections"]) + int(settings.upstream["max_connections"]) + 256)
    uvicorn.run(application, host=settings.host, port=settings.port, loop=loop, access_log=False,
                log_level=log_level, lifespan="on", timeout_graceful_shutdown=30, server_header=False,
                proxy_headers=False,  # the client address is not used: skip the X-Forwarded-* middleware
                **uvicorn_options(settings, fd_limit=fds))
