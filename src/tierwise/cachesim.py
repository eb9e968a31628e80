"""A prompt-cache simulator that follows Anthropic's documented rules, and the price of a model switch.

Rules simulated (platform docs on prompt caching; claude-platform.md for the 5.5 models):

* caches are per model: a prefix written on Sonnet is no hit on Opus or Haiku;
* the prefix is ``tools``, then ``system``, then ``messages``, block by block; a block carrying
  ``cache_control`` is a breakpoint; at each breakpoint the API looks for the longest cached prefix
  ending at that block or at one of the ``LOOKBACK`` (20) block boundaries before it;
* a hit is read (``cache_read_input_tokens``) and refreshes that entry's lifetime; the blocks from
  the hit up to the last breakpoint are written (``cache_creation``), at the lifetime of the
  breakpoint that closes them (``ttl: "1h"`` or the default 5 minutes); the rest is plain input;
* a prefix shorter than the model's minimum cacheable length is neither written nor read (512
  tokens on the 5.5 models per claude-platform.md; 1,024 for other models);
* tokens are estimated from characters (4 a token), as the offline upstream counts them.

:class:`CacheSim` is used by the offline upstream (so ``make run`` with Claude Code shows cache
reads and writes per model) and by ``bench/agent_replay.py``. :func:`switch_reckoning` is what the
``prior`` router uses to decide whether moving a conversation to another model pays.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import orjson

from . import jsonbody

if TYPE_CHECKING:
    from .catalog import Model

__all__ = ["CacheSim", "Block", "blocks_of", "min_cacheable", "switch_reckoning", "Reckoning", "LOOKBACK"]

LOOKBACK = 20
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


def min_cacheable(model_id: str) -> int:
    return 512 if "-5-5" in model_id else 1024


@dataclass(frozen=True, slots=True)
class Block:
    ident: bytes           # what makes the block itself (hashed into the running prefix key)
    tokens: int
    ttl: str | None        # "5m" / "1h" when the block is a breakpoint, else None


def _chars(block: Any) -> int:
    if isinstance(block, str):
        return len(block)
    if not isinstance(block, dict):
        return 0
    n = 0
    for key in ("text", "thinking", "data", "content", "description"):
        v = block.get(key)
        if isinstance(v, str):
            n += len(v)
        elif isinstance(v, list):
            n += sum(_chars(b) for b in v)
    if "input" in block or "input_schema" in block:
        n += len(jsonbody.dumps(block.get("input") or block.get("input_schema") or {}))
    return n or 8


def _ttl(block: Any) -> str | None:
    cc = block.get("cache_control") if isinstance(block, dict) else None
    if not isinstance(cc, dict):
        return None
    return "1h" if cc.get("ttl") == "1h" else "5m"


def blocks_of(params: Mapping[str, Any]) -> list[Block]:
    """A request's prefix as blocks, in the order the API caches it (tools, system, messages)."""
    out: list[Block] = []

    def add(block: Any, extra: bytes = b"") -> None:
        # the cache_control marker is not content: a prefix written with the breakpoint on its last
        # block is found again when the next turn moves the breakpoint further on
        if isinstance(block, dict):
            try:
                ident = extra + orjson.dumps({k: v for k, v in block.items() if k != "cache_control"},
                                             option=orjson.OPT_SORT_KEYS)
            except TypeError:  # nested deeper than orjson writes (the API accepts it): the stdlib's bytes
                ident = extra + jsonbody.dumps({k: v for k, v in block.items() if k != "cache_control"})
        else:
            ident = extra + str(block).encode("utf-8", "surrogatepass")
        out.append(Block(ident, (_chars(block) + 3) // 4, _ttl(block)))

    tools = params.get("tools")
    if isinstance(tools, list):
        for t in tools:
            add(t, b"T")
    system = params.get("system")
    if isinstance(system, str):
        add(system, b"S")
    elif isinstance(system, list):
        for b in system:
            add(b, b"S")
    for m in params.get("messages") or ():
        if not isinstance(m, dict):
            continue
        role = str(m.get("role")).encode()
        content = m.get("content")
        if isinstance(content, str):
            add(content, b"M" + role)
        elif isinstance(content, list):
            for b in content:
                add(b, b"M" + role)
    return out


@dataclass(slots=True)
class Accounting:
    input_tokens: int
    cache_read_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int

    def as_usage(self) -> dict[str, Any]:
        w = self.cache_write_5m_tokens + self.cache_write_1h_tokens
        return {"input_tokens": self.input_tokens, "cache_creation_input_tokens": w,
                "cache_read_input_tokens": self.cache_read_tokens,
                "cache_creation": {"ephemeral_5m_input_tokens": self.cache_write_5m_tokens,
                                   "ephemeral_1h_input_tokens": self.cache_write_1h_tokens}}


class CacheSim:
    """Per-model prefix caches with lifetimes; bounded (least recently used entries go first)."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        # (model, prefix key) -> (expiry, lifetime): a read refreshes the entry for its own lifetime
        self._live: OrderedDict[tuple[str, bytes], tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._live)

    def account(self, model: str, blocks: Iterable[Block], now: float) -> Accounting:
        blocks = list(blocks)
        keys: list[bytes] = []
        cum: list[int] = []
        h = hashlib.blake2b(model.encode(), digest_size=16)
        total = 0
        for b in blocks:
            h.update(hashlib.blake2b(b.ident, digest_size=16).digest())
            keys.append(h.copy().digest())
            total += b.tokens
            cum.append(total)
        breaks = [i for i, b in enumerate(blocks) if b.ttl]
        if not breaks:
            return Accounting(total, 0, 0, 0)
        floor = min_cacheable(model)
        live = self._live
        hit = -1
        for bp in reversed(breaks):
            for j in range(bp, max(-1, bp - LOOKBACK - 1), -1):
                entry = live.get((model, keys[j]))
                if entry is not None and entry[0] > now and cum[j] >= floor:
                    hit = j
                    break
            if hit >= 0:
                break
        read = cum[hit] if hit >= 0 else 0
        if hit >= 0:
            lifetime = live[(model, keys[hit])][1]
            live[(model, keys[hit])] = (now + lifetime, lifetime)
            live.move_to_end((model, keys[hit]))
        w5 = w1 = 0
        prev = read
        for bp in breaks:
            if bp <= hit or cum[bp] < floor:
                continue
            seg = cum[bp] - prev
            ttl = blocks[bp].ttl or "5m"
            if ttl == "1h":
                w1 += seg
            else:
                w5 += seg
            prev = cum[bp]
            live[(model, keys[bp])] = (now + TTL_SECONDS[ttl], TTL_SECONDS[ttl])
            live.move_to_end((model, keys[bp]))
        while len(live) > self.capacity:
            live.popitem(last=False)
        return Accounting(total - prev, read, w5, w1)

    def apply(self, params: Mapping[str, Any], usage: dict[str, Any], now: float) -> dict[str, Any]:
        """Rewrite a synthetic answer's usage with this simulation's cache accounting (the offline
        upstream's hook); the prompt's total tokens stay what the upstream counted."""
        model = str(params.get("model") or "")
        acc = self.account(model, blocks_of(params), now)
        total = int(usage.get("input_tokens") or 0) + int(usage.get("cache_creation_input_tokens") or 0) + int(
            usage.get("cache_read_input_tokens") or 0)
        cached = acc.cache_read_tokens + acc.cache_write_5m_tokens + acc.cache_write_1h_tokens
        if cached > total:  # the estimates differ slightly; never report more than the prompt
            total = cached + acc.input_tokens
        return {**usage, **acc.as_usage(), "input_tokens": total - cached}


# ----------------------------------------------------------------------------- the price of a switch
@dataclass(frozen=True, slots=True)
class Reckoning:
    stay_usd: float        # expected cost over the horizon on the current model
    switch_usd: float      # ... on the candidate model (its cache written first)
    turns: int
    prefix_tokens: int
    ttl: str
    margin: float = 0.0    # the share of the stay cost a move must save (the horizon is a guess)

    @property
    def pays(self) -> bool:
        return self.switch_usd < self.stay_usd * (1.0 - self.margin)

    def text(self, current: str, candidate: str) -> str:
        verdict = "pays" if self.pays else "does not pay" + (f" (must save {self.margin:.0%})" if self.margin else "")
        return (f"switch {current} -> {candidate} {verdict}: {self.prefix_tokens:,} cached tokens; "
                f"{self.turns} turn(s) ${self.switch_usd:.4f} on {candidate} (cache re-written, {self.ttl}) "
                f"vs ${self.stay_usd:.4f} staying (cache read)")


def _rates(model: "Model", prompt_tokens: int) -> tuple[float, float, float, float, float]:
    r = model.price_at(None).rates_for(prompt_tokens)
    return (float(r.input), float(r.output), float(r.cache_write_5m), float(r.cache_write_1h), float(r.cache_read))


def switch_reckoning(current: "Model", candidate: "Model", *, prefix_tokens: int, new_tokens: int,
                     output_tokens: int, turns: int = 1, ttl: str = "5m", growth_tokens: int = 0,
                     margin: float = 0.0) -> Reckoning:
    """Expected cost of the next ``turns`` turns staying on ``current`` (its cache holds the
    ``prefix_tokens`` prefix; ``new_tokens`` are new this turn) against moving to ``candidate``
    (nothing cached there: the whole prompt is written first). Each later turn adds
    ``growth_tokens`` new tokens and reads the rest. Long-context rates (Haiku 5.5 past 100k
    prompt tokens) apply per turn. USD."""
    w = 3 if ttl == "1h" else 2

    def cost(model: "Model", cached: int) -> float:
        total = 0.0
        prompt = prefix_tokens + new_tokens
        read, write = cached, prompt - cached
        for _ in range(max(1, turns)):
            r = _rates(model, prompt)
            total += (read * r[4] + write * r[w] + output_tokens * r[1]) / 1e6
            read, write = prompt + output_tokens, growth_tokens
            prompt = read + write
        return total

    return Reckoning(stay_usd=cost(current, prefix_tokens), switch_usd=cost(candidate, 0), turns=max(1, turns),
                     prefix_tokens=prefix_tokens, ttl=ttl, margin=margin)
