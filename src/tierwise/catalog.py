"""The model catalog: Claude models, their prices over time, limits and quirks.

The catalog ships as ``data/models.toml``; ``tierwise.toml`` may override any of it
(``[catalog.tiers]``, ``[[catalog.models]]``). Tiers are capability profiles
(``fast``, ``balanced``, ``deep``, ``frontier``...) mapped to pinned model ids, so
the next model release moves one line of configuration, not code.
"""

from __future__ import annotations

import datetime as _dt
import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from typing import Any, Iterable, Mapping

from .errors import ConfigError

__all__ = ["Price", "Model", "Catalog", "load_catalog"]

_PRICE_FIELDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
_DATE_SUFFIX = re.compile(r"-(\d{8})$")


def _dec(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    try:
        d = Decimal(str(value))
    except Exception:  # noqa: BLE001 - report any parse failure the same way
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if d < 0:
        raise ConfigError(f"{where}: a price cannot be negative ({value!r})")
    return d


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens for each kind of token."""

    input: Decimal
    output: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal
    # the same rates as whole pico-dollars (1e-12 USD) per token, for exact integer cost math
    pico: tuple[int, int, int, int, int] = field(default=(0, 0, 0, 0, 0), compare=False)

    def __post_init__(self) -> None:
        million = Decimal(1_000_000)
        object.__setattr__(self, "pico", tuple(int((getattr(self, f) * million).to_integral_value()) for f in _PRICE_FIELDS))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> "Rates":
        missing = [f for f in _PRICE_FIELDS if f not in data]
        if missing:
            raise ConfigError(f"{where}: missing price field(s) {', '.join(missing)}")
        d = {f: _dec(data[f], f"{where}.{f}") for f in _PRICE_FIELDS}
        return cls(d["input"], d["output"], d["cache_write_5m"], d["cache_write_1h"], d["cache_read"])


@dataclass(frozen=True, slots=True)
class Price:
    """The prices of one model from ``effective`` on."""

    effective: _dt.date
    rates: Rates
    long_threshold: int | None = None
    long_rates: Rates | None = None

    def rates_for(self, prompt_tokens: int) -> Rates:
        if self.long_threshold is not None and self.long_rates is not None and prompt_tokens > self.long_threshold:
            return self.long_rates
        return self.rates


@dataclass(frozen=True, slots=True)
class Model:
    id: str
    family: str
    prices: tuple[Price, ...]
    context_window: int
    max_output: int
    # upstream kind -> this model's attributes there (``<kind>_id`` / ``<kind>_api`` keys in the catalog,
    # or ``upstreams = {<kind> = {id = ..., api = ...}}``), for the kinds of upstream/kinds.py
    upstreams: Mapping[str, Mapping[str, str]] = field(default_factory=dict, hash=False, compare=False)
    aliases: tuple[str, ...] = ()
    legacy: bool = False
    retired: bool = False
    rejects_sampling_params: bool = False
    rejects_manual_thinking: bool = False
    rejects_forced_tool_use: bool = False
    rejects_prefill: bool = False             # a final assistant turn is a 400
    rejects_thinking_disabled: bool = False   # thinking: {type: disabled} is a 400
    rejects_system_messages: bool = False     # role "system" entries inside messages are a 400
    rejects_betas: tuple[str, ...] = ()       # anthropic-beta values the model refuses
    rejects_block_types: tuple[str, ...] = () # content block types the model refuses
    display_name: str = ""
    notes: str = ""

    def upstream_id(self, kind: str) -> str | None:
        """This model's id on the upstream of ``kind`` as the catalog lists it, or None."""
        return self.upstreams.get(kind, {}).get("id") or None

    def upstream_attr(self, kind: str, name: str, default: str = "") -> str:
        return self.upstreams.get(kind, {}).get(name, default)

    def price_at(self, when: _dt.date | _dt.datetime | None = None) -> Price:
        """The price in force on ``when`` (today when None)."""
        if when is None:
            day = _dt.datetime.now(_dt.UTC).date()
        elif isinstance(when, _dt.datetime):
            day = when.astimezone(_dt.UTC).date() if when.tzinfo else when.date()
        else:
            day = when
        chosen = self.prices[0]
        for p in self.prices:
            if p.effective <= day:
                chosen = p
        return chosen


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    return tuple(value)


def _upstreams(data: Mapping[str, Any], where: str) -> dict[str, dict[str, str]]:
    """kind -> attributes, from ``<kind>_<attr>`` keys (any registered upstream kind) and ``upstreams``."""
    from .upstream.kinds import kinds

    out: dict[str, dict[str, str]] = {}
    for kind in kinds():
        prefix = kind + "_"
        attrs = {k[len(prefix):]: str(v) for k, v in data.items() if k.startswith(prefix) and v is not None}
        if attrs:
            out[kind] = attrs
    nested = data.get("upstreams") or {}
    if not isinstance(nested, Mapping):
        raise ConfigError(f"{where}.upstreams: expected a table of upstream kind -> {{id = ...}}")
    for kind, attrs in nested.items():
        if not isinstance(attrs, Mapping):
            raise ConfigError(f"{where}.upstreams.{kind}: expected a table like {{id = \"...\"}}")
        out.setdefault(str(kind), {}).update({str(k): str(v) for k, v in attrs.items()})
    return out


def _model_from(data: Mapping[str, Any], where: str) -> Model:
    mid = data.get("id")
    if not isinstance(mid, str) or not mid:
        raise ConfigError(f"{where}.id: every model needs a string id")
    where = f"{where}[{mid}]"
    raw_prices = data.get("prices")
    if not raw_prices:
        raise ConfigError(f"{where}.prices: a model needs at least one price entry")
    prices = []
    for i, p in enumerate(raw_prices):
        pw = f"{where}.prices[{i}]"
        eff = p.get("effective", _dt.date(1970, 1, 1))
        if isinstance(eff, str):
            try:
                eff = _dt.date.fromisoformat(eff)
            except ValueError:
                raise ConfigError(f"{pw}.effective: expected a date like 2026-10-07, got {eff!r}") from None
        if isinstance(eff, _dt.datetime):
            eff = eff.date()
        long = p.get("long")
        prices.append(
            Price(
                effective=eff,
                rates=Rates.from_mapping(p, pw),
                long_threshold=int(p["long_threshold"]) if "long_threshold" in p else None,
                long_rates=Rates.from_mapping(long, f"{pw}.long") if long else None,
            )
        )
    prices.sort(key=lambda p: p.effective)
    try:
        return Model(
            id=mid,
            family=str(data.get("family", "")),
            prices=tuple(prices),
            context_window=int(data.get("context_window", 200_000)),
            max_output=int(data.get("max_output", 64_000)),
            upstreams=_upstreams(data, where),
            aliases=tuple(data.get("aliases", ())),
            legacy=bool(data.get("legacy", False)),
            retired=bool(data.get("retired", False)),
            rejects_sampling_params=bool(data.get("rejects_sampling_params", False)),
            rejects_manual_thinking=bool(data.get("rejects_manual_thinking", False)),
            rejects_forced_tool_use=bool(data.get("rejects_forced_tool_use", False)),
            rejects_prefill=bool(data.get("rejects_prefill", False)),
            rejects_thinking_disabled=bool(data.get("rejects_thinking_disabled", False)),
            rejects_system_messages=bool(data.get("rejects_system_messages", False)),
            rejects_betas=_names(data.get("rejects_betas", ()), f"{where}.rejects_betas"),
            rejects_block_types=_names(data.get("rejects_block_types", ()), f"{where}.rejects_block_types"),
            display_name=str(data.get("display_name", "")),
            notes=str(data.get("notes", "")),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


@dataclass(slots=True)
class Catalog:
    """Models by id, tiers in capability order, and the tier -> model mapping."""

    models: dict[str, Model]
    tiers: dict[str, str]
    tier_order: list[str]
    batch_discount: Decimal = Decimal("0.5")
    checked: str = ""
    _alias: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for m in self.models.values():
            for a in m.aliases:
                self._alias[a] = m.id
        for tier, mid in self.tiers.items():
            if mid not in self.models:
                raise ConfigError(f"catalog.tiers.{tier}: model {mid!r} is not in the catalog")
        for tier in self.tiers:
            if tier not in self.tier_order:
                self.tier_order.append(tier)
        self.tier_order = [t for t in self.tier_order if t in self.tiers]

    # -- look-ups ---------------------------------------------------------------
    def get(self, model_id: str) -> Model | None:
        """A model by id, alias, or dated id (``claude-x-20250101`` -> ``claude-x``)."""
        m = self.models.get(model_id)
        if m is not None:
            return m
        alias = self._alias.get(model_id)
        if alias is not None:
            return self.models[alias]
        base = _DATE_SUFFIX.sub("", model_id)
        if base != model_id:
            return self.models.get(base) or (self.models.get(self._alias.get(base, "")))
        return None

    def model_for_tier(self, tier: str) -> Model:
        return self.models[self.tiers[tier]]

    def tier_of(self, model_id: str) -> str | None:
        m = self.get(model_id)
        if m is None:
            return None
        for tier, mid in self.tiers.items():
            if mid == m.id:
                return tier
        return None

    def tier_index(self, tier: str) -> int:
        return self.tier_order.index(tier)

    def tiers_above(self, tier: str) -> list[str]:
        i = self.tier_index(tier)
        return self.tier_order[i + 1 :]

    def listed(self) -> Iterable[Model]:
        return self.models.values()


def _read_default() -> dict[str, Any]:
    text = resources.files("tierwise").joinpath("data/models.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def load_catalog(overrides: Mapping[str, Any] | None = None) -> Catalog:
    """The shipped catalog with ``overrides`` (the ``[catalog]`` table of tierwise.toml) applied.

    Models in ``overrides["models"]`` replace the shipped model with the same id, or add one.
    """
    data = _read_default()
    overrides = overrides or {}
    models: dict[str, Model] = {}
    for i, raw in enumerate(data.get("models", [])):
        m = _model_from(raw, f"models[{i}]")
        models[m.id] = m
    for i, raw in enumerate(overrides.get("models", []) or []):
        m = _model_from(raw, f"catalog.models[{i}]")
        models[m.id] = m
    tiers = dict(data.get("tiers", {}))
    extra_tiers = overrides.get("tiers", {}) or {}
    if not isinstance(extra_tiers, Mapping):
        raise ConfigError("catalog.tiers: expected a table of tier = \"model-id\"")
    tiers.update(extra_tiers)
    order = list(overrides.get("tier_order", data.get("tier_order", list(tiers))))
    discount = _dec(overrides.get("batch_discount", data.get("batch_discount", 0.5)), "catalog.batch_discount")
    return Catalog(models=models, tiers=tiers, tier_order=order, batch_discount=discount, checked=str(data.get("checked", "")))
