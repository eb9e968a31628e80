"""``tierwise calibrate``: pick the learned router's difficulty thresholds so a sample of prompts
lands on a target tier mix (``--mix 70/25/5``) or a cost budget, and write them to ``tierwise.toml``.

The thresholds are on the predicted score of the cheapest rung (by price): the share of prompts
with the highest predicted scores stays there, the next share goes one rung up, and so on. They
are written to the table ``[routing.options.learned]`` (``rule = "difficulty"``, ``thresholds``,
and ``artifact`` when ``--router`` is given), the options the dispatcher passes to the ``learned``
strategy. This also moves an artifact of version 1-2 (gap rule) onto the difficulty rule.
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
        elif isinstance(v, (list, tuple)):
            body.append(f"{k} = [" + ", ".join(repr(float(x)) for x in v) + "]")  # full precision
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
    """Choose the difficulty thresholds for a tier mix or a budget and write [routing.options.learned]."""
    import numpy as np

    from ..errors import ConfigError
    from ..outcomes import iter_outcomes
    from ..routing.learned import difficulty_rungs, load_artifact, mix_for, thresholds_for_mix

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
    order = art.order  # cheapest first, by price
    # the same inputs as decide: the category only for an artifact whose features use it (task type)
    P = art.predict([r.prompt for r in records], [r.category for r in records] if art.spec.uses_category else None)
    cheap = P[:, art.cheap]

    def landed(thr: list[float]) -> np.ndarray:  # shares per step up the ladder (cheapest first)
        return np.bincount(difficulty_rungs(cheap, thr), minlength=R) / len(cheap)

    if mix is not None:
        try:
            shares = parse_mix(mix, R)
        except ValueError as exc:
            _fail(str(exc))
            return
        thresholds = thresholds_for_mix(cheap, shares)
        goal = "mix " + "/".join(f"{100 * x:.0f}" for x in shares)
    else:
        assert budget is not None
        # one knob for a budget: the share kept on the cheapest rung; the escalated prompts are split
        # over the rungs above in the proportions of the artifact's calibrated mix (the seeds' by default)
        upper = (art.mix if len(art.mix) == R else mix_for(R))[1:]
        upper = [u / sum(upper) for u in upper] if sum(upper) > 0 else [0.0] * (R - 2) + [1.0]
        costs = np.array(art.rung_cost if art.rung_cost else list(range(1, R + 1)), dtype=float)[order]
        best: tuple[list[float], float] | None = None
        for s0 in np.linspace(1.0, 0.0, 201):  # most on the cheapest rung first: the first within budget
            shares = [float(s0)] + [float((1 - s0) * u) for u in upper]
            thr = thresholds_for_mix(cheap, shares)
            est = float(landed(thr) @ costs)
            if best is None or est <= budget + 1e-15:
                best = (thr, est)
            if est <= budget + 1e-15:
                continue
            break
        assert best is not None
        thresholds, est = best
        goal = f"budget ${budget:.3g}/prompt (estimate ${est:.3g})"
    got = "/".join(f"{100 * x:.1f}" for x in landed(thresholds))
    typer.echo(f"thresholds {', '.join(f'{t:.4g}' for t in thresholds)} on the predicted {art.ladder[art.cheap]} score "
               f"for {goal}: {len(records)} prompts land {got} on {' -> '.join(art.ladder[i] for i in order)}")
    if dry_run:
        return
    values: dict[str, object] = {"rule": "difficulty", "thresholds": thresholds}  # full precision
    if router:
        values["artifact"] = str(Path(router).resolve())
    write_table(Path(config), values)
    typer.echo(f"wrote [{TABLE}] to {config}")
