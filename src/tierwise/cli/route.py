"""``tierwise route``: show where a prompt would go and why, without calling any model."""

from __future__ import annotations

import json
import sys
from typing import Any, Optional

import typer
from rich.table import Table

from . import app
from ._common import fail, settings_from
from .report import new_console


def _known_tasks_message(task: str, registry: dict[str, str]) -> str:
    known = ", ".join(sorted(registry)) or "(none)"
    return f"unknown task type {task!r}; known task types: {known} (add it under [registry] in tierwise.toml)"


@app.command()
def route(
    prompt: str = typer.Argument(..., help="The prompt to route, or - to read it from stdin."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="A task type from the registry (as model=\"tierwise/<task>\")."),
    router: Optional[str] = typer.Option(None, "--router", help="Routing strategy to use instead of the configured one (heuristic, registry, fixed, random...)."),
    system: Optional[str] = typer.Option(None, "--system", help="A system prompt to route with."),
    max_tokens: int = typer.Option(1024, "--max-tokens", help="max_tokens of the request (counts toward the context window)."),
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Path to tierwise.toml."),
) -> None:
    """Show the routing decision for a prompt (tier, model, confidence, reasons). Calls nothing."""
    from ..dispatch import Dispatcher
    from ..errors import TierwiseError
    from ..reports.spend import fmt_usd

    text = sys.stdin.read() if prompt == "-" else prompt
    if not text.strip():
        fail("the prompt is empty: pass the text to route, or - to read it from stdin")
    if max_tokens < 1:
        fail(f"--max-tokens must be a positive integer (got {max_tokens})")
    if task is not None:
        task = task.strip().lower()
    try:
        settings = settings_from(config)
        if task is not None:
            strategies = settings.routing.get("strategies") or {}
            lenient = settings.routing.get("unknown_task", "error") == "default"
            if task not in settings.registry and task not in strategies and not lenient:
                fail(_known_tasks_message(task, settings.registry))
        if router:
            over = {"routing": {"strategies": {task: router}}} if task else {"routing": {"auto": router}}
            settings = settings_from(config, **over)
        dispatcher = Dispatcher(settings)
        body: dict[str, Any] = {"model": f"tierwise/{task}" if task else "auto", "max_tokens": max_tokens,
                                "messages": [{"role": "user", "content": text}]}
        if system:
            body["system"] = system
        plan = dispatcher.plan(body)
    except TierwiseError as exc:
        fail(str(exc))

    d = plan.decision
    catalog = settings.catalog
    model = catalog.get(plan.model_id)
    result: dict[str, Any] = {
        "tier": d.tier, "model": plan.model_id, "confidence": round(d.confidence, 4), "router": d.router,
        "task": plan.task, "reasons": list(d.reasons), "adapted": list(plan.adapted),
        "scores": d.scores or None,
    }
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return

    console = new_console()
    grid = Table(title="Routing decision (nothing was sent)", title_style="bold", show_header=False, box=None,
                 padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column()
    grid.add_row("Tier", f"[bold]{d.tier or '–'}[/bold]" + (" (default tier)" if d.tier == settings.default_tier else ""))
    grid.add_row("Model", plan.model_id)
    if model is not None:
        rates = model.price_at().rates
        grid.add_row("Price", f"{fmt_usd(rates.input)} in / {fmt_usd(rates.output)} out per million tokens")
    grid.add_row("Confidence", f"{d.confidence:.2f}")
    grid.add_row("Router", d.router or "–")
    grid.add_row("Task type", plan.task or "– (auto)")
    reasons = "\n".join(f"• {r}" for r in d.reasons) or "–"
    grid.add_row("Reasons", reasons)
    if plan.adapted:
        grid.add_row("Adapted", ", ".join(plan.adapted))
    if d.scores:
        grid.add_row("Scores", ", ".join(f"{k}={v:.2f}" for k, v in d.scores.items()))
    console.print(grid)
