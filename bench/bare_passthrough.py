"""The ceiling of tierwise's stack: a raw-ASGI pass-through on uvicorn (httptools, uvloop) with one
aiohttp session, no routing, no ledger, no metrics. bench/proxy_overhead.py runs it beside the
proxy so that the proxy's figures are read against what the same server and client can do at best.

    python bench/bare_passthrough.py PORT UPSTREAM_URL [aiohttp|pyreqwest] [uvicorn|guarded|granian]

The optional third and fourth words swap the upstream client (``pyreqwest``: Rust reqwest bindings)
or the server (``granian``: a Rust HTTP server; ``guarded``: uvicorn with tierwise's server/guard.py
protocol) to measure a candidate stack against the default one.
"""

from __future__ import annotations

import os
import sys

import aiohttp
import uvicorn

if __name__ == "__main__":  # granian imports this module again: the arguments travel in the environment
    os.environ.update(zip(("BARE_PORT", "BARE_UPSTREAM", "BARE_CLIENT", "BARE_SERVER"), sys.argv[1:]))
UPSTREAM = os.environ.get("BARE_UPSTREAM", "http://127.0.0.1:9100").rstrip("/")
CLIENT = os.environ.get("BARE_CLIENT", "aiohttp")
SERVER = os.environ.get("BARE_SERVER", "uvicorn")
_SKIP = {b"host", b"content-length", b"connection", b"accept-encoding"}
_session: aiohttp.ClientSession | None = None


async def read(receive) -> bytes:
    body, more = b"", True
    while more:
        msg = await receive()
        body += msg.get("body", b"")
        more = msg.get("more_body", False)
    return body


async def app(scope, receive, send):
    global _session
    if scope["type"] != "http":
        return
    body = await read(receive)
    if _session is None:
        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k not in _SKIP}
    async with _session.post(UPSTREAM + scope["path"], data=body, headers=headers) as r:
        ctype = r.headers.get("content-type", "application/json").encode("latin-1")
        if ctype.startswith(b"text/event-stream"):
            await send({"type": "http.response.start", "status": r.status, "headers": [(b"content-type", ctype)]})
            async for chunk in r.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            data = await r.read()
            await send({"type": "http.response.start", "status": r.status, "headers": [
                (b"content-type", ctype), (b"content-length", str(len(data)).encode())]})
            await send({"type": "http.response.body", "body": data})


_client = None


async def app_reqwest(scope, receive, send):
    global _client
    if scope["type"] != "http":
        return
    body = await read(receive)
    if _client is None:
        from pyreqwest.client import ClientBuilder

        _client = ClientBuilder().max_connections(512).http1_only().build()
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k not in _SKIP}
    req = _client.post(UPSTREAM + scope["path"]).headers(headers).body_bytes(body)
    if b'"stream":true' in body:
        async with req.build_streamed() as r:
            ctype = (r.get_header("content-type") or "text/event-stream").encode("latin-1")
            await send({"type": "http.response.start", "status": r.status, "headers": [(b"content-type", ctype)]})
            reader = r.body_reader
            while (chunk := await reader.read_chunk()) is not None:
                await send({"type": "http.response.body", "body": bytes(chunk), "more_body": True})
            await send({"type": "http.response.body", "body": b""})
    else:
        r = await req.build().send()
        data = bytes(await r.bytes())
        ctype = (r.get_header("content-type") or "application/json").encode("latin-1")
        await send({"type": "http.response.start", "status": r.status, "headers": [
            (b"content-type", ctype), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})


if __name__ == "__main__" and SERVER == "granian":
    os.execv(sys.executable, [sys.executable, "-m", "granian", "--interface", "asginl", "--host", "127.0.0.1", "--port",
                              sys.argv[1], "--loop", "uvloop", "--no-ws", "--no-log", "--working-dir",
                              os.path.dirname(os.path.abspath(__file__)),
                              f"bare_passthrough:{'app_reqwest' if CLIENT == 'pyreqwest' else 'app'}"])
elif __name__ == "__main__":
    http: object = "httptools"
    if SERVER == "guarded":  # tierwise's own protocol (header/body timeouts, connection cap): its cost alone
        from tierwise.server.guard import guarded_protocol

        http = guarded_protocol()
    uvicorn.run(app_reqwest if CLIENT == "pyreqwest" else app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop",
                http=http, access_log=False, log_level="warning", lifespan="off", server_header=False, proxy_headers=False)
