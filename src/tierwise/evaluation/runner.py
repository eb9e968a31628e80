"""``tierwise eval run``: every input through every tier, graded, with a spend cap, resumable.

Each (input, tier) answer is stored in the ledger DB the moment it arrives (``eval_results``, and
a ``calls`` row so the spend shows in the ledger), so an interrupted run picks up where it
stopped and never pays for an answer twice. The run id is derived from the inputs and the tiers,
so re-running the same command resumes. With ``batch=True`` the calls go through the Message
Batches API (half price, asynchronous); the batch id is stored before waiting, so an
interrupted batch run collects the same batch instead of submitting a new one.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Protocol

from ..cost import Usage, price
from ..errors import APIError, ConfigError
from ..record import Book, CallRecord
from .graders import EvalItem, Grade, grade_checks
from .judge import Judge, LLMJudge, OfflineJudge, answer_hash, judge_identity
from .store import EvalStore

if TYPE_CHECKING:
    import sqlalchemy as sa

    from ..config import Settings
    from ..upstream.base import Upstream

__all__ = ["EvalRunner", "RunOptions", "RunSummary", "run_id_for", "make_judge", "parse_tiers", "write_outcomes_file"]

Progress = Callable[[str, int, int], None]   # (phase, done, total)


def parse_tiers(spec: str | list[str], settings: "Settings") -> list[str]:
    tiers = [t.strip() for t in spec.split(",")] if isinstance(spec, str) else list(spec)
    tiers = [t for t in tiers if t]
    known = settings.catalog.tier_order
    bad = [t for t in tiers if t not in settings.catalog.tiers]
    if bad:
        raise ConfigError(f"unknown tier(s) {', '.join(bad)} (tiers: {', '.join(known)})")
    if len(tiers) < 1 or len(set(tiers)) != len(tiers):
        raise ConfigError("--tiers: give one or more distinct tiers, e.g. fast,balanced,deep")
    return sorted(tiers, key=known.index)


def run_id_for(items: list[EvalItem], tiers: list[str], salt: str = "") -> str:
    h = hashlib.sha256()
    for it in items:
        h.update(f"{it.id}\x00{it.task}\x00{it.prompt}\x00{it.system}\x00{it.max_tokens}\n".encode())
    h.update(",".join(tiers).encode())
    h.update(salt.encode())
    return "ev_" + h.hexdigest()[:12]


@dataclass(slots=True)
class RunOptions:
    tiers: list[str]
    concurrency: int = 4
    max_spend_usd: float = 5.0
    batch: bool = False
    judge: Judge | None = None
    poll_interval: float = 10.0
    progress: Progress | None = None


@dataclass(slots=True)
class RunSummary:
    run_id: str
    status: str
    calls_made: int = 0
    calls_reused: int = 0
    calls_failed: int = 0
    skipped_for_cap: int = 0
    graded: int = 0
    spent_nanos: int = 0
    notes: list[str] = field(default_factory=list)


class BatchBackend(Protocol):
    async def submit(self, requests: list[dict[str, Any]]) -> str: ...
    async def wait(self, batch_id: str, poll_interval: float) -> None: ...
    def results(self, batch_id: str) -> AsyncIterator[tuple[str, dict[str, Any] | None, str | None]]: ...


def make_judge(settings: "Settings", upstream: "Upstream") -> Judge:
    ev = settings.raw["eval"]
    tier = ev["judge_tier"]
    if tier not in settings.catalog.tiers:
        raise ConfigError(f"eval.judge_tier: unknown tier {tier!r}")
    if getattr(upstream, "name", "") == "offline":
        return OfflineJudge(settings.catalog, pass_mark=float(ev["judge_pass"]))
    return LLMJudge(upstream, settings.catalog.tiers[tier], settings.catalog, pass_mark=float(ev["judge_pass"]))


class EvalRunner:
    def __init__(self, settings: "Settings", upstream: "Upstream", engine: "sa.Engine", *,
                 batches: BatchBackend | None = None) -> None:
        self.settings = settings
        self.catalog = settings.catalog
        self.upstream = upstream
        self.store = EvalStore(engine)
        self.batches = batches
        self._book = Book(settings.catalog, settings.catalog.model_for_tier(settings.default_tier).id)

    # -- helpers ----------------------------------------------------------------------
    def _estimate(self, item: EvalItem, model_id: str, batch: bool) -> int:
        text = (item.system or "") + "".join(str(m.get("content")) for m in item.messages)
        usage = Usage(input_tokens=len(text) // 3 + 16, output_tokens=item.max_tokens)
        return price(self.catalog, model_id, usage, day=None, batch=batch) or 0

    def _calls_row(self, *, run_id: str, item: EvalItem | None, model: str, usage: Usage | None, status: int,
                   started: float, wall: float, error_type: str | None, batch: bool, router: str,
                   stop_reason: str | None = None) -> dict[str, Any]:
        rid = "eval_" + hashlib.blake2b(f"{run_id}:{item.id if item else ''}:{model}:{router}:{wall}".encode(),
                                        digest_size=10).hexdigest()
        rec = CallRecord.new(rid, wall, requested=model, upstream=self.upstream.name, batch=batch)
        rec.task = item.task if item and router == "eval" else None
        rec.router, rec.reasons = router, f"tierwise eval run {run_id}"
        rec.answer(self._book, model, usage).finish(status, started=started, error_type=error_type, stop_reason=stop_reason)
        row = rec.row()
        row.pop("prompt", None)
        return row

    def _result_row(self, run_id: str, item: EvalItem, tier: str, model: str, *, status: int, output: str | None,
                    usage: Usage | None, cost: int, latency_ms: float | None, batch: bool, error: str | None) -> dict[str, Any]:
        u = usage or Usage()
        return {"run_id": run_id, "item_id": item.id, "task": item.task, "tier": tier, "model": model, "ts": time.time(),
                "status": status, "error": error, "output": output, "input_tokens": u.input_tokens + u.cache_read_tokens
                + u.cache_write_tokens, "output_tokens": u.output_tokens, "cost_nanos": cost, "latency_ms": latency_ms,
                "batch": batch, "passed": None, "score": None, "grades": None}

    # -- the run ----------------------------------------------------------------------
    async def run(self, items: list[EvalItem], run_id: str, opts: RunOptions, *, inputs: str = "") -> RunSummary:
        run = self.store.get_run(run_id)
        if run is None:
            self.store.create_run(run_id, inputs=inputs, inputs_hash=run_id, tiers=opts.tiers,
                                  options={"batch": opts.batch, "max_spend_usd": opts.max_spend_usd})
            run = self.store.get_run(run_id)
        else:
            self.store.update_run(run_id, status="running")
        assert run is not None
        summary = RunSummary(run_id=run_id, status="running")
        done = {(r["item_id"], r["tier"]): r for r in self.store.results(run_id) if r["status"] == 200}
        pending = [(it, t) for it in items for t in opts.tiers if (it.id, t) not in done]
        summary.calls_reused = len(items) * len(opts.tiers) - len(pending)
        cap = int(opts.max_spend_usd * 1e9)
        spent = int(run["spent_nanos"] or 0)
        try:
            if opts.batch:
                spent = await self._run_batch(items, run, pending, opts, cap, spent, summary)
            else:
                spent = await self._run_live(run_id, pending, opts, cap, spent, summary)
            spent = await self._grade(items, run_id, opts, cap, spent, summary)
        except (asyncio.CancelledError, KeyboardInterrupt):
            self.store.update_run(run_id, status="interrupted")
            raise
        summary.spent_nanos = spent
        summary.status = "capped" if summary.skipped_for_cap else "done"
        self.store.update_run(run_id, status=summary.status, finished_ts=time.time())
        return summary

    async def _run_live(self, run_id: str, pending: list[tuple[EvalItem, str]], opts: RunOptions, cap: int, spent: int,
                        summary: RunSummary) -> int:
        from ..upstream.base import call_json

        sem = asyncio.Semaphore(max(1, opts.concurrency))
        state = {"spent": spent, "reserved": 0, "done": 0}
        total = len(pending)
        report = opts.progress or (lambda *_: None)
        report("calls", 0, total)

        async def one(item: EvalItem, tier: str) -> None:
            model = self.catalog.tiers[tier]
            async with sem:
                est = self._estimate(item, model, False)
                if state["spent"] + state["reserved"] + est > cap:
                    summary.skipped_for_cap += 1
                    state["done"] += 1
                    report("calls", state["done"], total)
                    return
                state["reserved"] += est
                started, wall = time.perf_counter(), time.time()
                try:
                    msg = await call_json(self.upstream, item.params(model))
                    latency = (time.perf_counter() - started) * 1000.0
                    usage = Usage.from_api(msg.get("usage"))
                    answered = msg.get("model") or model
                    text = "".join(b.get("text", "") for b in msg.get("content") or () if isinstance(b, dict) and b.get("type") == "text")
                    crow = self._calls_row(run_id=run_id, item=item, model=answered, usage=usage, status=200,
                                           started=started, wall=wall, error_type=None, batch=False, router="eval",
                                           stop_reason=msg.get("stop_reason"))
                    crow["tier"] = tier
                    cost = int(crow["cost_nanos"] or 0)
                    row = self._result_row(run_id, item, tier, answered, status=200, output=text, usage=usage, cost=cost,
                                           latency_ms=latency, batch=False, error=None)
                    summary.calls_made += 1
                except APIError as exc:
                    cost = 0
                    crow = self._calls_row(run_id=run_id, item=item, model=model, usage=None, status=exc.status,
                                           started=started, wall=wall, error_type=exc.error_type, batch=False, router="eval")
                    row = self._result_row(run_id, item, tier, model, status=exc.status, output=None, usage=None, cost=0,
                                           latency_ms=None, batch=False, error=f"{exc.error_type}: {exc.message}"[:500])
                    summary.calls_failed += 1
                finally:
                    state["reserved"] -= est
                await asyncio.to_thread(self.store.save_result, row, calls_row=crow)
                state["spent"] += cost
                state["done"] += 1
                report("calls", state["done"], total)

        await asyncio.gather(*(one(it, t) for it, t in pending))
        return state["spent"]

    async def _run_batch(self, items: list[EvalItem], run: dict[str, Any], pending: list[tuple[EvalItem, str]],
                         opts: RunOptions, cap: int, spent: int, summary: RunSummary) -> int:
        if self.batches is None:
            raise ConfigError("batch mode needs a Message Batches backend (the Anthropic API or the offline upstream)")
        run_id = run["id"]
        options = dict(run["options"])
        by_key = {f"i{n}-{t}": (it, t) for n, it in enumerate(items) for t in opts.tiers}
        key_of = {(it.id, t): k for k, (it, t) in by_key.items()}
        report = opts.progress or (lambda *_: None)
        batch_id = options.get("batch_id")
        if batch_id:
            summary.notes.append(f"collecting batch {batch_id} submitted earlier (not resubmitted)")
        elif pending:
            requests, reserved = [], 0
            for it, t in pending:
                model = self.catalog.tiers[t]
                est = self._estimate(it, model, True)
                if spent + reserved + est > cap:
                    summary.skipped_for_cap += 1
                    continue
                reserved += est
                requests.append({"custom_id": key_of[(it.id, t)], "params": it.params(model)})
            if not requests:
                return spent
            batch_id = await self.batches.submit(requests)
            options["batch_id"] = batch_id
            self.store.update_run(run_id, options=options)
            summary.notes.append(f"submitted batch {batch_id} with {len(requests)} requests")
        else:
            return spent
        report("batch", 0, 1)
        try:
            await self.batches.wait(batch_id, opts.poll_interval)
        except APIError as exc:
            if exc.status != 404 or "batch_id" not in run["options"]:
                raise
            summary.notes.append(f"batch {batch_id} no longer exists ({exc.message}); resubmitting")
            options.pop("batch_id", None)
            self.store.update_run(run_id, options=options)
            return await self._run_batch(items, dict(run, options=options), pending, opts, cap, spent, summary)
        n = 0
        async for custom_id, msg, err in self.batches.results(batch_id):
            if custom_id not in by_key:
                continue
            it, tier = by_key[custom_id]
            model = self.catalog.tiers[tier]
            wall = time.time()
            if msg is not None:
                usage = Usage.from_api(msg.get("usage"))
                answered = msg.get("model") or model
                text = "".join(b.get("text", "") for b in msg.get("content") or () if isinstance(b, dict) and b.get("type") == "text")
                crow = self._calls_row(run_id=run_id, item=it, model=answered, usage=usage, status=200,
                                       started=time.perf_counter(), wall=wall, error_type=None, batch=True, router="eval",
                                       stop_reason=msg.get("stop_reason"))
                crow.update(tier=tier, latency_ms=None)
                cost = int(crow["cost_nanos"] or 0)
                row = self._result_row(run_id, it, tier, answered, status=200, output=text, usage=usage, cost=cost,
                                       latency_ms=None, batch=True, error=None)
                summary.calls_made += 1
                spent += cost
            else:
                row = self._result_row(run_id, it, tier, model, status=500, output=None, usage=None, cost=0,
                                       latency_ms=None, batch=True, error=(err or "batch request failed")[:500])
                crow = None
                summary.calls_failed += 1
            await asyncio.to_thread(self.store.save_result, row, calls_row=crow)
            n += 1
        options.pop("batch_id", None)
        options.setdefault("batches", []).append(batch_id)
        self.store.update_run(run_id, options=options)
        report("batch", 1, 1)
        return spent

    async def _grade(self, items: list[EvalItem], run_id: str, opts: RunOptions, cap: int, spent: int,
                     summary: RunSummary) -> int:
        rows = self.store.results(run_id)
        by_item: dict[str, dict[str, dict[str, Any]]] = {}
        for r in rows:
            by_item.setdefault(r["item_id"], {})[r["tier"]] = r
        todo = [it for it in items if it.id in by_item and any(r["passed"] is None for r in by_item[it.id].values())]
        report = opts.progress or (lambda *_: None)
        report("grading", 0, len(todo))
        sem = asyncio.Semaphore(max(1, opts.concurrency))
        state = {"spent": spent, "done": 0}

        async def one(item: EvalItem) -> None:
            results = by_item[item.id]
            # only answers not graded yet need the judge; of those, only ones it has not judged get sent
            ungraded = {t: r["output"] for t, r in results.items()
                        if r["passed"] is None and r["status"] == 200 and r["output"] is not None}
            judged: dict[str, Grade | None] = {}
            if item.needs_judge and ungraded:
                if opts.judge is None:
                    raise ConfigError("this input has a judge check but no judge is configured")
                got = await self._judged(run_id, item, ungraded, opts.judge, sem, cap, state)
                if got is None:
                    summary.skipped_for_cap += 1
                    return
                judged = got
            for tier, r in results.items():
                if r["passed"] is not None:
                    continue
                if r["status"] != 200 or r["output"] is None:
                    grades = [Grade("upstream", False, 0.0, r["error"] or f"HTTP {r['status']}")]
                else:
                    grades = grade_checks(r["output"], item)
                    if item.needs_judge:
                        g = judged.get(tier)
                        if g is None:
                            grades.append(Grade("judge", False, 0.0, "ungraded: judge gave no usable score"))
                        else:
                            grades.append(g)
                ungraded = any(g.detail.startswith("ungraded") for g in grades)
                passed = None if ungraded else all(g.passed for g in grades)
                score = sum(g.score for g in grades) / len(grades) if grades else (1.0 if passed else 0.0)
                if not grades:
                    passed, score = r["status"] == 200, 1.0
                await asyncio.to_thread(self.store.set_grade, run_id, item.id, tier, passed=passed, score=score,
                                        grades=[g.to_json() for g in grades])
                if passed is not None:
                    summary.graded += 1
            state["done"] += 1
            report("grading", state["done"], len(todo))

        await asyncio.gather(*(one(it) for it in todo))
        return state["spent"]

    async def _judged(self, run_id: str, item: EvalItem, outputs: dict[str, str], judge: Judge, sem: asyncio.Semaphore,
                      cap: int, state: dict[str, int]) -> dict[str, Grade | None] | None:
        """tier -> the judge's grade of its answer (None: no usable score), or None when the cap stops the call.

        Judgements are cached per answer (text hash, judge, rubric; see ``ledger.judgements_schema``):
        an answer judged before, in any company and any blind order, is never sent again. The judge
        sees the rest keyed by hash, shuffled by the run's seed, anonymised as always."""
        hashes = {t: answer_hash(text) for t, text in outputs.items()}
        who, rubric = judge_identity(judge, item)
        cached = await asyncio.to_thread(self.store.judgements, run_id, item.id, who, rubric)
        fresh = {h: outputs[t] for t, h in hashes.items() if h not in cached}
        if fresh:
            async with sem:
                est = self._estimate_judge(item, list(fresh.values()))
                if state["spent"] + est > cap:
                    return None
                started, wall = time.perf_counter(), time.time()
                res = await judge.judge(item, fresh, seed=f"{run_id}:{item.id}")
                crow = None
                if res.usage is not None and res.model:
                    crow = self._calls_row(run_id=run_id, item=item, model=res.model, usage=res.usage, status=200,
                                           started=started, wall=wall, error_type=None, batch=False, router="eval-judge")
                    state["spent"] += int(crow["cost_nanos"] or 0)
                new = {h: g.to_json() for h, g in res.grades.items() if g is not None and h in fresh}
                await asyncio.to_thread(self.store.save_judgements, run_id, item.id, who, rubric, new,
                                        shown=list(res.order), calls_row=crow)
                cached.update(new)
        return {t: Grade(**cached[h]) if h in cached else None for t, h in hashes.items()}

    def _estimate_judge(self, item: EvalItem, texts: list[str]) -> int:
        if not isinstance(self._judge_model(), str):
            return 0
        text_len = len(item.prompt) + sum(len(t or "") for t in texts) + 800
        usage = Usage(input_tokens=text_len // 3, output_tokens=200 + 80 * len(texts))
        return price(self.catalog, self._judge_model(), usage, day=None) or 0

    def _judge_model(self) -> str | None:
        if getattr(self.upstream, "name", "") == "offline":
            return None
        return self.catalog.tiers.get(self.settings.raw["eval"]["judge_tier"])


def write_outcomes_file(store: EvalStore, run_id: str, items: list[EvalItem], path: Path) -> int:
    """The run's graded answers in the router-benchmark outcomes format (see shared/bench/README.md)."""
    from ..outcomes import Outcome, OutcomeWriter

    rows = store.results(run_id)
    by_item: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_item.setdefault(r["item_id"], []).append(r)
    n = 0
    with OutcomeWriter(path) as w:
        for it in items:
            outs = {}
            for r in by_item.get(it.id, []):
                passed = r["human"] if r["human"] is not None else r["passed"]
                if passed is None or r["status"] != 200:
                    continue
                outs[r["model"]] = Outcome(score=1.0 if passed else 0.0, input_tokens=int(r["input_tokens"]),
                                           output_tokens=int(r["output_tokens"]), tokens_estimated=False,
                                           response=r["output"])
            if outs:
                w.add(f"{run_id}-{it.id}", it.prompt, outs, dataset="tierwise-eval", category=it.task)
                n += 1
    return n
