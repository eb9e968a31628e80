"""langchain-anthropic's ChatAnthropic against the proxy: what it offers."""

from __future__ import annotations

import anthropic
from _cells import EXPLICIT, TASK, URL, ask, cell, done, run_tool
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage, ToolMessage
from pydantic import BaseModel


def chat(model: str, **kw) -> ChatAnthropic:
    return ChatAnthropic(model=model, base_url=URL, api_key="sk-ant-dummy-client-key", max_retries=0, timeout=30,
                         max_tokens=kw.pop("max_tokens", 300), **kw)


def run_command(command: str) -> str:
    """Run a shell command and return its output."""
    return run_tool(command)


for name, model in (("create_auto", "auto"), ("create_task", TASK), ("create_explicit", EXPLICIT)):
    @cell(name)
    def _(name=name, model=model):
        msg = chat(model).invoke(ask(name))
        return {"text": msg.content if isinstance(msg.content, str) else msg.content[0]["text"],
                "model": msg.response_metadata.get("model_name") or msg.response_metadata.get("model"),
                "usage": {"input_tokens": msg.usage_metadata["input_tokens"], "output_tokens": msg.usage_metadata["output_tokens"]}}


@cell("stream")
def _():
    chunks = list(chat("auto").stream(ask("stream")))
    text = "".join(c.content if isinstance(c.content, str) else "".join(p.get("text", "") for p in c.content) for c in chunks)
    return {"chunks": len(chunks), "text": text}


def tool_loop(name: str, stream: bool) -> dict:
    llm = chat("auto").bind_tools([run_command])
    messages = [HumanMessage(ask(name, f"Please run `echo tierwise-{name}` and tell me what it printed."))]
    if stream:
        first = None
        for chunk in llm.stream(messages):
            first = chunk if first is None else first + chunk
    else:
        first = llm.invoke(messages)
    call = first.tool_calls[0]
    messages += [first, ToolMessage(run_command.__call__(**call["args"]), tool_call_id=call["id"])]
    final = llm.invoke(messages)
    text = final.content if isinstance(final.content, str) else "".join(p.get("text", "") for p in final.content)
    return {"tool_name": call["name"], "tool_input": call["args"], "stop_reason": first.response_metadata.get("stop_reason"),
            "final_text": text}


cell("tools")(lambda: tool_loop("tools", False))
cell("stream_tools")(lambda: tool_loop("stream_tools", True))


class City(BaseModel):
    """Record a city and its population"""
    city: str
    population: int


@cell("structured")
def _():
    got = chat("auto").with_structured_output(City).invoke(ask("structured", "Paris has 2.1 million people."))
    return {"object": got.model_dump()}


@cell("thinking")
def _():
    msg = chat("auto", max_tokens=2000, thinking={"type": "adaptive"}).invoke(
        ask("thinking", "Prove that there are infinitely many primes."))
    return {"types": [b["type"] for b in msg.content], "reasoning": next(b["thinking"] for b in msg.content if b["type"] == "thinking")}


@cell("count_tokens")
def _():
    n = chat(EXPLICIT).get_num_tokens_from_messages([HumanMessage(ask("count_tokens", "hello " * 50))])
    m = chat(EXPLICIT).get_num_tokens_from_messages([HumanMessage(ask("count_tokens", "hi"))])
    return {"input_tokens": n, "small": m}


@cell("errors")
def _():
    out = {}
    for key, model, headers in (("bad_request", "tierwise/no_such_task", None), ("not_found", "claude-imaginary-9", None),
                                ("overloaded", "auto", {"x-tierwise-fault": "status=529"})):
        try:
            chat(model, default_headers=headers).invoke(ask("errors"))
            out[key] = {"raised": None}
        except anthropic.APIStatusError as exc:  # langchain-anthropic lets the SDK's typed errors through
            out[key] = {"raised": type(exc).__name__, "status": exc.status_code, "request_id": exc.request_id,
                        "type": (exc.body or {}).get("error", {}).get("type"), "message": exc.message}
    return out


done()
