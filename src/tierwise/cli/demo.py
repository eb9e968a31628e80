"""``tierwise demo``: send the bundled sample workload through a running proxy and show the savings.

The requests go through the official ``anthropic`` SDK pointed at the proxy (``base_url``), as an
application would. What each call cost comes from the proxy's ``x-tierwise-cost-usd`` header; what
it would have cost on the default tier is priced from the catalog on the same usage.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any, Optional

import typer
from rich.table import Table

from . import app
from ._common import fail, settings_from
from .report import fmt_int, money_table, new_console

__all__ = ["load_workload", "DemoResult", "summarize_results"]

_NANO = Decimal(10**9)


# ---------------------------------------------------------------------------- workload
def load_workload(path: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The bundled workload (or a JSONL file of ``{"task"?, "prompt", "system"?, "max_tokens"?}`` lines)."""
    from ..config import TASK_NAME
    from ..errors import ConfigError

    if path is None:
        text = resources.files("tierwise").joinpath("data/demo_workload.jsonl").read_text(encoding="utf-8")
        where = "demo_workload.jsonl"
    else:
        from ..files import read_user_text

        text, where = read_user_text(path, "a JSONL file", label="--workload"), str(path)
    items = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}:{i}: not valid JSON ({exc.msg})") from None
        if not isinstance(item, dict) or not isinstance(item.get("prompt"), str) or not item["prompt"].strip():
            raise ConfigError(f"{where}:{i}: each line needs a non-empty \"prompt\" string")
        task = item.get("task")
        if task is not None and (not isinstance(task, str) or not TASK_NAME.match(task)):
            raise ConfigError(f"{where}:{i}: \"task\" must be a task type name like classify_intent")
        mt = item.get("max_tokens", 512)
        if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
            raise ConfigError(f"{where}:{i}: \"max_tokens\" must be a positive integer")
        items.append({"task": task, "prompt": item["prompt"], "system": item.get("system"), "max_tokens": mt})
    if not items:
        raise ConfigError(f"{where}: the workload is empty")
    return items


# ---------------------------------------------------------------------------- results
@dataclass(slots=True)
class DemoResult:
    kind: str                      # the task type, or "auto"
    ok: bool
    tier: str | None = None
    model: str | None = None
    upstream: str | None = None
    cost_usd: Decimal | None = None
    usage: dict[str, int] = field(default_factory=dict)
    latency_ms: float = 0.0
    error: str | None = None


def _usage_dict(u: Any) -> dict[str, int]:
    def g(name: str) -> int:
        return int(getattr(u, name, 0) or 0)

    out = {"input_tokens": g("input_tokens"), "output_tokens": g("output_tokens"),
           "cache_read_input_tokens": g("cache_read_input_tokens"),
           "cache_creation_input_tokens": g("cache_creation_input_tokens")}
    detail = getattr(u, "cache_creation", None)
    if detail is not None:
        out["cache_creation"] = {"ephemeral_5m_input_tokens": int(getattr(detail, "ephemeral_5m_input_tokens", 0) or 0),
                                 "ephemeral_1h_input_tokens": int(getattr(detail, "ephemeral_1h_input_tokens", 0) or 0)}
    return out


