"""Store faults through real proxy processes: the ledger database refusing connections for 30 s, the
disk under a SQLite ledger filling up, SIGKILL cycles with streams, Redis killed and unreachable, two
replicas at concurrency 400 with keys, a budget race whose real usage beats the body's size.

Nothing shared is stopped: PostgreSQL and Redis are reached through a TCP gate this script shuts
and opens (``tests/tcp_gate.py``); "unreachable" Redis is a listener that accepts and never answers;
the full disk is a small tmpfs mounted here (root or passwordless sudo; else that scenario is skipped,
saying so). Every figure printed is measured in this run; the exit status is 1 when a target is missed.

    .venv/bin/python bench/fault_stores.py            # everything, full size (about 6 minutes)
    .venv/bin/python bench/fault_stores.py --ci       # scaled down for CI (about 4-5 minutes on the shared machine)
    .venv/bin/python bench/fault_stores.py --only db-outage,redis
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as _dt
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp
import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/tcp_gate.py
from fault_causes import ListenWatch, causes, client_cause, error_cause, guard_totals, trace
from fault_soak import classify, free_port

from tests.tcp_gate import TcpGate
from tierwise.resilience.stores import COLD_SILENCE, SILENCE, WARM
from tierwise.upstream.fakeserver import FakeAnthropic

PG = os.environ.get("TIERWISE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("TIERWISE_TEST_REDIS", "redis://127.0.0.1:6379/15")
ENV = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "TIERWISE_CONFIG")}
FAILED: list[str] = []
LOST: collections.Counter[str] = collections.Counter()  # client-side exceptions, by type


def check(ok: bool, what: str) -> str:
    if not ok:
        FAILED.append(what)
    return "OK" if ok else "MISSED"


# -- processes -------------------------------------------------------------------------
class Proxy:
    def __init__(self, tmp: Path, ledger_url: str, upstream_url: str, toml: str = "", env: dict[str, str] | None = None,
                 name: str = "proxy", log_level: str = "warning") -> None:
        self.port = free_port()
        cfg = tmp / f"{name}.toml"
        cfg.write_text("[ledger]\nflush_interval = 0.05\n" + toml)
        self.log = tmp / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tierwise", "serve", "--port", str(self.port), "--upstream-url", upstream_url,
             "--ledger-url", ledger_url, "--config", str(cfg), "--log-level", log_level],
            env=dict(ENV, **(env or {})), cwd=tmp, stdout=subprocess.DEVNULL, stderr=open(self.log, "a"))
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"proxy did not start; see {self.log}:\n{self.log.read_text()[-2000:]}") from None
                time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Blackhole:
    """Accepts connections and never answers: a Redis that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(c)

    def close(self) -> None:
        self.sock.close()
        for c in self.held:
            c.close()


@contextlib.contextmanager
def pg_schema():
    schema = "fs_" + uuid.uuid4().hex[:8]
    eng = sa.create_engine(PG)
    with eng.begin() as c:
        c.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG else "?"
    try:
        yield f"{PG}{sep}options=-csearch_path%3D{schema}"
    finally:
        with eng.begin() as c:
            c.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        eng.dispose()


def gated(url: str, gate: TcpGate) -> str:
    return url.replace("127.0.0.1:5432", f"127.0.0.1:{gate.port}")


def ledger_ids(url: str) -> list[str]:
    eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with eng.connect() as c:
            return [r[0] for r in c.execute(sa.text("SELECT request_id FROM calls"))]
    except sa.exc.OperationalError:
        return []
    finally:
        eng.dispose()


def make_key(url: str, **kw) -> tuple[str, str]:
    from tierwise.admission.keys import KeyStore
    from tierwise.ledger import Ledger

    led = Ledger(url, journal="off")
    try:
        rec, key = KeyStore(led.engine).create("bench", **kw)
    finally:
        led.close()
    return rec.id, key


# -- load ------------------------------------------------------------------------------
def body(i: int, rng: random.Random, stream_share: float = 0.5) -> tuple[bytes, bool]:
    stream = rng.random() < stream_share
    return orjson.dumps({"model": "claude-haiku-5-5", "max_tokens": 32, "stream": stream,
                         "messages": [{"role": "user", "content": f"request {i}: where is my parcel?"}]}), stream


