"""litellm as a client: its anthropic provider with api_base at the proxy (OpenAI-shaped calls)."""

from __future__ import annotations

import json

import litellm
from _cells import EXPLICIT, TASK, URL, ask, cell, done, run_tool

KW = {"api_base": URL, "api_key": "sk-ant-dummy-client-key", "num_retries": 0, "timeout": 30, "max_tokens": 300}
TOOLS = [{"type": "function", "function": {"name": "run_command", "description": "Run a shell command and return its output",
          "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}]


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


for name, model in (("create_auto", "auto"), ("create_task", TASK), ("create_explicit", EXPLICIT)):
    @cell(name)
    def _(name=name, model=model):
        r = litellm.completion(model=f"anthropic/{model}", messages=user(ask(name)), **KW)
        return {"text": r.choices[0].message.content, "model": r.model,
                "usage": {"input_tokens": r.usage.prompt_tokens, "output_tokens": r.usage.completion_tokens}}


@cell("stream")
def _():
    chunks = [c.choices[0].delta.content or "" for c in litellm.completion(model="anthropic/auto", messages=user(ask("stream")), stream=True, **KW)]
    return {"chunks": len([c for c in chunks if c]), "text": "".join(chunks)}


def tool_loop(name: str, stream: bool) -> dict:
    messages = user(ask(name, f"Please run `echo tierwise-{name}` and tell me what it printed."))
    if stream:
        chunks = list(litellm.completion(model="anthropic/auto", messages=messages, tools=TOOLS, stream=True, **KW))
        first = litellm.stream_chunk_builder(chunks, messages=messages).choices[0]
    else:
        first = litellm.completion(model="anthropic/auto", messages=messages, tools=TOOLS, **KW).choices[0]
    call = first.message.tool_calls[0]
    args = json.loads(call.function.arguments)
    messages += [first.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": run_tool(args["command"])}]
    final = litellm.completion(model="anthropic/auto", messages=messages, tools=TOOLS, **KW)
    return {"tool_name": call.function.name, "tool_input": args, "stop_reason": first.finish_reason,
            "final_text": final.choices[0].message.content}


cell("tools")(lambda: tool_loop("tools", False))
cell("stream_tools")(lambda: tool_loop("stream_tools", True))


@cell("structured")
def _():
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
              "required": ["city", "population"], "additionalProperties": False}
    r = litellm.completion(model="anthropic/auto", messages=user(ask("structured", "Paris has 2.1 million people.")),
                           response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}}, **KW)
    return {"object": json.loads(r.choices[0].message.content)}


@cell("thinking")
def _():
    r = litellm.completion(model="anthropic/auto", messages=user(ask("thinking", "Prove that there are infinitely many primes.")),
                           thinking={"type": "adaptive"}, allowed_openai_params=["thinking"], **dict(KW, max_tokens=2000))
    m = r.choices[0].message
    return {"reasoning": m.reasoning_content, "types": ["thinking", "text"] if m.reasoning_content and m.content else []}


@cell("count_tokens")
def _():
    """litellm.acount_tokens: the provider's count_tokens API (not its local tokenizer)."""
    import asyncio

    async def count(model: str, text: str):
        return await litellm.acount_tokens(model=f"anthropic/{model}", messages=user(ask("count_tokens", text)),
                                           api_base=URL, api_key="sk-ant-dummy-client-key")
    n, m = asyncio.run(count("auto", "hello " * 50)), asyncio.run(count(EXPLICIT, "hi"))
    return {"input_tokens": n.total_tokens, "small": m.total_tokens, "tokenizer": n.tokenizer_type,
            "source": str(n.count_source), "original": n.original_response, "error": n.error_message if n.error else None}


@cell("errors")
def _():
    out = {}
    for key, model, headers in (("bad_request", "tierwise/no_such_task", None), ("not_found", "claude-imaginary-9", None),
                                ("overloaded", "auto", {"x-tierwise-fault": "status=529"})):
        try:
            litellm.completion(model=f"anthropic/{model}", messages=user(ask("errors")), extra_headers=headers, **KW)
            out[key] = {"raised": None}
        except litellm.exceptions.APIError.__mro__[1] as exc:  # litellm's typed errors (OpenAI-style classes)
            hdrs = getattr(exc, "litellm_response_headers", None) or {}
            out[key] = {"raised": type(exc).__name__, "status": exc.status_code, "request_id": hdrs.get("request-id"),
                        "type": None, "message": str(exc)}
    return out


done()