def summarize_results(results: list[DemoResult], catalog: Any, default_tier: str) -> dict[str, Any]:
    """Per-tier and total rows in the shape of ``tierwise.reports.spend.summarize`` rows, plus per-kind routing."""
    import numpy as np

    from ..cost import Usage, price

    default_model = catalog.model_for_tier(default_tier)

    def empty() -> dict[str, Any]:
        return {"calls": 0, "errors": 0, "unpriced_calls": 0, "input_tokens": 0, "output_tokens": 0,
                "cache_read_tokens": 0, "cache_write_tokens": 0, "cost_nanos": 0, "default_cost_nanos": 0, "_lat": []}

    tiers: dict[str | None, dict[str, Any]] = {}
    total = empty()
    kinds: dict[str, dict[str, Any]] = {}
    upstreams: set[str] = set()
    for r in results:
        k = kinds.setdefault(r.kind, {"requests": 0, "errors": 0, "tiers": {}, "cost_nanos": 0})
        k["requests"] += 1
        row = tiers.setdefault(r.tier, empty())
        for acc in (row, total):
            acc["calls"] += 1
        if not r.ok:
            k["errors"] += 1
            for acc in (row, total):
                acc["errors"] += 1
            continue
        if r.upstream:
            upstreams.add(r.upstream)
        k["tiers"][r.tier or "(no tier)"] = k["tiers"].get(r.tier or "(no tier)", 0) + 1
        usage = Usage.from_api(r.usage)
        for acc in (row, total):
            acc["input_tokens"] += usage.input_tokens
            acc["output_tokens"] += usage.output_tokens
            acc["cache_read_tokens"] += usage.cache_read_tokens
            acc["cache_write_tokens"] += usage.cache_write_tokens
            acc["_lat"].append(r.latency_ms)
            if r.cost_usd is None:
                acc["unpriced_calls"] += 1
                continue
            nanos = int((r.cost_usd * _NANO).to_integral_value())
            acc["cost_nanos"] += nanos
            acc["default_cost_nanos"] += price(catalog, default_model.id, usage, day=None) or 0
        if r.cost_usd is not None:
            k["cost_nanos"] += int((r.cost_usd * _NANO).to_integral_value())

    def finish(acc: dict[str, Any]) -> dict[str, Any]:
        lat = acc.pop("_lat")
        saved = acc["default_cost_nanos"] - acc["cost_nanos"]
        p50, p95 = (float(v) for v in np.percentile(lat, [50, 95])) if lat else (None, None)
        acc.update(cost_usd=acc["cost_nanos"] / 1e9, default_cost_usd=acc["default_cost_nanos"] / 1e9,
                   savings_usd=saved / 1e9,
                   savings_pct=saved / acc["default_cost_nanos"] * 100 if acc["default_cost_nanos"] else None,
                   latency_p50_ms=p50, latency_p95_ms=p95, ttft_p50_ms=None)
        return acc

    order = {t: i for i, t in enumerate(catalog.tier_order)}
    by_tier = [dict(finish(acc), tier=t) for t, acc in sorted(tiers.items(), key=lambda kv: (kv[0] is None, order.get(kv[0], 99)))]
    return {"by_tier": by_tier, "total": finish(total), "by_kind": kinds, "upstreams": sorted(upstreams),
            "default_tier": default_tier, "default_model": default_model.id}


# ---------------------------------------------------------------------------- sending
def check_proxy(url: str, timeout: float = 3.0) -> dict[str, Any]:
    """``GET /healthz``: the proxy's status, or a clear failure."""
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the proxy is local: no $http_proxy
        with opener.open(url.rstrip("/") + "/healthz", timeout=timeout) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        fail(f"{url} answered HTTP {exc.code} on /healthz: is it a tierwise proxy? Start one with `make run`")
    except (urllib.error.URLError, OSError, ValueError):
        fail(f"no tierwise proxy at {url}: start it with `make run` (or `tierwise serve`)")
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("status") != "ok":
        fail(f"{url} is not a tierwise proxy (unexpected /healthz answer): start one with `make run`")
    return data


async def _send_all(url: str, items: list[dict[str, Any]], concurrency: int, progress: Any, task_id: Any) -> list[DemoResult]:
    import anthropic

    key = os.environ.get("ANTHROPIC_API_KEY") or "tierwise-demo"
    client = anthropic.AsyncAnthropic(base_url=url.rstrip("/"), api_key=key, max_retries=1, timeout=300.0)
    sem = asyncio.Semaphore(concurrency)

    async def one(item: dict[str, Any]) -> DemoResult:
        kind = item["task"] or "auto"
        kwargs: dict[str, Any] = {"model": f"tierwise/{item['task']}" if item["task"] else "auto",
                                  "max_tokens": item["max_tokens"],
                                  "messages": [{"role": "user", "content": item["prompt"]}]}
        if item.get("system"):
            kwargs["system"] = item["system"]
        async with sem:
            started = time.perf_counter()
            try:
                raw = await client.messages.with_raw_response.create(**kwargs)
                msg = await raw.parse()
            except anthropic.APIStatusError as exc:
                h = exc.response.headers
                result = DemoResult(kind, ok=False, tier=h.get("x-tierwise-tier"), model=h.get("x-tierwise-model"),
                                    error=f"HTTP {exc.status_code}")
            except anthropic.APIError as exc:
                result = DemoResult(kind, ok=False, error=type(exc).__name__)
            else:
                h = raw.headers
                cost: Decimal | None = None
                try:
                    cost = Decimal(h["x-tierwise-cost-usd"]) if h.get("x-tierwise-cost-usd") else None
                except InvalidOperation:
                    cost = None
                result = DemoResult(kind, ok=True, tier=h.get("x-tierwise-tier"), model=h.get("x-tierwise-model") or msg.model,
                                    upstream=h.get("x-tierwise-upstream"), cost_usd=cost, usage=_usage_dict(msg.usage))
            result.latency_ms = (time.perf_counter() - started) * 1000.0
        progress.advance(task_id)
        return result

    try:
        return list(await asyncio.gather(*(one(it) for it in items)))
    finally:
        await client.close()