async def one(session: aiohttp.ClientSession, url: str, i: int, rng: random.Random, key: str, out: list) -> None:
    data, stream = body(i, rng)
    t0 = time.perf_counter()
    ctx: dict = {}
    try:
        async with session.post(url + "/v1/messages", data=data, trace_request_ctx=ctx, headers={
                "x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json"}) as r:
            raw = await r.read()
            kind = classify(r.status, raw, stream)
            out.append((r.status, r.headers.get("x-tierwise-request-id"), kind, time.perf_counter() - t0, t0,
                        None if kind == "ok" else error_cause(r.status, raw)))
    except Exception as exc:  # noqa: BLE001
        cause = client_cause(exc, ctx.get("conn"))
        out.append((0, None, "lost", time.perf_counter() - t0, t0, cause))
        LOST[cause] += 1


async def paced(urls: list[str], rate: float, seconds: float, key: str = "sk-bench", events=(), seed: int = 1) -> list:
    """``rate`` requests per second for ``seconds`` (spread over ``urls``); ``events``: (at, fn) run on schedule."""
    rng = random.Random(seed)
    out: list = []
    pending = sorted(events)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000), trace_configs=[trace()],
                                     timeout=aiohttp.ClientTimeout(total=120)) as s:
        tasks = []
        t0 = time.monotonic()
        n = int(rate * seconds)
        for i in range(n):
            at = t0 + i / rate
            while pending and time.monotonic() - t0 >= pending[0][0]:
                await asyncio.to_thread(pending.pop(0)[1])
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(s, urls[i % len(urls)], i, rng, key, out)))
        for _, fn in pending:
            await asyncio.to_thread(fn)
        await asyncio.gather(*tasks)
    return out


async def closed_loop(urls: list[str], total: int, concurrency: int, key: str) -> list:
    rng = random.Random(3)
    out: list = []
    counter = iter(range(total))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), trace_configs=[trace()],
                                     timeout=aiohttp.ClientTimeout(total=120)) as s:
        async def worker(w: int) -> None:
            for i in counter:
                await one(s, urls[(i + w) % len(urls)], i, rng, key, out)

        await asyncio.gather(*[worker(w) for w in range(concurrency)])
    return out


def wait_rows(url: str, want: set[str], timeout: float = 90) -> list[str]:
    end = time.monotonic() + timeout
    while True:
        ids = ledger_ids(url)
        if want <= set(ids) or time.monotonic() > end:
            return ids
        time.sleep(0.5)


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else 0.0


def report_rows(label: str, results: list, ids: list[str]) -> None:
    answered = {rid for st, rid, kind, *_ in results if kind == "ok" and rid}
    errors = sum(1 for st, _, kind, *_ in results if kind != "ok")
    have = set(ids)
    missing = len(answered - have)
    dups = len(ids) - len(have)
    print(f"  requests {len(results):,}   answered {len(answered):,}   client errors {errors:,}   "
          f"statuses {sorted({r[0] for r in results})}" + (f"   client-side exceptions {dict(LOST)}" if LOST else ""))
    LOST.clear()
    print(f"  answered calls without a row: {missing}   ({check(missing == 0, label + ': rows missing')})   "
          f"duplicate rows: {dups}   ({check(dups == 0, label + ': duplicates')})")
    return errors


# -- scenarios -------------------------------------------------------------------------
def db_outage(tmp: Path, fake: FakeAnthropic, ci: bool) -> None:
    variants = ["fail_open"] if ci else ["off", "fail_open"]
    for budgets in variants:
        pre, down, post, rate = 5.0, 30.0, 10.0, 100.0
        print(f"\n[db-outage] PostgreSQL refuses connections for {down:.0f} s at {rate:.0f} req/s "
              f"(budgets {budgets}, half the calls streamed)")
        with pg_schema() as url, TcpGate("127.0.0.1", 5432) as gate:
            toml = ("[budgets]\ndaily_usd = 1000.0\nstore = \"database\"\non_store_error = \"fail_open\"\n"
                    if budgets == "fail_open" else "")
            proxy = Proxy(tmp, gated(url, gate), fake.url, toml, name=f"db-{budgets}")
            res = asyncio.run(paced([proxy.url], rate, pre + down + post,
                                    events=[(pre, gate.shut), (pre + down, gate.open)]))
            answered = {rid for _, rid, kind, *_ in res if kind == "ok"}
            ids = wait_rows(url, answered)
            proxy.stop()
            ids = ledger_ids(url)
            errors = report_rows("db-outage", res, ids)
            print(f"  client errors with budgets {budgets}: {errors}   ({check(errors == 0, 'db-outage: client errors')})")


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    for cmd in (["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                ["sudo", "-n", "mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]):
        try:
            if subprocess.run(cmd, capture_output=True).returncode == 0:
                return True
        except FileNotFoundError:
            continue
    return False


