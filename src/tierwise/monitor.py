"""The monitor: watch each task type after a registry change, alert and (optionally) revert.

For every task type whose registry entry changed, it compares the error rate (from feedback: a
call is an error when any feedback on it is) since the last change with the rate before it.
With at least ``monitor.min_samples`` graded calls since the change, it alerts when

- the rate climbed by more than ``monitor.margin`` over the rate before (when that had enough
  samples too), or
- with too little history before, the rate is above ``monitor.max_error_rate`` (the seeds' 5-8%).

An alert is a log line, a metric (``tierwise_monitor_alerts_total``), an optional webhook POST
(JSON with a Slack-style ``text``), a row in ``monitor_alerts``; with ``monitor.auto_revert`` the
previous registry entry is restored (recorded in the history with actor ``monitor`` and the
numbers as the reason). Each change alerts once; the monitor never auto-reverts its own reverts.

Only traffic the registry entry served counts: calls of an A/B arm whose ``registry`` override
pins the task (``[ab.arms.B] registry = { draft_email = "fast" }``, the running experiment's or
any recorded in ``experiments``) went to the arm's tier whatever the registry said, so they are
left out on both sides of a change; the control arm's calls, and calls in no arm, count.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable

import sqlalchemy as sa

from .ledger.evidence_schema import experiments, feedback, monitor_alerts
from .registry_history import Change, RegistryHistory

if TYPE_CHECKING:
    from .config import Settings

__all__ = ["Monitor", "TaskHealth", "list_alerts"]

log = logging.getLogger("tierwise.monitor")
_EVAL_ROUTERS = ("eval", "eval-judge")


@dataclass(slots=True)
class TaskHealth:
    task: str
    change_id: int
    change: str
    changed_at: float
    n_before: int
    bad_before: int
    n_after: int
    bad_after: int
    baseline: float
    baseline_kind: str        # "before" | "ceiling"
    alert: bool
    message: str

    @property
    def before_rate(self) -> float | None:
        return self.bad_before / self.n_before if self.n_before else None

    @property
    def after_rate(self) -> float | None:
        return self.bad_after / self.n_after if self.n_after else None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(before_rate=self.before_rate, after_rate=self.after_rate)
        return d


def list_alerts(engine: sa.Engine, limit: int = 50) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(monitor_alerts).order_by(monitor_alerts.c.id.desc()).limit(limit))
        return [dict(r._mapping) for r in rows]


class Monitor:
    def __init__(self, settings: "Settings", engine: sa.Engine, *, history: RegistryHistory | None = None,
                 metrics: Any = None, on_change: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.cfg = settings.raw["monitor"]
        self.engine = engine
        self.history = history or RegistryHistory(settings, engine)
        self.metrics = metrics
        self.on_change = on_change
        self._lock = threading.Lock()
        self.shadow: Any = None  # tierwise.shadow.watch.ShadowWatch when [shadow] is enabled (auto-apply, revert, learn)

    def _overriding_arms(self, task: str) -> list[str]:
        """The ``<experiment>/<arm>`` labels of A/B arms whose registry override pins ``task``."""
        found: list[tuple[str, Any]] = []
        ab = self.settings.raw.get("ab") or {}
        if ab.get("enabled"):
            found.append((str(ab.get("name") or ""), ab.get("arms")))
        with self.engine.connect() as conn:
            for name, arms in conn.execute(sa.select(experiments.c.name, experiments.c.arms)):
                try:
                    found.append((name, json.loads(arms or "{}")))
                except ValueError:
                    log.warning("experiment %s: arms are not JSON; its traffic counts as the registry's", name)
        labels = {f"{name}/{arm}" for name, arms in found if isinstance(arms, dict)
                  for arm, pol in arms.items() if isinstance(pol, dict) and task in (pol.get("registry") or {})}
        return sorted(labels)

    def _counts(self, task: str, start: float, split: float) -> tuple[int, int, int, int]:
        from .ledger.schema import calls

        fb = (sa.select(feedback.c.request_id, sa.func.max(sa.case((feedback.c.error, 1), else_=0)).label("bad"))
              .group_by(feedback.c.request_id).subquery())
        after = sa.case((calls.c.ts >= split, 1), else_=0).label("after")
        where = [calls.c.task == task, calls.c.ts >= start,
                 sa.or_(calls.c.router.is_(None), calls.c.router.not_in(_EVAL_ROUTERS))]
        pinned = self._overriding_arms(task)
        if pinned:  # served by an arm's own tier, not by the registry entry under watch
            where.append(sa.or_(calls.c.arm.is_(None), calls.c.arm.not_in(pinned)))
        q = (sa.select(after, sa.func.count(), sa.func.sum(fb.c.bad))
             .select_from(calls.join(fb, fb.c.request_id == calls.c.request_id))
             .where(*where)
             .group_by(after))
        nb = bb = na = ba = 0
        with self.engine.connect() as conn:
            for is_after, n, bad in conn.execute(q):
                if is_after:
                    na, ba = int(n), int(bad or 0)
                else:
                    nb, bb = int(n), int(bad or 0)
        return nb, bb, na, ba

    def evaluate(self) -> list[TaskHealth]:
        """The health of every task type with a registry change (no side effects)."""
        min_n = int(self.cfg["min_samples"])
        margin = float(self.cfg["margin"])
        ceiling = float(self.cfg["max_error_rate"])
        out = []
        for task, change in sorted(self.history.last_changes().items()):
            prev = self.history.previous_change(change)
            nb, bb, na, ba = self._counts(task, prev.ts if prev else 0.0, change.ts)
            before = bb / nb if nb else None
            after = ba / na if na else None
            if before is not None and nb >= min_n:
                baseline, kind = before, "before"
                alert = na >= min_n and after is not None and after - before > margin
                cmp = f"{after:.1%} since change #{change.id} vs {before:.1%} before (n={na} / {nb}), margin {margin:.0%}" \
                    if after is not None else f"no feedback since change #{change.id}"
            else:
                baseline, kind = ceiling, "ceiling"
                alert = na >= min_n and after is not None and after > ceiling
                cmp = (f"{after:.1%} since change #{change.id} (n={na}), above the {ceiling:.0%} ceiling "
                       f"(too little history before: n={nb})") if after is not None else f"no feedback since change #{change.id}"
            if na < min_n and after is not None:
                cmp += f"; waiting for {min_n} samples"
            msg = f"{task} ({change.describe()}): {'error rate climbed: ' if alert else ''}{cmp}"
            out.append(TaskHealth(task, change.id, change.describe(), change.ts, nb, bb, na, ba, baseline, kind, alert, msg))
        return out

    def _alerted(self, change_id: int) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(monitor_alerts)
                                .where(monitor_alerts.c.change_id == change_id)).scalar() > 0

    def check(self, *, auto_revert: bool | None = None) -> list[dict[str, Any]]:
        """Evaluate, and act on every new alert; returns the alerts raised by this check."""
        auto_revert = bool(self.cfg["auto_revert"]) if auto_revert is None else auto_revert
        raised = []
        with self._lock:
            for h in self.evaluate():
                if not h.alert or self._alerted(h.change_id):
                    continue
                change = self.history.get(h.change_id)
                assert change is not None
                revert: Change | None = None
                note = ""
                if auto_revert and change.source != "monitor":
                    try:
                        revert = self.history.undo(change.id, actor="monitor", source="monitor",
                                                   reason=f"auto-revert: {h.message}")
                    except Exception as exc:  # noqa: BLE001 - an alert must still go out
                        note = f" (auto-revert failed: {exc})"
                elif auto_revert:
                    note = " (not reverted: the change was itself a monitor revert)"
                message = h.message + (f"; reverted {change.task} to {change.old_tier or '(not set)'} as change #{revert.id}"
                                       if revert else "") + note
                row = {"ts": time.time(), "task": h.task, "change_id": h.change_id, "before_rate": h.before_rate,
                       "after_rate": h.after_rate, "baseline": h.baseline, "n_before": h.n_before, "n_after": h.n_after,
                       "reverted": revert is not None, "revert_id": revert.id if revert else None, "message": message}
                with self.engine.begin() as conn:
                    row["id"] = int(conn.execute(monitor_alerts.insert().values(**row)).inserted_primary_key[0])
                log.warning("tierwise monitor alert: %s", message)
                if self.metrics is not None:
                    self.metrics.alert(h.task, reverted=revert is not None)
                self._webhook(row)
                if revert is not None and self.on_change is not None:
                    self.on_change()
                raised.append(row)
            if self.shadow is not None:  # its reverts are alerts; its moves and learns are in self.shadow.last
                raised.extend(a for a in self.shadow.tick() if "id" in a)
        return raised

    def _webhook(self, row: dict[str, Any]) -> None:
        url = str(self.cfg.get("webhook") or "")
        if not url:
            return
        payload = json.dumps({"text": f"tierwise monitor: {row['message']}", **{k: row[k] for k in (
            "task", "change_id", "before_rate", "after_rate", "n_before", "n_after", "reverted", "revert_id")}}).encode()

        def post() -> None:
            try:
                req = urllib.request.Request(url, data=payload, headers={"content-type": "application/json"}, method="POST")
                with urllib.request.urlopen(req, timeout=5) as resp:
                    resp.read()
            except Exception as exc:  # noqa: BLE001 - a webhook failure is logged, never raised
                log.warning("monitor webhook to %s failed: %s", url.split("?")[0], exc)

        t = threading.Thread(target=post, name="tierwise-monitor-webhook", daemon=True)
        t.start()
        self.last_webhook = t
