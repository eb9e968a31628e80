"""Shared fixtures: temporary ledgers, a fake Anthropic server, and a real running proxy."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tierwise.config import Settings, load_settings

SSE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "anthropic-sse"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings isolated from the machine: no tierwise.toml from the cwd, no env leaking in."""
    over: dict[str, Any] = {"ledger": {"url": f"sqlite:///{tmp_path / 'ledger.db'}", "flush_interval": 0.05}}
    for k, v in overrides.items():
        over.setdefault(k, {}).update(v) if isinstance(v, dict) else over.__setitem__(k, v)
    return load_settings(None, overrides=over, environ={})


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)
    return make_settings(tmp_path)


@pytest.fixture
def fake_anthropic() -> Iterator[Any]:
    from tierwise.upstream.fakeserver import FakeAnthropic

    with FakeAnthropic() as fake:
        yield fake


class RunningProxy:
    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", loop="asyncio")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def state(self) -> Any:
        return self.app.state

    def __enter__(self) -> "RunningProxy":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("proxy did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
def proxy_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``proxy_factory(upstream_url=None, **settings_overrides)`` -> a running proxy (closed at teardown)."""
    from tierwise.server import create_app

    monkeypatch.chdir(tmp_path)
    started: list[RunningProxy] = []

    def factory(upstream_url: str | None = None, **overrides: Any) -> RunningProxy:
        up = overrides.pop("upstream", {})
        if upstream_url:
            up.update({"kind": "anthropic", "url": upstream_url})
        else:
            up.setdefault("kind", "offline")
            up.setdefault("offline", {"latency_scale": 0.0})
        s = make_settings(tmp_path, upstream=up, **overrides)
        p = RunningProxy(create_app(s), free_port())
        started.append(p.__enter__())
        return p

    yield factory
    for p in started:
        p.__exit__(None, None, None)


def pytest_report_header(config: Any) -> str:
    return f"tierwise tests; reference SSE fixtures at {SSE_DIR} ({'present' if SSE_DIR.exists() else 'missing'})"


os.environ.pop("ANTHROPIC_API_KEY", None)


# -- services: PostgreSQL and Redis ------------------------------------------------------
PG_BASE = os.environ.get("TIERWISE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TIERWISE_TEST_REDIS", "redis://127.0.0.1:6379/15")


def _service_missing(what: str, why: str) -> None:
    """In CI the services must be there: fail. On a laptop without them: skip, saying why."""
    msg = f"{what} not reachable ({why}); start it or set TIERWISE_TEST_PG / TIERWISE_TEST_REDIS"
    if os.environ.get("CI"):
        pytest.fail(msg + " -- CI must run these tests")
    pytest.skip(msg)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    try:
        import psycopg  # noqa: F401
    except ImportError:
        _service_missing("PostgreSQL driver psycopg", "not installed")
    schema = "tw_test_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(PG_BASE)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _service_missing("PostgreSQL at " + PG_BASE.split("@")[-1], str(exc.orig).splitlines()[0])
    sep = "&" if "?" in PG_BASE else "?"
    try:
        yield f"{PG_BASE}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def redis_url() -> str:
    try:
        import redis
    except ImportError:
        _service_missing("Redis client", "redis package not installed")
    try:
        r = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        r.ping()
        r.close()
    except Exception as exc:  # noqa: BLE001
        _service_missing("Redis at " + REDIS_URL, str(exc))
    return REDIS_URL
