"""Half-open connections (slowloris) against a real `tierwise serve`: are normal requests still served?

Starts `tierwise serve --offline` (synthetic answers, no network), measures normal requests (a new
connection each, auto routing, ledger on) on an idle proxy, then again while an attacker process
holds --conns connections open that never finish their headers (it drips a byte a second, and
reconnects whenever the proxy closes one), and prints p50/p99 for both and their ratio.

    .venv/bin/python bench/slowloris.py [--conns 3000] [--n 300] [--fd-limit 1024]

Target: with 3,000 half-open connections, normal requests served within 2x their usual p99.
--fd-limit runs the proxy under that limit on open files (the issue's 1,024: before the guard,
~1,000 half-open connections refused everyone); the proxy keeps its connection cap below it.
Wall-clock figures on a shared 2-core VM are noisy: compare the two phases of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BODY = (b'{"model":"auto","max_tokens":64,"messages":[{"role":"user","content":'
        b'"Classify the intent of this ticket: I was charged twice for order 4411."}]}')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} never opened")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def lift_fds(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


async def one_request(port: int) -> float:
    """One request on a new connection; seconds to the last byte of the answer."""
    t = time.perf_counter()
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
    writer.write(b"POST /v1/messages HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
                 b"x-api-key: bench\r\nanthropic-version: 2023-06-01\r\nconnection: close\r\n"
                 b"content-length: %d\r\n\r\n" % len(BODY) + BODY)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"not a 200: {data[:80]!r}")
    return time.perf_counter() - t


async def measure(port: int, n: int, min_seconds: float = 0.0) -> tuple[list[float], int]:
    """``n`` requests, one after another, spread over ``min_seconds`` at least."""
    lat, failed = [], 0
    gap = max(0.01, min_seconds / max(n, 1))
    for _ in range(n):
        t = time.perf_counter()
        try:
            lat.append(await one_request(port))
        except Exception:  # noqa: BLE001 - counted
            failed += 1
        await asyncio.sleep(max(0.0, gap - (time.perf_counter() - t)))
    return lat, failed


# -- the attacker (a child process) ---------------------------------------------------------
class _Loris(asyncio.Protocol):
    def __init__(self, lost: "asyncio.Queue[None]", live: set) -> None:
        self.lost, self.live = lost, live
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.live.add(self)
        transport.write(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: appl")  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.live.discard(self)
        self.lost.put_nowait(None)  # the proxy closed it: open another


async def attacker(port: int, conns: int, stats_path: str) -> None:
    """Hold ``conns`` connections that never finish their headers: a byte a second on each (one
    timer for all of them, so the attacker itself stays cheap), a new one for each the proxy closes."""
    lift_fds(conns + 256)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    lost: asyncio.Queue[None] = asyncio.Queue()
    live: set = set()
    opened = [0]

    async def open_one() -> None:
        while not stop.is_set():
            try:
                await loop.create_connection(lambda: _Loris(lost, live), "127.0.0.1", port)
                opened[0] += 1
                return
            except OSError:
                await asyncio.sleep(0.1)

    for i in range(0, conns, 200):
        await asyncio.gather(*(open_one() for _ in range(min(200, conns - i))))

    async def reopen() -> None:
        while not stop.is_set():
            await lost.get()
            await open_one()

    reopener = asyncio.create_task(reopen())
    samples = []
    while not stop.is_set():
        for c in list(live):
            if c.transport is not None and not c.transport.is_closing():
                c.transport.write(b"i")  # never the end of the headers
        samples.append(len(live))
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass
    reopener.cancel()
    Path(stats_path).write_text(f"{opened[0]} {max(samples or [0])} {sum(samples) / max(len(samples), 1):.0f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=3000)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--fd-limit", type=int, default=0, help="run the proxy with this limit on open files")
    ap.add_argument("--attack-seconds", type=float, default=25.0)
    ap.add_argument("--header-timeout", type=float, default=10.0, help="server.header_timeout of the proxy")
    ap.add_argument("--attacker", nargs=3, metavar=("PORT", "CONNS", "STATS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.attacker:
        asyncio.run(attacker(int(args.attacker[0]), int(args.attacker[1]), args.attacker[2]))
        return

    tmp = Path(tempfile.mkdtemp(prefix="tw-slowloris-"))
    (tmp / "tierwise.toml").write_text("[upstream]\nkind = \"offline\"\n[upstream.offline]\nlatency_scale = 0.0\n"
                                       "[monitor]\ninterval = 0.0\n"
                                       f"[server]\nheader_timeout = {args.header_timeout}\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "TIERWISE_CONFIG")}

    def limit() -> None:
        if args.fd_limit:
            resource.setrlimit(resource.RLIMIT_NOFILE, (args.fd_limit, args.fd_limit))

    proxy = subprocess.Popen([PY, "-m", "tierwise", "serve", "--port", str(port), "--ledger-url",
                              f"sqlite:///{tmp / 'bench.db'}", "--log-level", "error"], cwd=tmp, env=env,
                             stdout=subprocess.DEVNULL, preexec_fn=limit)
    attack = None
    try:
        wait_port(port)
        asyncio.run(measure(port, 30))  # warm up
        before, before_failed = asyncio.run(measure(port, args.n))
        stats = tmp / "attacker.txt"
        attack = subprocess.Popen([PY, __file__, "--attacker", str(port), str(args.conns), str(stats)])
        time.sleep(max(3.0, args.conns / 1000))  # let the attacker fill its connections
        # long enough for the header timeout (10 s) to close the attacker's connections twice over
        under, under_failed = asyncio.run(measure(port, args.n, min_seconds=args.attack_seconds))
        attack.send_signal(signal.SIGTERM)
        attack.wait(30)
        opened, held_max, held_avg = stats.read_text().split()
        time.sleep(2)
        after, after_failed = asyncio.run(measure(port, args.n))
    finally:
        for p in (attack, proxy):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    fd = f"fd limit {args.fd_limit}" if args.fd_limit else f"fd limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}"
    print(f"tierwise serve --offline, {fd}, {os.cpu_count()} cores; {args.n} requests per phase, new connection each\n")
    print(f"{'phase':<34}{'ok':>6}{'failed':>8}{'p50 ms':>9}{'p99 ms':>9}")
    for name, lat, failed in (("idle proxy (before)", before, before_failed),
                              (f"{args.conns} half-open connections", under, under_failed),
                              ("idle proxy (after)", after, after_failed)):
        print(f"{name:<34}{len(lat):>6}{failed:>8}{pct(lat, 50) * 1000:>9.2f}{pct(lat, 99) * 1000:>9.2f}")
    print(f"\nattacker: {opened} connections opened in all (it reconnects after each close: the header timeout "
          f"closes each after {args.header_timeout:g} s), held at once: max {held_max}, mean {held_avg}")
    usual = min(pct(before, 99), pct(after, 99)) if before and after else 0.0  # the better idle p99: the stricter test
    ratio = pct(under, 99) / usual if usual and under else float("inf")
    ok = under_failed == 0 and ratio <= 2.0
    print(f"p99 under attack / usual p99 (the lower idle one): {ratio:.2f}x  (target <= 2x, no failures): "
          f"{'MET' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
