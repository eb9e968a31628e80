"""One exception tree for tierwise.

Every upstream HTTP status maps to exactly one class; the proxy maps each class back
to Anthropic's error JSON (``{"type": "error", "error": {"type", "message"}, "request_id"}``)
with the same status code, so a Claude client sees the errors it already handles.
"""

from __future__ import annotations

from typing import Any, Mapping

import orjson

__all__ = [
    "TierwiseError",
    "ConfigError",
    "APIError",
    "InvalidRequestError",
    "AdaptationError",
    "AuthenticationError",
    "BillingError",
    "PermissionDeniedError",
    "NotFoundError",
    "RequestTooLargeError",
    "RateLimitError",
    "InternalServerError",
    "UpstreamConnectionError",
    "UpstreamTimeoutError",
    "OverloadedError",
    "LoopDetectedError",
    "error_for_status",
    "error_body",
]


class TierwiseError(Exception):
    """Base of every error tierwise raises."""


class ConfigError(TierwiseError):
    """The configuration is wrong; the message names the file, the key and the problem."""


class APIError(TierwiseError):
    """An error with an HTTP status and an Anthropic error type."""

    status: int = 500
    error_type: str = "api_error"

    def __init__(self, message: str, *, status: int | None = None, headers: Mapping[str, str] | None = None,
                 request_id: str | None = None, body: bytes | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.headers = dict(headers or {})
        self.request_id = request_id
        self.body = body
        # the upstream's own Anthropic error JSON (its request_id inside): what the client gets, as sent
        self.upstream_body: bytes | None = None

    def to_body(self, request_id: str | None = None) -> bytes:
        return error_body(self.error_type, self.message, request_id or self.request_id)

    def client_body(self, request_id: str) -> bytes:
        """The body the client gets: the upstream's error JSON as it sent it, else tierwise's own
        (with ``request_id``, tierwise's id, when the error carries none of its own)."""
        return self.upstream_body if self.upstream_body is not None else self.to_body(request_id)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, message={self.message!r})"


class InvalidRequestError(APIError):
    status = 400
    error_type = "invalid_request_error"


class AdaptationError(InvalidRequestError):
    """The request cannot be adapted to the model the router chose."""


class AuthenticationError(APIError):
    status = 401
    error_type = "authentication_error"


class BillingError(APIError):
    status = 402
    error_type = "billing_error"


class PermissionDeniedError(APIError):
    status = 403
    error_type = "permission_error"


class NotFoundError(APIError):
    status = 404
    error_type = "not_found_error"


class RequestTooLargeError(APIError):
    status = 413
    error_type = "request_too_large"


class RateLimitError(APIError):
    status = 429
    error_type = "rate_limit_error"


class InternalServerError(APIError):
    status = 500
    error_type = "api_error"


class UpstreamConnectionError(InternalServerError):
    """The upstream could not be reached or dropped the connection."""

    status = 502


class UpstreamTimeoutError(APIError):
    status = 504
    error_type = "timeout_error"


class OverloadedError(APIError):
    status = 529
    error_type = "overloaded_error"


class LoopDetectedError(APIError):
    """The request came back to the proxy that sent it (its upstream URL points at itself or at a
    proxy that points back). HTTP 508 Loop Detected with type ``api_error``: the API has no error
    type for it, and ``api_error`` is what the SDKs map an unknown 5xx to; sent with
    ``x-should-retry: false`` because retrying a loop only repeats it."""

    status = 508
    error_type = "api_error"


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: BillingError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: RequestTooLargeError,
    429: RateLimitError,
    500: InternalServerError,
    502: UpstreamConnectionError,
    504: UpstreamTimeoutError,
    529: OverloadedError,
}


def error_for_status(status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> APIError:
    """The exception for an upstream error response, keeping its message and headers."""
    message = f"upstream returned HTTP {status}"
    request_id = None
    as_sent = False
    try:
        data: Any = orjson.loads(body) if body else None
        if isinstance(data, dict):
            err = data.get("error") or {}
            if isinstance(err, dict):
                message = str(err.get("message") or message)
                as_sent = data.get("type") == "error"
            request_id = data.get("request_id")
            if not isinstance(request_id, str) or not request_id:
                request_id, as_sent = None, False
    except orjson.JSONDecodeError:
        if body:
            message = f"{message}: {body[:200].decode('utf-8', 'replace')}"
    cls = _BY_STATUS.get(status)
    exc: APIError
    if cls is None:
        cls = InternalServerError if status >= 500 else InvalidRequestError
        exc = cls(message, status=status, headers=headers, request_id=request_id, body=body)
    else:
        exc = cls(message, headers=headers, request_id=request_id, body=body)
    if as_sent:  # an Anthropic error JSON with its own request_id: the client gets it unchanged
        exc.upstream_body = body
    return exc


def error_body(error_type: str, message: str, request_id: str | None = None) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id})
