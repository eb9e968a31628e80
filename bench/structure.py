"""Structure numbers of the package (issue 12): modules over 400 lines, functions over 80 lines, and
how many modules one request touches.

    .venv/bin/python bench/structure.py [--src src/tierwise] [--trace] [--router learned] [--stream]

Modules and functions are counted from the source (``ast``: a function's lines run from its ``def``
to its last line, decorators excluded, nested functions counted on their own too). ``--trace`` sends
one non-streaming ``auto`` request through the ASGI app in-process (offline upstream, a SQLite
ledger; after one warm-up request, so imports and caches are not counted) and lists the tierwise
modules whose code ran, with how many times control entered each from another module (a call from
module A into module B, or a return from A back into B, counts one entry of B; "calls-in" counts
the calls only), as ``sys.setprofile`` sees it. Generators and coroutines resuming count as calls.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE_LINES = 400
FUNCTION_LINES = 80


def structure(src: Path) -> tuple[list[tuple[str, int]], list[tuple[str, str, int]]]:
    modules: list[tuple[str, int]] = []
    functions: list[tuple[str, str, int]] = []
    for path in sorted(src.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(src).as_posix()
        n = len(text.splitlines())
        if n > MODULE_LINES:
            modules.append((rel, n))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > FUNCTION_LINES:
                    functions.append((rel, node.name, length))
    return modules, functions


def trace_one_request(router: str, stream: bool) -> tuple[Counter[str], Counter[str]]:
    import asyncio
    import os
    import tempfile

    import orjson

    sys.path.insert(0, str(ROOT / "src"))
    from tierwise.config import load_settings
    from tierwise.server import create_app
    from tierwise.upstream.offline import OfflineUpstream

    tmp = tempfile.mkdtemp(prefix="tierwise-structure-")
    os.chdir(tmp)
    settings = load_settings(None, environ={}, overrides={
        "ledger": {"url": f"sqlite:///{tmp}/ledger.db", "flush_interval": 0.05},
        "routing": {"auto": router}})
    app = create_app(settings, upstream=OfflineUpstream(latency_scale=0))
    payload = orjson.dumps({"model": "auto", "max_tokens": 64, "stream": stream,
                            "messages": [{"role": "user", "content": "Summarize: the meeting moved to 3pm on Friday."}]})
    scope = {"type": "http", "method": "POST", "path": "/v1/messages", "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]}

    async def one() -> int:
        gone = asyncio.Event()
        sent: list[dict[str, object]] = []
        first = [True]

        async def receive() -> dict[str, object]:
            if first[0]:
                first[0] = False
                return {"type": "http.request", "body": payload, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(msg: dict[str, object]) -> None:
            sent.append(msg)

        await app(scope, receive, send)
        gone.set()
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        return int(status)  # type: ignore[call-overload]

    entries: Counter[str] = Counter()
    calls_in: Counter[str] = Counter()
    pkg = str(ROOT / "src" / "tierwise") + os.sep

    def module_of(filename: str) -> str | None:
        return filename[len(pkg):] if filename.startswith(pkg) else None

    def profile(frame, event, arg):
        if event not in ("call", "return"):
            return
        here = module_of(frame.f_code.co_filename)
        back = frame.f_back
        there = module_of(back.f_code.co_filename) if back is not None else None
        # a call moves control from the caller's module (there) to here; a return from here back there
        into, out_of = (here, there) if event == "call" else (there, here)
        if into is not None and into != out_of:
            entries[into] += 1
            if event == "call":
                calls_in[into] += 1

    async def main() -> None:
        assert await one() == 200  # warm-up: imports, caches, the router's first load
        sys.setprofile(profile)
        try:
            assert await one() == 200
        finally:
            sys.setprofile(None)
        if app.state.ledger is not None:
            app.state.ledger.close()

    asyncio.run(main())
    return entries, calls_in


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=str(ROOT / "src" / "tierwise"))
    ap.add_argument("--trace", action="store_true", help="also trace one auto request through the ASGI app")
    ap.add_argument("--router", default="learned", help="routing.auto for the traced request")
    ap.add_argument("--stream", action="store_true", help="trace a streaming request")
    args = ap.parse_args()
    modules, functions = structure(Path(args.src))
    print(f"modules over {MODULE_LINES} lines: {len(modules)}")
    for rel, n in sorted(modules, key=lambda m: -m[1]):
        print(f"  {n:5d}  {rel}")
    print(f"functions over {FUNCTION_LINES} lines: {len(functions)}")
    for rel, name, n in sorted(functions, key=lambda f: -f[2]):
        print(f"  {n:5d}  {rel}:{name}")
    if args.trace:
        entries, calls_in = trace_one_request(args.router, args.stream)
        kind = "streaming" if args.stream else "non-streaming"
        print(f"one {kind} auto request ({args.router} router) ran code in {len(entries)} tierwise modules; "
              f"control entered them {sum(entries.values())} times from another module "
              f"({sum(calls_in.values())} calls in, the rest returns back into them):")
        print("  entries  calls-in  module")
        for mod, n in entries.most_common():
            print(f"  {n:7d}  {calls_in[mod]:8d}  {mod}")


if __name__ == "__main__":
    main()
