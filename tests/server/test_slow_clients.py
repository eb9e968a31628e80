"""Slow and idle clients (tierwise.server.guard): half-open connections are timed out and capped,
and normal requests are served while thousands of them are held open."""

from __future__ import annotations

import select
import socket
import threading
import time

import httpx2
import pytest

from tierwise.cli.serve import uvicorn_options
from tierwise.server import create_app

from ..conftest import free_port, make_settings
from .test_sdk_end_to_end import ledger_rows

V = {"anthropic-version": "2023-06-01", "x-api-key": "sk-x"}
BODY = {"model": "auto", "max_tokens": 20, "messages": [{"role": "user", "content": "Classify: refund please"}]}


class GuardedProxy:
    def __init__(self, settings):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                                loop="asyncio", **uvicorn_options(settings))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def state(self):
        return self.app.state

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "proxy did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
def guarded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    started = []

    def make(**server):
        s = make_settings(tmp_path, upstream={"kind": "offline", "offline": {"latency_scale": 0.0}},
                          server=dict({"header_timeout": 1.0, "body_timeout": 1.0}, **server), monitor={"interval": 0.0})
        p = GuardedProxy(s).__enter__()
        started.append(p)
        return p

    yield make
    for p in started:
        p.__exit__()


def half_open(port: int, n: int) -> list[socket.socket]:
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: appl")  # and never the rest
        out.append(s)
    return out


def closed_by_server(s: socket.socket, within: float = 15.0) -> bytes | None:
    """What the server sent before closing, or None if it is still open after ``within`` seconds."""
    s.setblocking(False)
    got = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], 0.2)
        if r:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, BlockingIOError):
                return got
            if not chunk:
                return got
            got += chunk
    return None


def test_a_silent_connection_gets_a_408_and_is_closed(guarded):
    p = guarded()
    s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
    got = closed_by_server(s)
    assert got is not None and got.startswith(b"HTTP/1.1 408") and b"timeout_error" in got
    s2 = half_open(p.port, 1)[0]  # headers started, never finished: the same
    got = closed_by_server(s2)
    assert got is not None and got.startswith(b"HTTP/1.1 408")


def test_a_stalled_body_is_cut_and_recorded_as_a_disconnect(guarded):
    p = guarded()
    s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
    s.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-api-key: k\r\n"
              b"anthropic-version: 2023-06-01\r\ncontent-length: 5000\r\n\r\n{\"model\": ")
    assert closed_by_server(s) is not None
    deadline = time.monotonic() + 10
    while p.state.recorded < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    rows = ledger_rows(p, 1)
    assert rows and rows[-1]["status"] == 499 and rows[-1]["client_disconnected"]


def test_headers_larger_than_the_limit_are_a_431(guarded):
    p = guarded()
    s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
    s.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-junk: " + b"a" * (200 * 1024))
    got = closed_by_server(s)
    assert got is not None and got.startswith(b"HTTP/1.1 431")


def test_a_big_body_arriving_with_the_headers_is_not_mistaken_for_big_headers(guarded):
    p = guarded()
    big = dict(BODY, messages=[{"role": "user", "content": "x" * (3 * 1024 * 1024)}])
    r = httpx2.post(p.url + "/v1/messages", json=big, headers=V, timeout=30)
    assert r.status_code == 200, r.text[:200]


def test_keep_alive_connections_serve_several_requests(guarded):
    p = guarded()
    with httpx2.Client(headers=V, timeout=10) as c:
        for _ in range(3):
            assert c.post(p.url + "/v1/messages", json=BODY).status_code == 200
            time.sleep(0.3)  # idle between requests, under the keep-alive timeout


def test_past_max_connections_the_oldest_half_open_ones_make_room(guarded):
    p = guarded(header_timeout=60.0, max_connections=100)
    held = half_open(p.port, 150)
    try:
        # normal requests are still served while the server is full of half-open connections
        for _ in range(5):
            r = httpx2.post(p.url + "/v1/messages", json=BODY, headers=V, timeout=10)
            assert r.status_code == 200
        closed = sum(1 for s in held[:60] if closed_by_server(s, within=2.0) is not None)
        assert closed >= 50  # the oldest were closed to make room (well before their 60 s timeout)
        assert closed_by_server(held[-1], within=0.5) is None  # the newest are still open
    finally:
        for s in held:
            s.close()


def test_a_slow_but_honest_client_is_still_served(guarded):
    """Headers sent in pieces over ~2 s (read in pauses after the first half second) and finished
    before the header timeout: answered normally."""
    import orjson

    p = guarded(header_timeout=5.0)
    body = orjson.dumps(BODY)
    s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
    s.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\n")
    time.sleep(0.8)
    s.sendall(b"content-type: application/json\r\nx-api-key: sk-x\r\n")
    time.sleep(1.2)
    s.sendall(b"anthropic-version: 2023-06-01\r\nconnection: close\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
    got = closed_by_server(s, within=20)
    assert got is not None and got.startswith(b"HTTP/1.1 200"), got[:200] if got else got


def test_at_the_cap_with_only_fresh_connections_the_new_one_gets_a_529_not_a_reset(guarded):
    """Connections that just opened and have not sent yet are clients about to send: none is closed to
    make room; the newcomer past the cap gets Anthropic's 529 overloaded_error and a clean close."""
    p = guarded(header_timeout=60.0, max_connections=20)
    fresh = [socket.create_connection(("127.0.0.1", p.port), timeout=5) for _ in range(20)]
    try:
        time.sleep(0.3)
        late = socket.create_connection(("127.0.0.1", p.port), timeout=5)
        got = closed_by_server(late, within=10)
        assert got is not None and got.startswith(b"HTTP/1.1 529") and b"overloaded_error" in got
        assert all(closed_by_server(s, within=0.2) is None for s in fresh)  # none of them was closed
        assert p.server.config.http.stats["refused"] >= 1 and not p.server.config.http.stats["evicted"]
    finally:
        for s in fresh:
            s.close()


def test_a_keep_alive_connection_whose_next_request_is_waiting_is_not_closed():
    from tierwise.server.guard import _waiting_bytes

    class T:
        def __init__(self, sock):
            self.sock = sock

        def get_extra_info(self, name):
            return self.sock if name == "socket" else None

    a, b = socket.socketpair()
    try:
        assert not _waiting_bytes(T(a))
        b.sendall(b"POST /v1/messages HTTP/1.1\r\n")
        time.sleep(0.05)
        assert _waiting_bytes(T(a))
        assert a.recv(100).startswith(b"POST")  # the peek consumed nothing
    finally:
        a.close()
        b.close()
