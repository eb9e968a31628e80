"""``/v1/files``: the Files API forwarded to the upstream as it is (beta header
``files-api-2025-04-14`` and every other ``anthropic-*`` header included).

An upload is streamed to the upstream as it arrives, never held whole in memory (capped at the
API's 500 MB per file: 413 ``request_too_large`` beyond); a download is streamed back the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..errors import APIError, InvalidRequestError, RequestTooLargeError
from .batches import _path, back_headers, upstream_request

if TYPE_CHECKING:
    from .state import ProxyState

__all__ = ["file_routes", "MAX_FILE_BYTES"]

MAX_FILE_BYTES = 500 * 1024 * 1024  # the API's limit per file


async def _upload(request: Request, limit: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLargeError(f"file upload exceeds the limit of {limit:,} bytes")
        if chunk:
            yield chunk


def file_routes(state: "ProxyState", error_response: Callable[..., Response], new_id: Callable[[], str]) -> list[Any]:
    from starlette.routing import Route

    async def forward(request: Request) -> Response:
        rid = new_id()
        try:
            headers = {k.lower(): v for k, v in request.headers.items()}
            await state.guard.admit(headers)
            send = upstream_request(state)
            body = None
            if request.method == "POST":
                n = headers.get("content-length")
                if n is not None:
                    if not n.isdigit():
                        raise InvalidRequestError("content-length: not a number")
                    if int(n) > MAX_FILE_BYTES:
                        raise RequestTooLargeError(f"file upload of {int(n):,} bytes exceeds the limit of {MAX_FILE_BYTES:,} bytes")
                body = _upload(request, MAX_FILE_BYTES)
            download = request.method == "GET" and request.url.path.endswith("/content")
            resp = await send(request.method, _path(request), headers=headers, body=body, stream=download)
        except APIError as exc:
            return error_response(exc, rid)
        hdrs = back_headers(resp.headers, rid)
        if not download:
            return Response(resp.body or b"", status_code=resp.status, headers=hdrs,
                            media_type=resp.headers.get("content-type", "application/json"))

        async def body_iter() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.chunks:
                    yield chunk
            finally:
                await resp.aclose()

        return StreamingResponse(body_iter(), status_code=resp.status, headers=hdrs)

    return [
        Route("/v1/files", forward, methods=["GET", "POST"]),
        Route("/v1/files/{file_id}", forward, methods=["GET", "DELETE"]),
        Route("/v1/files/{file_id}/content", forward, methods=["GET"]),
    ]
