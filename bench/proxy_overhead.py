"""What the proxy adds: latency at concurrency 1, throughput at concurrency 64, stream TTFB.

Starts a fast local fake upstream (bench/fast_upstream.py) and a real `tierwise serve` in front
of it (auto routing on, ledger on: SQLite in a temp dir), then drives the same requests directly
at the fake and through the proxy, and prints both; then the same again with a fake upstream that
compresses its answers (gzip, as api.anthropic.com does when asked), which the proxy decodes. Concurrency 64 uses `wrk` when installed
(apt-get install wrk), else a Python aiohttp load loop (which then bounds the figures itself).

    .venv/bin/python bench/proxy_overhead.py [--n 3000] [--duration 10]

Targets (2-core machine, one proxy process): p50 added <= 0.5 ms at c=1; >= 2,000 req/s at c=64.
Wall-clock figures on a shared VM drift by 2x between slow and fast phases; for a deterministic
count of the CPU work per request (before/after a change) use bench/hotpath_instructions.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
PROMPT = ("Classify the intent of this support ticket into one of: billing, shipping, account, other. "
          "Ticket: 'Hi, I was charged twice for order #4411 last week and still see both charges today.'")
HEADERS = {"content-type": "application/json", "x-api-key": "bench-key", "anthropic-version": "2023-06-01"}


def body(stream: bool, model: str = "auto") -> bytes:
    return orjson.dumps({"model": model, "max_tokens": 256, "stream": stream,
                         "messages": [{"role": "user", "content": PROMPT}]})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def stop(procs: list[subprocess.Popen], timeout: float) -> None:
    """Terminate the benchmark's child processes (last started first), killing any that hang."""
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


async def interleaved(direct: str, via: str, payload: bytes, n: int, stream: bool) -> dict[str, list[float]]:
    """n back-to-back requests to each URL, alternating direct and proxied on two keep-alive
    connections, so both see the same machine conditions (a virtualised 2-core box drifts).
    Returns latencies (ms) and, for streams, time to first byte, per target."""
    out: dict[str, list[float]] = {"direct": [], "proxy": [], "direct_ttfb": [], "proxy_ttfb": []}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as sd, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as sp:
        for i in range(n + 200):
            for name, s, url in (("direct", sd, direct), ("proxy", sp, via)):
                t0 = time.perf_counter()
                first = None
                async with s.post(url, data=payload, headers=HEADERS) as r:
                    if stream:
                        async for _ in r.content.iter_any():
                            if first is None:
                                first = time.perf_counter()
                    else:
                        await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"HTTP {r.status}: {await r.text()}")
                t1 = time.perf_counter()
                if i >= 200:  # warm-up excluded
                    out[name].append((t1 - t0) * 1000)
                    if first is not None:
                        out[name + "_ttfb"].append((first - t0) * 1000)
    return out


async def python_load(url: str, payload: bytes, concurrency: int, duration: float) -> tuple[float, list[float], int]:
    lat: list[float] = []
    count = 0
    stop = time.perf_counter() + duration
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as s:
        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                async with s.post(url, data=payload, headers=HEADERS) as r:
                    await r.read()
                lat.append((time.perf_counter() - t0) * 1000)
                count += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return count / elapsed, lat, count


def wrk_load(url: str, payload: bytes, concurrency: int, duration: float, tmp: Path) -> tuple[float, dict[str, float], int]:
    script = tmp / "post.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{payload.decode()}]==]"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in HEADERS.items()]
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{int(duration)}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"wrk saw {non2xx.group(1)} non-2xx responses:\n{out}")

    def ms(v: str) -> float:
        num, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
        return float(num) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    dist = {p: ms(v) for p, v in re.findall(r"\s+(50|99)%\s+(\S+)", out)}
    return rps, dist, total


