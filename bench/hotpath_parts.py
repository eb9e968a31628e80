"""Where tierwise's own time per request goes, without the server or the HTTP client: the proxy's ASGI
app called in-process with a stub upstream that answers at once (the canned answers of
bench/fast_upstream.py), ``--n`` requests one after another, then the cost per request and, with
``--profile``, the functions that take it (cProfile: inflated, read for shares, not for microseconds).

    .venv/bin/python bench/hotpath_parts.py [--router learned] [--model auto] [--stream] [--no-ledger] [--profile 40]

``--callgrind`` runs the same under valgrind's callgrind with counting on only around the ``--n``
measured requests (the ledger writer thread included): a deterministic count of instructions per
request of tierwise's own work, to set beside bench/hotpath_instructions.py (which adds uvicorn and
the upstream client).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fast_upstream import MESSAGE, SSE
from proxy_overhead import HEADERS, body


class StubUpstream:
    """Answers every call at once with the canned Message (or SSE stream), as the fast fake does."""

    name = "anthropic"

    async def send(self, path: str, data: bytes, *, headers: Any, stream: bool, model: str | None = None) -> Any:
        from tierwise.upstream.base import UpstreamResponse

        hdrs = {"content-type": "application/json", "request-id": "req_bench"}
        if not stream:
            return UpstreamResponse(200, hdrs, body=MESSAGE, upstream=self.name)

        async def chunks() -> Any:
            yield SSE

        return UpstreamResponse(200, dict(hdrs, **{"content-type": "text/event-stream"}), chunks=chunks(), upstream=self.name)

    async def aclose(self) -> None:
        pass


async def drive(app: Any, payload: bytes, n: int) -> None:
    headers = [(k.encode(), v.encode()) for k, v in HEADERS.items()] + [(b"content-length", str(len(payload)).encode())]
    never = asyncio.Event()

    for _ in range(n):
        sent = [False]

        async def receive() -> dict[str, Any]:
            if not sent[0]:
                sent[0] = True
                return {"type": "http.request", "body": payload, "more_body": False}
            await never.wait()
            return {"type": "http.disconnect"}

        status = [0]

        async def send(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]

        scope = {"type": "http", "method": "POST", "path": "/v1/messages", "query_string": b"", "headers": headers,
                 "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8787), "scheme": "http", "http_version": "1.1"}
        await app(scope, receive, send)
        if status[0] != 200:
            raise RuntimeError(f"HTTP {status[0]}")


async def control(*args: str) -> None:
    """callgrind_control on this very process, awaited without blocking the loop (valgrind answers
    while the guest waits in a system call)."""
    import os

    proc = await asyncio.create_subprocess_exec("callgrind_control", *args, str(os.getpid()),
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await proc.wait()


def under_callgrind(args: argparse.Namespace) -> int:
    import re
    import shutil
    import subprocess

    out = Path(args.keep or tempfile.mkdtemp(prefix="tierwise-parts-cg-")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    argv = [a for a in sys.argv[1:] if a != "--callgrind"]
    if "--keep" in argv:
        i = argv.index("--keep")
        del argv[i:i + 2]
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}/callgrind.out.%p",
                           sys.executable, __file__, *argv, "--_counted"], stderr=subprocess.DEVNULL)
    dumps = sorted(out.glob("callgrind.out.*.1"))
    if proc.returncode or not dumps:
        print("callgrind run failed", file=sys.stderr)
        return 1
    total = int(re.search(r"^(?:totals|summary):\s+(\d+)", dumps[-1].read_text(errors="replace"), re.MULTILINE).group(1))
    print(f"  {total / args.n:12,.0f} instructions/request (callgrind, tierwise's own work in-process)")
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--router", default="learned", help="the auto strategy ('default': the configured one)")
    ap.add_argument("--model", default="auto", help="the requested model (an explicit id: no routing)")
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--no-ledger", action="store_true")
    ap.add_argument("--profile", type=int, default=0, help="print the N functions with the most own time")
    ap.add_argument("--callgrind", action="store_true", help="count instructions per request under callgrind")
    ap.add_argument("--keep", default=None, help="with --callgrind: keep the callgrind files in this directory")
    ap.add_argument("--_counted", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.callgrind:
        sys.exit(under_callgrind(args))

    from tierwise.config import load_settings
    from tierwise.server import create_app

    tmp = Path(tempfile.mkdtemp(prefix="tierwise-parts-"))
    over: dict[str, Any] = {"ledger": {"url": f"sqlite:///{tmp / 'parts.db'}"}}
    if args._counted:  # valgrind runs ~50x slower: stretch the flush interval alike (as hotpath_instructions.py)
        over["ledger"]["flush_interval"] = 12.5
    if args.router != "default":
        over["routing"] = {"auto": args.router}
    settings = load_settings(None, overrides=over, environ={})
    app = create_app(settings, upstream=StubUpstream(), ledger=not args.no_ledger)
    payload = body(args.stream, args.model)

    async def run() -> float:
        await drive(app, payload, args.warmup)
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
        if args._counted:
            await control("-i", "on")
        t0 = time.perf_counter()
        await drive(app, payload, args.n)
        elapsed = time.perf_counter() - t0
        if args._counted:
            if app.state.ledger is not None:  # the ledger writer's batches for these rows, counted every run
                app.state.ledger.flush()
            await control("-d", "measured")
            await control("-i", "off")
        if args.profile:
            prof.disable()
            st = pstats.Stats(prof)
            st.strip_dirs().sort_stats("tottime").print_stats(args.profile)
            st.sort_stats("cumulative").print_stats(args.profile)
        return elapsed

    try:
        import uvloop

        elapsed = uvloop.run(run())
    except ImportError:
        elapsed = asyncio.run(run())
    state = app.state
    if state.ledger is not None:
        state.ledger.close()
    print(f"tierwise in-process, stub upstream ({'stream' if args.stream else 'non-stream'}, model {args.model}, "
          f"router {args.router}, ledger {'off' if args.no_ledger else 'on'}): {args.n} requests, "
          f"{elapsed / max(args.n, 1) * 1e6:.1f} us/request")


if __name__ == "__main__":
    main()
