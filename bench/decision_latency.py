#!/usr/bin/env python
"""Decision latency of ``auto``'s routers on the proxy's hot path.

First the default, ``prior`` (task category, bounded view, conversation state), on 1,000 requests
from the realistic set's dev split: chat prompts, side requests, and Claude Code-shaped agent
requests with 25 tools (every 4th with a 30,000-token system prompt; 283 of the 1,000 carry the
harness), each a fresh request of its own conversation, decided once each by a fresh router (the
warm-up runs on another instance) with wall and CPU time taken around the same call. Targets:
p50 <= 0.1 ms, p99 <= 0.5 ms, judged on CPU time (wall time is printed beside it: on a shared
machine it counts the time other processes held the core). Then the same agent requests with 250
and 2,500 tools: ``decide`` must not grow with the tool list.

Then the learned router, as before:

The issue's targets: ``decide`` in p50 <= 0.5 ms and p99 <= 2 ms per prompt. Tighter, the
project's own budget: the proxy may add <= 0.5 ms p50 per request in all and everything else costs
~0.4 ms, so ``decide`` should cost <= 0.08 ms p50 (and <= 0.5 ms p99). Both verdicts are printed.

Times ``LearnedRouter.decide`` (heuristic signals, featurise, predict every rung, choose, build
reasons) on 1,000 fresh requests, so the request's cached signals are computed inside the timed
call: benchmark prompts when ``../shared/bench`` exists, otherwise synthetic ones. Also prints the
figure when the signals were already computed (the dispatcher needs them anyway for the context
window check) and, once, the numpy reference path for comparison.

    .venv/bin/python bench/decision_latency.py [--n 1000] [--data ../shared/bench] [--prior-only]
    .venv/bin/python bench/decision_latency.py --instructions [--src OTHER_CHECKOUT/src]

``--instructions`` counts the prior router's CPU instructions per ``decide`` under callgrind on the
same requests (deterministic, unlike time on a shared machine: counting is switched on only around
the decide loop); ``--src`` imports tierwise from another checkout, for a before/after ratio.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# --src DIR: import tierwise from another checkout's src (a before/after comparison on the same requests)
SRC = Path(sys.argv[sys.argv.index("--src") + 1]).resolve() if "--src" in sys.argv[:-1] else ROOT / "src"
sys.path.insert(0, str(SRC))

from tierwise.config import load_settings
from tierwise.routing.base import RouteRequest

TARGET_P50, TARGET_P99 = 0.5, 2.0     # ms: the targets
BUDGET_P50, BUDGET_P99 = 0.08, 0.5    # ms: the proxy's 0.5 ms budget minus ~0.4 ms for everything else


def prompts(data: Path, n: int) -> list[str]:
    out: list[str] = []
    if data.exists():
        from tierwise.outcomes import read_outcomes

        recs = read_outcomes([p for p in sorted(data.glob("*.jsonl")) if p.name != "alpacaeval.jsonl"])
        random.Random(0).shuffle(recs)
        out = [r.prompt for r in recs[:n]]
    words = "the quick analysis of contract risk compare total probability function code plan step".split()
    rng = random.Random(1)
    while len(out) < n:
        out.append(" ".join(rng.choice(words) for _ in range(rng.randint(5, 400))))
    return out


PRIOR_P50, PRIOR_P99 = 0.1, 0.5     # ms: the targets for the default (prior) router


def realistic_bodies(n: int) -> list[dict]:
    """``n`` request bodies from the realistic dev split; every 4th an agent request with a
    30,000-token system prompt and 25 tools, each with its own session."""
    from tierwise import evaldata

    items = evaldata.load("dev")
    agents = [i for i in items if i.kind == "agent"]
    big = evaldata.agent_body(agents[0].raw["turns"], system_tokens=30_000)
    system = big["system"]
    out = []
    for k in range(n):
        if k % 4 == 3:
            item = agents[(k // 4) % len(agents)]
            body = evaldata.agent_body(item.raw["turns"], session=f"lat{k}")
            body["system"] = system  # the same 30k-token system prompt (as a harness sends it every turn)
        else:
            body = items[k % len(items)].body()
        out.append(body)
    return out


def _clocks(fn, reqs) -> tuple[list[float], list[float]]:
    """Wall and this thread's CPU time of each call, both taken around the same call."""
    wall, cpu = [], []
    gc.collect()  # start clean; collections triggered while timing are counted (as in the proxy)
    pc, tt = time.perf_counter, time.thread_time
    for r in reqs:
        w, c = pc(), tt()
        fn(r)
        c2, w2 = tt(), pc()
        wall.append(w2 - w)
        cpu.append(c2 - c)
    return wall, cpu


def _with_tools(body: dict, n: int) -> dict:
    tools = body["tools"]
    return dict(body, tools=[dict(tools[k % len(tools)], name=f"{tools[k % len(tools)]['name']}_{k}") for k in range(n)])


