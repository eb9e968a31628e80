"""Configuration: defaults in one place, then environment, then ``tierwise.toml``, then arguments.

Precedence (highest first): explicit arguments (CLI flags), the ``tierwise.toml`` file,
environment variables, and the defaults below. Loading does no network or database work.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, cast

from .catalog import Catalog, load_catalog
from .errors import ConfigError
from .upstream.kinds import check_tables, kinds, table_defaults

__all__ = ["DEFAULTS", "DEFAULT_REGISTRY", "Settings", "defaults", "load_settings", "TASK_NAME"]

TASK_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")

# The seeds' registry, with tiers instead of model names. Anything not listed goes to
# the default tier (`balanced`, i.e. Sonnet): nobody downgrades a task type by accident.
DEFAULT_REGISTRY: dict[str, str] = {
    "classify_intent": "fast",
    "extract_entities": "fast",
    "summarize_short": "fast",
    "moderate_content": "fast",
    "draft_email": "balanced",
    "generate_code": "balanced",
    "review_code": "balanced",
    "plan_agent_steps": "balanced",
    "synthesize_documents": "balanced",
    "draft_longform": "balanced",
    "security_review": "deep",
    "plan_irreversible": "deep",
}

DEFAULTS: dict[str, Any] = {
    "server": {
        "host": "127.0.0.1",
        "port": 8787,
        "max_body_bytes": 32 * 1024 * 1024,
        "log_level": "info",          # debug | info | warning | error: tierwise's and uvicorn's logs (serve --log-level wins)
        # slow or idle clients (cli/serve.py, server/guard.py; docs/production.md "Limits and timeouts")
        "header_timeout": 10.0,       # seconds to send a request's headers (from connect, or the last answer)
        "body_timeout": 30.0,         # longest silence while a request body is being sent
        # an idle keep-alive connection is closed after this: longer than clients' and load balancers' own idle
        # timeouts (httpx 5 s, aiohttp 15 s, AWS ALB 60 s), or a request sent as the proxy closes is reset
        "keep_alive": 75.0,
        "max_connections": 4096,      # open connections at most; past it the oldest still sending headers is closed
    },
    "upstream": {
        "kind": "auto",  # auto | anthropic | offline
        "url": "https://api.anthropic.com",
        "api_key_env": "ANTHROPIC_API_KEY",
        "timeout": 600.0,             # a whole non-streamed answer (the API's own synchronous limit)
        "connect_timeout": 10.0,
        "first_byte_timeout": 60.0,   # a streamed answer's headers
        "stream_idle_timeout": 120.0,  # longest silence inside a stream (the API sends ping events)
        "max_response_bytes": 64 * 1024 * 1024,  # a non-streamed answer larger than this is a 502
        "max_connections": 512,
        # quality = "sim": the hidden per-task, per-tier quality model (tierwise.upstream.quality) marks each answer
        "offline": {"latency_scale": 1.0, "seed": 0, "fault_rate": 0.0, "fault_status": 529, "quality": ""},
    },
    "ledger": {
        "url": "sqlite:///tierwise.db",
        "store_prompts": False,
        "journal": "auto",            # auto | off | a path: finished calls survive a SIGKILL (see ledger/writer.py)
        "spool_dir": "",              # a second directory (another disk) for journal lines the journal's own refuses
        "max_unjournaled_rows": 100_000,  # rows held in memory only (disk full); at the cap new requests get 529
        "batch_size": 500,
        "flush_interval": 0.25,
    },
    "routing": {
        "auto": "prior",              # strategy for model "auto" (prior: task category + difficulty + conversation; see routing/prior.py)
        "default_tier": "balanced",   # the safe default (Sonnet)
        "unknown_task": "error",      # error (400 listing known task types) | default (route to default_tier)
        "unknown_model": "error",     # error (404) | passthrough (forward ids the catalog does not know; unpriced)
        "strategies": {},             # task type -> strategy name (default: registry)
        "options": {},                # strategy name -> its options, e.g. [routing.options.cascade]
        "task_options": {},           # task type -> options for that task's strategy
        # a routed request whose last assistant turn carries thinking blocks this process saw a model
        # write stays on that model, blocks kept (0: off; see tierwise.affinity)
        "thinking_affinity": 100_000,  # blocks remembered at most (about 150 bytes each)
    },
    "registry": dict(DEFAULT_REGISTRY),
    "catalog": {},
    # retries, fallbacks, circuit breaker (see tierwise.resilience and docs/production.md)
    "resilience": {
        "max_attempts": 3,            # upstream calls per request at most, retries and fallbacks included
        "max_retry_time": 15.0,       # seconds of backoff a request may spend waiting in total
        "backoff_base": 0.5,          # first backoff; doubles per retry, with jitter
        "backoff_max": 8.0,
        "max_retry_after": 2.0,       # honour an upstream retry-after up to this; longer -> fall back / answer now
        "retries_per_target": 1,      # retries on the same upstream+model before the next fallback
        "redis_url": "",              # share breaker state, budgets and rate limits between replicas
        # one client per process; a pool that waits; a failing store is left alone store_retry_interval
        # seconds (its users fall back at once), then one call probes it (docs/production.md)
        "redis": {"connect_timeout": 2.0, "timeout": 1.0, "max_connections": 256, "pool_timeout": 5.0},
        "store_retry_interval": 1.0,
        "rate_limits_on_store_error": "fail_open",  # fail_open (in-process bucket) | fail_closed (529)
        "fallbacks": {},              # tier -> [<upstream kind>, "next_tier", "tier:<name>"]; free table
        "breaker": {"enabled": True, "window": 100, "min_requests": 20, "failure_rate": 0.5, "cooldown": 5.0,
                    "half_open_probes": 1},
        # one table per upstream kind a fallback may name ([resilience.<kind>]): their defaults live
        # with their registration (upstream/kinds.py)
        **table_defaults(),
    },
    # proxy API keys (tierwise keys create); enforced when required or when any key exists
    "keys": {"required": False, "refresh_interval": 5.0},
    # USD budgets per UTC day: per key (set on the key), per task type, and overall
    # on_store_error: fail_closed (529 while the budget store is down) | fail_open (admit, counting in-process
    # against each limit, replayed to the store when it is back). server_tool_uses: the uses of a server
    # tool with no max_uses counted by the estimate; see tierwise.admission.budgets for what the estimate bounds
    "budgets": {"action": "refuse", "daily_usd": 0.0, "tasks": {}, "store": "auto", "on_store_error": "fail_closed",
                "server_tool_uses": 10},
    # input limits; each violation is a 4xx in Anthropic's error format
    "limits": {"max_messages": 100_000, "max_header_bytes": 32 * 1024, "max_header_value_bytes": 8 * 1024},
    # evidence (tierwise eval / ab / monitor / dashboard; see docs/walkthrough.md)
    "eval": {"threshold": 0.05, "confidence": 0.95, "concurrency": 4, "max_spend_usd": 5.0, "judge_tier": "balanced",
             "judge_pass": 0.6, "max_tokens": 1024, "tiers": "fast,balanced,deep"},
    "ab": {"enabled": False, "name": "", "key": "user", "arms": {}},  # arms: free table of arm -> policy
    "monitor": {"enabled": True, "interval": 60.0, "margin": 0.05, "min_samples": 30, "max_error_rate": 0.08,
                "auto_revert": False, "webhook": "", "bad_score": 0.5},
    "dashboard": {"enabled": True, "token_env": "TIERWISE_DASHBOARD_TOKEN"},
    # shadow evaluation of live traffic (tierwise.shadow; docs/walkthrough.md): a share of live calls is
    # replayed off the request path on another tier, both answers graded blind, verdicts per task type
    "shadow": {
        "enabled": False,
        "sample": 0.0,                # share of each task type's live calls replayed (0..1)
        "auto": 0.0,                  # share of model "auto" calls replayed
        "tasks": {},                  # task type -> share, over "sample"
        "daily_usd": 1.0,             # shadow spend cap per UTC day (shadow calls + grading), shared by replicas
        "compare": {},                # task type (or "auto") -> the tier to compare with; default: next cheaper,
                                      # or next stronger for a task on the cheapest tier
        "exclude_keys": [],           # proxy key ids never sampled
        "exclude_tasks": [],          # task types never sampled
        "read_only_tools": [],        # tool names without side effects; a request with any other tool is never replayed
        "checks": {},                 # task type -> checks (evaluation/graders.py format) graded instead of the judge
        "rubrics": {},                # task type -> the judge's rubric
        "queue_size": 1000,           # pending shadow jobs at most; when full a sample is dropped and counted
        "concurrency": 2,             # shadow calls at once per process
        "apply": "recommend",         # recommend (report only) | auto (move registry entries; revert on regression)
        "move_below": 0.05,           # the seeds' rule: the cheaper tier's error rate under this -> move
        "stay_above": 0.08,           # over this -> stay on the stronger tier; between: review
        "confidence": 0.95,           # Wilson interval of the error rate
        "min_pairs": 30,              # graded pairs before any verdict
        "learn_interval": 0.0,        # seconds between scheduled `tierwise learn` runs by the monitor (0: off)
        "learn_min_pairs": 200,       # graded pairs needed before learning
        "learn_mix": "",              # recalibrate to this tier mix (e.g. "70/30"), or
        "learn_budget": 0.0,          # to this mean USD per call; neither: tolerance between move_below and stay_above
        "artifact_dir": "tierwise-routers",  # where `tierwise learn` writes artifacts (relative to tierwise.toml)
    },
}

# environment variable -> (section path, key); a later variable wins over an earlier one for the same key:
# TIERWISE_UPSTREAM_URL over ANTHROPIC_BASE_URL (the variable users also export to point clients AT the
# proxy: give the proxy TIERWISE_UPSTREAM_URL and that mix-up cannot loop it back to itself)
ENV_VARS: dict[str, tuple[str, ...]] = {
    "TIERWISE_HOST": ("server", "host"),
    "TIERWISE_PORT": ("server", "port"),
    "TIERWISE_LEDGER_URL": ("ledger", "url"),
    "TIERWISE_UPSTREAM": ("upstream", "kind"),
    "ANTHROPIC_BASE_URL": ("upstream", "url"),
    "TIERWISE_UPSTREAM_URL": ("upstream", "url"),
    "TIERWISE_STORE_PROMPTS": ("ledger", "store_prompts"),
    "TIERWISE_REDIS_URL": ("resilience", "redis_url"),
}


@dataclass
class Settings:
    """Resolved configuration. ``raw`` keeps the merged tables; typed views below."""

    raw: dict[str, Any]
    source: str = "defaults"
    catalog: Catalog = field(default=None)  # type: ignore[assignment]
    upstream_from: str = "default"  # what set upstream.url: "arguments", "<file> [upstream] url", "$VAR", "default"

    # -- typed views --------------------------------------------------------------
    @property
    def host(self) -> str:
        return cast("str", self.raw["server"]["host"])

    @property
    def port(self) -> int:
        return cast("int", self.raw["server"]["port"])

    @property
    def max_body_bytes(self) -> int:
        return cast("int", self.raw["server"]["max_body_bytes"])

    @property
    def upstream(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self.raw["upstream"])

    @property
    def ledger_url(self) -> str:
        return cast("str", self.raw["ledger"]["url"])

    @property
    def ledger(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self.raw["ledger"])

    @property
    def registry(self) -> Mapping[str, str]:
        """The task type -> tier registry in force: a read-only snapshot, swapped whole on a change."""
        return cast("Mapping[str, str]", self.raw["registry"])

    def replace_registry(self, registry: Mapping[str, str]) -> None:
        """Put a new registry in force (one reference swap: readers see the old or the new one, whole)."""
        self.raw["registry"] = MappingProxyType(dict(registry))

    @property
    def routing(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self.raw["routing"])

    @property
    def default_tier(self) -> str:
        return cast("str", self.raw["routing"]["default_tier"])

    def upstream_kind(self, environ: Mapping[str, str] | None = None) -> str:
        """``anthropic`` or ``offline``: ``auto`` means anthropic when an API key is set."""
        kind = str(self.upstream["kind"])
        if kind != "auto":
            return kind
        env = os.environ if environ is None else environ
        return "anthropic" if env.get(self.upstream["api_key_env"]) else "offline"


# tables whose keys are the user's data (task types, tiers, strategy names...), not settings: any key is accepted
FREE_TABLES = frozenset(("registry", "catalog", "strategies", "options", "task_options", "fallbacks", "tasks", "arms",
                         "model_ids", "compare", "checks", "rubrics"))


def _coerce(value: Any, default: Any, where: str) -> Any:
    if default is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}") from None
    if isinstance(default, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _merge(base: dict[str, Any], over: Mapping[str, Any], where: str, free: bool = False) -> None:
    for key, value in over.items():
        path = f"{where}.{key}" if where else key
        if key not in base:
            if free:
                base[key] = value
                continue
            known = ", ".join(sorted(base)) or "(none)"
            raise ConfigError(f"{path}: unknown key (known keys here: {known})")
        cur = base[key]
        if isinstance(cur, dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{path}: expected a table, got {value!r}")
            free_here = key in FREE_TABLES or free
            _merge(cur, value, path, free=free_here)
        else:
            base[key] = _coerce(value, cur, path)


def _set_path(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    for p in path[:-1]:
        node = node.setdefault(p, {})
    node[path[-1]] = value
    return out


def defaults() -> dict[str, Any]:
    """A fresh copy of every default: ``DEFAULTS`` and the table of every upstream kind registered
    since it was built (``[resilience.<kind>]``)."""
    raw = copy.deepcopy(DEFAULTS)
    for kind, table in table_defaults().items():
        raw["resilience"].setdefault(kind, table)
    return raw


def load_settings(config_path: str | os.PathLike[str] | None = None, *, overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve settings. ``config_path`` None means ``$TIERWISE_CONFIG`` or ``./tierwise.toml`` if present.

    ``overrides`` is a nested mapping like ``{"server": {"port": 9000}}`` (CLI arguments).
    """
    env = os.environ if environ is None else environ
    raw = defaults()
    upstream_from = "default"
    for var, keys in ENV_VARS.items():
        if env.get(var):
            _merge(raw, _set_path({}, keys, env[var]), f"${var}")
            if keys == ("upstream", "url"):
                upstream_from = f"${var}"

    source = "defaults"
    explicit = config_path is not None or bool(env.get("TIERWISE_CONFIG"))
    path = Path(config_path or env.get("TIERWISE_CONFIG") or "tierwise.toml")
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        try:
            _merge(raw, data, "")
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        source = str(path)
        if isinstance(data.get("upstream"), dict) and "url" in data["upstream"]:
            upstream_from = f"{path} [upstream] url"
    elif explicit:
        raise ConfigError(f"{path}: config file not found")

    if overrides:
        _merge(raw, overrides, "")
        if isinstance(overrides.get("upstream"), Mapping) and overrides["upstream"].get("url") is not None:
            upstream_from = "arguments"
    settings = _validate(raw, source)
    settings.upstream_from = upstream_from
    return settings


