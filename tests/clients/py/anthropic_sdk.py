"""The official anthropic Python SDK against the proxy: every feature it offers."""

from __future__ import annotations

import anthropic
from _cells import EXPLICIT, RECORD, TASK, TOOL, URL, ask, cell, done, run_tool

client = anthropic.Anthropic(base_url=URL, api_key="sk-ant-dummy-client-key", max_retries=0, timeout=30)


def summary(raw) -> dict:
    msg = raw.parse()
    return {"model": msg.model, "stop_reason": msg.stop_reason, "types": [b.type for b in msg.content],
            "text": next((b.text for b in msg.content if b.type == "text"), None),
            "usage": {"input_tokens": msg.usage.input_tokens, "output_tokens": msg.usage.output_tokens},
            "request_id": msg._request_id,
            "headers": {k: v for k, v in raw.headers.items() if k.startswith("x-tierwise-")}}


for name, model in (("create_auto", "auto"), ("create_task", TASK), ("create_explicit", EXPLICIT)):
    @cell(name)
    def _(name=name, model=model):
        return summary(client.messages.with_raw_response.create(
            model=model, max_tokens=200, messages=[{"role": "user", "content": ask(name)}]))


@cell("stream")
def _():
    with client.messages.stream(model="auto", max_tokens=200, messages=[{"role": "user", "content": ask("stream")}]) as s:
        chunks = list(s.text_stream)
        final = s.get_final_message()
    return {"chunks": len(chunks), "text": "".join(chunks), "model": final.model,
            "usage": {"input_tokens": final.usage.input_tokens, "output_tokens": final.usage.output_tokens}}


def tool_loop(name: str, stream: bool) -> dict:
    messages = [{"role": "user", "content": ask(name, "Please run `echo tierwise-" + name + "` and tell me what it printed.")}]
    if stream:
        with client.messages.stream(model="auto", max_tokens=300, tools=[TOOL], messages=messages) as s:
            deltas = sum(1 for ev in s if ev.type == "input_json")
            first = s.get_final_message()
    else:
        deltas = None
        first = client.messages.create(model="auto", max_tokens=300, tools=[TOOL], messages=messages)
    use = next(b for b in first.content if b.type == "tool_use")
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                               "content": run_tool(use.input["command"])}]}]
    final = client.messages.create(model="auto", max_tokens=300, tools=[TOOL], messages=messages)
    return {"stop_reason": first.stop_reason, "tool_name": use.name, "tool_input": use.input, "json_deltas": deltas,
            "final_stop_reason": final.stop_reason, "final_text": final.content[0].text, "model": final.model}


cell("tools")(lambda: tool_loop("tools", stream=False))
cell("stream_tools")(lambda: tool_loop("stream_tools", stream=True))


@cell("structured")
def _():
    msg = client.messages.create(model="auto", max_tokens=200, tools=[RECORD], tool_choice={"type": "tool", "name": "record_city"},
                                 messages=[{"role": "user", "content": ask("structured", "Paris has 2.1 million people.")}])
    use = next(b for b in msg.content if b.type == "tool_use")
    return {"object": use.input, "tool_name": use.name, "model": msg.model, "stop_reason": msg.stop_reason}


@cell("thinking")
def _():
    msg = client.messages.create(model="auto", max_tokens=2000, thinking={"type": "adaptive"},
                                 messages=[{"role": "user", "content": ask("thinking", "Prove that there are infinitely many primes.")}])
    return {"types": [b.type for b in msg.content], "model": msg.model,
            "signature": next((bool(b.signature) for b in msg.content if b.type == "thinking"), False)}


@cell("count_tokens")
def _():
    n = client.messages.count_tokens(model="auto", messages=[{"role": "user", "content": ask("count_tokens", "hello " * 50)}])
    m = client.messages.count_tokens(model=EXPLICIT, messages=[{"role": "user", "content": ask("count_tokens", "hi")}])
    return {"input_tokens": n.input_tokens, "small": m.input_tokens}


@cell("models")
def _():
    ids = [m.id for m in client.models.list()]
    got = client.models.retrieve(EXPLICIT)
    return {"ids": ids, "retrieved": got.id, "display_name": got.display_name}


@cell("batches")
def _():
    import time

    batch = client.messages.batches.create(requests=[
        {"custom_id": f"r{i}", "params": {"model": m, "max_tokens": 100, "messages": [{"role": "user", "content": ask("batches", f"item {i}")}]}}
        for i, m in enumerate(("auto", EXPLICIT))])
    deadline = time.monotonic() + 20
    while batch.processing_status != "ended" and time.monotonic() < deadline:
        time.sleep(0.2)
        batch = client.messages.batches.retrieve(batch.id)
    results = {r.custom_id: (r.result.type, getattr(getattr(r.result, "message", None), "model", None))
               for r in client.messages.batches.results(batch.id)}
    return {"id": batch.id, "status": batch.processing_status, "results": results,
            "listed": any(b.id == batch.id for b in client.messages.batches.list())}


@cell("errors")
def _():
    out = {}
    for key, kw in (("bad_request", {"model": "tierwise/no_such_task"}),
                    ("not_found", {"model": "claude-imaginary-9"}),
                    ("overloaded", {"model": "auto", "extra_headers": {"x-tierwise-fault": "status=529"}})):
        try:
            client.messages.create(max_tokens=10, messages=[{"role": "user", "content": ask("errors")}], **kw)
            out[key] = {"raised": None}
        except anthropic.APIStatusError as exc:
            out[key] = {"raised": type(exc).__name__, "status": exc.status_code, "request_id": exc.request_id,
                        "type": (exc.body or {}).get("error", {}).get("type"), "message": exc.message}
    return out


done()
