"""The offline upstream: deterministic, clearly labelled synthetic answers with no network.

It is what ``make run`` serves when no API key is set, and what tests and demos use:

- answers are synthetic and say so (``[offline synthetic answer from <model>]``); the same
  request always gets the same answer;
- token counts grow with the prompt (about four characters a token);
- latency follows the tier: fast < balanced < deep (``latency_scale`` 0 turns it off);
- agents get tool calls: with tools offered, a user turn saying ``run `ls```, ``read `f```, ``list `d``` or
  ``[[tool:NAME]]`` is answered with a ``tool_use``; the answer after the tool_result quotes it (``offline_agent``);
- streams use the real SSE event sequence (message_start, ping, content_block_*, message_delta,
  message_stop);
- faults can be injected per request with the ``x-tierwise-fault`` header, or at random with
  ``fault_rate``: ``status=529``, ``retry_after=2``, ``delay=0.5``, ``cut=3`` (drop the stream
  after 3 events), ``error_event=2`` (an ``event: error`` after 2 events), ``malformed``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as _dt
import hashlib
import os
import random
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Mapping

import orjson

from ..errors import UpstreamConnectionError, error_body, error_for_status
from .apirules import refusal
from .base import UpstreamResponse
from .offline_agent import agent_tool_call, tool_result_text
from .sse import format_event

__all__ = ["OfflineUpstream", "Fault", "parse_fault", "synthesize", "ratelimit_headers"]

# the API's rate-limit headers (anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset})
_LIMITS = {"requests": 4000, "tokens": 2_000_000, "input-tokens": 1_600_000, "output-tokens": 400_000}


def ratelimit_headers(calls: int, tokens: int = 0) -> dict[str, str]:
    """Rate-limit headers as the API sends them on every answer, errors included (a one-minute window)."""
    reset = (_dt.datetime.now(_dt.UTC).replace(microsecond=0) + _dt.timedelta(seconds=60)).isoformat()
    reset = reset.replace("+00:00", "Z")
    out: dict[str, str] = {}
    for kind, limit in _LIMITS.items():
        used = calls if kind == "requests" else tokens
        out[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
        out[f"anthropic-ratelimit-{kind}-remaining"] = str(max(0, limit - used % limit))
        out[f"anthropic-ratelimit-{kind}-reset"] = reset
    return out

# seconds: (time to first token, per output token) by model family
LATENCY = {"haiku": (0.03, 0.0004), "sonnet": (0.12, 0.0012), "opus": (0.30, 0.0025), "fable": (0.5, 0.004), "mythos": (0.5, 0.004)}
OUTPUT_SCALE = {"haiku": 0.7, "sonnet": 1.0, "opus": 1.25, "fable": 1.4, "mythos": 1.4}

_WORDS = (
    "the routing layer picks a tier for each request and accounts for every token so that the answer "
    "arrives from the cheapest model that does the job well while quality stays measured on real outcomes"
).split()


@dataclass(slots=True)
class Fault:
    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    cut: int | None = None
    error_event: int | None = None
    malformed: bool = False
    times: int | None = None      # apply to the first N requests carrying this header value only
    reset: bool = False           # drop the connection before the first byte


def parse_fault(value: str | None) -> Fault | None:
    if not value:
        return None
    f = Fault()
    for part in value.replace(";", ",").split(","):
        key, _, val = part.strip().partition("=")
        key = key.strip().lower()
        try:
            if key == "status":
                f.status = int(val)
            elif key == "retry_after":
                f.retry_after = float(val)
            elif key == "delay":
                f.delay = float(val)
            elif key == "cut":
                f.cut = int(val or 1)
            elif key == "error_event":
                f.error_event = int(val or 1)
            elif key == "malformed":
                f.malformed = True
            elif key == "times":
                f.times = int(val)
            elif key == "reset":
                f.reset = True
        except ValueError:
            continue
    return f


def _family(model: str) -> str:
    for fam in LATENCY:
        if fam in model:
            return fam
    return "sonnet"


def _text_of(params: Mapping[str, Any]) -> tuple[str, int]:
    parts: list[str] = []
    cached = 0
    system = params.get("system")
    blocks: list[Any] = []
    if isinstance(system, str):
        parts.append(system)
    elif isinstance(system, list):
        blocks.extend(system)
    for m in params.get("messages") or ():
        c = m.get("content") if isinstance(m, dict) else None
        if isinstance(c, str):
            parts.append(c)
        elif isinstance(c, list):
            blocks.extend(c)
    for b in blocks:
        if isinstance(b, dict):
            t = str(b.get("text") or b.get("thinking") or orjson.dumps(b.get("input", "")).decode())
            parts.append(t)
            if b.get("cache_control"):
                cached += (len(t) + 3) // 4
    return "\n".join(parts), cached


def _ttl_1h(params: Mapping[str, Any]) -> int:
    """Tokens of the blocks marked ``cache_control: {"type": "ephemeral", "ttl": "1h"}`` (the rest of the
    marked tokens are 5-minute writes), counted as ``_text_of`` counts them."""
    blocks: list[Any] = list(params.get("system") or ()) if isinstance(params.get("system"), list) else []
    for m in params.get("messages") or ():
        c = m.get("content") if isinstance(m, dict) else None
        if isinstance(c, list):
            blocks.extend(c)
    n = 0
    for b in blocks:
        cc = b.get("cache_control") if isinstance(b, dict) else None
        if isinstance(cc, dict) and cc.get("ttl") == "1h":
            t = str(b.get("text") or b.get("thinking") or orjson.dumps(b.get("input", "")).decode())
            n += (len(t) + 3) // 4
    return n


_SIG_PREFIX = "offline-signature:"


def thinking_signature(model: str, digest: str) -> str:
    """The offline stand-in for a thinking block's signature: bound to the model that wrote it."""
    return base64.b64encode(f"{_SIG_PREFIX}{model}:{digest[:16]}".encode()).decode()