# (section, key) -> (check, what it must be): values that parse but make no sense are refused here,
# naming the key, instead of surprising the user later (a monitor that reverts on one sample...).
RANGES: dict[tuple[str, ...], tuple[Any, str]] = {
    ("server", "max_body_bytes"): (lambda v: v >= 1, "at least 1"),
    ("server", "log_level"): (lambda v: v.lower() in ("debug", "info", "warning", "error", "critical"),
                              "debug, info, warning, error or critical"),
    ("server", "header_timeout"): (lambda v: v > 0, "more than 0 seconds"),
    ("server", "body_timeout"): (lambda v: v > 0, "more than 0 seconds"),
    ("server", "keep_alive"): (lambda v: v > 0, "more than 0 seconds"),
    ("server", "max_connections"): (lambda v: v >= 1, "at least 1"),
    ("upstream", "first_byte_timeout"): (lambda v: v > 0, "more than 0 seconds"),
    ("upstream", "stream_idle_timeout"): (lambda v: v > 0, "more than 0 seconds"),
    ("upstream", "max_response_bytes"): (lambda v: v >= 1024, "at least 1024 bytes"),
    ("routing", "thinking_affinity"): (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                                       "a whole number of blocks, 0 (off) or more"),
    ("ledger", "batch_size"): (lambda v: v >= 1, "at least 1"),
    ("ledger", "max_unjournaled_rows"): (lambda v: v >= 1, "at least 1"),
    ("ledger", "flush_interval"): (lambda v: v > 0, "more than 0 seconds"),
    ("resilience", "max_attempts"): (lambda v: v >= 1, "at least 1"),
    ("resilience", "max_retry_time"): (lambda v: v >= 0, "0 or more seconds"),
    ("resilience", "breaker", "failure_rate"): (lambda v: 0 < v <= 1, "between 0 (excluded) and 1"),
    ("resilience", "breaker", "window"): (lambda v: v >= 1, "at least 1"),
    ("resilience", "breaker", "min_requests"): (lambda v: v >= 1, "at least 1"),
    ("resilience", "breaker", "cooldown"): (lambda v: v > 0, "more than 0 seconds"),
    ("budgets", "action"): (lambda v: v in ("refuse", "downgrade"), "refuse or downgrade"),
    ("budgets", "daily_usd"): (lambda v: v >= 0, "0 (no budget) or more"),
    ("budgets", "on_store_error"): (lambda v: v in ("fail_open", "fail_closed"), "fail_open or fail_closed"),
    ("budgets", "server_tool_uses"): (lambda v: v >= 1, "at least 1"),
    ("budgets", "store"): (lambda v: v in ("auto", "database", "redis"), "auto, database or redis"),
    ("resilience", "rate_limits_on_store_error"): (lambda v: v in ("fail_open", "fail_closed"), "fail_open or fail_closed"),
    ("resilience", "store_retry_interval"): (lambda v: v > 0, "more than 0 seconds"),
    ("resilience", "redis", "connect_timeout"): (lambda v: v > 0, "more than 0 seconds"),
    ("resilience", "redis", "timeout"): (lambda v: v > 0, "more than 0 seconds"),
    ("resilience", "redis", "max_connections"): (lambda v: v >= 1, "at least 1"),
    ("resilience", "redis", "pool_timeout"): (lambda v: v > 0, "more than 0 seconds"),
    ("eval", "threshold"): (lambda v: 0 < v < 1, "a share between 0 and 1, e.g. 0.05"),
    ("eval", "confidence"): (lambda v: 0 < v < 1, "between 0 and 1, e.g. 0.95"),
    ("eval", "concurrency"): (lambda v: v >= 1, "at least 1"),
    ("eval", "max_spend_usd"): (lambda v: v >= 0, "0 or more"),
    ("eval", "judge_pass"): (lambda v: 0 <= v <= 1, "between 0 and 1"),
    ("monitor", "interval"): (lambda v: v >= 0, "0 (off) or more seconds"),
    ("monitor", "margin"): (lambda v: 0 <= v < 1, "a share between 0 and 1"),
    ("monitor", "min_samples"): (lambda v: v >= 1, "at least 1"),
    ("monitor", "max_error_rate"): (lambda v: 0 < v <= 1, "a share between 0 (excluded) and 1"),
    ("shadow", "sample"): (lambda v: 0 <= v <= 1, "a share between 0 and 1"),
    ("shadow", "auto"): (lambda v: 0 <= v <= 1, "a share between 0 and 1"),
    ("shadow", "daily_usd"): (lambda v: v >= 0, "0 or more"),
    ("shadow", "queue_size"): (lambda v: v >= 1, "at least 1"),
    ("shadow", "concurrency"): (lambda v: v >= 1, "at least 1"),
    ("shadow", "apply"): (lambda v: v in ("recommend", "auto"), "recommend or auto"),
    ("shadow", "move_below"): (lambda v: 0 < v < 1, "a share between 0 and 1"),
    ("shadow", "stay_above"): (lambda v: 0 < v < 1, "a share between 0 and 1"),
    ("shadow", "confidence"): (lambda v: 0 < v < 1, "between 0 and 1, e.g. 0.95"),
    ("shadow", "min_pairs"): (lambda v: v >= 1, "at least 1"),
    ("shadow", "learn_interval"): (lambda v: v >= 0, "0 (off) or more seconds"),
    ("shadow", "learn_min_pairs"): (lambda v: v >= 2, "at least 2"),
    ("shadow", "learn_budget"): (lambda v: v >= 0, "0 (off) or more"),
}