def run_upstream(kind: str, args: argparse.Namespace, tmp: Path, env: dict[str, str]) -> dict:
    """One fast fake upstream (``plain`` or ``gzip``: compressing like api.anthropic.com) and a proxy in front
    of it: the c=1 and c=64 figures, direct and through the proxy, and the ledger check."""
    up_port, px_port = free_port(), free_port()
    procs = []
    out: dict = {"kind": kind}
    try:
        cmd = [PY, str(ROOT / "bench" / "fast_upstream.py"), str(up_port)] + (["gzip"] if kind == "gzip" else [])
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL))
        wait_port(up_port)
        db = tmp / f"bench-{kind}.db"
        proxy = subprocess.Popen([PY, "-m", "tierwise", "serve", "--port", str(px_port), "--upstream-url",
                                  f"http://127.0.0.1:{up_port}", "--ledger-url", f"sqlite:///{db}", "--log-level", "warning"],
                                 cwd=tmp, env=env, stdout=subprocess.DEVNULL)
        procs.append(proxy)
        wait_port(px_port)
        direct = f"http://127.0.0.1:{up_port}/v1/messages"
        via = f"http://127.0.0.1:{px_port}/v1/messages"
        proxied = 0
        print(f"--- {kind} upstream{' (content-encoding: gzip, decoded by the proxy and by the direct client)' if kind == 'gzip' else ''}")
        results = {}
        for stream in (False, True):
            sk = "stream" if stream else "non-stream"
            # three interleaved rounds; the added latency is the median of the rounds' p50 differences
            rounds = [asyncio.run(interleaved(direct, via, body(stream), args.n, stream)) for _ in range(3)]
            proxied += 3 * (args.n + 200)
            # per round: the median of the paired differences (each proxied call minus the direct call
            # made just before it), which cancels the machine's drift better than a difference of p50s
            added = sorted(statistics.median(p - d for p, d in zip(r["proxy"], r["direct"])) for r in rounds)
            d_lat = [x for r in rounds for x in r["direct"]]
            p_lat = [x for r in rounds for x in r["proxy"]]
            results[sk] = (d_lat, p_lat, added[1])
            print(f"c=1 {sk:10s}  direct p50 {pct(d_lat, 50):6.3f}  p95 {pct(d_lat, 95):6.3f}  p99 {pct(d_lat, 99):6.3f} ms")
            print(f"c=1 {sk:10s}  proxy  p50 {pct(p_lat, 50):6.3f}  p95 {pct(p_lat, 95):6.3f}  p99 {pct(p_lat, 99):6.3f} ms"
                  f"   added (median paired difference) {added[1]:+.3f} ms (rounds: {', '.join(f'{a:+.3f}' for a in added)})")
            if stream:
                d_t = [x for r in rounds for x in r["direct_ttfb"]]
                p_t = [x for r in rounds for x in r["proxy_ttfb"]]
                print(f"c=1 stream TTFB     direct p50 {pct(d_t, 50):6.3f}  proxy p50 {pct(p_t, 50):6.3f} ms"
                      f"   added {pct(p_t, 50) - pct(d_t, 50):+.3f} ms")
        use_wrk = shutil.which("wrk") is not None
        tool = "wrk -t1" if use_wrk else "python aiohttp loop (install wrk for a client that is not the bottleneck)"
        rps = {}
        for name, url, stream in (("direct non-stream", direct, False), ("proxy  non-stream", via, False),
                                  ("direct stream", direct, True), ("proxy  stream", via, True)):
            if use_wrk:  # wrk sends no Accept-Encoding: the direct rows are identity even for the gzip upstream
                r, dist, total = wrk_load(url, body(stream), args.concurrency, args.duration, tmp)
                p50, p99 = dist.get("50", float("nan")), dist.get("99", float("nan"))
            else:
                r, lat, total = asyncio.run(python_load(url, body(stream), args.concurrency, args.duration))
                p50, p99 = pct(lat, 50), pct(lat, 99)
            if url == via:
                proxied += total
            rps[name] = r
            print(f"c={args.concurrency} {name:18s} {r:9.0f} req/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   ({tool})")

        import urllib.request

        time.sleep(1.0)  # let the calls still in flight when the load stopped finish
        with urllib.request.urlopen(f"http://127.0.0.1:{px_port}/healthz") as h:
            served = orjson.loads(h.read())["recorded"]  # calls the proxy handled (wrk's count omits in-flight ones)
        proxy.send_signal(signal.SIGINT)  # graceful stop: the ledger flushes
        proxy.wait(60)
        rows = sqlite3.connect(db).execute(
            "select count(*), count(cost_nanos), sum(status = 200), sum(status = 200 and cost_nanos > 0) from calls").fetchone()
        print(f"ledger rows written: {rows[0]} for {served} calls the proxy served (clients counted {proxied} completed; "
              f"{rows[1]} rows priced; {rows[3]} of the {rows[2]} answered calls cost more than 0: usage read from "
              f"{'decoded ' if kind == 'gzip' else ''}bytes)\n")
        out.update(added=results["non-stream"][2], added_stream=results["stream"][2], rps=rps["proxy  non-stream"],
                   rps_stream=rps["proxy  stream"], ledger_ok=rows[0] == served >= proxied, priced=rows[2] == rows[3] > 0)
        return out
    finally:
        stop(procs, 10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="requests per target per c=1 round, 3 rounds (after 200 warm-up)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per concurrency-64 run")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--router", default=None, help="the auto strategy to run the proxy with (default: the configured default)")
    ap.add_argument("--upstreams", default="plain,gzip", help="which fake upstreams to measure, in this order")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tierwise-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "TIERWISE_CONFIG")}
    try:
        if args.router:
            (tmp / "tierwise.toml").write_text(f'[routing]\nauto = "{args.router}"\n')
        print(f"tierwise proxy overhead  (python {sys.version.split()[0]}, {os.cpu_count()} cores, "
              f"auto routing ({args.router or 'default strategy'}) + SQLite ledger on; c=1: 3 interleaved rounds of {args.n} "
              "requests per target; a plain and a gzip-compressing upstream, one after the other)\n")
        runs = [run_upstream(kind.strip(), args, tmp, env) for kind in args.upstreams.split(",") if kind.strip()]
        print("targets:")
        for r in runs:
            k = r["kind"]
            print(f"  [{k:5s}] added latency p50 at c=1 (non-stream) <= 0.5 ms : {r['added']:.3f} ms  "
                  f"{'MET' if r['added'] <= 0.5 else 'MISSED'}")
            print(f"  [{k:5s}] throughput at c={args.concurrency} (non-stream) >= 2,000 req/s : {r['rps']:.0f} req/s  "
                  f"{'MET' if r['rps'] >= 2000 else 'MISSED'}")
            print(f"  [{k:5s}] ledger complete (one row per call, every answered call priced above 0): "
                  f"{'MET' if r['ledger_ok'] and r['priced'] else 'MISSED'}")
        if len(runs) == 2:
            a, b = runs
            print(f"\n{b['kind']} vs {a['kind']} through the proxy: added latency c=1 {b['added'] - a['added']:+.3f} ms "
                  f"(non-stream), {b['added_stream'] - a['added_stream']:+.3f} ms (stream); throughput c={args.concurrency} "
                  f"{b['rps'] / a['rps']:.2f}x (non-stream), {b['rps_stream'] / a['rps_stream']:.2f}x (stream)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
