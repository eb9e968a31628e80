"""``tierwise eval apply``: make a report's recommendation the registry, with the evidence as the reason."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from ..errors import ConfigError
from ..registry_history import Change, RegistryHistory
from ..reports.evaluation import build_report
from .store import EvalStore

if TYPE_CHECKING:
    import sqlalchemy as sa

    from ..config import Settings

__all__ = ["apply_report"]


def apply_report(settings: "Settings", engine: "sa.Engine", run_id: str | None, *, tasks: Iterable[str] | None = None,
                 actor: str | None = None, history: RegistryHistory | None = None) -> list[Change]:
    """Apply the recommended registry changes of a run's report; returns the recorded changes."""
    store = EvalStore(engine)
    run = store.resolve(run_id)
    history = history or RegistryHistory(settings, engine)
    # rebuilt from the grades as they are now (human grades imported since the last report count), with the
    # threshold and confidence that report was made with
    last = run["report"] or {}
    report = build_report(settings, store, run["id"], threshold=last.get("threshold"), confidence=last.get("confidence"),
                          registry=history.current(), config_path=history.path)
    recs = {r["task"]: r for r in report["recommendations"] if r["change"] and r["recommended"]}
    if tasks:
        wanted = list(tasks)
        unknown = [t for t in wanted if t not in {r["task"] for r in report["recommendations"]}]
        if unknown:
            raise ConfigError(f"task type(s) not in run {run['id']}: {', '.join(unknown)}")
        recs = {t: r for t, r in recs.items() if t in wanted}
    made: list[Change] = []
    for task, r in recs.items():
        ch = history.set(task, r["recommended"], reason=f"eval {run['id']}: {r['reason']}", actor=actor,
                         source="eval apply")
        if ch is not None:
            made.append(ch)
    return made