def foreign_thinking(params: Mapping[str, Any]) -> str | None:
    """Where a request carries a thinking block another model wrote (the real API refuses those:
    thinking blocks are bound to the model and conversation that produced them), else None.
    Signatures that are not the offline upstream's own are not judged."""
    model = str(params.get("model") or "")
    for i, m in enumerate(params.get("messages") or ()):
        content = m.get("content") if isinstance(m, dict) and m.get("role") == "assistant" else None
        for j, b in enumerate(content if isinstance(content, list) else ()):
            if not isinstance(b, dict) or b.get("type") != "thinking" or not isinstance(b.get("signature"), str):
                continue
            try:
                raw = base64.b64decode(b["signature"], validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                continue
            if raw.startswith(_SIG_PREFIX) and not raw[len(_SIG_PREFIX):].startswith(model + ":"):
                return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
    return None


def _wants_thinking(params: Mapping[str, Any]) -> bool:
    t = params.get("thinking")
    return isinstance(t, dict) and t.get("type") in ("enabled", "adaptive")


def synthesize(params: Mapping[str, Any], seen_prefixes: set[str] | None = None) -> dict[str, Any]:
    """A complete, deterministic Message for ``params`` (led by a signed thinking block when thinking is on)."""
    model = str(params.get("model") or "claude-sonnet-5-5")
    text, cached = _text_of(params)
    digest = hashlib.blake2b(f"{model}\x00{text}".encode(), digest_size=16).hexdigest()
    fam = _family(model)
    total_in = (len(text) + 3) // 4 + 4 * len(params.get("messages") or ()) + 3
    write = read = 0
    if cached:
        key = hashlib.blake2b(f"{model}\x00{cached}\x00{text[:2000]}".encode(), digest_size=8).hexdigest()
        if seen_prefixes is not None and key in seen_prefixes:
            read = min(cached, total_in)
        else:
            write = min(cached, total_in)
            if seen_prefixes is not None:
                seen_prefixes.add(key)
    write_1h = min(_ttl_1h(params), write) if write else 0
    max_tokens = int(params.get("max_tokens") or 1024)
    want = int((24 + int(digest[:4], 16) % 96 + min(total_in, 4000) // 20) * OUTPUT_SCALE[fam])
    n_words = max(1, min(max_tokens, want))
    rng = random.Random(int(digest[:16], 16))
    words = [rng.choice(_WORDS) for _ in range(n_words)]
    result = tool_result_text(params) if params.get("tools") else None
    quoted = f"tool_result: \u00ab{result[:200]}\u00bb " if result is not None else ""  # an agent loop closed
    answer = f"[offline synthetic answer from {model}] " + quoted + " ".join(words)
    stop = "max_tokens" if want > max_tokens else "end_turn"
    content: list[dict[str, Any]] = [{"type": "text", "text": answer}]
    fmt = (params.get("output_config") or {}).get("format") if isinstance(params.get("output_config"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        # structured outputs: the text is JSON that fits the schema
        content = [{"type": "text", "text": orjson.dumps(_from_schema(fmt["schema"], random.Random(int(digest[16:], 16)))).decode()}]
    tool = _forced_tool(params)
    if tool is not None:  # tool_choice forces a tool: answer with a tool_use block that fits its schema
        try:
            value = _from_schema(tool.get("input_schema") or {}, random.Random(int(digest[16:], 16)))
        except (TypeError, ValueError, AttributeError, RecursionError):  # a schema the real API would refuse
            value = {}
        content = [{"type": "tool_use", "id": "toolu_offline_" + digest[:20], "name": tool.get("name", "tool"),
                    "input": value}]
        stop, n_words = "tool_use", 12
    elif (call := agent_tool_call(params, _from_schema, random.Random(int(digest[16:], 16)))) is not None:
        content = [{"type": "tool_use", "id": "toolu_offline_" + digest[:20], **call}]  # see offline_agent
        stop, n_words = "tool_use", 12
    if _wants_thinking(params):
        content.insert(0, {"type": "thinking", "thinking": "[offline synthetic reasoning] " + " ".join(words[:8]),
                           "signature": thinking_signature(model, digest)})
    return {
        "id": "msg_offline_" + digest[:24],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": total_in - write - read,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": write - write_1h, "ephemeral_1h_input_tokens": write_1h},
            "output_tokens": n_words,
            "service_tier": "standard",
        },
    }


def _forced_tool(params: Mapping[str, Any]) -> dict[str, Any] | None:
    choice = params.get("tool_choice")
    tools = [t for t in params.get("tools") or () if isinstance(t, dict)]
    if not isinstance(choice, dict) or not tools:
        return None
    if choice.get("type") == "tool":
        return next((t for t in tools if t.get("name") == choice.get("name")), None)
    if choice.get("type") == "any":
        return tools[0]
    return None


def _from_schema(schema: Mapping[str, Any], rng: random.Random) -> Any:
    """A deterministic value that satisfies a (simple) JSON Schema."""
    if not isinstance(schema, Mapping):  # not a schema: the real API would refuse it, never a crash here
        return "offline synthetic value"
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return rng.choice(list(schema["enum"]))
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: _from_schema(v, rng) for k, v in props.items()} if isinstance(props, Mapping) else {}
    if kind == "array":
        return [_from_schema(schema.get("items") or {"type": "string"}, rng)]
    if kind == "number":
        lo, hi = float(schema.get("minimum", 0.0)), float(schema.get("maximum", 1.0))
        return round(lo + (hi - lo) * rng.random(), 3)
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "boolean":
        return True
    return "offline synthetic value"


def _block_events(index: int, block: dict[str, Any], per_token: float, step: float) -> list[tuple[str, Any, float]]:
    kind = block.get("type")
    if kind == "tool_use":
        return [
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": dict(block, input={})}, 0.0),
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {
                "type": "input_json_delta", "partial_json": orjson.dumps(block["input"]).decode()}}, per_token),
            ("content_block_stop", {"type": "content_block_stop", "index": index}, 0.0),
        ]
    if kind == "thinking":
        return [
            ("content_block_start", {"type": "content_block_start", "index": index,
                                     "content_block": {"type": "thinking", "thinking": "", "signature": ""}}, 0.0),
            ("content_block_delta", {"type": "content_block_delta", "index": index,
                                     "delta": {"type": "thinking_delta", "thinking": block["thinking"]}}, per_token),
            ("content_block_delta", {"type": "content_block_delta", "index": index,
                                     "delta": {"type": "signature_delta", "signature": block["signature"]}}, 0.0),
            ("content_block_stop", {"type": "content_block_stop", "index": index}, 0.0),
        ]
    text = block["text"]
    pieces = [text[i : i + 24] for i in range(0, len(text), 24)] or [""]
    out: list[tuple[str, Any, float]] = [
        ("content_block_start", {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}, 0.0),
        ("ping", {"type": "ping"}, 0.0),
    ]
    for p in pieces:
        out.append(("content_block_delta", {"type": "content_block_delta", "index": index,
                                            "delta": {"type": "text_delta", "text": p}}, step / len(pieces)))
    out.append(("content_block_stop", {"type": "content_block_stop", "index": index}, 0.0))
    return out


