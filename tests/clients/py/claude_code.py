"""Claude Code (`claude -p`, the native binary from @anthropic-ai/claude-code) with ANTHROPIC_BASE_URL at the proxy.

Run by tierwise's own interpreter; the environment (temporary HOME, dummy key, telemetry, autoupdater and
non-essential traffic off) comes from tests/clients/conftest.py:client_env.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from _cells import TASK, URL, ask, cell, done

CLAUDE = str(Path(__file__).resolve().parents[1] / "node" / "node_modules" / ".bin" / "claude")


def claude(prompt: str, *args: str, env: dict | None = None, timeout: float = 90) -> dict:
    p = subprocess.run([CLAUDE, "-p", prompt, "--output-format", "stream-json", "--verbose", "--max-turns", "4", *args],
                       env=dict(os.environ, ANTHROPIC_BASE_URL=URL, **(env or {})), capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    events = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]
    result = next((e for e in events if e.get("type") == "result"), None)
    if p.returncode != 0 or result is None or result.get("is_error"):
        raise RuntimeError(f"claude exited {p.returncode}: {(result or {}).get('result')!r} {p.stderr[-1500:]}")
    turns = []
    for e in events:
        if e.get("type") in ("assistant", "user"):
            for b in e["message"]["content"] if isinstance(e["message"]["content"], list) else ():
                if b.get("type") == "tool_use":
                    turns.append({"tool_use": b["name"], "input": b["input"], "model": e["message"].get("model")})
                elif b.get("type") == "tool_result":
                    c = b.get("content")
                    text = c if isinstance(c, str) else " ".join(x.get("text", "") for x in c or ())
                    turns.append({"tool_result": text, "is_error": b.get("is_error")})
    init = next((e for e in events if e.get("type") == "system" and e.get("subtype") == "init"), {})
    return {"text": result["result"], "num_turns": result["num_turns"], "model_usage": sorted(result.get("modelUsage") or {}),
            "cost_usd": result.get("total_cost_usd"), "usage": result.get("usage"), "turns": turns,
            "init_model": init.get("model"), "tools": init.get("tools")}


cell("cc_default")(lambda: claude(ask("cc_default")))
cell("cc_auto")(lambda: claude(ask("cc_auto"), "--model", "auto"))
cell("cc_task")(lambda: claude(ask("cc_task"), "--model", TASK))
cell("cc_small_fast")(lambda: claude(ask("cc_small_fast"), "--model", "haiku",
                                     env={"ANTHROPIC_SMALL_FAST_MODEL": "auto", "ANTHROPIC_DEFAULT_HAIKU_MODEL": "auto"}))
cell("cc_tools")(lambda: claude(ask("cc_tools", "Please run `echo tierwise-cc_tools` and tell me what it printed."),
                                "--model", "auto", "--allowedTools", "Bash(echo:*)"))


@cell("cc_read")
def _():
    Path("notes.txt").write_text("tierwise-cc_read-contents\n")
    return claude(ask("cc_read", "Please read `" + str(Path("notes.txt").resolve()) + "` and summarise it."), "--model", "auto")


done()
