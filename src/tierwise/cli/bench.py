"""``tierwise bench replay``: evaluate routers on recorded outcomes (cost-quality curve, APGR, CPT, AIQ)."""

from __future__ import annotations

from typing import Optional

import typer

from . import app

bench_app = typer.Typer(help="Offline routing benchmarks on recorded outcomes.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(2)


@bench_app.command("replay")
def replay_cmd(
    outcomes: list[str] = typer.Argument(..., help="Outcomes JSONL file(s) to train/test on."),
    ladder: Optional[str] = typer.Option(None, "--ladder", help="Models cheapest first (default: the router's ladder)."),
    router: Optional[str] = typer.Option(None, "--router", help="Artifact whose settings (ladder, lambda, features) "
                                         "are retrained per fold; with --as-is it is used unchanged."),
    prices: Optional[str] = typer.Option(None, "--prices", help="prices.json (default: the prices in the artifact)."),
    strategy: list[str] = typer.Option([], "--strategy", help="Other registered strategies to compare "
                                       "(heuristic, random, fixed...); repeatable."),
    test: list[str] = typer.Option([], "--test", help="Separate test outcomes file(s): train on OUTCOMES, test here."),
    folds: int = typer.Option(5, "--folds", help="k for k-fold cross-fitting by id (when no --test)."),
    seed: int = typer.Option(0, "--seed", help="Fold assignment seed."),
    as_is: bool = typer.Option(False, "--as-is", help="Also score with the --router artifact unchanged (no retraining)."),
    no_learned: bool = typer.Option(False, "--no-learned", help="Skip the learned router (baselines and --strategy only)."),
    no_cascade: bool = typer.Option(False, "--no-cascade", help="Skip verifier cascades."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Save the cost-quality curves as a PNG (needs tierwise[bench])."),
    json_out: Optional[str] = typer.Option(None, "--json", help="Write all figures and curves as JSON."),
    config: Optional[str] = typer.Option(None, "--config", "-c", help="tierwise.toml (for --strategy tiers)."),
) -> None:
    """Replay recorded outcomes: every strategy against always-each-rung, random mixing and the oracle."""
    from ..errors import ConfigError
    from ..outcomes import load_prices, read_outcomes
    from ..replay.runner import LearnedConfig, replay
    from ..reports.replay import format_table, save_plot, write_json
    from ..routing.learned import load_artifact
    from ..routing.training import parse_ladder
    from ._common import settings_from

    try:
        art = load_artifact(router) if router else None
        if ladder:
            rungs = parse_ladder(ladder)
        elif art is not None:
            rungs = [list(r) for r in art.rung_models]
        else:
            _fail("give --ladder (or --router with an artifact that records one)")
            return
        if prices:
            price_table = load_prices(prices)
        elif art is not None:
            price_table = load_prices(art.prices)
        else:
            _fail("give --prices (or --router: the artifact records its prices)")
            return
        missing = [r[0] for r in rungs if r[0] not in price_table and not any(a in price_table for a in r)]
        if missing:
            _fail(f"no price for {', '.join(missing)}")
        learned = []
        if not no_learned:
            cfg = LearnedConfig(cascade=not no_cascade)
            if art is not None:
                from ..routing.features import FeatureSpec

                cfg.lam, cfg.spec = art.lam, FeatureSpec.from_json(art.spec.to_json())
                cfg.rule, cfg.use_category = art.rule, art.spec.uses_category
            learned.append(cfg)
        train_records = read_outcomes(outcomes)
        test_records = read_outcomes(test) if test else None
        settings = settings_from(config) if strategy else None
        result = replay(train_records, rungs, price_table, test_records=test_records, learned=learned,
                        strategies=strategy, settings=settings, folds=folds, seed=seed,
                        fixed_artifact=art if (as_is and art is not None) else None)
    except ConfigError as exc:
        _fail(str(exc))
        return
    typer.echo(format_table(result))
    if plot:
        if save_plot(result, plot):
            typer.echo(f"plot: {plot}")
        else:
            typer.echo("plot skipped: matplotlib is not installed (pip install 'tierwise[bench]')", err=True)
    if json_out:
        write_json(result, json_out)
        typer.echo(f"json: {json_out}")
