"""pydantic-ai's Agent with AnthropicModel (provider base_url at the proxy): what it offers."""

from __future__ import annotations

import asyncio

from _cells import EXPLICIT, TASK, URL, ask, cell, done, run_tool
from anthropic import AsyncAnthropic
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.models.anthropic import AnthropicModel, AnthropicModelSettings
from pydantic_ai.providers.anthropic import AnthropicProvider


def model(name: str, headers: dict | None = None) -> AnthropicModel:
    client = AsyncAnthropic(base_url=URL, api_key="sk-ant-dummy-client-key", max_retries=0, timeout=30, default_headers=headers)
    return AnthropicModel(name, provider=AnthropicProvider(anthropic_client=client))


SETTINGS = AnthropicModelSettings(max_tokens=300)


def run_command(command: str) -> str:
    """Run a shell command and return its output."""
    return run_tool(command)


def usage(r) -> dict:
    u = r.usage()
    return {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens}


for name, m in (("create_auto", "auto"), ("create_task", TASK), ("create_explicit", EXPLICIT)):
    @cell(name)
    def _(name=name, m=m):
        r = Agent(model(m), model_settings=SETTINGS).run_sync(ask(name))
        return {"text": r.output, "model": r.response.model_name, "usage": usage(r)}


@cell("stream")
def _():
    async def go():
        async with Agent(model("auto"), model_settings=SETTINGS).run_stream(ask("stream")) as s:
            chunks = [c async for c in s.stream_text(delta=True, debounce_by=None)]
        return {"chunks": len(chunks), "text": "".join(chunks)}
    return asyncio.run(go())


def tool_loop(name: str, stream: bool) -> dict:
    agent = Agent(model("auto"), model_settings=SETTINGS, tools=[run_command])
    prompt = ask(name, f"Please run `echo tierwise-{name}` and tell me what it printed.")
    if stream:
        async def go():
            async with agent.run_stream(prompt) as s:
                text = await s.get_output()
            return text, s.all_messages()
        text, messages = asyncio.run(go())
    else:
        r = agent.run_sync(prompt)
        text, messages = r.output, r.all_messages()
    calls = [p for m in messages for p in m.parts if p.part_kind == "tool-call"]
    returns = [p for m in messages for p in m.parts if p.part_kind == "tool-return"]
    return {"tool_name": calls[0].tool_name, "tool_input": calls[0].args_as_dict(), "final_text": text,
            "returned": returns[0].content if returns else None}


cell("tools")(lambda: tool_loop("tools", False))
cell("stream_tools")(lambda: tool_loop("stream_tools", True))


class City(BaseModel):
    city: str
    population: int


@cell("structured")
def _():
    r = Agent(model("auto"), model_settings=SETTINGS, output_type=City).run_sync(ask("structured", "Paris has 2.1 million people."))
    return {"object": r.output.model_dump()}


@cell("thinking")
def _():
    r = Agent(model("auto"), model_settings=AnthropicModelSettings(max_tokens=2000, anthropic_thinking={"type": "adaptive"})).run_sync(
        ask("thinking", "Prove that there are infinitely many primes."))
    parts = r.response.parts
    return {"types": ["thinking" if p.part_kind == "thinking" else p.part_kind for p in parts],
            "reasoning": next((p.content for p in parts if p.part_kind == "thinking"), None)}


@cell("count_tokens")
def _():
    """UsageLimits(count_tokens_before_request=True): the agent asks count_tokens before each request."""
    from pydantic_ai.exceptions import UsageLimitExceeded
    from pydantic_ai.usage import UsageLimits

    r = Agent(model("auto"), model_settings=SETTINGS).run_sync(
        ask("count_tokens", "hello " * 50), usage_limits=UsageLimits(count_tokens_before_request=True, input_tokens_limit=100_000))
    try:  # a limit below the counted prompt stops the run before the request
        Agent(model(EXPLICIT), model_settings=SETTINGS).run_sync(
            ask("count_tokens", "hello " * 50), usage_limits=UsageLimits(count_tokens_before_request=True, input_tokens_limit=5))
        stopped = None
    except UsageLimitExceeded as exc:
        stopped = str(exc)
    return {"input_tokens": r.usage().input_tokens, "stopped": stopped}


@cell("errors")
def _():
    out = {}
    for key, m, headers in (("bad_request", "tierwise/no_such_task", None), ("not_found", "claude-imaginary-9", None),
                            ("overloaded", "auto", {"x-tierwise-fault": "status=529"})):
        try:
            Agent(model(m, headers), model_settings=SETTINGS).run_sync(ask("errors"))
            out[key] = {"raised": None}
        except ModelHTTPError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            out[key] = {"raised": type(exc).__name__, "status": exc.status_code, "request_id": body.get("request_id"),
                        "type": body.get("error", {}).get("type"), "message": str(exc)}
    return out


done()
