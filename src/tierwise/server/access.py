"""Who may reach which route of the proxy (the table is in docs/production.md, "Keys and roles").

When proxy keys are not enforced (no key exists and ``keys.required`` is off: ``make run``) every
route stays open, as before; only the operator routes ask for ``$TIERWISE_DASHBOARD_TOKEN`` when
that is set. When keys are enforced:

- API routes (``/v1/messages``, ``count_tokens``, ``/v1/models``...): any valid proxy key;
- operator routes (``/dashboard``, ``/metrics``, ``/openapi.json``, the task list in ``/v1/models``,
  the counters in ``/healthz``): an ``operator`` key, or the operator token
  (``dashboard.token_env``), which is not a proxy key and opens nothing else;
- ``POST /v1/feedback``: a caller key for the request ids it made itself, an operator key (or the
  token) for any.

A missing or unknown key is a 401 ``authentication_error``; a caller key on an operator route a 403
``permission_error``.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from ..errors import AuthenticationError, PermissionDeniedError

if TYPE_CHECKING:
    from ..admission.keys import KeyRecord, KeyStore
    from .state import ProxyState

__all__ = ["Access", "Caller", "CALLER", "OPERATOR", "FEEDBACK"]

CALLER, OPERATOR, FEEDBACK = "caller", "operator", "feedback"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: their proxy key (None when keys are off, or for the operator token)."""

    key: "KeyRecord | None"
    operator: bool
    enforced: bool   # proxy keys are enforced on this proxy


def presented(headers: Mapping[str, str]) -> str:
    """The credential in ``x-api-key`` or ``Authorization: Bearer`` (lower-case header names)."""
    given = headers.get("x-api-key") or ""
    if not given:
        auth = headers.get("authorization") or ""
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
    return given


class Access:
    def __init__(self, state: "ProxyState") -> None:
        self.state = state
        self.token_env = str(state.settings.raw["dashboard"]["token_env"] or "")

    @property
    def keys(self) -> "KeyStore | None":
        return getattr(getattr(self.state, "guard", None), "keys", None)

    def _token(self) -> str:
        return os.environ.get(self.token_env, "") if self.token_env else ""

    async def check(self, headers: Mapping[str, str], need: str, *, cookie: str = "", what: str = "this route",
                    required: bool = True) -> Caller:
        """The caller, or AuthenticationError / PermissionDeniedError. ``headers`` have lower-case names.
        With ``required=False`` a request without any credential gets a non-operator Caller instead of a 401
        (``/healthz``: a load balancer's probe carries no key)."""
        keys = self.keys
        if keys is not None:
            await keys.fresh()
        enforced = bool(keys is not None and keys.enforced)
        token = self._token()
        given = presented(headers) or cookie
        if not enforced:
            if need == CALLER or not token:
                return Caller(None, True, False)
            if given and hmac.compare_digest(given.encode(), token.encode()):
                return Caller(None, True, False)
            if not given and not required:
                return Caller(None, False, False)
            raise AuthenticationError(f"{what} needs the operator token (${self.token_env})" if not given
                                      else "invalid operator token")
        if not given:
            if not required:
                return Caller(None, False, True)
            raise AuthenticationError("x-api-key header is required: a tierwise proxy key, in x-api-key or "
                                      "Authorization: Bearer")
        if token and need != CALLER and hmac.compare_digest(given.encode(), token.encode()):
            return Caller(None, True, True)
        assert keys is not None
        key = keys.authenticate({"x-api-key": given})
        if need == OPERATOR and not key.operator:
            if not required:
                return Caller(key, False, True)
            raise PermissionDeniedError(f"this proxy key ({key.id}) is a caller key: {what} needs an operator key "
                                        f"(tierwise keys create --role operator)")
        return Caller(key, key.operator, True)