def stream_events(message: dict[str, Any], *, per_token: float = 0.0, fault: Fault | None = None) -> list[tuple[str, Any, float]]:
    """The SSE event sequence for ``message`` as (event, data, delay-before) tuples."""
    usage = message["usage"]
    start_msg = dict(message, content=[], stop_reason=None, usage=dict(usage, output_tokens=1))
    out: list[tuple[str, Any, float]] = [("message_start", {"type": "message_start", "message": start_msg}, 0.0)]
    step = per_token * max(1, usage["output_tokens"])
    for i, block in enumerate(message["content"]):
        out += _block_events(i, block, per_token, step)
    out += [
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                           "usage": {"output_tokens": usage["output_tokens"]}}, 0.0),
        ("message_stop", {"type": "message_stop"}, 0.0),
    ]
    return out


class OfflineUpstream:
    """An ``Upstream`` that answers in-process. Thread- and task-safe; no I/O."""

    name = "offline"

    def __init__(self, *, latency_scale: float = 1.0, seed: int = 0, fault_rate: float = 0.0, fault_status: int = 529,
                 fault_specs: tuple[str, ...] = (), quality: Any = None) -> None:
        self.latency_scale = latency_scale
        self.quality = quality  # tierwise.upstream.quality.QualityModel: marks each answer pass/fail (simulation)
        self.fault_rate = fault_rate
        self.fault_status = fault_status
        self.fault_specs = tuple(fault_specs)  # random faults drawn from these specs (default: fault_status)
        self._fault_hits: dict[str, int] = {}
        self._rng = random.Random(seed)
        self._seen: set[str] = set()
        self.calls = 0
        from ..cachesim import CacheSim  # per-model prompt caches with lifetimes (tierwise.cachesim)

        self.cache = CacheSim()
        self._rid = os.urandom(6).hex()

    def request_id(self) -> str:
        """A fresh id per answer, in the API's ``req_...`` form."""
        return f"req_offline_{self._rid}{self.calls:08x}"

    def _fault(self, headers: Mapping[str, str]) -> Fault | None:
        f = parse_fault(headers.get("x-tierwise-fault"))
        if f is not None and f.times is not None:
            spec = headers.get("x-tierwise-fault", "")
            self._fault_hits[spec] = hits = self._fault_hits.get(spec, 0) + 1
            if hits > f.times:
                return None
        if f is None and self.fault_rate and self._rng.random() < self.fault_rate:
            f = parse_fault(self._rng.choice(self.fault_specs)) if self.fault_specs else Fault(status=self.fault_status)
        return f

    def _headers(self, tokens: int = 0) -> dict[str, str]:
        return {"request-id": self.request_id(), "x-tierwise-upstream": "offline", **ratelimit_headers(self.calls, tokens)}

    def _refuse(self, status: int, kind: str, message: str, extra: Mapping[str, str] | None = None) -> Exception:
        hdrs = dict(self._headers(), **(extra or {}))
        return error_for_status(status, error_body(kind, message, hdrs["request-id"]), hdrs)

    async def send(self, path: str, body: bytes, *, headers: Mapping[str, str], stream: bool,
                   model: str | None = None) -> UpstreamResponse:
        self.calls += 1
        params = orjson.loads(body)
        fault = self._fault(headers)
        if fault and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault and fault.reset:
            raise UpstreamConnectionError("injected fault: connection reset before the first byte")
        if fault and fault.status:
            extra = {}
            if fault.retry_after is not None:
                extra["retry-after"] = str(fault.retry_after)
            elif fault.status == 429:
                extra["retry-after"] = "1"  # the API sends retry-after with every 429
            kind, message = _fault_error(fault.status)
            raise self._refuse(fault.status, kind, message, extra)
        route = path.split("?", 1)[0]  # the query (``?beta=true``) changes nothing here
        # more routes (batches, files) are dispatched here, before the Messages ones
        refused = refusal(route, params, headers)
        if refused is not None:
            raise self._refuse(400, "invalid_request_error", refused)
        if route.endswith("/count_tokens"):
            text, _ = _text_of(params)
            tokens = (len(text) + 3) // 4 + 4 * len(params.get("messages") or ()) + 3
            return UpstreamResponse(200, self._headers(tokens), body=orjson.dumps({"input_tokens": tokens}), upstream=self.name)
        foreign = foreign_thinking(params)
        if foreign is None and "tools" in params and not isinstance(params["tools"], list):
            foreign = "tools: Input should be a valid list"  # the API's 400 for a malformed tools field
        if foreign is not None:
            raise self._refuse(400, "invalid_request_error", foreign)
        message = synthesize(params, self._seen)
        message["usage"] = self.cache.apply(params, message["usage"], now())
        if self.quality is not None:
            self.quality.mark(message, params, headers)
        ttft, per_token = LATENCY[_family(message["model"])]
        ttft *= self.latency_scale
        per_token *= self.latency_scale
        hdrs = self._headers(message["usage"]["input_tokens"] + message["usage"]["output_tokens"])
        if not stream:
            delay = ttft + per_token * message["usage"]["output_tokens"]
            if delay > 0:
                await asyncio.sleep(delay)
            return UpstreamResponse(200, dict(hdrs, **{"content-type": "application/json"}), body=orjson.dumps(message), upstream=self.name)
        if ttft > 0:
            await asyncio.sleep(ttft)
        events = stream_events(message, per_token=per_token, fault=fault)
        return UpstreamResponse(200, dict(hdrs, **{"content-type": "text/event-stream"}),
                                chunks=_iter_events(events, fault), upstream=self.name)

    batch_delay = 0.0  # seconds before a Message Batch ends (0: it ends as it is created)

    async def request(self, method: str, path: str, *, headers: Mapping[str, str], body: Any = None,
                      stream: bool = False) -> UpstreamResponse:
        """Message Batches and Files, served in memory (``fake_batches``); each batched request is
        answered as ``send`` answers one, refusals included."""
        from .fake_batches import serve

        return await serve(self.rest_fake(), method, path, headers, body, stream, self.name)

    def rest_fake(self) -> Any:
        """The in-memory batches and files (a ``fake_batches.FakeRest``), made on first use."""
        rest = self.__dict__.get("_rest")
        if rest is None:
            from .fake_batches import FakeRest

            rest = self._rest = FakeRest(self._batch_answer, batch_delay=self.batch_delay)
        return rest

    async def _batch_answer(self, params: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        resp = await self.send("/v1/messages", orjson.dumps(dict(params, stream=False)), headers=headers, stream=False,
                               model=params.get("model") if isinstance(params.get("model"), str) else None)
        return orjson.loads(resp.body or b"{}")

    async def aclose(self) -> None:
        return None


def _fault_error(status: int) -> tuple[str, str]:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
             413: "request_too_large", 429: "rate_limit_error", 500: "api_error", 504: "timeout_error", 529: "overloaded_error"}
    kind = kinds.get(status, "api_error")
    return kind, f"injected fault: HTTP {status} ({kind})"


async def _iter_events(events: list[tuple[str, Any, float]], fault: Fault | None) -> AsyncIterator[bytes]:
    for i, (name, data, delay) in enumerate(events):
        if fault and fault.cut is not None and i >= fault.cut:
            raise UpstreamConnectionError("injected fault: upstream connection dropped mid-stream")
        if fault and fault.error_event is not None and i >= fault.error_event:
            yield format_event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "injected fault: Overloaded"}})
            return
        if fault and fault.malformed and i == 2:
            yield b"event: content_block_delta\ndata: {not json\n\n"
        if delay > 0:
            await asyncio.sleep(delay)
        yield format_event(name, data)


def now() -> float:  # small seam for tests
    return time.perf_counter()
