"""Helpers for the evidence tests: send traffic through a real proxy and report outcomes."""

from __future__ import annotations

import time
from typing import Any

import httpx2


def send(proxy: Any, task: str | None = None, *, n: int = 1, user: str | None = None, prompt: str = "Hello there",
         stream: bool = False) -> list[httpx2.Response]:
    out = []
    with httpx2.Client(base_url=proxy.url, timeout=30) as c:
        for i in range(n):
            body: dict[str, Any] = {"model": f"tierwise/{task}" if task else "auto", "max_tokens": 64, "stream": stream,
                                    "messages": [{"role": "user", "content": f"{prompt} #{i}"}]}
            if user:
                body["metadata"] = {"user_id": user if n == 1 else f"{user}-{i}"}
            r = c.post("/v1/messages", json=body, headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})
            assert r.status_code == 200, r.text
            out.append(r)
    return out


def feedback(proxy: Any, request_id: str, **fields: Any) -> httpx2.Response:
    with httpx2.Client(base_url=proxy.url, timeout=30) as c:
        return c.post("/v1/feedback", json={"request_id": request_id, **fields})


def flushed(proxy: Any) -> None:
    led = proxy.state.ledger
    deadline = time.monotonic() + 10
    while True:
        assert led.flush(10)
        if len(led.rows()) >= proxy.state.recorded or time.monotonic() > deadline:
            return
        time.sleep(0.01)
