"""Inputs that used to stall everyone: a giant prompt, a giant SSE line, a giant upstream answer.

Prints, each in this process:
- routing: Dispatcher.plan time for 0.25-32 MiB prompts with the bounded routing view, and without
  it (ROUTE_VIEW_CHARS unbounded) up to --unbounded-max MiB; plan runs on the event loop, so its
  time is the stall every other request sees;
- SSE: StreamMeter time for one data line of 25/50/100 MB fed in 64 KiB chunks (linear: ms per MB
  stays flat), beside the old quadratic splitter on 5-25 MB;
- upstream body: a local server answering 500 MB (chunked, and with content-length) to the
  Anthropic upstream: time to the 502, peak RSS growth, and the longest event-loop stall a 1 ms
  ticker saw meanwhile;
- request ids: os.urandom per call against the old counter.

    .venv/bin/python bench/input_limits.py [--unbounded-max 8]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import resource
import time
import timeit

import orjson
from aiohttp import web

from tierwise.config import load_settings
from tierwise.dispatch import Dispatcher
from tierwise.errors import APIError
from tierwise.upstream.anthropic import AnthropicUpstream
from tierwise.upstream.sse import StreamMeter


def prompt(n: int, rnd: random.Random) -> str:
    words = "the quick brown fox jumps over a lazy dog analyze refund code function if then first".split()
    return " ".join(rnd.choice(words) for _ in range(n // 5 + 1))[:n]


def bench_routing(unbounded_max: float) -> None:
    import tierwise.dispatch as D

    s = load_settings(None, overrides={"ledger": {"url": "sqlite://"}}, environ={})
    d = Dispatcher(s)
    d.plan({"model": "auto", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
    rnd = random.Random(1)
    view = D.routing_view
    print("routing (Dispatcher.plan, best of 3; the event loop is blocked for this long)")
    print(f"  {'prompt':>10}{'bounded view ms':>18}{'unbounded ms':>15}")
    for mib in (0.25, 1, 8, 32):
        body = {"model": "auto", "max_tokens": 100, "messages": [{"role": "user", "content": prompt(int(mib * 2**20), rnd)}]}

        def best(fn) -> float:
            out = []
            for _ in range(3):
                b = dict(body, messages=[dict(m) for m in body["messages"]])
                t = time.perf_counter()
                fn(b)
                out.append(time.perf_counter() - t)
            return min(out) * 1000

        bounded = best(d.plan)
        unbounded = "-"
        if mib <= unbounded_max:
            D.routing_view = lambda b, max_chars=0: view(b, 1 << 62)
            try:
                unbounded = f"{best(d.plan):.1f}"
            finally:
                D.routing_view = view
        print(f"  {mib:>7} MiB{bounded:>18.1f}{unbounded:>15}")
    raw = orjson.dumps(body)
    t = time.perf_counter()
    orjson.loads(raw)
    print(f"  (for scale: orjson.loads of that 32 MiB body, which any proxy pays, {(time.perf_counter() - t) * 1000:.1f} ms)")


def _old_feed(buf: list[bytes], chunk: bytes) -> None:
    """The splitter StreamMeter had before: the held line re-joined with every chunk."""
    data = buf[0] + chunk if buf[0] else chunk
    lines = data.split(b"\n")
    buf[0] = lines.pop()


def bench_sse() -> None:
    print("\nSSE meter: one data line fed in 64 KiB chunks")
    print(f"  {'line':>8}{'new ms':>10}{'new ms/MB':>11}{'old ms':>10}{'old ms/MB':>11}")
    piece = b"a" * 65536
    for mb in (5, 10, 25, 50, 100):
        n = mb * 1_000_000 // len(piece)
        m = StreamMeter()
        t = time.perf_counter()
        m.feed(b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"')
        for _ in range(n):
            m.feed(piece)
        m.feed(b'"}}\n\n')
        new = (time.perf_counter() - t) * 1000
        old = "-"
        old_per = "-"
        if mb <= 25:
            buf = [b""]
            t = time.perf_counter()
            for _ in range(n):
                _old_feed(buf, piece)
            o = (time.perf_counter() - t) * 1000
            old, old_per = f"{o:.0f}", f"{o / mb:.1f}"
        print(f"  {mb:>5} MB{new:>10.1f}{new / mb:>11.2f}{old:>10}{old_per:>11}")


async def bench_upstream_body() -> None:
    total = 500 * 1024 * 1024

    async def chunked(request):
        resp = web.StreamResponse(headers={"content-type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            sent = 0
            while sent < total:
                await resp.write(b" " * (1 << 20))
                sent += 1 << 20
        except (ConnectionError, RuntimeError):
            pass
        return resp

    async def with_length(request):
        resp = web.StreamResponse(headers={"content-type": "application/json", "content-length": str(total)})
        await resp.prepare(request)
        try:
            await resp.write(b" " * (1 << 20))
            await asyncio.sleep(1)
        except (ConnectionError, RuntimeError):
            pass
        return resp

    app = web.Application()
    app.router.add_post("/chunked", chunked)
    app.router.add_post("/length", with_length)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    print("\nupstream answer of 500 MB (upstream.max_response_bytes = 64 MiB)")
    for path in ("/chunked", "/length"):
        up = AnthropicUpstream(url, "sk")
        stall = [0.0]
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                stall[0] = max(stall[0], now - last - 0.001)
                last = now

        tick = asyncio.create_task(ticker())
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        try:
            await up.send(path, b"{}", headers={}, stream=False)
            outcome = "200 (not refused!)"
        except APIError as exc:
            outcome = f"{exc.status} {exc.error_type}"
        took = time.perf_counter() - t
        done.set()
        await tick
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
        await up.aclose()
        print(f"  {path:<9} -> {outcome} in {took * 1000:.0f} ms; peak RSS grew {grown:.0f} MiB; "
              f"longest loop stall {stall[0] * 1000:.1f} ms")
    await runner.cleanup()


def bench_ids() -> None:
    from tierwise.server.messages import new_request_id

    c = itertools.count(1)
    prefix = "req_tw_" + os.urandom(6).hex()
    n = 200_000
    counter = min(timeit.repeat(lambda: f"{prefix}{next(c):010x}", number=n, repeat=3)) / n * 1e6
    per_call = min(timeit.repeat(lambda: "req_tw_" + os.urandom(12).hex(), number=n, repeat=3)) / n * 1e6
    ours = min(timeit.repeat(new_request_id, number=n, repeat=3)) / n * 1e6
    print(f"\nrequest ids (us per id, best of 3): new_request_id (os.urandom, 256 ids per call) {ours:.2f}; "
          f"os.urandom per id {per_call:.2f}; the old prefix+counter {counter:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--unbounded-max", type=float, default=8.0, help="largest prompt (MiB) routed without the view")
    args = ap.parse_args()
    print(f"tierwise input limits  ({os.cpu_count()} cores; wall-clock figures on a shared VM are noisy)\n")
    bench_routing(args.unbounded_max)
    bench_sse()
    asyncio.run(bench_upstream_body())
    bench_ids()


if __name__ == "__main__":
    main()
