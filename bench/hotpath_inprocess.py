"""Instructions tierwise itself spends per request, in-process (no uvicorn, no HTTP client): the ASGI app
with the offline upstream (latency 0), learned ``auto`` routing, ledger and journal on (flushes kept out
of the window), 50 warm-up requests, then N counted ones. Run under callgrind; ROOT is a source tree
(its ``src/`` is imported first, so another branch's export can be measured with the same venv):

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=cg.out \
        .venv/bin/python bench/hotpath_inprocess.py . 200
    # "Collected : X" on stderr; X / 200 = instructions per request

Deterministic: no background thread does timed work in the window (unlike the whole-process figure of
bench/hotpath_instructions.py, whose ledger/metrics threads make it depend on wall time).
"""
import asyncio
import os
import subprocess
import sys
import tempfile

ROOT = sys.argv[1]; N = int(sys.argv[2])
sys.path.insert(0, ROOT + "/src")
import orjson

from tierwise.config import load_settings
from tierwise.server import create_app
from tierwise.upstream.offline import OfflineUpstream

tmp = tempfile.mkdtemp(); os.chdir(tmp)
settings = load_settings(None, environ={}, overrides={"ledger": {"url": f"sqlite:///{tmp}/l.db", "flush_interval": 100000}, "routing": {"auto": "learned"}})
app = create_app(settings, upstream=OfflineUpstream(latency_scale=0))
payload = orjson.dumps({"model": "auto", "max_tokens": 64, "messages": [{"role": "user", "content": "Summarize: the meeting moved to 3pm on Friday."}]})
scope = {"type": "http", "method": "POST", "path": "/v1/messages", "query_string": b"", "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]}
async def one():
    gone = asyncio.Event(); first = [True]
    async def receive():
        if first[0]:
            first[0] = False; return {"type": "http.request", "body": payload, "more_body": False}
        await gone.wait(); return {"type": "http.disconnect"}
    async def send(m): pass
    await app(scope, receive, send); gone.set()
async def main():
    for _ in range(50): await one()
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], capture_output=True)
    for _ in range(N): await one()
    subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], capture_output=True)
asyncio.run(main())
os._exit(0)