def _check_ranges(raw: dict[str, Any], where: str) -> None:
    for path, (ok, what) in RANGES.items():
        node: Any = raw
        for p in path:
            if not isinstance(node, dict) or p not in node:
                node = None
                break
            node = node[p]
        if node is not None and not ok(node):
            raise ConfigError(f"{where}{'.'.join(path)}: must be {what}, got {node!r}")


def _validate_shadow(sh: dict[str, Any], tiers: set[str], where: str) -> None:
    """[shadow]: the tables and lists checked here, the numbers by RANGES."""
    if sh["move_below"] > sh["stay_above"]:
        raise ConfigError(f"{where}shadow.move_below ({sh['move_below']}) must not be above shadow.stay_above ({sh['stay_above']})")
    for key in ("exclude_keys", "exclude_tasks", "read_only_tools"):
        v = sh[key]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ConfigError(f"{where}shadow.{key}: expected a list of strings, got {v!r}")
    for task, share in sh["tasks"].items():
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise ConfigError(f"{where}shadow.tasks.{task}: expected a share between 0 and 1, got {share!r}")
    for task, tier in sh["compare"].items():
        if not isinstance(tier, str) or tier not in tiers:
            raise ConfigError(f"{where}shadow.compare.{task}: unknown tier {tier!r} (tiers: {', '.join(sorted(tiers))})")
    for task, rubric in sh["rubrics"].items():
        if not isinstance(rubric, str) or not rubric.strip():
            raise ConfigError(f"{where}shadow.rubrics.{task}: expected the rubric text")
    for task, checks in sh["checks"].items():
        if not isinstance(checks, list) or not checks:
            raise ConfigError(f"{where}shadow.checks.{task}: expected a list of checks, e.g. [{{type = \"regex\", pattern = \"^\\\\w+$\"}}]")
        for i, c in enumerate(checks):
            if not isinstance(c, dict) or c.get("type") in (None, "judge", "python"):
                raise ConfigError(f"{where}shadow.checks.{task}.{i}: a check of type match, regex, json_schema, length, "
                                  "labels or agree")
    if sh["learn_mix"] and not re.fullmatch(r"\d+(\.\d+)?(/\d+(\.\d+)?)+", str(sh["learn_mix"])):
        raise ConfigError(f"{where}shadow.learn_mix: expected shares cheapest first, e.g. \"70/30\", got {sh['learn_mix']!r}")


