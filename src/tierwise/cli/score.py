"""``tierwise score``: predicted score of every rung for each prompt of a JSONL file."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from . import app


@app.command()
def score(
    prompts: str = typer.Argument(..., help="JSONL with at least id and prompt per line (extra fields ignored; "
                                            "category is read only by an artifact trained with --category, "
                                            "unless --no-category); - for stdin."),
    router: Optional[str] = typer.Option(None, "--router", help="Artifact from tierwise train (default: the shipped one)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Write here instead of stdout."),
    no_category: bool = typer.Option(False, "--no-category", help="Ignore the category field."),
) -> None:
    """Print {"id": ..., "predicted": {MODEL: expected_score}} per input line."""
    from ..errors import ConfigError
    from ..outcomes import iter_outcomes
    from ..routing.learned import load_artifact

    try:
        art = load_artifact(router)
        records = list(iter_outcomes(prompts, require_outcomes=False))
    except ConfigError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    fh = open(out, "w", encoding="utf-8") if out else sys.stdout
    try:
        for r in records:
            p = art.predict_one(r.prompt, r.category if art.spec.uses_category and not no_category else None)
            fh.write(json.dumps({"id": r.id, "predicted": {m: round(float(v), 6) for m, v in zip(art.ladder, p)}}) + "\n")
    finally:
        if out:
            fh.close()
    if out:
        typer.echo(f"wrote {len(records)} predictions to {out}", err=True)