def prior_latency(n: int, q) -> float:
    from tierwise.routing.base import build_router

    settings = load_settings(None, environ={})
    bodies = realistic_bodies(n)
    warm = build_router("prior", settings)  # warm-up on its own router: the measured one starts empty
    for b in bodies[:50]:
        warm.decide(RouteRequest(b))
    router = build_router("prior", settings)
    reqs = [RouteRequest(b) for b in bodies]
    wall, cpu = _clocks(router.decide, reqs)  # the same 1,000 requests, once each, both clocks per call
    agent_idx = [k for k, b in enumerate(bodies) if "tools" in b]
    agent_wall = sorted(wall[k] for k in agent_idx)
    agent_cpu = sorted(cpu[k] for k in agent_idx)
    wall, cpu = sorted(wall), sorted(cpu)
    wall50, wall99 = q(wall, 0.5), q(wall, 0.99)
    # the verdict is on this thread's CPU time: on a 2-core machine shared with other work, wall time
    # counts the time other processes held the core (both are printed)
    p50, p99 = q(cpu, 0.5), q(cpu, 0.99)
    sys_tokens = max(sum(len(x["text"]) for x in b["system"]) // 4 for b in bodies if "tools" in b)
    print(f"prior router (auto default): {len(bodies)} realistic requests, {len(agent_idx)} of them "
          f"agent requests with 25 tools and a {sys_tokens:,}-token system prompt; each decided once by a "
          f"fresh router (warm-up on another instance)")
    print(f"decide wall time p50 {wall50:.3f} ms, p99 {wall99:.3f} ms (agent requests alone p50 {q(agent_wall, 0.5):.3f} ms, "
          f"p99 {q(agent_wall, 0.99):.3f} ms); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"decide CPU time (this thread) p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {1000 * cpu[-1]:.3f} ms "
          f"(agent requests alone p50 {q(agent_cpu, 0.5):.3f} ms, p99 {q(agent_cpu, 0.99):.3f} ms)")
    # decide must not grow with the tool list: the same agent requests with 25, 250 and 2,500 tools
    agents = [bodies[k] for k in agent_idx][:100]
    per = {}
    for n_tools in (25, 250, 2500):
        r = build_router("prior", settings, sticky=False)
        variants = [RouteRequest(_with_tools(b, n_tools)) for b in agents]
        for v in variants[:10]:
            r.decide(v)
        per[n_tools] = q(sorted(_clocks(r.decide, variants)[1]), 0.5)
    print("agent requests by tool-list size, CPU p50: " + ", ".join(f"{k:,} tools {v:.3f} ms" for k, v in per.items())
          + f" (2,500 vs 25: x{per[2500] / per[25]:.2f})")
    print(f"target p50 <= {PRIOR_P50:.2f} ms: {p50:.3f} ms {'MET' if p50 <= PRIOR_P50 else 'MISSED'}; "
          f"target p99 <= {PRIOR_P99:.1f} ms: {p99:.3f} ms {'MET' if p99 <= PRIOR_P99 else 'MISSED'} (CPU time; "
          f"wall time: p50 {'MET' if wall50 <= PRIOR_P50 else 'MISSED'}, p99 {'MET' if wall99 <= PRIOR_P99 else 'MISSED'})\n")
    return wall50


def _instructions_child(n: int, sync: Path) -> None:
    """Under callgrind (counting off): set up, then decide the bench's requests while the parent
    has counting on; two dumps (all requests, then the agent requests alone on a fresh router)."""
    from tierwise.routing.base import build_router

    settings = load_settings(None, environ={})
    bodies = realistic_bodies(n)
    warm = build_router("prior", settings)
    for b in bodies[:50]:
        warm.decide(RouteRequest(b))
    phases = [[RouteRequest(b) for b in bodies], [RouteRequest(b) for b in bodies if "tools" in b]]
    routers = [build_router("prior", settings), build_router("prior", settings)]
    # the set-up's objects (1,000 bodies, 30k-token system prompts) are frozen out of the collector:
    # a full collection walking them would land in one phase or the other by allocation count and
    # move the figure by more than the code does; collections of what decide allocates still count
    (sync / "counts").write_text(" ".join(str(len(p)) for p in phases))
    for k, (router, reqs) in enumerate(zip(routers, phases)):
        while k and not (sync / f"dumped{k - 1}").exists():
            time.sleep(0.01)
        gc.collect()  # before each phase, outside the counted window (the parent zeroes after "ready")
        gc.freeze()
        (sync / f"ready{k}").write_text("")
        while not (sync / f"go{k}").exists():  # the parent has counting on (and zeroed), then says go
            time.sleep(0.01)
        for r in reqs:
            router.decide(r)
        (sync / f"done{k}").write_text("")


def instructions(n: int, keep: str | None = None) -> int:
    """Instructions per ``decide`` of the prior router on the bench's requests, counted by callgrind."""
    import re
    import shutil
    import subprocess
    import tempfile

    if shutil.which("valgrind") is None:
        print("valgrind is not installed: no instruction counts")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="tierwise-decide-instr-"))
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={tmp}/callgrind.out",
           sys.executable, __file__, "--src", str(SRC), "--n", str(n), "--instructions-child", str(tmp)]
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_for(f: Path, timeout: float = 1800) -> None:
        deadline = time.monotonic() + timeout
        while not f.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"the callgrind child exited ({proc.returncode}) before {f.name}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {f.name}")
            time.sleep(0.2)

    def ctl(*a: str) -> None:
        subprocess.run(["callgrind_control", *a, str(proc.pid)], check=True, capture_output=True)

    figures = []
    try:
        wait_for(tmp / "counts")
        counts = [int(x) for x in (tmp / "counts").read_text().split()]
        ctl("-i", "on")
        for k, what in enumerate(("all", "agent")):
            wait_for(tmp / f"ready{k}")
            ctl("-z")  # zero: only the decide loop that follows is counted
            (tmp / f"go{k}").write_text("")
            wait_for(tmp / f"done{k}")
            ctl("-d", what)  # dump and zero
            dump = tmp / f"callgrind.out.{k + 1}"
            wait_for(dump)
            for _ in range(100):
                m = re.search(r"^(?:totals|summary):\s+(\d+)", dump.read_text(errors="replace"), re.MULTILINE)
                if m:
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError(f"no totals in {dump}")
            figures.append((what, counts[k], int(m.group(1)) / counts[k]))
            (tmp / f"dumped{k}").write_text("")
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        if keep:
            shutil.copytree(tmp, keep, dirs_exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"prior router decide, instructions per call (callgrind, tierwise from {SRC}):")
    for what, count, per in figures:
        label = "all requests" if what == "all" else "agent requests alone"
        print(f"  {label:22s} {count:5d} calls {per:12,.0f} instructions/decide")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "bench"))
    ap.add_argument("--src", default=None, help="import tierwise from this src directory (default: this checkout)")
    ap.add_argument("--prior-only", action="store_true", help="skip the learned router's figures")
    ap.add_argument("--instructions", action="store_true",
                    help="count the prior router's instructions per decide with callgrind (deterministic; slow)")
    ap.add_argument("--keep", default=None, help="with --instructions: keep the callgrind files in this directory "
                    "(callgrind_annotate DIR/callgrind.out.1)")
    ap.add_argument("--instructions-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.instructions_child:
        _instructions_child(args.n, Path(args.instructions_child))
        return 0
    if args.instructions:
        return instructions(args.n, args.keep)

    def timed(fn, reqs, clock=time.perf_counter) -> list[float]:
        out = []
        gc.collect()  # start clean; collections triggered while timing are counted (as in the proxy)
        for r in reqs:
            t = clock()
            fn(r)
            out.append(clock() - t)
        return sorted(out)

    def q(times: list[float], p: float) -> float:
        return 1000 * times[min(len(times) - 1, int(len(times) * p))]

    prior_wall50 = prior_latency(args.n, q)
    if args.prior_only:
        return 0
    t0 = time.perf_counter()
    from tierwise.routing.base import build_router

    router = build_router("learned", load_settings(None, environ={}))
    load_ms = 1000 * (time.perf_counter() - t0)
    texts = prompts(Path(args.data), args.n)
    for t in texts[:50]:  # warm-up (regex compilation, first use of the weight arrays)
        router.decide(RouteRequest.from_prompt(t))

    times = timed(router.decide, [RouteRequest.from_prompt(t) for t in texts])
    warm = [RouteRequest.from_prompt(t) for t in texts]
    for r in warm:
        _ = r.signals  # computed and cached on the request
    cached = timed(router.decide, warm)
    art = router.artifact  # type: ignore[attr-defined]
    ref = timed(lambda r: art.predict_one_reference(r.last_user_text, r.task, r.signals), warm)
    p50, p99 = q(times, 0.5), q(times, 0.99)
    mean_chars = sum(len(t) for t in texts) / len(texts)
    path = "fast pure-Python path" if art.fast is not None else "numpy path (version-1 artifact)"
    print(f"learned router (default artifact v{art.version}, {path}): load {load_ms:.0f} ms; "
          f"{len(texts)} prompts, mean {mean_chars:.0f} chars, median {sorted(map(len, texts))[len(texts) // 2]} chars")
    print(f"decide p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {1000 * times[-1]:.3f} ms (fresh requests, signals computed inside)")
    print(f"decide p50 {q(cached, 0.5):.3f} ms, p99 {q(cached, 0.99):.3f} ms with the request's signals already cached; "
          f"numpy reference predict alone p50 {q(ref, 0.5):.3f} ms")
    print(f"prior vs learned in this run (same machine, same load): p50 wall {prior_wall50:.3f} ms vs {p50:.3f} ms, "
          f"ratio {prior_wall50 / p50:.2f}")
    for what, t50, t99 in (("target", TARGET_P50, TARGET_P99), ("proxy budget", BUDGET_P50, BUDGET_P99)):
        print(f"{what} p50 <= {t50:.2f} ms: {p50:.3f} ms {'MET' if p50 <= t50 else 'MISSED'}; "
              f"{what} p99 <= {t99:.1f} ms: {p99:.3f} ms {'MET' if p99 <= t99 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