def _validate_fallbacks(fallbacks: Mapping[str, Any], catalog: Catalog, where: str) -> None:
    """[resilience.fallbacks]: tier (or "*") -> a list of upstream kinds, "next_tier" and "tier:<name>"."""
    names = ", ".join(f'"{k}"' for k in kinds())
    for tier, entries in fallbacks.items():
        at = f"{where}resilience.fallbacks.{tier}"
        if tier != "*" and tier not in catalog.tiers:
            raise ConfigError(f"{at}: unknown tier (tiers: {', '.join(catalog.tier_order)})")
        if not isinstance(entries, list):
            raise ConfigError(f"{at}: expected a list of {names}, \"next_tier\" or \"tier:<name>\", got {entries!r}")
        for e in entries:
            if isinstance(e, str) and (e in kinds() or e == "next_tier"):
                continue
            if isinstance(e, str) and e.startswith("tier:"):
                if e[5:] in catalog.tiers:
                    continue
                raise ConfigError(f"{at}: {e!r} names an unknown tier (tiers: {', '.join(catalog.tier_order)})")
            raise ConfigError(f"{at}: {e!r} is not an upstream kind ({names}), \"next_tier\" or \"tier:<name>\"")


def _validate_routing(routing: dict[str, Any], where: str) -> None:
    """Strategy names and their options ([routing.options.<strategy>], [routing.task_options.<task>])."""
    from .routing.base import STRATEGIES, available, check_options

    names = ", ".join(available())
    if routing["auto"] not in STRATEGIES:
        raise ConfigError(f"{where}routing.auto: unknown routing strategy {routing['auto']!r} (available: {names})")
    for task, strategy in routing["strategies"].items():
        if not isinstance(strategy, str) or strategy not in STRATEGIES:
            raise ConfigError(f"{where}routing.strategies.{task}: unknown routing strategy {strategy!r} (available: {names})")
    for name, opts in routing["options"].items():
        if name not in STRATEGIES:
            raise ConfigError(f"{where}routing.options.{name}: unknown routing strategy (available: {names})")
        check_options(name, opts, f"{where}routing.options.{name}")
    for task, opts in routing["task_options"].items():
        strategy = routing["strategies"].get(task)
        if strategy is None:
            raise ConfigError(f"{where}routing.task_options.{task}: options for a task type with no "
                              f"[routing.strategies] entry (set routing.strategies.{task} = \"<strategy>\")")
        check_options(strategy, opts, f"{where}routing.task_options.{task}")


