"""``tierwise fake-upstream``: a local server speaking Anthropic's wire protocol (for tests and demos)."""

from __future__ import annotations

import typer

from . import app


@app.command("fake-upstream")
def fake_upstream(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(9999),
    latency_scale: float = typer.Option(0.0, help="1.0 = realistic per-tier latency; 0 = as fast as possible."),
    compress: bool = typer.Option(True, "--compress/--no-compress",
                                  help="Compress answers when the request accepts it (gzip, deflate, br, zstd), as the API does."),
) -> None:
    """Serve synthetic Anthropic Messages API answers on HOST:PORT (no key checked beyond presence)."""
    from aiohttp import web

    from ..upstream.fakeserver import make_fake_app

    typer.echo(f"fake Anthropic API on http://{host}:{port} (synthetic answers{'' if compress else ', never compressed'})")
    web.run_app(make_fake_app(latency_scale=latency_scale, compress=compress), host=host, port=port, access_log=None, print=None)
