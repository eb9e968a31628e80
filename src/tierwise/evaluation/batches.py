"""Message Batches backends for ``tierwise eval run --batch`` (half price, asynchronous).

- :class:`SDKBatches`: the Anthropic Message Batches API through the official SDK, at the
  configured ``upstream.url`` (so a gateway or a local test server works too);
- :class:`OfflineBatches`: the same protocol answered in-process by the offline upstream's
  synthesiser (deterministic synthetic answers, billed at the batch discount).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import TYPE_CHECKING, Any, AsyncIterator, Mapping

from ..errors import APIError, ConfigError, UpstreamConnectionError

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["SDKBatches", "OfflineBatches", "batches_for"]


class SDKBatches:
    def __init__(self, base_url: str, api_key: str | None, *, timeout: float = 600.0) -> None:
        import anthropic

        if not api_key:
            raise ConfigError("batch mode on the Anthropic API needs an API key in the environment (ANTHROPIC_API_KEY)")
        self._client = anthropic.AsyncAnthropic(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=3)

    def __repr__(self) -> str:  # never show the key
        return "SDKBatches()"

    async def _call(self, coro: Any) -> Any:
        import anthropic

        try:
            return await coro
        except anthropic.APIStatusError as exc:
            from ..errors import error_for_status

            raise error_for_status(exc.status_code, exc.response.content if exc.response is not None else b"") from None
        except anthropic.APIConnectionError as exc:
            raise UpstreamConnectionError(f"Message Batches API unreachable: {exc}") from None

    async def submit(self, requests: list[dict[str, Any]]) -> str:
        batch = await self._call(self._client.messages.batches.create(requests=requests))  # type: ignore[arg-type]
        return str(batch.id)

    async def wait(self, batch_id: str, poll_interval: float) -> None:
        while True:
            batch = await self._call(self._client.messages.batches.retrieve(batch_id))
            if batch.processing_status == "ended":
                return
            await asyncio.sleep(poll_interval)

    async def results(self, batch_id: str) -> AsyncIterator[tuple[str, dict[str, Any] | None, str | None]]:
        stream = await self._call(self._client.messages.batches.results(batch_id))
        async for entry in stream:
            res = entry.result
            if res.type == "succeeded":
                yield entry.custom_id, res.message.model_dump(mode="json"), None
            else:
                err = getattr(res, "error", None)
                detail = getattr(getattr(err, "error", None), "message", None) or res.type
                yield entry.custom_id, None, f"batch result {res.type}: {detail}"


class OfflineBatches:
    """In-process batches over the offline synthesiser. Batches live as long as this object."""

    def __init__(self) -> None:
        self._batches: dict[str, list[dict[str, Any]]] = {}

    async def submit(self, requests: list[dict[str, Any]]) -> str:
        h = hashlib.blake2b(repr([(r["custom_id"], r["params"].get("model")) for r in requests]).encode(), digest_size=10)
        bid = "msgbatch_offline_" + h.hexdigest()
        self._batches[bid] = requests
        return bid

    async def wait(self, batch_id: str, poll_interval: float) -> None:
        if batch_id not in self._batches:
            raise APIError(f"offline batch {batch_id} is gone (offline batches do not outlive the process); "
                           "run again to resubmit", status=404)

    async def results(self, batch_id: str) -> AsyncIterator[tuple[str, dict[str, Any] | None, str | None]]:
        from ..upstream.offline import synthesize

        for r in self._batches.pop(batch_id, []):
            yield r["custom_id"], synthesize(r["params"]), None


def batches_for(settings: "Settings", environ: Mapping[str, str] | None = None) -> SDKBatches | OfflineBatches:
    env = os.environ if environ is None else environ
    if settings.upstream_kind(env) == "offline":
        return OfflineBatches()
    up = settings.upstream
    return SDKBatches(up["url"], env.get(up["api_key_env"]), timeout=float(up["timeout"]))
