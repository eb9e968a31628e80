"""What the monitor runs for [shadow] on its schedule (``Monitor.check`` calls ``ShadowWatch.tick``).

- ``apply = "auto"``: a task type whose verdict (on the pairs since its last registry change) says
  move is moved: one registry change, recorded in the registry history (source ``shadow``, the
  evidence as the reason). A change the monitor has reverted is never re-applied automatically.
- regression: after a ``shadow`` change to the cheaper tier, when the cheaper tier's error rate on the
  pairs since the change says ``strong`` (over ``stay_above``, the interval's lower end over
  ``move_below``, at least ``min_pairs`` pairs), the change is undone (actor ``monitor``) and an alert
  row written: the one-line revert the seeds ask for, done by the monitor.
- ``learn_interval`` > 0: ``tierwise learn`` every so often when enough new pairs came in; a running
  proxy swaps in the new router at once.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..ledger.evidence_schema import monitor_alerts
from ..ledger.shadow_schema import shadow_pairs
from .verdicts import recommendations, verdict_for

if TYPE_CHECKING:
    from ..config import Settings
    from ..registry_history import RegistryHistory

__all__ = ["ShadowWatch"]

log = logging.getLogger("tierwise.shadow")


class ShadowWatch:
    def __init__(self, settings: "Settings", engine: sa.Engine, history: "RegistryHistory", *, runtime: Any = None,
                 on_change: Any = None) -> None:
        self.settings = settings
        self.engine = engine
        self.history = history
        self.runtime = runtime          # the proxy's ShadowRuntime (to swap the router in after learn), if any
        self.on_change = on_change
        self.last_learn = time.time()
        self.learned_at_pairs = self._graded()
        self.last: list[dict[str, Any]] = []   # what the last tick did (moves, reverts, learns)

    @property
    def conf(self) -> dict[str, Any]:
        return self.settings.raw["shadow"]

    def _graded(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(shadow_pairs)
                                    .where(shadow_pairs.c.status == "graded")).scalar() or 0)

    def tick(self, now: float | None = None) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        out = self.check_regressions(now)
        if self.conf["apply"] == "auto":
            out += self.apply(now)
        if float(self.conf["learn_interval"]) > 0 and now - self.last_learn >= float(self.conf["learn_interval"]):
            out += self.scheduled_learn(now)
        self.last = out
        return out

    # -- apply ------------------------------------------------------------------------------------
    def apply(self, now: float) -> list[dict[str, Any]]:
        last = self.history.last_changes()
        done = []
        everything = recommendations(self.settings, self.engine)
        for task in sorted({v.kind for v in everything} - {"auto"}):
            change = last.get(task)
            if change is not None and change.source == "monitor":
                continue  # the monitor reverted a move of this task type: a person decides now
            # the evidence since the task type's last registry change (all of it when it never changed)
            recs = everything if change is None else recommendations(self.settings, self.engine, since=change.ts)
            for v in recs:
                if v.kind != task or v.target_tier is None:
                    continue
                reason = (f"shadow verdict: {v.cheap_tier} error rate {v.cheap_rate:.1%} (95% CI {v.cheap_ci[0]:.1%}-"
                          f"{v.cheap_ci[1]:.1%}) over {v.pairs} graded pairs vs {v.strong_tier} {v.strong_rate:.1%}: {v.action}")
                made = self.history.set(task, v.target_tier, reason=reason, actor="shadow", source="shadow")
                if made is not None:
                    log.warning("tierwise shadow: %s -> %s (%s)", task, v.target_tier, reason)
                    done.append({"task": task, "change_id": made.id, "tier": v.target_tier, "message": reason})
                    if self.on_change is not None:
                        self.on_change()
                break
        return done

    # -- revert -----------------------------------------------------------------------------------
    def check_regressions(self, now: float) -> list[dict[str, Any]]:
        out = []
        conf = self.conf
        order = list(self.settings.catalog.tier_order)
        for task, change in sorted(self.history.last_changes().items()):
            if change.source != "shadow" or change.new_tier is None or change.old_tier is None:
                continue
            if order.index(change.new_tier) >= order.index(change.old_tier):
                continue  # only a move to a cheaper tier can regress quality
            n, k = self._since(task, change.new_tier, change.ts)
            v = verdict_for(k, n, move_below=float(conf["move_below"]), stay_above=float(conf["stay_above"]),
                            confidence=float(conf["confidence"]), min_pairs=int(conf["min_pairs"]))
            if v != "strong":
                continue
            msg = (f"{task}: {change.new_tier} error rate climbed to {k / n:.1%} over {n} graded shadow pairs since "
                   f"change #{change.id} (above {float(conf['stay_above']):.0%})")
            revert = self.history.undo(change.id, actor="monitor", source="monitor", reason=f"auto-revert: {msg}")
            row = {"ts": now, "task": task, "change_id": change.id, "before_rate": None, "after_rate": k / n,
                   "baseline": float(conf["stay_above"]), "n_before": 0, "n_after": n, "reverted": revert is not None,
                   "revert_id": revert.id if revert else None,
                   "message": msg + (f"; reverted {task} to {change.old_tier} as change #{revert.id}" if revert else "")}
            with self.engine.begin() as conn:
                row["id"] = int(conn.execute(monitor_alerts.insert().values(**row)).inserted_primary_key[0])
            log.warning("tierwise monitor alert: %s", row["message"])
            if self.on_change is not None:
                self.on_change()
            out.append(row)
        return out

    def _since(self, task: str, cheap: str, ts: float) -> tuple[int, int]:
        p = shadow_pairs.c
        failed = sa.case((sa.and_(p.live_tier == cheap, sa.not_(p.live_passed)), 1),
                         (sa.and_(p.shadow_tier == cheap, sa.not_(p.shadow_passed)), 1), else_=0)
        q = (sa.select(sa.func.count(), sa.func.sum(failed))
             .where(p.kind == task, p.status == "graded", p.ts >= ts, p.cheap_tier == cheap))
        with self.engine.connect() as conn:
            n, k = conn.execute(q).one()
        return int(n or 0), int(k or 0)

    # -- learn ------------------------------------------------------------------------------------
    def scheduled_learn(self, now: float) -> list[dict[str, Any]]:
        from ..errors import ConfigError
        from ..registry_history import config_path_of
        from .learn import learn

        self.last_learn = now
        graded = self._graded()
        if graded - self.learned_at_pairs < int(self.conf["learn_min_pairs"]):
            return []
        try:
            res = learn(self.settings, self.engine, config_path_of(self.settings))
        except ConfigError as exc:
            log.info("tierwise shadow: scheduled learn skipped: %s", exc)
            return []
        self.learned_at_pairs = graded
        if self.runtime is not None:
            self.runtime.reload_router()
        log.warning("tierwise shadow: learned a new router from %d pairs: %s (tolerance %.3f)", res.records,
                    res.artifact, res.tolerance)
        return [{"task": None, "message": f"learned {res.artifact} from {res.records} pairs", "artifact": res.artifact}]
