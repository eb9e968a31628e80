"""Inputs the API accepts are never a 500, and no input makes the proxy read or hold more than its limits."""

from __future__ import annotations

import socket

import httpx2
import orjson
import pytest

V = {"anthropic-version": "2023-06-01"}


def deep(depth: int) -> bytes:
    """A routed request whose tool schema nests ``depth`` levels deep (as raw JSON: Python's own
    encoder cannot write it)."""
    nest = b"[" * depth + b"1" + b"]" * depth
    return (b'{"model":"auto","max_tokens":30,"messages":[{"role":"user","content":"Classify: refund"}],'
            b'"tools":[{"name":"t","description":"d","input_schema":{"type":"object","properties":{"x":{"default":'
            + nest + b'}}}}]}')


@pytest.mark.parametrize("depth", [10, 254, 256, 600, 1000])
def test_deep_json_is_forwarded_not_a_500(fake_anthropic, proxy_factory, depth):
    proxy = proxy_factory(fake_anthropic.url)
    for model in (b'"auto"', b'"claude-haiku-5-5"'):  # routed (re-serialised) and passed through (raw bytes)
        raw = deep(depth).replace(b'"auto"', model)
        r = httpx2.post(proxy.url + "/v1/messages", content=raw, headers=dict(V, **{"content-type": "application/json",
                                                                                      "x-api-key": "sk-x"}), timeout=30)
        assert r.status_code == 200, r.text[:300]
        _, _, sent = fake_anthropic.requests[-1]
        got = orjson.loads(sent)["tools"][0]["input_schema"]["properties"]["x"]["default"]
        n = 0
        while isinstance(got, list):
            got, n = got[0], n + 1
        assert (n, got) == (depth, 1)


def test_deeper_than_the_parser_reads_is_a_400_not_a_500(proxy_factory):
    proxy = proxy_factory()
    r = httpx2.post(proxy.url + "/v1/messages", content=deep(2000), headers=dict(V, **{"content-type": "application/json"}),
                    timeout=30)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


def test_jsonbody_round_trips_any_depth_it_reads():
    from tierwise.jsonbody import dumps

    for depth in (1, 255, 256, 1024):
        obj = orjson.loads(b"[" * depth + b"]" * depth)
        assert dumps(obj) == b"[" * depth + b"]" * depth
    assert dumps({"a": "é\u2028", "b": 1.5, "c": None}) == orjson.dumps({"a": "é\u2028", "b": 1.5, "c": None})


def _raw_post(port: int, path: str, headers: list[str], body: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall((f"POST {path} HTTP/1.1\r\nhost: x\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode() + body)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_feedback_size_is_checked_before_the_body_is_read(proxy_factory):
    proxy = proxy_factory(monitor={"interval": 0.0})
    # announces 200 MiB and sends 1 KiB: refused from the header, without waiting for (or reading) the rest
    out = _raw_post(proxy.port, "/v1/feedback", ["content-type: application/json",
                                                 f"content-length: {200 * 1024 * 1024}"], b"{" + b" " * 1023)
    assert b" 413 " in out.split(b"\r\n", 1)[0] and b"request_too_large" in out
    # no content-length (chunked): cut off as soon as 64 KiB is passed
    with httpx2.Client() as c:
        def gen():
            yield b'{"request_id": "' + b"x" * 70_000
            yield b'"}'
        r = c.post(proxy.url + "/v1/feedback", content=gen(), headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 413


def test_giant_prompt_routes_on_a_bounded_view_and_is_forwarded_whole(fake_anthropic, proxy_factory):
    from tierwise.admission.limits import ROUTE_VIEW_CHARS, routing_view

    proxy = proxy_factory(fake_anthropic.url)
    text = "refund " * (3 * ROUTE_VIEW_CHARS // 7) + "Classify this."
    body = {"model": "auto", "max_tokens": 30, "system": "s" * 100_000,
            "messages": [{"role": "user", "content": "a" * 50_000}, {"role": "assistant", "content": "ok"},
                         {"role": "user", "content": [{"type": "text", "text": text}, {"type": "image", "source": {
                             "type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}]}
    view, chars = routing_view(body)
    vtext = sum(len(m["content"]) if isinstance(m["content"], str) else sum(len(b.get("text", "")) for b in m["content"])
                for m in view["messages"]) + len(view["system"])
    assert vtext <= ROUTE_VIEW_CHARS and chars > 3 * ROUTE_VIEW_CHARS // 2
    assert len(view["messages"]) == 3 and view["messages"][2]["content"][1]["type"] == "image"
    assert view["messages"][2]["content"][0]["text"].endswith("Classify this.")  # the tail is kept
    small = {"model": "auto", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    assert routing_view(small)[0] is small  # nearly every request: no copy at all
    r = httpx2.post(proxy.url + "/v1/messages", json=body, headers=dict(V, **{"x-api-key": "sk-x"}), timeout=30)
    assert r.status_code == 200, r.text[:300]
    _, _, sent = fake_anthropic.requests[-1]
    sent = orjson.loads(sent)
    assert sent["messages"][2]["content"][0]["text"] == text and sent["system"] == body["system"]
