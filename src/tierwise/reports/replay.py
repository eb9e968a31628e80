"""Printing and plotting replay results (matplotlib is optional: ``pip install tierwise[bench]``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..replay.curves import METRIC_COLUMNS
from ..replay.runner import ReplayResult

__all__ = ["format_table", "to_json", "save_plot"]

_HELP = ("APGR/CPT: RouteLLM, x = share of calls to the strongest rung (two-rung ladders, non-cascades); "
         "APGR$/CPT$: same on the normalised cost axis (cascades pay failed attempts); AIQ: RouterBench area "
         "under the cost-quality hull (quality units); Q@50%$: quality retained at half the strongest rung's "
         "cost; $@95%Q: cost (share of the strongest rung's) to reach 95% of its quality")


def _fmt(key: str, v: float | None) -> str:
    if v is None:
        return "-"
    if key.startswith("CPT") or key == "$@95%Q" or key == "Q@50%$":
        return f"{100 * v:.1f}%"
    if key == "cost":
        return f"${v:.2e}"
    return f"{v:.3f}"


def format_table(result: ReplayResult, title: str = "") -> str:
    cols = list(METRIC_COLUMNS)
    names = list(result.rows)
    w0 = max(10, *(len(n) for n in names))
    lines = []
    if title:
        lines.append(title)
    lines.append(f"ladder: {' -> '.join(result.ladder)}; {result.n_test} test prompts; {result.mode}")
    lines.append(f"{'strategy':<{w0}}  " + "  ".join(f"{c:>9}" for c in cols))
    for n in names:
        row = result.rows[n]
        lines.append(f"{n:<{w0}}  " + "  ".join(f"{_fmt(c, row.get(c)):>9}" for c in cols))
    for note in result.notes:
        lines.append(f"note: {note}")
    lines.append(_HELP)
    return "\n".join(lines)


def to_json(result: ReplayResult) -> dict[str, Any]:
    return {"ladder": result.ladder, "n_test": result.n_test, "mode": result.mode, "metrics": result.rows,
            "curves": {c.name: {"cost": c.cost.tolist(), "quality": c.quality.tolist(), "kind": c.kind}
                       for c in result.curves}}


def write_json(result: ReplayResult, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_json(result), indent=1) + "\n", encoding="utf-8")


def save_plot(result: ReplayResult, path: str | Path, title: str = "") -> bool:
    """The cost-quality curves as a PNG; False (nothing written) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for c in result.curves:
        if c.kind == "baseline" and c.cost.size == 1:
            ax.scatter(c.cost, c.quality, marker="s", s=40, label=c.name, zorder=3)
        elif c.cost.size == 1:
            ax.scatter(c.cost, c.quality, marker="o", s=50, label=c.name, zorder=3)
        else:
            style = "--" if c.kind == "baseline" else ("-." if c.kind == "cascade" else "-")
            ax.plot(c.cost, c.quality, style, label=c.name, linewidth=1.4)
    ax.set_xlabel("mean cost per prompt (USD)")
    ax.set_ylabel("mean score")
    ax.set_title(title or f"cost-quality: {' -> '.join(result.ladder)} ({result.n_test} prompts)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(str(path), dpi=110)
    plt.close(fig)
    return True