def _validate(raw: dict[str, Any], source: str) -> Settings:
    where = f"{source}: " if source != "defaults" else ""
    _check_ranges(raw, where)
    check_tables(raw["resilience"], where)
    try:
        catalog = load_catalog(raw.get("catalog"))
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None
    tiers = set(catalog.tiers)
    if raw["routing"]["default_tier"] not in tiers:
        raise ConfigError(f"{where}routing.default_tier: unknown tier {raw['routing']['default_tier']!r} (tiers: {', '.join(catalog.tier_order)})")
    for task, tier in raw["registry"].items():
        if not TASK_NAME.match(task):
            raise ConfigError(f"{where}registry.{task}: a task type is lower-case letters, digits, '_', '-' or '.'")
        if not isinstance(tier, str) or tier not in tiers:
            raise ConfigError(f"{where}registry.{task}: unknown tier {tier!r} (tiers: {', '.join(catalog.tier_order)})")
    if raw["upstream"]["offline"]["quality"] not in ("", "sim"):
        raise ConfigError(f"{where}upstream.offline.quality: expected \"\" (off) or \"sim\", got {raw['upstream']['offline']['quality']!r}")
    if raw["upstream"]["kind"] not in ("auto", "anthropic", "offline"):
        raise ConfigError(f"{where}upstream.kind: expected auto, anthropic or offline, got {raw['upstream']['kind']!r}")
    _validate_shadow(raw["shadow"], tiers, where)
    _validate_fallbacks(raw["resilience"]["fallbacks"], catalog, where)
    _validate_routing(raw["routing"], where)
    port = raw["server"]["port"]
    if not 0 <= port <= 65535:
        raise ConfigError(f"{where}server.port: {port} is not a TCP port")
    raw["registry"] = MappingProxyType(dict(raw["registry"]))
    return Settings(raw=raw, source=source, catalog=catalog)
