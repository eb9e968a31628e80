"""Fault soak: 10,000 requests at concurrency 100 through a real proxy process, ~20% injected faults.

The upstream is the local fake (``FakeAnthropic``) drawing a random fault for about 20% of the
calls it receives: 429 with retry-after, 529, 500, a response slower than the proxy's upstream
timeout, a connection reset before the first byte, a stream cut before its first event or in the
middle, an ``event: error`` at the start or in the middle, malformed SSE. The proxy runs as its own
process (``tierwise serve``) with its ledger on SQLite or PostgreSQL; it is stopped with SIGTERM
(a graceful stop drains the ledger) before the ledger is read.

Prints: requests sent, succeeded, failed with a well-formed error, lost (must be 0), ledger rows
(must equal requests), and the sum of ledger costs against the sum of the costs of the usage the
fake upstream actually delivered (must match).

    .venv/bin/python bench/fault_soak.py --ledger sqlite
    .venv/bin/python bench/fault_soak.py --ledger postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import orjson
import sqlalchemy as sa

from tierwise.config import load_settings
from tierwise.cost import cost_nanos
from tierwise.upstream.fakeserver import FakeAnthropic

FAULTS = ("status=429,retry_after=0.05", "status=529", "status=500", "delay=1.5", "reset", "cut=0", "cut=5",
          "error_event=0", "error_event=4", "malformed")
MODELS = ("auto", "tierwise/classify_intent", "tierwise/review_code", "claude-haiku-5-5", "claude-sonnet-5-5", "tierwise/security_review")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def classify(status: int, body: bytes, stream: bool) -> str:
    try:
        if not stream or status != 200:
            data = orjson.loads(body)
            if status == 200:
                return "ok" if data.get("type") == "message" and "usage" in data else "lost"
            return "error" if data.get("type") == "error" and data["error"]["type"] and data["error"]["message"] else "lost"
        events = [e for e in body.split(b"\n\n") if e.strip()]
        if not events or not events[0].startswith(b"event: message_start"):
            return "lost"
        last = events[-1]
        if last.startswith(b"event: message_stop"):
            return "ok"
        if last.startswith(b"event: error\ndata: "):
            err = orjson.loads(last.split(b"data: ", 1)[1])
            return "error" if err.get("type") == "error" and err["error"]["type"] else "lost"
        return "lost"
    except Exception:  # noqa: BLE001
        return "lost"


async def drive(url: str, n: int, concurrency: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    counts = {"ok": 0, "error": 0, "lost": 0}
    q: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        q.put_nowait(i)
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=120)) as session:
        async def worker() -> None:
            while not q.empty():
                i = q.get_nowait()
                stream = rng.random() < 0.5
                body = {"model": rng.choice(MODELS), "max_tokens": rng.choice((16, 64, 200)), "stream": stream,
                        "messages": [{"role": "user", "content": f"request {i}: classify the intent of: where is my parcel?"
                                      + " more words" * rng.randint(0, 40)}]}
                try:
                    async with session.post(url + "/v1/messages", data=orjson.dumps(body), headers={
                            "x-api-key": "sk-soak", "anthropic-version": "2023-06-01", "content-type": "application/json"}) as r:
                        data = await r.read()
                        counts[classify(r.status, data, stream)] += 1
                except Exception:  # noqa: BLE001
                    counts["lost"] += 1

        await asyncio.gather(*[worker() for _ in range(concurrency)])
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ledger", default="sqlite", help="sqlite, or a postgresql:// URL")
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--fault-rate", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tierwise-soak-"))
    schema = None
    if args.ledger == "sqlite":
        ledger_url = f"sqlite:///{tmp / 'ledger.db'}"
        read_url = ledger_url
    else:
        schema = "soak_" + uuid.uuid4().hex[:8]
        base = args.ledger.replace("postgresql://", "postgresql+psycopg://", 1)
        with sa.create_engine(base).begin() as c:
            c.execute(sa.text(f"CREATE SCHEMA {schema}"))
        sep = "&" if "?" in args.ledger else "?"
        ledger_url = f"{args.ledger}{sep}options=-csearch_path%3D{schema}"
        read_url = ledger_url.replace("postgresql://", "postgresql+psycopg://", 1)
    (tmp / "tierwise.toml").write_text(
        "[upstream]\ntimeout = 1.0\n"
        "[resilience]\nbackoff_base = 0.05\nmax_retry_after = 1.0\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "TIERWISE_CONFIG")}
    with FakeAnthropic(latency_scale=0.0, fault_rate=args.fault_rate, fault_specs=FAULTS, seed=args.seed) as fake:
        proc = subprocess.Popen([sys.executable, "-m", "tierwise", "serve", "--port", str(port), "--upstream-url", fake.url,
                                 "--ledger-url", ledger_url, "--config", str(tmp / "tierwise.toml"), "--log-level", "error"],
                                env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=open(tmp / "proxy.log", "w"))
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    print("proxy did not start; see", tmp / "proxy.log")
                    return 1
                time.sleep(0.1)
        t0 = time.perf_counter()
        counts = asyncio.run(drive(f"http://127.0.0.1:{port}", args.requests, args.concurrency, args.seed))
        elapsed = time.perf_counter() - t0
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        catalog = load_settings(None, environ={}).catalog
        upstream_cost = sum(cost_nanos(catalog.get(m), u) for m, u in fake.usage if m and catalog.get(m) is not None)
        upstream_calls = len(fake.requests)
    engine = sa.create_engine(read_url)
    with engine.connect() as c:
        rows, ledger_cost = c.execute(sa.text("SELECT count(*), coalesce(sum(cost_nanos), 0) FROM calls")).one()
        ledger_cost = int(ledger_cost)
        attempts = c.execute(sa.text("SELECT count(*) FROM calls WHERE attempts LIKE '%error_type\":\"%'")).scalar()
    engine.dispose()
    if schema:
        with sa.create_engine(args.ledger.replace("postgresql://", "postgresql+psycopg://", 1)).begin() as c:
            c.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    sent = args.requests
    print(f"ledger: {'sqlite' if args.ledger == 'sqlite' else 'postgresql'}   faults: ~{args.fault_rate:.0%} of upstream calls   "
          f"concurrency: {args.concurrency}   {elapsed:.1f}s ({sent / elapsed:,.0f} req/s)")
    print(f"requests sent:                 {sent:,}")
    print(f"succeeded:                     {counts['ok']:,}")
    print(f"failed with a well-formed error: {counts['error']:,}")
    print(f"lost:                          {counts['lost']:,}   (must be 0)")
    print(f"ledger rows:                   {rows:,}   (must equal requests: {'OK' if rows == sent else 'MISMATCH'})")
    print(f"rows with a failed attempt:    {attempts:,}   upstream calls: {upstream_calls:,}")
    print(f"sum of ledger costs:           ${ledger_cost / 1e9:.9f}")
    print(f"sum of upstream-reported usage: ${upstream_cost / 1e9:.9f}   ({'match' if ledger_cost == upstream_cost else 'MISMATCH'})")
    ok = counts["lost"] == 0 and rows == sent and ledger_cost == upstream_cost
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
