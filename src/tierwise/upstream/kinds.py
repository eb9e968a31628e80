"""Upstream kinds: the peers a fallback may name, registered by kind.

Each kind says how to build its upstream from its table ``[resilience.<kind>]`` (``factory``), which
id a catalog model has there (``id_mapper``; ``None``: the model is not served there), the table's
defaults, and the values some of its keys may take. ``[resilience.fallbacks]`` entries name kinds;
config loading refuses a name that is not registered. Built in: ``anthropic`` (the first-party API:
no table, available when it is the primary), ``bedrock`` (Amazon Bedrock) and ``vertex`` (Google
Cloud Vertex AI). Another kind is one call::

    register_upstream("acme", factory=build_acme, id_mapper=lambda model, conf: model.id,
                      defaults={"enabled": False, "url": ""})

Factories import their module lazily: nothing here imports an HTTP client.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..catalog import Catalog, Model
    from .base import Upstream

__all__ = ["UpstreamKind", "register_upstream", "unregister_upstream", "upstream_kind", "kinds", "table_defaults",
           "check_tables", "model_ids", "build_peers"]

Factory = Callable[[Mapping[str, Any], "Catalog", Mapping[str, Any]], "Upstream"]
IdMapper = Callable[["Model", Mapping[str, Any]], "str | None"]


@dataclass(frozen=True, slots=True)
class UpstreamKind:
    kind: str
    factory: Factory | None          # (table, catalog, [upstream]) -> Upstream; None: only ever the primary
    id_mapper: IdMapper              # (catalog model, table) -> the model's id on this upstream, or None
    defaults: Mapping[str, Any] | None = None   # [resilience.<kind>] defaults; None: no table
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # key -> the values it may take


_KINDS: dict[str, UpstreamKind] = {}


def register_upstream(kind: str, factory: Factory | None, id_mapper: IdMapper, *,
                      defaults: Mapping[str, Any] | None = None,
                      choices: Mapping[str, tuple[str, ...]] | None = None) -> UpstreamKind:
    """Make ``kind`` an upstream a fallback may name. A table (``defaults``) needs an ``enabled`` key."""
    if defaults is not None and "enabled" not in defaults:
        raise ValueError(f"upstream kind {kind!r}: its table needs an 'enabled' key")
    k = UpstreamKind(kind, factory, id_mapper, dict(defaults) if defaults is not None else None, dict(choices or {}))
    _KINDS[kind] = k
    return k


def unregister_upstream(kind: str) -> None:
    _KINDS.pop(kind, None)


def kinds() -> tuple[str, ...]:
    return tuple(_KINDS)


def upstream_kind(kind: str) -> UpstreamKind:
    try:
        return _KINDS[kind]
    except KeyError:
        raise ConfigError(f"unknown upstream kind {kind!r} (kinds: {', '.join(_KINDS)})") from None


def table_defaults() -> dict[str, dict[str, Any]]:
    """kind -> a fresh copy of its ``[resilience.<kind>]`` defaults, for the kinds that have a table."""
    return {k.kind: copy.deepcopy(dict(k.defaults)) for k in _KINDS.values() if k.defaults is not None}


def check_tables(resilience: Mapping[str, Any], where: str = "") -> None:
    """Refuse a value a kind's table does not allow, naming the key."""
    for k in _KINDS.values():
        table = resilience.get(k.kind)
        if not isinstance(table, Mapping):
            continue
        for key, allowed in k.choices.items():
            if key in table and table[key] not in allowed:
                raise ConfigError(f"{where}resilience.{k.kind}.{key}: must be {' or '.join(allowed)}, got {table[key]!r}")


def model_ids(kind: str, table: Mapping[str, Any], catalog: "Catalog") -> dict[str, str]:
    """Catalog id -> the id on ``kind``'s upstream, for every listed model served there."""
    mapper = upstream_kind(kind).id_mapper
    out: dict[str, str] = {}
    for m in catalog.listed():
        mid = mapper(m, table)
        if mid:
            out[m.id] = mid
    return out


def build_peers(resilience: Mapping[str, Any], catalog: "Catalog", upstream: Mapping[str, Any],
                given: Mapping[str, "Upstream"] | None = None) -> dict[str, "Upstream"]:
    """The enabled peers by kind: ``given`` ones (tests) first, then each enabled table's factory."""
    peers: dict[str, Upstream] = dict(given or {})
    for k in _KINDS.values():
        if k.kind in peers or k.factory is None or k.defaults is None:
            continue
        table = resilience.get(k.kind) or {}
        if table.get("enabled"):
            peers[k.kind] = k.factory(table, catalog, upstream)
    return peers


# -- the built-in kinds ---------------------------------------------------------------

def _catalog_id(kind: str) -> IdMapper:
    """The id the catalog lists for ``kind`` (``<kind>_id`` on a model)."""
    return lambda model, table: model.upstream_id(kind)


def _build_bedrock(table: Mapping[str, Any], catalog: "Catalog", upstream: Mapping[str, Any]) -> "Upstream":
    from .bedrock import build_bedrock

    return build_bedrock(table, catalog, upstream=upstream)


def _vertex_id(model: "Model", table: Mapping[str, Any]) -> str | None:
    if model.retired:
        return None
    return str((table.get("model_ids") or {}).get(model.id, model.id))


def _build_vertex(table: Mapping[str, Any], catalog: "Catalog", upstream: Mapping[str, Any]) -> "Upstream":
    from .vertex import build_vertex

    if not table.get("project"):
        raise ConfigError("resilience.vertex.project: Vertex AI needs a Google Cloud project id")
    return build_vertex(table, catalog, upstream=upstream)


register_upstream("anthropic", None, lambda model, table: model.id)
# Amazon Bedrock (upstream/bedrock.py): "runtime" or "mantle" serve the Messages API itself (every 5.x
# model, Opus 4.7 and later); older models go through InvokeModel. auth: sigv4 | api_key
register_upstream("bedrock", _build_bedrock, _catalog_id("bedrock"),
                  defaults={"enabled": False, "region": "us-east-1", "endpoint_url": "", "model_prefix": "",
                            "timeout": 600.0, "endpoint": "runtime", "auth": "sigv4",
                            "api_key_env": "AWS_BEARER_TOKEN_BEDROCK"},
                  choices={"endpoint": ("runtime", "mantle"), "auth": ("sigv4", "api_key")})
# Google Cloud Vertex AI (upstream/vertex.py): rawPredict / streamRawPredict; OAuth token from google-auth
# (optional extra) or from token_env
register_upstream("vertex", _build_vertex, _vertex_id,
                  defaults={"enabled": False, "project": "", "region": "global", "endpoint_url": "", "token_env": "",
                            "timeout": 600.0, "model_ids": {}})
