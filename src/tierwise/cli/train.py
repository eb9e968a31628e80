"""``tierwise train``: fit the learned router on recorded outcomes and write the artifact."""

from __future__ import annotations

from typing import List

import typer

from . import app


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(2)


@app.command()
def train(
    outcomes: List[str] = typer.Argument(..., help="Outcomes JSONL file(s) (the router-benchmark format)."),
    ladder: str = typer.Option(..., "--ladder", help="Models cheapest first, e.g. MODEL_A,MODEL_B[,MODEL_C]; "
                               "'A|A2' lets A2's outcomes stand in for rung A."),
    prices: str = typer.Option(..., "--prices", help="prices.json: {model: {input_per_mtok, output_per_mtok}}."),
    out: str = typer.Option("router.json", "--out", "-o", help="Where to write the artifact (JSON)."),
    lam: float = typer.Option(10.0, "--lambda", help="Ridge regularisation strength."),
    tolerance: float = typer.Option(0.05, "--tolerance", help="Default knob stored in the artifact."),
    bits: int = typer.Option(16, "--bits", help="Hashed feature space: 2**bits columns."),
    no_category: bool = typer.Option(False, "--no-category", help="Do not use the category field as a feature."),
) -> None:
    """Train the learned router: per-rung score predictors on hashed n-grams, category and signals."""
    from ..errors import ConfigError
    from ..outcomes import load_prices, read_outcomes
    from ..routing.features import FeatureSpec
    from ..routing.learned import parse_ladder
    from ..routing.learned import train as fit

    try:
        rungs = parse_ladder(ladder)
        price_table = load_prices(prices)
        missing = [r[0] for r in rungs if r[0] not in price_table]
        if missing:
            _fail(f"{prices}: no price for {', '.join(missing)}")
        records = read_outcomes(outcomes)
        art = fit(records, rungs, price_table, lam=lam, spec=FeatureSpec(bits=bits), tolerance=tolerance,
                  sources=outcomes, use_category=not no_category)
    except ConfigError as exc:
        _fail(str(exc))
        return
    art.save(out)
    t = art.training
    typer.echo(f"trained on {t['records']} prompts ({', '.join(f'{k}: {v}' for k, v in t['datasets'].items())}); "
               f"ladder {' -> '.join(art.ladder)}; mean scores {t['mean_score']}; "
               f"verifiers: {', '.join(v.model for v in art.verifiers) or 'none'}")
    typer.echo(f"wrote {out}")
