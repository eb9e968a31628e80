"""Does shadow sampling add latency to the client's call? Shadow off vs shadow on at 10%, same run.

Starts the fast fake upstream (bench/fast_upstream.py) and two real `tierwise serve` processes in
front of it, identical but for ``[shadow]``: one off, one with ``sample = auto = 0.1`` (its shadow
calls and judge calls go to the same fake upstream, off the request path, through the bounded
queue). Then, at concurrency 1, it interleaves direct / shadow-off / shadow-on requests (3 rounds)
so all three see the same machine conditions, and prints for each round the median paired
difference (each proxied call minus the direct call made just before it).

    .venv/bin/python bench/shadow_overhead.py [--n 2000] [--share 0.1]

Target: the added p50 with shadow on is within the noise of shadow off: the difference between the
two (median over rounds) is no larger than the round-to-round spread of the shadow-off figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_overhead import HEADERS, PY, ROOT, body, free_port, pct, stop, wait_port


async def rounds3(urls: dict[str, str], payload: bytes, n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in urls}
    sessions = {k: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) for k in urls}
    try:
        keys = list(urls)
        for i in range(n + 200):
            # direct first (the pairing reference), then the two proxies in alternating order (no position bias)
            for k in (keys if i % 2 == 0 else [keys[0], keys[2], keys[1]]):
                url = urls[k]
                t0 = time.perf_counter()
                async with sessions[k].post(url, data=payload, headers=HEADERS) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{k}: HTTP {r.status}: {await r.text()}")
                if i >= 200:
                    out[k].append((time.perf_counter() - t0) * 1000)
    finally:
        for s in sessions.values():
            await s.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="requests per target per round, 3 rounds (after 200 warm-up)")
    ap.add_argument("--share", type=float, default=0.1, help="shadow share of live calls on the shadow-on proxy")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tierwise-shadow-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "TIERWISE_CONFIG")}
    up = free_port()
    procs: list[subprocess.Popen] = []
    try:
        procs.append(subprocess.Popen([PY, str(ROOT / "bench" / "fast_upstream.py"), str(up)], stdout=subprocess.DEVNULL))
        wait_port(up)
        ports, dbs = {}, {}
        for name, shadow in (("off", ""), ("on", f"[shadow]\nenabled = true\nsample = {args.share}\nauto = {args.share}\n"
                                                  "daily_usd = 1000.0\n")):
            d = tmp / name
            d.mkdir()
            (d / "tierwise.toml").write_text(shadow)
            ports[name] = free_port()
            dbs[name] = d / "bench.db"
            procs.append(subprocess.Popen([PY, "-m", "tierwise", "serve", "--port", str(ports[name]), "--upstream-url",
                                           f"http://127.0.0.1:{up}", "--ledger-url", f"sqlite:///{dbs[name]}",
                                           "--log-level", "warning"], cwd=d, env=env, stdout=subprocess.DEVNULL))
            wait_port(ports[name])
        urls = {"direct": f"http://127.0.0.1:{up}/v1/messages", "off": f"http://127.0.0.1:{ports['off']}/v1/messages",
                "on": f"http://127.0.0.1:{ports['on']}/v1/messages"}
        print(f"shadow sampling overhead (python {sys.version.split()[0]}, {os.cpu_count()} cores; auto routing + SQLite "
              f"ledger; c=1, 3 interleaved rounds of {args.n} requests per target; shadow share {args.share:.0%})\n")
        added_off, added_on, diff = [], [], []
        for r in range(3):
            res = asyncio.run(rounds3(urls, body(False), args.n))
            a_off = statistics.median(p - d for p, d in zip(res["off"], res["direct"]))
            a_on = statistics.median(p - d for p, d in zip(res["on"], res["direct"]))
            added_off.append(a_off)
            added_on.append(a_on)
            diff.append(statistics.median(o - f for o, f in zip(res["on"], res["off"])))
            print(f"round {r + 1}: added p50 (paired) shadow off {a_off:+.3f} ms, shadow on {a_on:+.3f} ms; "
                  f"on - off {diff[-1]:+.3f} ms   (p50 direct {pct(res['direct'], 50):.3f}, off {pct(res['off'], 50):.3f}, "
                  f"on {pct(res['on'], 50):.3f} ms)")
        for p in procs[1:]:
            p.send_signal(signal.SIGINT)
        for p in procs[1:]:
            p.wait(60)
        con = sqlite3.connect(dbs["on"])
        pairs = con.execute("select count(*), sum(status = 'graded') from shadow_pairs").fetchone()
        calls = con.execute("select count(*) from calls").fetchone()[0]
        noise = max(added_off) - min(added_off)
        d = statistics.median(diff)
        print(f"\nshadow-on proxy: {calls} live calls, {pairs[0]} shadow pairs recorded ({pairs[1] or 0} graded)")
        print(f"noise (round-to-round spread of shadow-off added p50): {noise:.3f} ms")
        print(f"target: shadow on adds no measurable p50 latency: median(on - off) {d:+.3f} ms "
              f"{'<=' if abs(d) <= noise else '>'} noise {noise:.3f} ms  {'MET' if abs(d) <= noise else 'MISSED'}")
    finally:
        stop(procs, 10)


if __name__ == "__main__":
    main()
