"""Where a failed request failed, for bench/fault_stores.py: the client's view (connect refused, a
reset on a new or a reused keep-alive connection, an error answer), the proxies' listen queues and the
kernel's listen overflows, and the connection guard's own counts (from the proxies' logs)."""

from __future__ import annotations

import asyncio
import collections
import subprocess
import threading
from pathlib import Path

import aiohttp
import orjson

__all__ = ["ListenWatch", "causes", "client_cause", "error_cause", "guard_totals", "trace"]


def trace() -> aiohttp.TraceConfig:
    """Marks each request's connection as new or reused (a keep-alive connection), for the failure causes."""
    tc = aiohttp.TraceConfig()

    async def new(_s, ctx, _p) -> None:
        if isinstance(ctx.trace_request_ctx, dict):
            ctx.trace_request_ctx["conn"] = "new"

    async def reused(_s, ctx, _p) -> None:
        if isinstance(ctx.trace_request_ctx, dict):
            ctx.trace_request_ctx["conn"] = "reused"

    tc.on_connection_create_end.append(new)
    tc.on_connection_reuseconn.append(reused)
    return tc


def client_cause(exc: BaseException, conn: str | None) -> str:
    """Where a request without an answer failed, from the client's side."""
    if isinstance(exc, asyncio.TimeoutError):
        return "client: timed out waiting for the answer"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"client: connect failed ({exc.os_error.__class__.__name__}: the listener refused or dropped it)"
    what = "reset" if "reset" in str(exc).lower() else "closed"
    where = {"reused": "a reused keep-alive connection", "new": "a new connection"}.get(conn or "", "a connection")
    return f"client: {what} by the proxy on {where} ({type(exc).__name__})"


def error_cause(status: int, raw: bytes) -> str:
    try:
        err = orjson.loads(raw)["error"]
        msg = " ".join(str(err.get("message", "")).split()[:6])
        return f"{status} {err.get('type')}: {msg}"
    except Exception:  # noqa: BLE001
        return f"{status} (not Anthropic's error JSON): {raw[:60]!r}"


class ListenWatch:
    """Samples the accept queues of the proxies' listeners (``ss -lnt``: Recv-Q is the queue, Send-Q its
    backlog) and the kernel's listen-overflow counters (machine-wide: other processes count too)."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.peak: dict[int, int] = dict.fromkeys(ports, 0)
        self.backlog: dict[int, int] = {}
        self._stop = threading.Event()
        self._before = self.overflows()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def overflows() -> int:
        try:
            out = subprocess.run(["nstat", "-asz", "TcpExtListenOverflows"], capture_output=True, text=True).stdout
            return sum(int(line.split()[1]) for line in out.splitlines() if line.startswith("TcpExtListenOverflows"))
        except (FileNotFoundError, ValueError, IndexError):
            return -1

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                out = subprocess.run(["ss", "-lntH"], capture_output=True, text=True).stdout
            except FileNotFoundError:
                return
            for line in out.splitlines():
                f = line.split()
                if len(f) >= 4 and ":" in f[3]:
                    port = int(f[3].rsplit(":", 1)[1])
                    if port in self.peak:
                        self.peak[port] = max(self.peak[port], int(f[1]))
                        self.backlog[port] = int(f[2])

    def stop(self) -> str:
        self._stop.set()
        self._thread.join()
        after = self.overflows()
        queues = ", ".join(f"{self.peak[p]} of {self.backlog.get(p, '?')}" for p in self.ports)
        grown = after - self._before if after >= 0 and self._before >= 0 else "n/a"
        return f"accept queue peak {queues} (Recv-Q of backlog); kernel listen overflows meanwhile (whole machine): {grown}"


def guard_totals(logs: list[Path]) -> str:
    """The connection guard's last (cumulative) totals line in each proxy log, summed."""
    got: collections.Counter[str] = collections.Counter()
    for path in logs:
        last = [line for line in path.read_text(errors="replace").splitlines() if "connection guard totals" in line][-1:]
        for line in last:
            for part in line.split("):", 1)[-1].split(","):
                k, _, v = part.strip().rpartition(" ")
                if k and v.isdigit():
                    got[k] += int(v)
    return ", ".join(f"{k} {v}" for k, v in sorted(got.items())) or "none logged (no eviction, refusal or timeout)"


def causes(results: list) -> str:
    c = collections.Counter(r[5] for r in results if r[2] != "ok" and len(r) > 5)
    return "; ".join(f"{n} x {k}" for k, n in c.most_common()) or "none"


