"""``tierwise calibrate``: pick the learned router's tolerance so a sample of prompts lands on a
target tier mix (``--mix 70/25/5``) or a cost budget, and write it to ``tierwise.toml``.

The knob is written to the table ``[routing.options.learned]`` (``tolerance``, and ``artifact``
when ``--router`` is given), the options the dispatcher passes to the ``learned`` strategy.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer

from . import app

TABLE = "routing.options.learned"


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(2)


def parse_mix(text: str, rungs: int) -> list[float]:
    """'70/25/5' -> fractions per rung (cheapest first); parts beyond the ladder fold into the last rung."""
    try:
        parts = [float(p) for p in re.split(r"[/,:]", text) if p.strip()]
    except ValueError:
        raise ValueError(f"--mix {text!r}: expected numbers like 70/25/5") from None
    if len(parts) < 2 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise ValueError(f"--mix {text!r}: expected at least two non-negative shares like 70/30")
    if len(parts) > rungs:
        parts = parts[: rungs - 1] + [sum(parts[rungs - 1:])]
    while len(parts) < rungs:
        parts.append(0.0)
    total = sum(parts)
    return [p / total for p in parts]


def write_table(path: Path, values: dict[str, object], table: str = TABLE) -> None:
    """Replace (or append) ``[table]`` in a TOML file, keeping everything else as written."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = text.splitlines()
    out: list[str] = []
    skipping = False
    header = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    for line in lines:
        m = header.match(line)
        if m:
            skipping = m.group(1).replace('"', "") == table
            if skipping:
                continue
        if not skipping:
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    body = [f"[{table}]"]
    for k, v in values.items():
        if isinstance(v, str):
            body.append(f'{k} = "{v}"')
        elif isinstance(v, float):
            body.append(f"{k} = {v:.6g}" if "e" not in f"{v:.6g}" else f"{k} = {v!r}")
        else:
            body.append(f"{k} = {v}")
    path.write_text(("\n".join(out) + "\n\n" if out else "") + "\n".join(body) + "\n", encoding="utf-8")


@app.command()
def calibrate(
    prompts: str = typer.Argument(..., help="A sample of prompts (JSONL with id and prompt per line)."),
    mix: Optional[str] = typer.Option(None, "--mix", help="Target share per rung/tier, cheapest first, e.g. 70/25/5."),
    budget: Optional[float] = typer.Option(None, "--budget", help="Target mean cost per prompt in USD (from the "
                                           "artifact's mean cost per rung)."),
    router: Optional[str] = typer.Option(None, "--router", help="Artifact (default: the shipped one)."),
    config: str = typer.Option("tierwise.toml", "--config", "-c", help="Config file to write the knob to."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the knob, do not write the config."),
) -> None:
    """Choose the tolerance for a tier mix or a budget and write [routing.options.learned]."""
    import numpy as np

    from ..errors import ConfigError
    from ..outcomes import iter_outcomes
    from ..routing.learned import choose_rungs, load_artifact

    if (mix is None) == (budget is None):
        _fail("give exactly one of --mix (e.g. 70/25/5) or --budget (USD per prompt)")
    try:
        art = load_artifact(router)
        records = list(iter_outcomes(prompts, require_outcomes=False))
    except ConfigError as exc:
        _fail(str(exc))
        return
    if not records:
        _fail(f"{prompts}: no prompts")
    R = len(art.ladder)
    P = art.predict([r.prompt for r in records], [r.category for r in records])
    costs = np.array(art.rung_cost if art.rung_cost else list(range(1, R + 1)), dtype=float)
    order = list(np.argsort(costs, kind="stable"))
    gaps = (P.max(1, keepdims=True) - P).ravel()
    grid = np.unique(np.concatenate([[0.0], np.quantile(gaps, np.linspace(0, 1, 401)), [1.0]]))
    shares = []
    for t in grid:
        ch = choose_rungs(P, float(t), order)
        shares.append(np.bincount(ch, minlength=R) / len(ch))
    shares_arr = np.array(shares)
    if mix is not None:
        try:
            target = np.array(parse_mix(mix, R))[np.argsort(order)]  # cheapest-first shares -> ladder positions
        except ValueError as exc:
            _fail(str(exc))
            return
        dist = np.abs(shares_arr - target).sum(1)
        k = int(np.argmin(dist))
        goal = "mix " + "/".join(f"{100 * target[i]:.0f}" for i in order)
    else:
        assert budget is not None
        mean_cost = shares_arr @ costs
        ok = np.nonzero(mean_cost <= budget + 1e-15)[0]
        k = int(ok[0]) if ok.size else len(grid) - 1  # smallest tolerance within budget = best quality
        goal = f"budget ${budget:.3g}/prompt (estimate ${float(mean_cost[k]):.3g})"
    tol = float(grid[k])
    got = "/".join(f"{100 * shares_arr[k][i]:.1f}" for i in order)
    typer.echo(f"tolerance {tol:.4g} for {goal}: {len(records)} prompts land {got} on "
               f"{' -> '.join(art.ladder[i] for i in order)}")
    if dry_run:
        return
    values: dict[str, object] = {"tolerance": tol}  # full precision: rounding could flip the prompts on the edge
    if router:
        values["artifact"] = str(Path(router).resolve())
    write_table(Path(config), values)
    typer.echo(f"wrote [{TABLE}] to {config}")
