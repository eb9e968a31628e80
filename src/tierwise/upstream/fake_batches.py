"""Message Batches and Files as the fakes serve them: in memory, in the API's shapes.

One ``FakeRest`` object holds the batches and files of one fake upstream; the offline upstream
(``OfflineUpstream.request``) and the HTTP fake (``fakeserver``) both hand it their requests:
``handle(method, path, headers, body) -> (status, headers, body)``.

- ``POST /v1/messages/batches`` ``{"requests": [{"custom_id", "params"}]}``: each request is answered
  with ``answer(params)`` (the offline upstream's synthetic Message) when the batch ends: at once, or
  ``batch_delay`` seconds after creation; a request the API would refuse is an ``errored`` result.
- retrieve, list (``limit``, ``before_id``, ``after_id``), cancel (a batch still in progress ends with
  its requests ``canceled``), results (JSONL, once ended), delete (once ended).
- ``POST /v1/files`` (multipart, field ``file``), list, retrieve metadata, download (``/content``;
  uploaded files are not downloadable, as on the API: only files the API itself wrote are), delete.
"""

from __future__ import annotations

import datetime as _dt
import email.parser
import email.policy
import itertools
import os
import time
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import parse_qs

import orjson

from ..errors import APIError, InvalidRequestError, error_body

__all__ = ["FakeRest", "handles", "serve"]

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                405: "invalid_request_error", 413: "request_too_large"}
MAX_REQUESTS = 100_000  # the API's per-batch limit


