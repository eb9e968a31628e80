"""The client matrix: real client libraries, installed from the registries, against a running proxy.

Each client has a driver script (``py/<client>.py`` run by the client's own venv, ``node/<client>.mjs``
run by node) that takes the proxy's URL, runs every feature it offers and prints one JSON object,
``{cell: {...observations...} | {"error": "..."}}``. Every prompt carries a ``[cell:NAME]`` tag, and the
proxy stores prompts, so a test finds the ledger rows a cell wrote.

Each driver runs once per module against two proxies, one per upstream mode (a python driver in one
interpreter for both, through ``py/_run.py``; a node driver once per proxy):

- ``offline``: ``tierwise serve`` with no key (the embedded offline upstream);
- ``forwarding``: tierwise forwarding to ``FakeAnthropic`` (the HTTP fake, which answers compressed
  whenever the request's Accept-Encoding allows; ``fake.encodings`` tells).

The environments are built by ``make clients`` (``make test`` does it first). A missing environment,
node or npm skips with the reason on a laptop and FAILS under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from ..conftest import RunningProxy, free_port, make_settings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NODE_DIR = HERE / "node"
VENVS = Path(os.environ.get("TIERWISE_CLIENT_VENVS", ROOT / ".venv-clients"))
MODES = ("offline", "forwarding")
TIMEOUT = float(os.environ.get("TIERWISE_CLIENT_TIMEOUT", "180"))


def missing(what: str, why: str) -> None:
    """Like the services' fixtures: skip on a laptop, fail under CI=true."""
    msg = f"{what} not available ({why}); run `make clients`"
    if os.environ.get("CI"):
        pytest.fail(msg + " -- CI must run the client matrix")
    pytest.skip(msg)


def client_python(env: str) -> str:
    """The interpreter of a client venv (``main`` or ``llm``); ``tierwise`` is this test run's own."""
    if env == "tierwise":
        return sys.executable
    py = VENVS / env / "bin" / "python"
    if not (VENVS / env / ".installed").exists() or not py.exists():
        missing(f"client venv {VENVS / env}", "not installed")
    return str(py)


def node_command(script: str) -> list[str]:
    node = shutil.which("node")
    if node is None:
        missing("node", "not on PATH")
    if not (NODE_DIR / "node_modules" / ".installed").exists():
        missing("node clients in tests/clients/node/node_modules", "npm ci has not run")
    return [node, str(NODE_DIR / script)]


@dataclass
class ClientRun:
    """One driver run: its JSON cells, the proxy it talked to, and the upstream behind it."""

    client: str
    mode: str
    cells: dict[str, Any]
    proxy: RunningProxy
    fake: Any | None
    stderr: str
    seconds: float
    _rows: list[dict[str, Any]] | None = field(default=None, repr=False)

    def cell(self, name: str) -> dict[str, Any]:
        if name not in self.cells:
            pytest.fail(f"{self.client} ({self.mode}) reported no cell {name!r}; stderr:\n{self.stderr[-3000:]}")
        got = self.cells[name]
        if isinstance(got, dict) and got.get("error"):
            pytest.fail(f"{self.client} ({self.mode}) cell {name!r} failed: {got['error']}")
        return got

    def rows(self, name: str | None = None) -> list[dict[str, Any]]:
        if self._rows is None:
            self._rows = ledger_rows(self.proxy)
        if name is None:
            return self._rows
        tag = f"[cell:{name}]"
        return [r for r in self._rows if tag in (r.get("prompt") or "")]

    def ok_rows(self, name: str, n: int = 1) -> list[dict[str, Any]]:
        """The cell's successful, priced ledger rows (at least ``n``)."""
        rows = [r for r in self.rows(name) if r["status"] == 200]
        assert len(rows) >= n, f"{self.client} ({self.mode}) {name}: {len(rows)} ledger rows, want >= {n}: {self.rows(name)}"
        for r in rows:
            assert r["cost_nanos"] and r["cost_nanos"] > 0, r
            assert r["model"] and r["model"].startswith("claude-"), r
            # a prompt cached up to its last block reports its tokens as cache reads/writes, input_tokens ~0
            prompt = r["input_tokens"] + r["cache_read_tokens"] + r["cache_write_5m_tokens"] + r["cache_write_1h_tokens"]
            assert r["output_tokens"] > 0 and prompt > 0, r
        return rows


TIMINGS: list[tuple[str, str, float]] = []  # (client, mode, seconds the driver ran)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.section("client matrix: driver wall time")
        for client, mode, secs in TIMINGS:
            terminalreporter.write_line(f"{client:<22} {mode:<11} {secs:6.1f} s")
        terminalreporter.write_line(f"{'total':<34} {sum(t for *_, t in TIMINGS):6.1f} s")


