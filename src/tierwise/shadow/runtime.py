"""The shadow sampler of one proxy process: off the request path, bounded, capped.

``offer()`` is the only thing the request path calls, after the client has its answer: a few
dictionary look-ups and one random draw; when the call is sampled it is put in a bounded queue
(``put_nowait``: a full queue drops the sample and counts it, the live call never waits). Workers
(``shadow.concurrency``) take jobs from the queue and, for each:

1. reserve an upper bound of the job's cost from the shared daily shadow budget (``shadow.daily_usd``,
   atomic across replicas in Redis or the ledger database, as every budget in ``tierwise.admission.budgets``);
   a job that does not fit is dropped and counted;
2. replay the request on the shadow tier through the same Upstream seam (not streamed, adapted to the
   shadow model; tools never executed: requests that could have side effects are never sampled, see
   ``policy.py``); a streamed live call's answer is not kept on the request path, so its live side is
   re-asked too (counted as shadow spend);
3. grade both answers blind (``grading.py``) and write one ``shadow_pairs`` row with the learned
   router's features of the prompt (never the prompt text unless ``ledger.store_prompts``);
4. settle the reservation with what the job really cost.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import orjson
import sqlalchemy as sa

from ..admission.budgets import NANOS, BudgetExceeded, Budgets, estimate_nanos, utc_day
from ..cost import Usage, price
from ..ledger.shadow_schema import shadow_pairs
from .policy import pair_sides, shadow_tier_for, share_for, side_effect_reason

if TYPE_CHECKING:
    from ..config import Settings
    from ..upstream.base import Upstream

__all__ = ["ShadowRuntime", "Job", "SCOPE", "answer_text", "feature_spec_of", "spec_hash"]

log = logging.getLogger("tierwise.shadow")
SCOPE = "shadow"          # the budget scope (budget_spend row / Redis hash) all replicas share
_FWD = ("anthropic-version", "anthropic-beta")


def answer_text(msg: Mapping[str, Any]) -> str:
    return "".join(b.get("text", "") for b in msg.get("content") or () if isinstance(b, dict) and b.get("type") == "text")


def spec_hash(spec: Any) -> str:
    return hashlib.sha256(json.dumps(spec.to_json(), sort_keys=True).encode()).hexdigest()[:16]


def feature_spec_of(dispatcher: Any, settings: Any = None) -> Any:
    """The feature spec of the learned router in use (so ``tierwise learn`` can retrain it on the pairs'
    features), else that of the artifact [routing.options.learned] names (or the shipped one)."""
    art = getattr(getattr(dispatcher, "auto", None), "artifact", None)
    if art is not None:
        return art.spec
    from ..routing.learned import load_artifact

    opts = ((settings.routing.get("options") or {}).get("learned") or {}) if settings is not None else {}
    return load_artifact(opts.get("artifact")).spec


@dataclass(slots=True)
class Job:
    ts: float
    request_id: str
    kind: str
    task: str | None
    key_id: str | None
    live_model: str
    live_tier: str
    shadow_tier: str
    body: bytes                      # the request as sent to the live model
    answer: bytes | None             # the live answer (None: streamed, re-asked)
    headers: dict[str, str] = field(default_factory=dict)


class ShadowRuntime:
    def __init__(self, settings: "Settings", upstream: "Upstream", engine: sa.Engine, *, store_prompts: bool = False,
                 dispatcher: Any = None, redis_url: str | None = None) -> None:
        self.settings = settings
        self.conf = settings.raw["shadow"]
        self.enabled = bool(self.conf["enabled"])
        self.upstream = upstream
        self.engine = engine
        self.store_prompts = store_prompts
        self.dispatcher = dispatcher
        self.catalog = settings.catalog
        self.tier_order = list(self.catalog.tier_order)
        self.compare = dict(self.conf["compare"])
        self.exclude_keys = frozenset(self.conf["exclude_keys"])
        self.exclude_tasks = frozenset(self.conf["exclude_tasks"])
        self.read_only = frozenset(self.conf["read_only_tools"])
        self.cap = int(round(float(self.conf["daily_usd"]) * NANOS))
        store = settings.raw["budgets"].get("store", "auto")
        self.budgets = Budgets({"action": "refuse", "store": store}, engine=engine,
                               redis_url=(settings.raw["resilience"]["redis_url"] if redis_url is None else redis_url))
        self.queue: asyncio.Queue[Job] | None = None
        self.workers: list[asyncio.Task[Any]] = []
        self.counts: dict[str, int] = {"sampled": 0, "dropped_queue_full": 0, "dropped_budget": 0, "excluded": 0,
                                       "failed": 0, "graded": 0, "ungraded": 0}
        self.excluded_why: dict[str, int] = {}
        self._rand = random.random
        self._grader: Any = None
        self._featurizer: Any = None
        self._spec_hash = ""
        self.busy: Any = None           # () -> bool: live calls in flight (the proxy's), so workers give way

    # -- the request path --------------------------------------------------------------------
    def offer(self, *, request_id: str, plan: Any, body: Mapping[str, Any], sent: bytes, answer: bytes | None,
              headers: Mapping[str, str], key_id: str | None, status: int = 200) -> None:
        """Maybe sample one finished live call. Never raises, never awaits."""
        try:
            if not self.enabled or status != 200 or not plan.routed:
                return
            router = plan.decision.router
            if router in ("affinity", "cascade") or plan.decision.cascade is not None:
                return
            kind = plan.task or "auto"
            share = share_for(kind, self.conf)
            if share <= 0 or self._rand() >= share:
                return
            why = None
            if key_id is not None and key_id in self.exclude_keys:
                why = "excluded key"
            elif kind in self.exclude_tasks:
                why = "excluded task type"
            else:
                why = side_effect_reason(body, self.read_only)
            if why is not None:
                self.counts["excluded"] += 1
                self.excluded_why[why] = self.excluded_why.get(why, 0) + 1
                return
            live_tier = self.catalog.tier_of(plan.model_id)
            shadow_tier = shadow_tier_for(kind, live_tier, self.compare, self.tier_order)
            if live_tier is None or shadow_tier is None:
                return
            job = Job(time.time(), request_id, kind, plan.task, key_id, plan.model_id, live_tier, shadow_tier, sent, answer,
                      {k: headers[k] for k in _FWD if k in headers})
            q = self._ensure_started()
            try:
                q.put_nowait(job)
            except asyncio.QueueFull:
                self.counts["dropped_queue_full"] += 1
                return
            self.counts["sampled"] += 1
        except Exception:
            log.exception("shadow sampling failed for %s", request_id)

    def _ensure_started(self) -> "asyncio.Queue[Job]":
        if self.queue is None:
            self.queue = asyncio.Queue(maxsize=int(self.conf["queue_size"]))
            loop = asyncio.get_running_loop()
            self.workers = [loop.create_task(self._worker(), name=f"tierwise-shadow-{i}")
                            for i in range(int(self.conf["concurrency"]))]
        return self.queue

    # -- workers -----------------------------------------------------------------------------
    async def _worker(self) -> None:
        assert self.queue is not None
        while True:
            job = await self.queue.get()
            try:
                await self._give_way()
                await self.run_job(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.counts["failed"] += 1
                log.exception("shadow job for %s failed", job.request_id)
            finally:
                self.queue.task_done()

    async def _give_way(self, most: float = 0.05) -> None:
        """Start a job when no live call is in flight (or after ``most`` seconds): the shadow's CPU work
        then runs between live calls rather than in the middle of one."""
        busy = self.busy
        if busy is None:
            return
        waited = 0.0
        while busy() and waited < most:
            await asyncio.sleep(0.002)
            waited += 0.002

    async def drain(self) -> None:
        """Wait until every queued job is done (tests, the demo, shutdown)."""
        if self.queue is not None:
            await self.queue.join()

    async def aclose(self) -> None:
        for w in self.workers:
            w.cancel()
        for w in self.workers:
            try:
                await w
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self.workers = []
        await self.budgets.aclose()

    def grader(self) -> Any:
        if self._grader is None:
            from .grading import PairGrader

            self._grader = PairGrader(self.settings, self.upstream, self.engine)
        return self._grader

    def featurize(self, text: str, category: str | None) -> tuple[str, str]:
        if self._featurizer is None:
            from ..routing.features import Featurizer

            spec = feature_spec_of(self.dispatcher, self.settings)
            self._featurizer = Featurizer(spec)
            self._spec_hash = spec_hash(spec)
        idx, val = self._featurizer.transform_one(text, category)
        return json.dumps({"i": [int(i) for i in idx], "v": [round(float(v), 6) for v in val]}), self._spec_hash

    async def run_job(self, job: Job) -> dict[str, Any] | None:
        """Replay, grade and record one job (public for tests and the simulation)."""
        from ..adapt import adapt_request
        from ..errors import APIError
        from ..routing.base import RouteRequest

        shadow_model = self.catalog.model_for_tier(job.shadow_tier)
        live_model = self.catalog.get(job.live_model)
        params = orjson.loads(job.body)
        params.pop("stream", None)
        sparams = dict(params, model=shadow_model.id)
        adapt_request(sparams, shadow_model, tier=job.shadow_tier)
        sbody = orjson.dumps(sparams)
        rparams = dict(params, model=job.live_model)
        rbody = orjson.dumps(rparams) if job.answer is None else b""
        grader = self.grader()
        mt = int(params.get("max_tokens") or 1024)
        estimate = estimate_nanos(shadow_model, len(sbody), mt)
        if job.answer is None and live_model is not None:
            estimate += estimate_nanos(live_model, len(rbody), mt)
        estimate += grader.estimate_nanos(job.kind, len(job.body), 2 * mt)
        try:
            res = await self.budgets.reserve([(SCOPE, self.cap)], estimate)
        except BudgetExceeded:
            self.counts["dropped_budget"] += 1
            return None
        spent = 0
        row: dict[str, Any] = {}
        try:
            headers = dict(job.headers)
            headers.setdefault("anthropic-version", "2023-06-01")
            if job.answer is None:  # a streamed live call: ask the live model again, off the path
                r = await self.upstream.send("/v1/messages", rbody, headers=headers, stream=False, model=job.live_model)
                try:
                    live_msg = r.json()
                finally:
                    await r.aclose()
                replay_cost = price(self.catalog, job.live_model, Usage.from_api(live_msg.get("usage")), day=None) or 0
                spent += replay_cost
            else:
                live_msg = orjson.loads(job.answer)
                replay_cost = 0
            try:
                r = await self.upstream.send("/v1/messages", sbody, headers=headers, stream=False, model=shadow_model.id)
                try:
                    shadow_msg = r.json()
                finally:
                    await r.aclose()
            except APIError as exc:
                self.counts["failed"] += 1
                row = self._row(job, shadow_model.id, status="failed", error=f"{exc.status} {exc.error_type}: {exc.message}"[:500],
                                replay_cost=replay_cost)
                await asyncio.to_thread(self._insert, row)
                return row
            live_usage = Usage.from_api(live_msg.get("usage"))
            shadow_usage = Usage.from_api(shadow_msg.get("usage"))
            shadow_cost = price(self.catalog, shadow_model.id, shadow_usage, day=None) or 0
            spent += shadow_cost
            live_text, shadow_text = answer_text(live_msg), answer_text(shadow_msg)
            request = RouteRequest(params, job.task)
            prompt = request.last_user_text or request.text
            cheap, _ = pair_sides(job.live_tier, job.shadow_tier, self.tier_order)
            verdict = await grader.grade(job.kind, request.text, params, live_text, shadow_text, seed=job.request_id,
                                         live_is_cheap=cheap == job.live_tier)
            spent += verdict.cost_nanos
            features, spec = self.featurize(prompt, job.task)
            row = self._row(job, shadow_model.id, status=verdict.status, error=verdict.error, replay_cost=replay_cost)
            row.update(
                grader=verdict.grader, live_passed=verdict.live_passed, live_score=verdict.live_score,
                shadow_passed=verdict.shadow_passed, shadow_score=verdict.shadow_score,
                live_input_tokens=live_usage.input_tokens + live_usage.cache_read_tokens + live_usage.cache_write_5m_tokens
                + live_usage.cache_write_1h_tokens, live_output_tokens=live_usage.output_tokens,
                shadow_input_tokens=shadow_usage.input_tokens + shadow_usage.cache_read_tokens
                + shadow_usage.cache_write_5m_tokens + shadow_usage.cache_write_1h_tokens,
                shadow_output_tokens=shadow_usage.output_tokens,
                live_cost_nanos=price(self.catalog, job.live_model, live_usage, day=None) or 0,
                shadow_cost_nanos=shadow_cost, judge_cost_nanos=verdict.cost_nanos,
                live_hash=_sha(live_text), shadow_hash=_sha(shadow_text), features=features, feature_spec=spec)
            if self.store_prompts:
                row.update(prompt=request.text, live_answer=live_text, shadow_answer=shadow_text)
            await asyncio.to_thread(self._insert, row)
            self.counts["graded" if verdict.status == "graded" else "ungraded"] += 1
            return row
        except APIError as exc:
            self.counts["failed"] += 1
            log.warning("shadow job for %s: upstream refused: %s", job.request_id, exc.message)
            return None
        finally:
            await self.budgets.settle(res, spent)

    def _row(self, job: Job, shadow_model: str, *, status: str, error: str | None, replay_cost: int) -> dict[str, Any]:
        cheap, _ = pair_sides(job.live_tier, job.shadow_tier, self.tier_order)
        return {"ts": job.ts, "day": utc_day(), "request_id": job.request_id[:64], "kind": job.kind[:64],
                "key_id": job.key_id, "live_model": job.live_model[:128], "live_tier": job.live_tier,
                "shadow_model": shadow_model, "shadow_tier": job.shadow_tier, "cheap_tier": cheap, "status": status,
                "error": error, "replay_cost_nanos": replay_cost}

    def _insert(self, row: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(shadow_pairs.insert().values(**row))

    def reload_router(self) -> None:
        """Swap the proxy's ``auto`` router for the one [routing.options.learned] names now (after a learn)."""
        from ..routing.base import build_router

        d = self.dispatcher
        if d is None or self.settings.routing.get("auto") != "learned":
            return
        opts = (self.settings.routing.get("options") or {}).get("learned") or {}
        d.auto = build_router("learned", self.settings, upstream=self.upstream, **opts)
        self._featurizer = None  # features of later samples follow the new router's spec

    async def spent_today(self) -> tuple[int, int]:
        return await self.budgets.spent(SCOPE)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