def handles(path: str) -> bool:
    """Whether ``path`` (with or without a query) is one the fake serves here."""
    route = path.split("?", 1)[0]
    return route.startswith(("/v1/messages/batches", "/v1/files/")) or route == "/v1/files"


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat().replace("+00:00", "Z")


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FakeRest:
    def __init__(self, answer: Callable[[dict[str, Any], Mapping[str, str]], Awaitable[dict[str, Any]]], *,
                 base_url: str = "https://api.anthropic.com", batch_delay: float = 0.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.answer = answer          # async (params, headers) -> a Message dict; raises APIError for a refusal
        self.base_url = base_url.rstrip("/")
        self.batch_delay = batch_delay
        self.clock = clock
        self.batches: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._tag = os.urandom(6).hex()

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{self._tag}{next(self._ids):012x}"

    # -- dispatch -------------------------------------------------------------------
    async def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        route, _, query = path.partition("?")
        q = {k: v[-1] for k, v in parse_qs(query).items()}
        parts = [p for p in route.split("/") if p][1:]  # drop "v1"
        rid = "req_" + self._id("fake")
        try:
            if parts[:2] == ["messages", "batches"]:
                status, out, ctype = await self._batches(method, parts[2:], q, headers, body)
            elif parts[:1] == ["files"]:
                status, out, ctype = self._files(method, parts[1:], q, headers, body)
            else:
                raise _Refused(404, f"no route {method} {route}")
        except _Refused as exc:
            kind = _ERROR_TYPES.get(exc.status, "api_error")
            return exc.status, {"content-type": "application/json", "request-id": rid}, error_body(kind, exc.message, rid)
        data = out if isinstance(out, bytes) else orjson.dumps(out)
        return status, {"content-type": ctype, "request-id": rid}, data

    # -- batches --------------------------------------------------------------------
    async def _batch(self, batch_id: str) -> dict[str, Any]:
        b = self.batches.get(batch_id)
        if b is None:
            raise _Refused(404, f"message batch {batch_id} not found")
        await self._settle(b)
        return b

    async def _settle(self, b: dict[str, Any]) -> None:
        """Run a batch whose time has come: every request answered, or errored."""
        if b["_results"] is not None or self.clock() < b["_due"]:
            return
        lines = []
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for req in b["_requests"]:
            if b["_canceled"]:
                result: dict[str, Any] = {"type": "canceled"}
            else:
                params = req["params"]
                shape = _shape_error(params)
                try:
                    if shape is not None:
                        raise InvalidRequestError(shape)
                    result = {"type": "succeeded", "message": await self.answer(dict(params), b["_headers"])}
                except APIError as exc:
                    kind = _ERROR_TYPES.get(exc.status, "api_error") if exc.error_type == "api_error" else exc.error_type
                    result = {"type": "errored", "error": {"type": "error", "error": {
                        "type": kind, "message": exc.message}, "request_id": None}}
                except Exception as exc:  # noqa: BLE001 - a fake never crashes a batch: the request errors
                    result = {"type": "errored", "error": {"type": "error", "error": {
                        "type": "api_error", "message": f"internal error ({type(exc).__name__})"}, "request_id": None}}
            counts[result["type"]] += 1
            lines.append(orjson.dumps({"custom_id": req["custom_id"], "result": result}))
        b["_results"] = b"\n".join(lines) + b"\n" if lines else b""
        b["_counts"] = counts
        b["ended_at"] = b["ended_at"] or _iso(max(self.clock(), b["_created"]))

    def _public(self, b: dict[str, Any]) -> dict[str, Any]:
        ended = b["_results"] is not None
        counts = b["_counts"] if ended else {"processing": len(b["_requests"]), "succeeded": 0, "errored": 0,
                                              "canceled": 0, "expired": 0}
        status = "ended" if ended else ("canceling" if b["_canceled"] else "in_progress")
        return {"id": b["id"], "type": "message_batch", "processing_status": status, "request_counts": counts,
                "ended_at": b["ended_at"] if ended else None, "created_at": b["created_at"], "expires_at": b["expires_at"],
                "archived_at": None, "cancel_initiated_at": b["cancel_initiated_at"],
                "results_url": f"{self.base_url}/v1/messages/batches/{b['id']}/results" if ended else None}

    async def _batches(self, method: str, rest: list[str], q: dict[str, str], headers: Mapping[str, str],
                 body: bytes) -> tuple[int, Any, str]:
        js = "application/json"
        if not rest:
            if method == "POST":
                return 200, await self._create(headers, body), js
            if method == "GET":
                for b in list(self.batches.values()):
                    await self._settle(b)
                return 200, self._page([self._public(b) for b in reversed(self.batches.values())], q), js
        elif len(rest) == 1:
            if method == "GET":
                return 200, self._public(await self._batch(rest[0])), js
            if method == "DELETE":
                b = await self._batch(rest[0])
                if b["_results"] is None:
                    raise _Refused(400, f"message batch {b['id']} is still being processed; cancel it first, "
                                        "then delete it once it has ended")
                del self.batches[b["id"]]
                return 200, {"id": b["id"], "type": "message_batch_deleted"}, js
        elif len(rest) == 2 and rest[1] == "cancel" and method == "POST":
            b = await self._batch(rest[0])
            if b["_results"] is None:
                b["_canceled"] = True
                b["cancel_initiated_at"] = _iso(self.clock())
                b["_due"] = 0.0
                await self._settle(b)
            return 200, self._public(b), js
        elif len(rest) == 2 and rest[1] == "results" and method == "GET":
            b = await self._batch(rest[0])
            if b["_results"] is None:
                raise _Refused(400, f"message batch {b['id']} has not finished processing: results are not yet available")
            return 200, b["_results"], "application/binary"
        raise _Refused(404 if method in ("GET", "POST", "DELETE") else 405, f"no route {method} /v1/messages/batches/{'/'.join(rest)}")

    async def _create(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _Refused(400, "There was an issue with the request body: not valid JSON") from None
        reqs = data.get("requests") if isinstance(data, dict) else None
        if not isinstance(reqs, list) or not reqs:
            raise _Refused(400, "requests: Field required (a non-empty list of {custom_id, params})")
        if len(reqs) > MAX_REQUESTS:
            raise _Refused(400, f"requests: at most {MAX_REQUESTS:,} requests per batch")
        seen: set[str] = set()
        for i, r in enumerate(reqs):
            if not isinstance(r, dict) or not isinstance(r.get("custom_id"), str) or not r["custom_id"]:
                raise _Refused(400, f"requests.{i}.custom_id: Field required")
            if len(r["custom_id"]) > 64:
                raise _Refused(400, f"requests.{i}.custom_id: String should have at most 64 characters")
            if r["custom_id"] in seen:
                raise _Refused(400, f"requests.{i}.custom_id: duplicate custom_id {r['custom_id']!r}")
            seen.add(r["custom_id"])
            if not isinstance(r.get("params"), dict):
                raise _Refused(400, f"requests.{i}.params: Field required")
        now = self.clock()
        bid = self._id("msgbatch")
        kept = {k: v for k, v in headers.items() if k in ("anthropic-beta", "anthropic-version")}
        b = {"id": bid, "created_at": _iso(now), "expires_at": _iso(now + 86400), "ended_at": None,
             "cancel_initiated_at": None, "_created": now, "_due": now + self.batch_delay, "_requests": reqs,
             "_headers": kept, "_results": None, "_counts": None, "_canceled": False}
        self.batches[bid] = b
        await self._settle(b)
        return self._public(b)

    @staticmethod
    def _page(items: list[dict[str, Any]], q: Mapping[str, str]) -> dict[str, Any]:
        try:
            limit = max(1, min(1000, int(q.get("limit", 20))))
        except ValueError:
            raise _Refused(400, "limit: Input should be a valid integer") from None
        ids = [i["id"] for i in items]
        if q.get("after_id") in ids:
            items = items[ids.index(q["after_id"]) + 1:]
        elif q.get("before_id") in ids:
            items = items[:ids.index(q["before_id"])][-limit:]
        page = items[:limit]
        return {"data": page, "has_more": len(items) > len(page), "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None}

    # -- files ----------------------------------------------------------------------
    def _file(self, file_id: str) -> dict[str, Any]:
        f = self.files.get(file_id)
        if f is None:
            raise _Refused(404, f"file {file_id} not found")
        return f

    @staticmethod
    def _meta(f: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in f.items() if not k.startswith("_")}

    def add_file(self, filename: str, data: bytes, mime_type: str = "application/octet-stream", *,
                 downloadable: bool = True) -> dict[str, Any]:
        """A file as the API's own tools write them (downloadable): for tests and demos."""
        f = {"id": self._id("file"), "type": "file", "filename": filename, "mime_type": mime_type,
             "size_bytes": len(data), "created_at": _iso(self.clock()), "downloadable": downloadable, "_data": data}
        self.files[f["id"]] = f
        return self._meta(f)

    def _files(self, method: str, rest: list[str], q: dict[str, str], headers: Mapping[str, str],
               body: bytes) -> tuple[int, Any, str]:
        js = "application/json"
        if not rest and method == "POST":
            try:
                filename, mime, data = _multipart_file(headers.get("content-type", ""), body)
            except (ValueError, TypeError, LookupError, UnicodeError, AttributeError):
                raise _Refused(400, "file: could not read the multipart/form-data body") from None
            return 200, self.add_file(filename, data, mime, downloadable=False), js
        if not rest and method == "GET":
            return 200, self._page([self._meta(f) for f in reversed(self.files.values())], q), js
        if len(rest) == 1 and method == "GET":
            return 200, self._meta(self._file(rest[0])), js
        if len(rest) == 1 and method == "DELETE":
            f = self._file(rest[0])
            del self.files[f["id"]]
            return 200, {"id": f["id"], "type": "file_deleted"}, js
        if len(rest) == 2 and rest[1] == "content" and method == "GET":
            f = self._file(rest[0])
            if not f["downloadable"]:
                raise _Refused(400, f"file {f['id']} is not downloadable: only files created by skills or the code "
                                    "execution tool can be downloaded")
            return 200, f["_data"], f["mime_type"]
        raise _Refused(404, f"no route {method} /v1/files/{'/'.join(rest)}")


def _shape_error(params: Mapping[str, Any]) -> str | None:
    """The API's first complaint about a batched request's params (fields every Messages request needs)."""
    if not isinstance(params.get("model"), str):
        return "model: Field required"
    mt = params.get("max_tokens")
    if mt is None:
        return "max_tokens: Field required"
    if not isinstance(mt, int) or isinstance(mt, bool):
        return "max_tokens: Input should be a valid integer"
    if mt < 1:
        return "max_tokens: Input should be greater than or equal to 1"
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: Field required (a non-empty list)"
    if any(not isinstance(m, dict) for m in messages):
        return "messages: Input should be a valid list of objects"
    return None


def _multipart_file(content_type: str, body: bytes) -> tuple[str, str, bytes]:
    """The ``file`` part of a multipart/form-data body: (filename, mime type, bytes)."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise _Refused(400, "file upload must be multipart/form-data with a `file` field")
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"content-type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    for part in msg.iter_parts() if msg.is_multipart() else ():
        if part.get_param("name", header="content-disposition") == "file":
            data = part.get_payload(decode=True) or b""
            name = os.path.basename(part.get_filename() or "") or "unnamed"
            return name, part.get_content_type() or "application/octet-stream", data
    raise _Refused(400, "file: Field required")


async def serve(rest: FakeRest, method: str, path: str, headers: Mapping[str, str], body: Any,
                stream: bool, name: str) -> Any:
    """``Upstream.request`` for an in-process fake: the body read (bytes or a stream of them), the
    answer an ``UpstreamResponse`` (streamed in pieces when asked), errors raised as ``send`` raises them."""
    from ..errors import error_for_status
    from .base import UpstreamResponse

    if body is None:
        data = b""
    elif isinstance(body, (bytes, bytearray)):
        data = bytes(body)
    else:
        data = b"".join([chunk async for chunk in body])
    status, hdrs, out = await rest.handle(method, path, headers, data)
    hdrs["x-tierwise-upstream"] = name
    if status >= 400:
        raise error_for_status(status, out, hdrs)
    if not stream:
        return UpstreamResponse(status, hdrs, body=out, upstream=name)

    async def chunks() -> Any:
        for i in range(0, len(out), 65536):
            yield out[i:i + 65536]

    return UpstreamResponse(status, hdrs, chunks=chunks(), upstream=name)