def _umount(path: Path) -> None:
    for cmd in (["umount", str(path)], ["sudo", "-n", "umount", str(path)]):
        try:
            if subprocess.run(cmd, capture_output=True).returncode == 0:
                return
        except FileNotFoundError:
            continue


def disk_full(tmp: Path, fake: FakeAnthropic, ci: bool) -> None:
    disk = tmp / "disk"
    print("\n[disk-full] SQLite ledger and its journal on a 16 MiB tmpfs, filled mid-load for 10 s, at 100 req/s")
    if not _mount_tmpfs(disk, "16m"):
        print("  SKIPPED: cannot mount a tmpfs here (needs root or passwordless sudo)")
        return
    filler = disk / "filler"

    def fill() -> None:
        chunk = b"\0" * 65536
        with open(filler, "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(chunk)
            except OSError:
                pass
        fd = os.open(filler, os.O_WRONLY | os.O_APPEND)
        try:  # the last bytes too
            while True:
                os.write(fd, b"\0" * 512)
        except OSError:
            pass
        os.close(fd)

    def free() -> None:
        filler.unlink()

    try:
        for cap in (0, 200):  # the default cap on rows held in memory only (100,000), then a small one that is hit
            url = f"sqlite:///{disk / f'ledger{cap}.db'}"
            if cap:
                print(f"  again with ledger.max_unjournaled_rows = {cap} (reached during the fill):")
            calls_before = len(fake.requests)
            proxy = Proxy(tmp, url, fake.url, f"max_unjournaled_rows = {cap}\n" if cap else "", name=f"disk{cap}")
            res = asyncio.run(paced([proxy.url], 100.0, 25.0, events=[(5.0, fill), (15.0, free)]))
            upstream_calls = len(fake.requests) - calls_before
            answered = {rid for _, rid, kind, *_ in res if kind == "ok"}
            wait_rows(url, answered, 60)
            log = proxy.log.read_text()
            proxy.stop()
            ids = ledger_ids(url)
            refused = sum(1 for r in res if r[0] == 529 and "ledger cannot keep" in (r[5] or ""))
            errors = sum(1 for r in res if r[2] != "ok") - refused
            print(f"  paid calls answered with an error: {errors}   ({check(errors == 0, 'disk-full: error answers')})   "
                  f"'UNWRITABLE'/'UNAVAILABLE' logged: {'JOURNAL UNWRITABLE' in log or 'DATABASE UNAVAILABLE' in log}"
                  + (f"   'MEMORY CAP REACHED' logged: {'MEMORY CAP REACHED' in log}" if cap else ""))
            if cap:
                print(f"  refused with 529 before any upstream call (the cap): {refused}   upstream calls {upstream_calls:,} "
                      f"= answered {len(answered):,}: {upstream_calls == len(answered)}   "
                      f"({check(upstream_calls == len(answered), 'disk-full cap: a refused call reached the upstream')})")
            report_rows("disk-full", [r for r in res if not (r[0] == 529 and "ledger cannot keep" in (r[5] or ""))], ids)
            filler.unlink(missing_ok=True)
    finally:
        _umount(disk)


async def _streams_until_killed(url: str, stop: asyncio.Event, answered: list[str]) -> None:
    rng = random.Random()

    async def client(s: aiohttp.ClientSession) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            data, stream = body(i, rng, stream_share=0.8)
            try:
                async with s.post(url + "/v1/messages", data=data, headers={
                        "x-api-key": "sk-bench", "anthropic-version": "2023-06-01", "content-type": "application/json"}) as r:
                    raw = await r.read()
                    if classify(r.status, raw, stream) == "ok":
                        answered.append(r.headers["x-tierwise-request-id"])
            except Exception:  # noqa: BLE001 - the proxy was killed under us
                await asyncio.sleep(0.01)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        await asyncio.gather(*[client(s) for _ in range(8)])


def sigkill(tmp: Path, fake: FakeAnthropic, ci: bool) -> None:
    cycles = 5 if ci else 20
    for backend in ("sqlite", "postgresql"):
        print(f"\n[sigkill] {cycles} SIGKILL cycles under load, 80% streams, ledger on {backend}")
        with contextlib.ExitStack() as stack:
            url = f"sqlite:///{tmp / 'kill.db'}" if backend == "sqlite" else stack.enter_context(pg_schema())
            answered: list[str] = []
            for _cycle in range(cycles):
                proxy = Proxy(tmp, url, fake.url, name=f"kill-{backend}")

                async def run() -> None:
                    stop = asyncio.Event()
                    task = asyncio.create_task(_streams_until_killed(proxy.url, stop, answered))
                    await asyncio.sleep(random.uniform(0.5, 1.5))
                    proxy.proc.send_signal(signal.SIGKILL)
                    proxy.proc.wait()
                    stop.set()
                    await task

                asyncio.run(run())
            final = Proxy(tmp, url, fake.url, name=f"kill-{backend}")  # adopts the journal of the last one
            final.stop()
            ids = ledger_ids(url)
            have = set(ids)
            missing = len(set(answered) - have)
            print(f"  answered {len(answered):,}   rows {len(ids):,}   answered without a row: {missing}   "
                  f"({check(missing == 0, f'sigkill {backend}: rows missing')})   duplicates: {len(ids) - len(have)}   "
                  f"({check(len(ids) == len(have), f'sigkill {backend}: duplicates')})")


def _added(res: list, base_ms: float, t_from: float, t_to: float) -> tuple[list[float], int]:
    """Added latency (ms over the reachable p50) of the answered calls started in [t_from, t_to) of a run."""
    start = min(r[4] for r in res)
    sel = [r for r in res if t_from <= r[4] - start < t_to]
    return [r[3] * 1000 - base_ms for r in sel if r[2] == "ok"], sum(1 for r in sel if r[2] != "ok")


def redis_faults(tmp: Path, fake: FakeAnthropic, ci: bool) -> None:
    host, port = REDIS.split("//")[1].split("/")[0].split(":")
    rate, secs = 25.0, (6.0 if ci else 10.0)  # below saturation: the latencies compare the stores, not a queue
    toml = ("[resilience]\nredis_url = \"{url}\"\n"
            "[budgets]\ndaily_usd = 1000.0\non_store_error = \"fail_open\"\n")
    env = {"ANTHROPIC_API_KEY": "sk-bench-upstream"}
    with pg_schema() as url:
        _, key = make_key(url, rpm=1_000_000, budget_usd=1000)
        print(f"\n[redis] keys with rpm and budget, breaker + rate limits + budgets on Redis (budgets fail_open), "
              f"{rate:.0f} req/s; load average {os.getloadavg()[0]:.1f}")
        with TcpGate(host, int(port)) as gate:
            proxy = Proxy(tmp, url, fake.url, toml.format(url=f"redis://127.0.0.1:{gate.port}/15"), env, name="redis-up")
            base = asyncio.run(paced([proxy.url], rate, secs, key=key))
            killed = asyncio.run(paced([proxy.url], rate, 3 * secs, key=key,
                                       events=[(secs, gate.shut), (2 * secs, gate.open)]))
            hung = asyncio.run(paced([proxy.url], rate, 3 * secs, key=key,
                                     events=[(secs, gate.hang), (2 * secs, gate.unhang)]))
            proxy.stop()
            log = proxy.log.read_text(errors="replace")
        hole = Blackhole()
        try:
            proxy = Proxy(tmp, url, fake.url, toml.format(url=f"redis://127.0.0.1:{hole.port}/15"), env, name="redis-hole")
            cold = asyncio.run(paced([proxy.url], rate, 2 * secs, key=key))
            proxy.stop()
        finally:
            hole.close()
    for label, res in (("redis reachable", base), ("redis killed mid-run (refused for a third)", killed),
                       ("redis hung mid-run (accepts, never answers, for a third)", hung),
                       ("redis unreachable from the start (accepts, never answers)", cold)):
        s5 = sum(1 for r in res if r[0] >= 500 or r[0] == 0)
        lat = [r[3] * 1000 for r in res if r[2] == "ok"]
        print(f"  {label}: {len(res):,} requests, 5xx/lost {s5}   ({check(s5 == 0, 'redis: 5xx ' + label)})   "
              f"latency p50 {pct(lat, 50):.1f} ms  p99 {pct(lat, 99):.1f} ms  max {max(lat, default=0):.0f} ms")
    b50 = pct([r[3] * 1000 for r in base if r[2] == "ok"], 50)
    for label, res in (("killed", killed), ("hung", hung)):
        first, bad1 = _added(res, b50, secs - 0.5, secs + 1.0)  # in flight when it stopped, and the next second
        whole, bad2 = _added(res, b50, secs, 2 * secs)
        mean1 = sum(first) / max(1, len(first))
        mean2 = sum(whole) / max(1, len(whole))
        ok = mean1 <= 50 and mean2 <= 50 and not (bad1 or bad2)
        print(f"  added latency per request, redis {label} (vs the reachable p50 {b50:.1f} ms): the calls in flight when "
              f"it stopped and the next second: {len(first)} calls, mean {mean1:+.1f} ms, max {max(first, default=0):+.0f} ms; "
              f"the whole outage: {len(whole)} calls, mean {mean2:+.1f} ms, p99 {pct(whole, 99):+.1f} ms   "
              f"({check(ok, f'redis {label}: added latency')}: target <= 50 ms)")
    opened = collections.Counter(line.split("redis UNAVAILABLE (", 1)[1].split(":", 1)[0]
                                 for line in log.splitlines() if "redis UNAVAILABLE (" in line)
    slowest = max((float(line.split("mean answer: ", 1)[1].split(" ms", 1)[0]) for line in log.splitlines()
                   if "mean answer: " in line), default=0.0)
    print(f"  the Redis circuit opened {sum(opened.values())} times over the three runs: "
          + ", ".join(f"{n} x {k}" for k, n in opened.most_common())
          + (f" (StoreSilent: no answer to any call for two windows of {SILENCE * 1000:.0f} ms or 4x the recent mean answer (at most "
             f"{slowest:.1f} ms here); on a loaded machine some are false alarms, each ended by the probe at Redis's next answer)"
             if opened.get("StoreSilent") else ""))
    cl, badc = _added(cold, b50, 0, 2 * secs)
    c1, _ = _added(cold, b50, 0, 1.0)
    meanc = sum(cl) / max(1, len(cl))
    print(f"  added latency per request, redis unreachable from the start (never seen answering; before {WARM} answers its pace is unknown: "
          f"the calls waiting when two cold silence windows of {COLD_SILENCE * 1000:.0f} ms pass fail together): the whole run: {len(cl)} "
          f"calls, mean {meanc:+.1f} ms, max {max(cl, default=0):+.0f} ms, {sum(1 for x in cl if x > 100)} over +100 ms; "
          f"the first second: {len(c1)} calls, mean {sum(c1) / max(1, len(c1)):+.1f} ms   "
          f"({check(meanc <= 50 and not badc, 'redis unreachable from the start: added latency')}: target <= 50 ms)")


def replicas(tmp: Path, fake: FakeAnthropic, ci: bool) -> None:
    import redis

    total = 4_000 if ci else 10_000
    print(f"\n[replicas] two proxies, one PostgreSQL ledger and one Redis, keys with rpm and budget, "
          f"{total:,} requests at concurrency 400")
    env = {"ANTHROPIC_API_KEY": "sk-bench-upstream"}
    prefix = f"twb{uuid.uuid4().hex[:6]}"
    with pg_schema() as url:
        kid, key = make_key(url, rpm=1_000_000, budget_usd=10_000)
        toml = f"[resilience]\nredis_url = \"{REDIS}\"\n[budgets]\ndaily_usd = 10000.0\n"
        # at info: the connection guard's totals include the idle keep-alive connections it closed
        procs = [Proxy(tmp, url, fake.url, toml, env, name=f"replica{i}", log_level="info") for i in range(2)]
        watch = ListenWatch([p.port for p in procs])
        t0 = time.perf_counter()
        res = asyncio.run(closed_loop([p.url for p in procs], total, 400, key))
        elapsed = time.perf_counter() - t0
        queues = watch.stop()
        time.sleep(10.5)  # the guard logs its totals at most every 10 s: let the last line out
        for p in procs:
            p.stop()
        r = redis.Redis.from_url(REDIS)
        day = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d")
        reserved = [int(r.hget(f"tierwise:budget:{s}:{day}", "reserved") or 0) for s in (f"key:{kid}",)]
        r.close()
        ids = ledger_ids(url)
    s5 = sum(1 for x in res if x[0] >= 500 or x[0] == 0)
    codes = sorted({x[0] for x in res})
    LOST.clear()
    print(f"  {len(res):,} requests in {elapsed:.1f}s ({len(res) / elapsed:,.0f} req/s), statuses {codes}, "
          f"5xx/lost {s5}   ({check(s5 == 0, 'replicas: 5xx')});  load average {os.getloadavg()[0]:.1f}")
    print(f"  failures by cause: {causes(res)}")
    print(f"  listeners: {queues}")
    print(f"  connection guard (both replicas): {guard_totals([p.log for p in procs])}")
    answered = sum(1 for x in res if x[2] == "ok")
    print(f"  unsettled budget reservations after the run (key scope): {reserved[0]}   "
          f"({check(reserved[0] == 0, 'replicas: unsettled')})   ledger rows {len(ids):,} for {answered:,} answered "
          f"of {len(res):,}   ({check(len(ids) >= answered, 'replicas: rows')})")
    del prefix


class _BigUsage(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        b = orjson.dumps({"id": "msg_big", "type": "message", "role": "assistant", "model": "claude-haiku-5-5",
                          "content": [{"type": "text", "text": "summary"}], "stop_reason": "end_turn",
                          "stop_sequence": None, "usage": {"input_tokens": 300_000, "output_tokens": 40}})
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def log_message(self, *a):
        pass


def budget_race(tmp: Path, fake: FakeAnthropic, ci: bool) -> None:
    limit = 1.0
    print(f"\n[budget] 50 concurrent requests with a document by file_id (billed 300k input tokens each, "
          f"~$0.15), daily budget ${limit:.2f}")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _BigUsage)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"sqlite:///{tmp / 'budget.db'}"
        proxy = Proxy(tmp, url, f"http://127.0.0.1:{srv.server_port}", f"[budgets]\ndaily_usd = {limit}\n",
                      {"ANTHROPIC_API_KEY": "sk-bench-upstream"}, name="budget")
        doc = orjson.dumps({"model": "claude-haiku-5-5", "max_tokens": 50, "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "file", "file_id": "file_011abc"}},
            {"type": "text", "text": "Summarise the contract."}]}]})

        async def run() -> list[int]:
            async with aiohttp.ClientSession() as s:
                async def post() -> int:
                    async with s.post(proxy.url + "/v1/messages", data=doc, headers={
                            "x-api-key": "sk-c", "anthropic-version": "2023-06-01", "content-type": "application/json"}) as r:
                        await r.read()
                        return r.status
                return await asyncio.gather(*[post() for _ in range(50)])

        codes = asyncio.run(run())
        proxy.stop()
        eng = sa.create_engine(url)
        with eng.connect() as c:
            spent, largest = c.execute(sa.text("SELECT coalesce(sum(cost_nanos),0), coalesce(max(cost_nanos),0) FROM calls")).one()
        eng.dispose()
    finally:
        srv.shutdown()
    ok = int(spent) <= limit * 1e9 + int(largest)
    print(f"  admitted {codes.count(200)} of 50 (others {sorted(set(codes) - {200})}), spend ${int(spent) / 1e9:.4f}, "
          f"limit ${limit:.2f}, largest single call ${int(largest) / 1e9:.4f}   "
          f"({check(ok, 'budget: overshoot')}: spend <= limit + largest call)")


SCENARIOS = {"db-outage": db_outage, "disk-full": disk_full, "sigkill": sigkill, "redis": redis_faults,
             "replicas": replicas, "budget": budget_race}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ci", action="store_true", help="scaled-down load for CI")
    ap.add_argument("--only", default="", help=f"comma-separated: {', '.join(SCENARIOS)}")
    args = ap.parse_args()
    chosen = [s for s in args.only.split(",") if s] or list(SCENARIOS)
    import logging

    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # the fake's writes to a killed proxy
    tmp = Path(tempfile.mkdtemp(prefix="tierwise-stores-"))
    t0 = time.perf_counter()
    with FakeAnthropic(latency_scale=0.0) as fake:
        for name in chosen:
            SCENARIOS[name](tmp, fake, args.ci)
    print(f"\n{len(chosen)} scenarios in {time.perf_counter() - t0:.0f}s; logs in {tmp}")
    if FAILED:
        print("targets missed: " + "; ".join(FAILED))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