# ---------------------------------------------------------------------------- command
@app.command()
def demo(
    url: str = typer.Option("http://127.0.0.1:8787", "--url", help="The running tierwise proxy."),
    n: Optional[int] = typer.Option(None, "--n", help="How many requests to send (default: the whole workload; cycles past it)."),
    concurrency: int = typer.Option(4, "--concurrency", help="Requests in flight at once."),
    workload: Optional[str] = typer.Option(None, "--workload", help="A JSONL workload of your own instead of the bundled one."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Path to tierwise.toml (catalog and default tier)."),
    shadow: bool = typer.Option(False, "--shadow", help="Run the shadow loop end to end in-process on the offline "
                                "upstream's simulated truth (no proxy, key or network needed)."),
    per_task: int = typer.Option(400, "--per-task", help="With --shadow: live calls per task type."),
    share: float = typer.Option(0.5, "--share", help="With --shadow: the share of live calls replayed."),
    workdir: Optional[str] = typer.Option(None, "--workdir", help="With --shadow: keep the ledger and tierwise.toml here."),
) -> None:
    """Send a sample workload through the running proxy and show which tier got what, and the savings."""
    if shadow:
        from .shadow import run_shadow_demo

        run_shadow_demo(per_task=per_task, share=share, workdir=workdir)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from ..errors import TierwiseError
    from ..reports.spend import fmt_usd, savings_sentence, usd_places

    if n is not None and n < 1:
        fail(f"--n must be at least 1 (got {n})")
    if concurrency < 1:
        fail(f"--concurrency must be at least 1 (got {concurrency})")
    if not url.startswith(("http://", "https://")):
        fail(f"--url {url!r}: expected http://host:port")
    try:
        settings = settings_from(config)
        items = load_workload(workload)
    except TierwiseError as exc:
        fail(str(exc))
    count = n or len(items)
    batch = [items[i % len(items)] for i in range(count)]
    check_proxy(url)

    console = new_console()
    with Progress(TextColumn("[bold]sending[/bold]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False, disable=as_json) as progress:
        task_id = progress.add_task("demo", total=count)
        results = asyncio.run(_send_all(url, batch, concurrency, progress, task_id))

    summary = summarize_results(results, settings.catalog, settings.default_tier)
    total = summary["total"]
    if as_json:
        typer.echo(json.dumps({"url": url, "requests": count, **summary,
                               "summary": savings_sentence(total, summary["default_tier"], summary["default_model"])},
                              indent=2, default=str))
        return
    if total["errors"] == total["calls"]:
        console.print(f"[bold red]Every request failed[/bold red] ({', '.join(sorted({r.error or '?' for r in results}))}): "
                      "check the proxy's log.")
        raise typer.Exit(1)

    routed = Table(title="Where the requests went", title_style="bold", header_style="bold cyan", show_edge=False)
    routed.add_column("Request (model)", style="bold", no_wrap=True)
    routed.add_column("Requests", justify="right", no_wrap=True)
    routed.add_column("Routed to")
    routed.add_column("Errors", justify="right", no_wrap=True)
    order = {t: i for i, t in enumerate(settings.catalog.tier_order)}
    for kind, k in sorted(summary["by_kind"].items(), key=lambda kv: (kv[0] == "auto", kv[0])):
        spread = ", ".join(f"{t} ×{c}" for t, c in sorted(k["tiers"].items(), key=lambda tc: order.get(tc[0], 99)))
        name = "auto" if kind == "auto" else f"tierwise/{kind}"
        routed.add_row(name, fmt_int(k["requests"]), spread or "–",
                       f"[red]{k['errors']}[/red]" if k["errors"] else "0")
    console.print(routed)
    console.print()
    rows = [(r["tier"] or "(failed before routing)",
             dict(r, _extra=settings.catalog.tiers.get(r["tier"], "") if r["tier"] else "")) for r in summary["by_tier"]]
    console.print(money_table(f"Demo: {count} requests through {url}", "Tier", rows, total, settings.default_tier,
                              extra="Model", ttft=False, width=console.width,
                              caption="Latency is measured by this client, end to end, non-streaming."))
    if "offline" in summary["upstreams"]:
        console.print("[yellow]The proxy's upstream is offline: answers were synthetic (no API key set), so token "
                      "counts and costs are those of the synthetic answers.[/yellow]")
    if total["unpriced_calls"]:
        console.print(f"[yellow]{total['unpriced_calls']} answer(s) came without a price and are left out of the savings.[/yellow]")
    places = usd_places([total["cost_usd"], total["default_cost_usd"]])
    console.print()
    console.print(f"[bold green]{savings_sentence(total, summary['default_tier'], summary['default_model'], fmt=lambda v: fmt_usd(v, places))}[/bold green]")
    console.print("See the ledger's view with [cyan]tierwise report[/cyan].")
