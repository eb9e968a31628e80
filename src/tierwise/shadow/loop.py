"""The shadow loop end to end on the offline upstream with its hidden quality model (no network).

Used by ``tierwise demo --shadow`` and ``bench/shadow_loop.py``. An in-process proxy (the real ASGI
app, ledger and shadow sampler; the offline upstream with ``quality = "sim"``) serves the simulated
workload (``sim.py``); then, in order:

1. the graded pairs: for each task type, how many pairs it took until its verdict was right and
   stayed right (the truth read back from the quality model, only to score);
2. the learned router's agreement with the truth on held-out ``auto`` prompts, before and after
   ``learn`` (trained on the pairs' recorded features: the prompts are not stored);
3. ``apply = "auto"``: the monitor's tick moves the registry entries the verdicts call for;
4. a regression injected (a task type moved to Haiku gets much worse there), more traffic, and the
   monitor's tick reverts the move.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

__all__ = ["run_loop", "pairs_to_right"]


def pairs_to_right(settings: Any, engine: Any, truth: dict[str, str]) -> dict[str, int | None]:
    """task -> graded pairs after which its verdict was right from then on (None: never right at the end)."""
    import sqlalchemy as sa

    from ..ledger.shadow_schema import shadow_pairs
    from .verdicts import verdict_for

    conf = settings.raw["shadow"]
    p = shadow_pairs.c
    seq: dict[str, list[int]] = {}
    with engine.connect() as conn:
        q = sa.select(p.kind, p.live_tier, p.cheap_tier, p.live_passed, p.shadow_passed).where(
            p.status == "graded", p.kind != "auto").order_by(p.id)
        for kind, lt, ct, lp, sp in conn.execute(q):
            ok = lp if lt == ct else sp
            seq.setdefault(kind, []).append(0 if ok else 1)
    out: dict[str, int | None] = {}
    for task, want in truth.items():
        errs = seq.get(task, [])
        k, last_wrong = 0, 0
        for n, e in enumerate(errs, 1):
            k += e
            v = verdict_for(k, n, move_below=float(conf["move_below"]), stay_above=float(conf["stay_above"]),
                            confidence=float(conf["confidence"]), min_pairs=int(conf["min_pairs"]))
            if v != want:
                last_wrong = n
        out[task] = (last_wrong + 1) if errs and last_wrong < len(errs) else None
    return out


def agreement(settings: Any, heldout: list[dict[str, Any]]) -> float:
    """Share of held-out auto prompts the ``auto`` router sends to the cheapest tier exactly when the truth does."""
    from ..routing.base import RouteRequest, build_router
    from .sim import true_tier

    opts = (settings.routing.get("options") or {}).get("learned") or {}
    router = build_router("learned", settings, **opts)
    cheapest = settings.catalog.tier_order[0]
    agree = 0
    for item in heldout:
        body: dict[str, Any] = {"model": "auto", "max_tokens": item["max_tokens"],
                                "messages": [{"role": "user", "content": item["prompt"]}]}
        if item["system"]:
            body["system"] = item["system"]
        d = router.decide(RouteRequest(body))
        agree += (d.tier == cheapest) == (true_tier(item["kind"]) == "fast")
    return agree / len(heldout)


async def _send(app: Any, item: dict[str, Any]) -> None:
    """One ``POST /v1/messages`` straight into the ASGI app (no sockets), as a client would send it."""
    import orjson

    body: dict[str, Any] = {"model": f"tierwise/{item['task']}" if item["task"] else "auto",
                            "max_tokens": item["max_tokens"], "messages": [{"role": "user", "content": item["prompt"]}]}
    if item["system"]:
        body["system"] = item["system"]
    raw = orjson.dumps(body)
    scope = {"type": "http", "method": "POST", "path": "/v1/messages", "headers": [
        (b"content-type", b"application/json"), (b"anthropic-version", b"2023-06-01"),
        (b"content-length", str(len(raw)).encode())]}
    sent = [False]
    never = asyncio.Event()
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        if not sent[0]:
            sent[0] = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await never.wait()
        return {"type": "http.disconnect"}

    async def send(msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.start":
            status.append(msg["status"])

    await app(scope, receive, send)
    if status != [200]:
        raise RuntimeError(f"live call failed: HTTP {status}")


async def run_loop(*, per_task: int = 800, sample: float = 0.25, seed: int = 0, workdir: str | None = None,
                   say: Callable[[str], None] = print, regress_task: str = "draft_email",
                   before_apply: Callable[[Path], None] | None = None) -> dict[str, Any]:
    from ..config import load_settings
    from ..server import create_app
    from .sim import TEMPLATES, prompts, true_verdict, workload
    from .verdicts import recommendations, spend_summary
    from .watch import ShadowWatch

    tmp = Path(workdir or tempfile.mkdtemp(prefix="tierwise-shadow-"))
    config = tmp / "tierwise.toml"
    config.write_text(f'[ledger]\nurl = "sqlite:///{tmp / "ledger.db"}"\nflush_interval = 0.05\n'
                      '[upstream]\nkind = "offline"\n[upstream.offline]\nlatency_scale = 0.0\nquality = "sim"\n'
                      '[monitor]\ninterval = 0\n'
                      f'[shadow]\nenabled = true\nsample = {sample}\nauto = {sample}\ndaily_usd = 50.0\napply = "auto"\n'
                      'queue_size = 100000\n[shadow.checks]\n'
                      'classify_intent = [{type = "regex", pattern = "\\\\[check: pass\\\\]"}]\n', encoding="utf-8")
    settings = load_settings(config, environ={})
    app = create_app(settings)
    state = app.state
    shadow = state.shadow
    engine = state.ledger.engine
    evidence = state.evidence
    watch: ShadowWatch = evidence.monitor.shadow
    truth = {t: true_verdict(t) for t in TEMPLATES}
    heldout = [{"kind": t, "task": None, "prompt": p, "system": TEMPLATES[t][0], "max_tokens": TEMPLATES[t][1]}
               for t in TEMPLATES for p in prompts(t, per_task + 40, seed)[per_task:]]
    result: dict[str, Any] = {"workdir": str(tmp), "per_task": per_task, "sample": sample}
    t0 = time.perf_counter()
    client = app
    if True:
        # 1. live traffic; shadow samples graded in the background
        items = list(workload(per_task, auto_share=0.3, seed=seed))
        say(f"sending {len(items)} live calls ({len(TEMPLATES)} task types, 30% as model \"auto\"); shadow share {sample:.0%}")
        for i in range(0, len(items), 50):
            await asyncio.gather(*(_send(client, it) for it in items[i:i + 50]))
        await shadow.drain()
        state.ledger.flush()
        result["live_calls"] = len(items)
        result["counts"] = dict(shadow.counts)
        result["pairs_to_right"] = pairs_to_right(settings, engine, truth)
        recs = recommendations(settings, engine)
        result["verdicts"] = {r.kind: r.verdict for r in recs}
        result["pairs"] = {r.kind: r.pairs for r in recs}
        result["verdicts_right"] = {t: result["verdicts"].get(t) == truth[t] for t in truth}
        result["spend"] = spend_summary(engine)
        say(f"{shadow.counts['graded']} graded pairs in {time.perf_counter() - t0:.1f}s")
        # 2. learn: agreement with the truth before and after
        result["agreement_before"] = agreement(settings, heldout)
        from .learn import learn

        res = learn(settings, engine, config)
        shadow.reload_router()
        result["learn"] = {"artifact": res.artifact, "records": res.records, "tolerance": res.tolerance, "shares": res.shares}
        result["agreement_after"] = agreement(settings, heldout)
        say(f"router agreement with the truth on {len(heldout)} held-out auto prompts: "
            f"{result['agreement_before']:.1%} before learn, {result['agreement_after']:.1%} after")
        if before_apply is not None:
            before_apply(config)
        # 3. apply = auto: the monitor's tick moves the registry entries
        applied = watch.tick()
        result["applied"] = [(a["task"], a["tier"]) for a in applied if "tier" in a]
        for a in applied:
            say(f"registry change #{a.get('change_id')}: {a['task']} -> {a.get('tier')}")
        # 4. a regression: the moved task type gets much worse on Haiku; traffic goes on; the monitor reverts
        moved = dict(result["applied"])
        regress = regress_task if moved.get(regress_task) == settings.catalog.tier_order[0] else next(
            (t for t, tier in moved.items() if tier == settings.catalog.tier_order[0]), None)
        result["regressed"] = regress
        if regress is not None:
            state.upstream.quality.inject(regress, "haiku", 0.45)
            say(f"regression injected: {regress} on Haiku now fails 45% of the time")
            more = [{"task": regress, "kind": regress, "prompt": p, "system": TEMPLATES[regress][0],
                     "max_tokens": TEMPLATES[regress][1]}
                    for p in prompts(regress, per_task + 40 + 400, seed)[per_task + 40:]]
            reverted = []
            sent = 0
            for i in range(0, len(more), 50):
                await asyncio.gather(*(_send(client, it) for it in more[i:i + 50]))
                sent += len(more[i:i + 50])
                await shadow.drain()
                reverted = [r for r in watch.tick() if r.get("reverted")]
                if reverted:
                    break
            result["reverted"] = [r["message"] for r in reverted]
            result["calls_until_revert"] = sent
            for r in reverted:
                say(f"monitor: {r['message']}")
        result["registry"] = {t: settings.registry.get(t) for t in TEMPLATES}
        result["spend_total"] = spend_summary(engine)
        result["seconds"] = time.perf_counter() - t0
    await shadow.aclose()
    state.ledger.close()
    return result
