"""CPU instructions the proxy spends per request, counted by valgrind (deterministic, unlike wall time).

Starts bench/fast_upstream.py natively and a real `tierwise serve` (auto routing, SQLite ledger with
its journal, as in bench/proxy_overhead.py) under ``valgrind --tool=callgrind`` with counting off;
after a warm-up it switches counting on, sends ``--n`` non-streaming requests one after another on
one keep-alive connection, dumps the counters, does the same for ``--n`` streaming requests, and
prints the instructions per request of the whole proxy process (uvicorn, routing, aiohttp client,
ledger writer thread, metrics thread). A 2-core VM shared with other work makes wall-clock
figures noisy; these counts move by well under 1% between runs of the same code.

    .venv/bin/python bench/hotpath_instructions.py [--n 2000] [--router learned] [--concurrency 1] [--keep DIR]

``--concurrency C`` sends the requests on C keep-alive connections at once (C client threads), as
the throughput run of bench/proxy_overhead.py does with wrk.

``--keep DIR`` keeps the callgrind files there (``callgrind_annotate DIR/callgrind.out.*.1``).
Needs valgrind (apt-get install valgrind). Takes a few minutes: valgrind runs Python ~50x slower.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_overhead import HEADERS, PY, ROOT, body, free_port, stop, wait_port


def drive(port: int, payload: bytes, n: int) -> None:
    """``n`` sequential POSTs on one keep-alive connection; every answer must be a 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        for _ in range(n):
            conn.request("POST", "/v1/messages", body=payload, headers=HEADERS)
            r = conn.getresponse()
            data = r.read()
            if r.status != 200:
                raise RuntimeError(f"HTTP {r.status}: {data[:300]!r}")
    finally:
        conn.close()


def drive_concurrently(port: int, payload: bytes, n: int, concurrency: int) -> None:
    if concurrency <= 1:
        drive(port, payload, n)
        return
    from concurrent.futures import ThreadPoolExecutor

    share = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
    with ThreadPoolExecutor(concurrency) as pool:
        for f in [pool.submit(drive, port, payload, k) for k in share if k]:
            f.result()


def control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def totals(path: Path) -> int:
    m = re.search(r"^(?:totals|summary):\s+(\d+)", path.read_text(errors="replace"), re.MULTILINE)
    if m is None:
        raise RuntimeError(f"no totals in {path}")
    return int(m.group(1))


def dumped(out: Path, pid: int, k: int, timeout: float = 120) -> int:
    """The instruction total of the k-th dump of ``pid``, once callgrind has written it (totals come last)."""
    f = out / f"callgrind.out.{pid}.{k}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f.exists():
            try:
                return totals(f)
            except RuntimeError:
                pass
        time.sleep(0.2)
    raise RuntimeError(f"callgrind dump {k} of {pid} did not appear in {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="counted requests per kind (after --warmup)")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=1, help="requests in flight at once (client threads)")
    ap.add_argument("--router", default=None, help="the auto strategy (default: the configured default)")
    ap.add_argument("--model", default="auto", help="the model the requests name (a model id: no routing)")
    ap.add_argument("--flush-interval", type=float, default=12.5, help="ledger flush interval (s) of the proxy "
                    "under valgrind (default: 50 x the configured 0.25 s)")
    ap.add_argument("--keep", default=None, help="directory to keep the callgrind output files in")
    ap.add_argument("--bare", default=None, metavar="CLIENT[,SERVER]", help="count bench/bare_passthrough.py instead "
                    "of tierwise (aiohttp or pyreqwest; uvicorn or granian): the stack's ceiling, for the ratio")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")

    tmp = Path(tempfile.mkdtemp(prefix="tierwise-instr-"))
    out = Path(args.keep).resolve() if args.keep else tmp
    out.mkdir(parents=True, exist_ok=True)
    up_port, px_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "TIERWISE_CONFIG")}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen([PY, str(ROOT / "bench" / "fast_upstream.py"), str(up_port)], stdout=subprocess.DEVNULL))
        wait_port(up_port)
        # valgrind runs the proxy ~50x slower: stretch the ledger's flush interval alike, so a batch
        # holds as many rows as at full speed (else per-batch costs would be counted ~50x per row)
        conf = f"[ledger]\nflush_interval = {args.flush_interval}\n"
        if args.router:
            conf += f'[routing]\nauto = "{args.router}"\n'
        (tmp / "tierwise.toml").write_text(conf)
        if args.bare:
            target = [PY, str(ROOT / "bench" / "bare_passthrough.py"), str(px_port), f"http://127.0.0.1:{up_port}",
                      *args.bare.split(",")]
        else:
            target = [PY, "-m", "tierwise", "serve", "--port", str(px_port), "--upstream-url", f"http://127.0.0.1:{up_port}",
                      "--ledger-url", f"sqlite:///{tmp / 'bench.db'}", "--log-level", "warning"]
        proxy = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=yes",
             f"--callgrind-out-file={out}/callgrind.out.%p", *target],
            cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proxy)
        wait_port(px_port, timeout=600)
        drive(px_port, body(False, args.model), args.warmup)
        drive(px_port, body(True, args.model), args.warmup)
        control(proxy.pid, "-i", "on")
        figures = {}
        for k, (kind, stream) in enumerate((("non-stream", False), ("stream", True)), start=1):
            drive_concurrently(px_port, body(stream, args.model), args.n, args.concurrency)
            control(proxy.pid, "-d", kind)
            figures[kind] = dumped(out, proxy.pid, k) / args.n
        control(proxy.pid, "-i", "off")
        how = "one after another" if args.concurrency <= 1 else f"{args.concurrency} at a time"
        who = f"auto router: {args.router or 'default'}" if args.model == "auto" else f"model {args.model}"
        what = f"bare pass-through ({args.bare})" if args.bare else f"tierwise proxy ({who})"
        print(f"{what} instructions per request (callgrind, whole process; {args.n} requests per kind, {how})")
        for kind, ir in figures.items():
            print(f"  {kind:10s} {ir:12,.0f} instructions/request")
    finally:
        stop(procs, 60)  # valgrind needs time to write its last dump
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