def ledger_rows(proxy: RunningProxy) -> list[dict[str, Any]]:
    led = proxy.state.ledger
    deadline = time.monotonic() + 10
    while proxy.state.inflight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert led.flush(10)
    return led.rows()


def start_proxy(tmp: Path, mode: str) -> tuple[RunningProxy, Any]:
    from tierwise.server import create_app
    from tierwise.upstream.fakeserver import FakeAnthropic

    fake = None
    if mode == "offline":
        up: dict[str, Any] = {"kind": "offline", "offline": {"latency_scale": 0.0}}
    else:
        fake = FakeAnthropic().__enter__()  # compresses whenever the Accept-Encoding allows
        up = {"kind": "anthropic", "url": fake.url}
    settings = make_settings(tmp, upstream=up, ledger={"store_prompts": True})
    return RunningProxy(create_app(settings), free_port()).__enter__(), fake


def client_env(home: Path, base_url: str) -> dict[str, str]:
    """A clean environment: a temporary HOME, a dummy key, the proxy as the Anthropic base URL,
    and every client's phone-home switched off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "OPENAI_", "LLM_"))}
    env.update({
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
        "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "sk-ant-dummy-client-key",
        "TIERWISE_PROXY_URL": base_url,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False", "LITELLM_LOG": "ERROR",
        "LLM_USER_PATH": str(home / "llm"), "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1", "DISABLE_BUG_COMMAND": "1", "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
        "DO_NOT_TRACK": "1", "PYTHONUNBUFFERED": "1", "NODE_NO_WARNINGS": "1",
    })
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(k, None)
    return env


def run_driver(cmd: list[str], env: dict[str, str], cwd: Path, what: str) -> tuple[dict[str, Any], str]:
    try:
        p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{what}: driver timed out after {TIMEOUT:.0f}s; stderr:\n{(exc.stderr or b'')[-3000:]!r}")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        pytest.fail(f"{what}: driver exited {p.returncode}\nstdout:\n{p.stdout[-2000:]}\nstderr:\n{p.stderr[-4000:]}")
    return json.loads(lines[-1]), p.stderr


@pytest.fixture(scope="module")
def client_runs(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``client_runs(mode)`` -> the module's driver (its ``DRIVER`` = (kind, env-or-script)) run once per mode."""
    kind, target = request.module.DRIVER
    client = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    runs: dict[str, ClientRun] = {}
    opened: list[tuple[RunningProxy, Any]] = []
    old_cwd = os.getcwd()

    def get(mode: str) -> ClientRun:
        if mode in runs:
            return runs[mode]
        if kind == "python":
            cmd = [client_python(target[0]), str(HERE / "py" / "_run.py"), str(HERE / "py" / target[1])]
        elif kind == "claude":  # the native binary npm installed, driven from tierwise's interpreter
            node_command(target)
            cmd = [sys.executable, str(HERE / "py" / "_run.py"), str(HERE / "py" / target)]
        else:
            cmd = node_command(target)
        tmp = tmp_path_factory.mktemp(client)
        os.chdir(tmp)  # the proxies must not read a tierwise.toml from the work tree
        proxies = {}
        for m in MODES:  # both modes' proxies up front: a python driver runs once for both (imports paid once)
            (tmp / m).mkdir()
            proxies[m] = start_proxy(tmp / m, m)
            opened.append(proxies[m])
        home = tmp / "home"
        (home / ".config").mkdir(parents=True)
        env = client_env(home, proxies[mode][0].url)
        t0 = time.monotonic()
        if kind == "node":  # node starts fast: one run per proxy
            for m, (proxy, fake) in proxies.items():
                t1 = time.monotonic()
                cells, stderr = run_driver(cmd + [proxy.url], dict(env, ANTHROPIC_BASE_URL=proxy.url, TIERWISE_PROXY_URL=proxy.url),
                                           tmp / m, f"{client} ({m})")
                runs[m] = ClientRun(client, m, cells, proxy, fake, stderr, time.monotonic() - t1)
        else:
            urls = [proxies[m][0].url for m in MODES]
            per_url, stderr = run_driver(cmd + urls, env, tmp, client)
            for m in MODES:
                proxy, fake = proxies[m]
                runs[m] = ClientRun(client, m, per_url[proxy.url], proxy, fake, stderr, time.monotonic() - t0)
        TIMINGS.append((client, "+".join(MODES), time.monotonic() - t0))
        return runs[mode]

    yield get
    os.chdir(old_cwd)
    for proxy, fake in opened:
        proxy.__exit__(None, None, None)
        if fake is not None:
            fake.__exit__(None, None, None)


@pytest.fixture(params=MODES)
def run(request: pytest.FixtureRequest, client_runs: Any) -> ClientRun:
    return client_runs(request.param)
