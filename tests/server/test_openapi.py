"""GET /openapi.json serves the proxy's hand-written OpenAPI 3.1 document, and the document is valid."""

from __future__ import annotations

from pathlib import Path

import httpx2
import orjson
import pytest

import tierwise.server

DOC = Path(tierwise.server.__file__).with_name("openapi.json")


def test_document_is_valid_openapi_31():
    from openapi_spec_validator import OpenAPIV31SpecValidator, validate

    doc = orjson.loads(DOC.read_bytes())
    assert doc["openapi"].startswith("3.1")
    validate(doc, cls=OpenAPIV31SpecValidator)


def test_document_covers_the_routes():
    paths = orjson.loads(DOC.read_bytes())["paths"]
    for path, method in [("/v1/messages", "post"), ("/v1/messages/count_tokens", "post"), ("/v1/models", "get"),
                         ("/v1/feedback", "post"), ("/healthz", "get"), ("/openapi.json", "get")]:
        assert method in paths[path], (path, method)
    req = orjson.loads(DOC.read_bytes())["components"]["schemas"]["MessagesRequest"]
    assert set(req["required"]) == {"model", "max_tokens", "messages"} and req["additionalProperties"] is True


def test_served_at_openapi_json(proxy_factory):
    proxy = proxy_factory()
    r = httpx2.get(proxy.url + "/openapi.json", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == orjson.loads(DOC.read_bytes())
    r = httpx2.post(proxy.url + "/openapi.json", timeout=10)
    assert r.status_code == 405 and r.json()["type"] == "error"


@pytest.mark.parametrize("schema_name, instance, ok", [
    ("ErrorResponse", {"type": "error", "error": {"type": "not_found_error", "message": "x"}, "request_id": "req_1"}, True),
    ("ErrorResponse", {"type": "error", "error": {"type": "not_found_error"}, "request_id": "req_1"}, False),
    ("FeedbackRequest", {"request_id": "req_1", "outcome": "ok"}, True),
    ("FeedbackRequest", {"request_id": "req_1"}, False),
    ("FeedbackRequest", {"request_id": "req_1", "score": 0.5, "mood": "meh"}, False),
    ("MessagesRequest", {"model": "auto", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}], "future": 1}, True),
    ("MessagesRequest", {"model": "auto", "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]}, False),
])
def test_schemas_say_what_the_proxy_accepts(schema_name, instance, ok):
    import jsonschema

    doc = orjson.loads(DOC.read_bytes())
    validator = jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{schema_name}", "components": doc["components"]})
    assert validator.is_valid(instance) is ok
