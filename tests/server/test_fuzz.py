"""Property-based fuzzing of the running proxy: no input yields a 500 or a stack trace.

schemathesis was considered, but the proxy serves no OpenAPI document of its own and the tool's
dependency tree is large; hypothesis generates bodies and headers against the real proxy instead
(see docs/production.md).
"""

from __future__ import annotations

import httpx2
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**63 + 1, 2**63 - 1), st.floats(allow_nan=False), st.text(max_size=30))
json_value = st.recursive(json_scalar, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=10), c, max_size=4)),
                          max_leaves=12)
models = st.one_of(st.sampled_from(["auto", "tierwise/classify_intent", "tierwise/nope", "claude-haiku-5-5", "claude-opus-5-5",
                                    "tierwise/", "tierwise/UPPER", "", "claude-x"]), st.text(max_size=20), json_value)
content = st.one_of(st.text(max_size=40), st.lists(st.fixed_dictionaries({"type": st.sampled_from(["text", "image", "tool_use", "x"]),
                                                                         "text": st.text(max_size=20)}), max_size=3), json_value)
message = st.one_of(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", ""]), "content": content}), json_value)
body = st.fixed_dictionaries(
    {"model": models, "max_tokens": st.one_of(st.integers(-5, 300_000), json_value), "messages": st.one_of(st.lists(message, max_size=4), json_value)},
    optional={"stream": st.one_of(st.booleans(), json_value), "system": json_value, "temperature": json_value,
              "tools": json_value, "tool_choice": json_value, "thinking": json_value, "metadata": json_value})
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
headers = st.dictionaries(st.sampled_from(["x-tierwise-task", "anthropic-version", "anthropic-beta", "x-api-key", "authorization",
                                           "x-tierwise-fault", "content-type", "x-other"]),
                          header_text.map(str.strip).filter(bool), max_size=4)  # h11 refuses padded values client-side


@pytest.fixture
def proxy(proxy_factory):
    return proxy_factory(resilience={"backoff_base": 0.0, "max_retry_after": 0.0})


def check(r: httpx2.Response) -> None:
    assert r.status_code != 500 and r.status_code < 600, r.text[:300]
    assert "Traceback" not in r.text
    if r.status_code >= 400:
        data = r.json()
        assert data["type"] == "error" and isinstance(data["error"]["type"], str) and data["error"]["message"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(b=body, h=headers)
def test_structured_bodies(proxy, b, h):
    if "x-tierwise-fault" in h:
        h["x-tierwise-fault"] = h["x-tierwise-fault"].replace("delay", "d")  # no sleeping in a fuzz loop
    r = httpx2.post(proxy.url + "/v1/messages", content=orjson.dumps(b, option=orjson.OPT_NON_STR_KEYS), headers=h, timeout=10)
    check(r)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.binary(max_size=200), json_value.map(lambda v: orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS))))
def test_arbitrary_bytes(proxy, raw):
    check(httpx2.post(proxy.url + "/v1/messages", content=raw, headers={"content-type": "application/json"}, timeout=10))
    check(httpx2.post(proxy.url + "/v1/messages/count_tokens", content=raw, timeout=10))
