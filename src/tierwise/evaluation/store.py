"""Evaluation runs and results in the ledger database (so a run can resume without paying twice)."""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa

from ..errors import ConfigError
from ..ledger.evidence_schema import eval_results, eval_runs
from ..ledger.judgements_schema import eval_judgements

__all__ = ["EvalStore"]


class EvalStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- runs -----------------------------------------------------------------------
    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(eval_runs).where(eval_runs.c.id == run_id)).first()
        if r is None:
            return None
        d = dict(r._mapping)
        d["options"] = json.loads(d["options"] or "{}")
        d["report"] = json.loads(d["report"]) if d["report"] else None
        return d

    def latest_run(self, *, with_report: bool = False) -> dict[str, Any] | None:
        q = sa.select(eval_runs.c.id).order_by(eval_runs.c.ts.desc()).limit(1)
        if with_report:
            q = q.where(eval_runs.c.report.is_not(None))
        with self.engine.connect() as conn:
            rid = conn.execute(q).scalar()
        return self.get_run(rid) if rid else None

    def resolve(self, run_id: str | None) -> dict[str, Any]:
        """A run by id (or unique prefix), or the latest when ``run_id`` is None or "latest"."""
        if run_id in (None, "", "latest"):
            run = self.latest_run()
            if run is None:
                raise ConfigError("no evaluation run in the ledger yet (tierwise eval run INPUTS.jsonl)")
            return run
        run = self.get_run(run_id)  # type: ignore[arg-type]
        if run is not None:
            return run
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(sa.select(eval_runs.c.id).where(eval_runs.c.id.like(f"{run_id}%")))]
        if len(ids) == 1:
            return self.get_run(ids[0])  # type: ignore[return-value]
        if not ids:
            raise ConfigError(f"no evaluation run {run_id!r} (tierwise eval list shows the runs)")
        raise ConfigError(f"run id {run_id!r} is ambiguous: {', '.join(ids)}")

    def list_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(eval_runs.c.id, eval_runs.c.ts, eval_runs.c.inputs, eval_runs.c.tiers,
                                          eval_runs.c.status, eval_runs.c.spent_nanos)
                                .order_by(eval_runs.c.ts.desc()).limit(limit))
            return [dict(r._mapping) for r in rows]

    def create_run(self, run_id: str, *, inputs: str, inputs_hash: str, tiers: list[str], options: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(eval_runs.insert().values(id=run_id, ts=time.time(), inputs=inputs, inputs_hash=inputs_hash,
                                                   tiers=",".join(tiers), status="running", spent_nanos=0,
                                                   options=json.dumps(options)))

    def update_run(self, run_id: str, **values: Any) -> None:
        if "options" in values and not isinstance(values["options"], str):
            values["options"] = json.dumps(values["options"])
        if "report" in values and values["report"] is not None and not isinstance(values["report"], str):
            values["report"] = json.dumps(values["report"])
        with self.engine.begin() as conn:
            conn.execute(eval_runs.update().where(eval_runs.c.id == run_id).values(**values))

    def add_spend(self, run_id: str, nanos: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(eval_runs.update().where(eval_runs.c.id == run_id)
                         .values(spent_nanos=eval_runs.c.spent_nanos + int(nanos)))

    # -- results --------------------------------------------------------------------
    def results(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(eval_results).where(eval_results.c.run_id == run_id).order_by(eval_results.c.id))
            out = []
            for r in rows:
                d = dict(r._mapping)
                d["grades"] = json.loads(d["grades"]) if d["grades"] else []
                out.append(d)
            return out

    def save_result(self, row: dict[str, Any], *, calls_row: dict[str, Any] | None = None) -> None:
        """Insert or replace the result of (run, item, tier); the ledger row goes in the same transaction."""
        from ..ledger.schema import calls

        key = (eval_results.c.run_id == row["run_id"]) & (eval_results.c.item_id == row["item_id"]) & \
              (eval_results.c.tier == row["tier"])
        with self.engine.begin() as conn:
            conn.execute(eval_results.delete().where(key))
            conn.execute(eval_results.insert().values(**row))
            if row.get("cost_nanos"):
                conn.execute(eval_runs.update().where(eval_runs.c.id == row["run_id"])
                             .values(spent_nanos=eval_runs.c.spent_nanos + int(row["cost_nanos"])))
            if calls_row is not None:
                conn.execute(calls.insert().values(**calls_row))

    def set_grade(self, run_id: str, item_id: str, tier: str, *, passed: bool | None, score: float | None,
                  grades: list[dict[str, Any]] | None = None, human: bool | None = None, blind_code: str | None = None) -> None:
        values: dict[str, Any] = {}
        if grades is not None:
            values.update(passed=passed, score=score, grades=json.dumps(grades))
        if human is not None:
            values["human"] = human
        if blind_code is not None:
            values["blind_code"] = blind_code
        if not values:
            return
        with self.engine.begin() as conn:
            conn.execute(eval_results.update().where(
                (eval_results.c.run_id == run_id) & (eval_results.c.item_id == item_id) & (eval_results.c.tier == tier)
            ).values(**values))

    # -- the judge's verdicts, cached per answer -------------------------------------
    def judgements(self, run_id: str, item_id: str, judge: str, rubric_hash: str) -> dict[str, dict[str, Any]]:
        """answer hash -> the grade the judge gave that answer of ``item_id`` (same judge and rubric)."""
        j = eval_judgements.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(j.answer_hash, j.grade).where(
                j.run_id == run_id, j.item_id == item_id, j.judge == judge, j.rubric_hash == rubric_hash))
            return {h: json.loads(g) for h, g in rows}

    def save_judgements(self, run_id: str, item_id: str, judge: str, rubric_hash: str, grades: dict[str, dict[str, Any]],
                        *, shown: list[str], calls_row: dict[str, Any] | None = None) -> None:
        """Cache the judge's grades (answer hash -> grade); its ledger row and spend in the same transaction."""
        from ..ledger.schema import calls

        ts = time.time()
        with self.engine.begin() as conn:
            if calls_row is not None:
                conn.execute(calls.insert().values(**calls_row))
                if calls_row.get("cost_nanos"):
                    conn.execute(eval_runs.update().where(eval_runs.c.id == run_id)
                                 .values(spent_nanos=eval_runs.c.spent_nanos + int(calls_row["cost_nanos"])))
            if not grades:
                return
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert
            conn.execute(insert(eval_judgements).on_conflict_do_nothing(), [
                {"ts": ts, "run_id": run_id, "item_id": item_id, "answer_hash": h, "judge": judge,
                 "rubric_hash": rubric_hash, "grade": json.dumps(g), "shown": json.dumps(shown)} for h, g in grades.items()])
