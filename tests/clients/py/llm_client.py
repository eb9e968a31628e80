"""simonw's llm with llm-anthropic: its Python API, a ClaudeMessages model pointed at the proxy.

llm-anthropic registers fixed model ids; `auto` and `tierwise/<task>` are served by constructing its
model class with that id (as its `llm anthropic refresh` does for ids the models list reports)."""

from __future__ import annotations

import json

import llm
from _cells import EXPLICIT, TASK, URL, ask, cell, done, run_tool
from llm_anthropic import ClaudeMessages

KEY = "sk-ant-dummy-client-key"


def model(name: str) -> ClaudeMessages:
    return ClaudeMessages(name, base_url=URL, supports_thinking=True, supports_adaptive_thinking=True,
                          use_structured_outputs=True, default_max_tokens=300)


def run_command(command: str) -> str:
    """Run a shell command and return its output."""
    return run_tool(command)


for name, m in (("create_auto", "auto"), ("create_task", TASK), ("create_explicit", EXPLICIT)):
    @cell(name)
    def _(name=name, m=m):
        r = model(m).prompt(ask(name), key=KEY, stream=False)
        text = r.text()
        js = r.response_json or {}
        return {"text": text, "model": js.get("model"), "usage": {"input_tokens": r.input_tokens, "output_tokens": r.output_tokens}}


@cell("stream")
def _():
    chunks = list(model("auto").prompt(ask("stream"), key=KEY, stream=True))
    return {"chunks": len(chunks), "text": "".join(chunks)}


def tool_loop(name: str, stream: bool) -> dict:
    chain = model("auto").chain(ask(name, f"Please run `echo tierwise-{name}` and tell me what it printed."),
                                tools=[run_command], key=KEY, stream=stream)
    text = "".join(chain) if stream else chain.text()
    calls = [c for r in chain._responses for c in r.tool_calls()]
    return {"tool_name": calls[0].name, "tool_input": calls[0].arguments, "final_text": text}


cell("tools")(lambda: tool_loop("tools", False))
cell("stream_tools")(lambda: tool_loop("stream_tools", True))


@cell("structured")
def _():
    schema = llm.schema_dsl("city, population int")
    r = model("auto").prompt(ask("structured", "Paris has 2.1 million people."), schema=schema, key=KEY, stream=False)
    return {"object": json.loads(r.text())}


@cell("thinking")
def _():
    r = model("auto").prompt(ask("thinking", "Prove that there are infinitely many primes."), key=KEY, stream=False,
                             thinking=True, max_tokens=2000)
    r.text()
    content = (r.response_json or {}).get("content") or []
    return {"types": [b.get("type") for b in content],
            "reasoning": next((b.get("thinking") for b in content if b.get("type") == "thinking"), None)}


@cell("count_tokens")
def _():
    return {"input_tokens": model("auto").count_tokens(ask("count_tokens", "hello " * 50), key=KEY),
            "small": model(EXPLICIT).count_tokens(ask("count_tokens", "hi"), key=KEY)}


@cell("models")
def _():
    """What `llm anthropic refresh` reads: the proxy's /v1/models, every page."""
    from anthropic import Anthropic
    from llm_anthropic import fetch_models

    data = fetch_models(Anthropic(api_key=KEY, base_url=URL))
    return {"ids": [m["id"] for m in data["data"]]}


@cell("errors")
def _():
    import anthropic

    out = {}
    for key, m, in (("bad_request", "tierwise/no_such_task"), ("not_found", "claude-imaginary-9")):
        try:
            model(m).prompt(ask("errors"), key=KEY, stream=False).text()
            out[key] = {"raised": None}
        except (anthropic.APIStatusError, llm.ModelError) as exc:
            out[key] = {"raised": type(exc).__name__, "status": getattr(exc, "status_code", None),
                        "request_id": getattr(exc, "request_id", None),
                        "type": ((getattr(exc, "body", None) or {}).get("error") or {}).get("type"), "message": str(exc)}
    return out


done()
