"""The rest of the API surface: models.retrieve, Message Batches (routed, accounted once), Files,
and keys enforced on every API route."""

from __future__ import annotations

import datetime as _dt

import anthropic
import httpx2
import orjson
import pytest

from tierwise.cost import Usage, cost_nanos
from tierwise.reports.spend import summarize

H = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
MSG = [{"role": "user", "content": "Classify this ticket: my refund never arrived"}]
BATCH = {"requests": [
    {"custom_id": "routed", "params": {"model": "tierwise/classify_intent", "max_tokens": 30, "temperature": 0.2,
                                       "messages": MSG}},
    {"custom_id": "auto", "params": {"model": "auto", "max_tokens": 30, "messages": MSG}},
    {"custom_id": "explicit", "params": {"model": "claude-opus-5-5", "max_tokens": 30, "messages": MSG,
                                         "some_future_field": 1}},
]}


@pytest.fixture
def proxy(proxy_factory):
    return proxy_factory()


@pytest.fixture
def via_fake(proxy_factory, fake_anthropic, monkeypatch):
    monkeypatch.setenv("TW_TEST_UPSTREAM_KEY", "sk-upstream-secret")  # the proxy's own key to the upstream
    return proxy_factory(fake_anthropic.url, upstream={"api_key_env": "TW_TEST_UPSTREAM_KEY"})


def rows(p):
    p.state.ledger.flush()
    return p.state.ledger.rows()


# -- models --------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_id, want", [
    ("auto", "auto"), ("tierwise/classify_intent", "tierwise/classify_intent"),
    ("tierwise%2Fclassify_intent", "tierwise/classify_intent"), ("claude-haiku-5-5", "claude-haiku-5-5")])
def test_models_retrieve_gives_the_listed_object(proxy, model_id, want):
    listed = {m["id"]: m for m in httpx2.get(proxy.url + "/v1/models", headers=H).json()["data"]}
    r = httpx2.get(f"{proxy.url}/v1/models/{model_id}", headers=H)
    assert r.status_code == 200 and r.json() == listed[want]


def test_models_retrieve_unknown_is_the_apis_404(proxy):
    for mid in ("claude-nope-1", "claude-opus-4-1", "tierwise/Bad Name"):  # unknown, retired, not a task name
        r = httpx2.get(f"{proxy.url}/v1/models/{mid}", headers=H)
        assert r.status_code == 404 and r.json()["type"] == "error"
        assert r.json()["error"] == {"type": "not_found_error", "message": f"model: {mid}"}


def test_sdk_models_retrieve(proxy):
    client = anthropic.Anthropic(api_key="k", base_url=proxy.url, max_retries=0)
    assert client.models.retrieve("claude-haiku-5-5").id == "claude-haiku-5-5"
    assert client.models.retrieve("tierwise/classify_intent").id == "tierwise/classify_intent"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-nope-1")


# -- keys on every API route -----------------------------------------------------------------------
@pytest.mark.parametrize("method, path", [
    ("GET", "/v1/models"), ("GET", "/v1/models/auto"), ("POST", "/v1/messages/count_tokens"),
    ("POST", "/v1/messages/batches"), ("GET", "/v1/messages/batches"), ("GET", "/v1/messages/batches/msgbatch_x"),
    ("GET", "/v1/messages/batches/msgbatch_x/results"), ("POST", "/v1/messages/batches/msgbatch_x/cancel"),
    ("DELETE", "/v1/messages/batches/msgbatch_x"), ("GET", "/v1/files"), ("POST", "/v1/files"),
    ("GET", "/v1/files/file_x"), ("GET", "/v1/files/file_x/content"), ("DELETE", "/v1/files/file_x")])
def test_a_wrong_key_sees_nothing(proxy, method, path):
    _, good = proxy.state.guard.keys.create("app")
    for hdrs in ({"x-api-key": "tw-wrong"}, {"authorization": "Bearer tw-wrong"}, {}):
        r = httpx2.request(method, proxy.url + path, headers=dict(hdrs, **{"anthropic-version": "2023-06-01"}),
                           content=b'{"model": "auto", "messages": []}' if method == "POST" else None)
        assert r.status_code == 401, (path, r.text)
        assert r.json()["error"]["type"] == "authentication_error" and "classify_intent" not in r.text
        assert r.json()["error"]["message"].startswith("invalid x-api-key" if hdrs else "x-api-key header is required")
    if path == "/v1/models":
        assert httpx2.get(proxy.url + path, headers={"x-api-key": good}).status_code == 200


# -- batches ---------------------------------------------------------------------------------------
def test_batch_requests_are_routed_like_live_ones_and_explicit_ids_untouched(via_fake, fake_anthropic):
    r = httpx2.post(via_fake.url + "/v1/messages/batches", headers=H, json=BATCH)
    assert r.status_code == 200, r.text
    sent = orjson.loads(next(b for p, _, b in fake_anthropic.requests if p == "/v1/messages/batches"))
    params = {q["custom_id"]: q["params"] for q in sent["requests"]}
    # adapted as a live request: every 5.5 model rejects a non-default temperature
    assert params["routed"]["model"] == "claude-haiku-5-5" and "temperature" not in params["routed"]
    assert params["auto"]["model"] in ("claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5")
    assert params["explicit"] == BATCH["requests"][2]["params"]
    batch = r.json()
    assert batch["results_url"] == f"{via_fake.url}/v1/messages/batches/{batch['id']}/results"  # points back at us


def test_results_become_ledger_rows_at_the_batch_discount_exactly_once(via_fake):
    _, key = via_fake.state.guard.keys.create("batcher")
    hdrs = dict(H, **{"x-api-key": key})
    batch = httpx2.post(via_fake.url + "/v1/messages/batches", headers=hdrs, json=BATCH).json()
    first = httpx2.get(batch["results_url"], headers=hdrs)
    second = httpx2.get(batch["results_url"], headers=hdrs)
    assert first.status_code == second.status_code == 200
    results = [orjson.loads(line) for line in first.content.splitlines() if line.strip()]
    assert {r["custom_id"] for r in results} == {"routed", "auto", "explicit"}
    assert all(r["result"]["type"] == "succeeded" for r in results)
    got = [r for r in rows(via_fake) if r["batch"]]
    assert len(got) == 3  # fetched twice, counted once
    by_id = {r["request_id"].split(":", 1)[1]: r for r in got}
    catalog = via_fake.state.settings.catalog
    for res in results:
        row = by_id[res["custom_id"]]
        msg = res["result"]["message"]
        usage = Usage.from_api(msg["usage"])
        full = cost_nanos(catalog.get(msg["model"]), usage, when=_dt.date.fromisoformat(row["day"]))
        assert row["cost_nanos"] == cost_nanos(catalog.get(msg["model"]), usage, batch=True,
                                               when=_dt.date.fromisoformat(row["day"])) > 0
        assert abs(row["cost_nanos"] - full / 2) <= 1
        assert row["key_id"] and row["status"] == 200 and row["model"] == msg["model"]
    assert by_id["routed"]["task"] == "classify_intent" and by_id["routed"]["requested_model"] == "tierwise/classify_intent"
    assert by_id["routed"]["router"] == "registry" and by_id["explicit"]["router"] == "passthrough"
    assert by_id["explicit"]["requested_model"] == "claude-opus-5-5"
    # tierwise report: batch spend on its own line
    spend = {r["batch"]: r for r in summarize(via_fake.state.ledger.engine, group_by=("batch",))}
    assert spend[True]["calls"] == 3 and spend[True]["cost_nanos"] == sum(r["cost_nanos"] for r in got)


def test_sdk_batches_end_to_end(proxy):
    client = anthropic.Anthropic(api_key="k", base_url=proxy.url, max_retries=0)
    batch = client.messages.batches.create(requests=BATCH["requests"])
    assert client.messages.batches.retrieve(batch.id).processing_status == "ended"
    assert batch.id in [b.id for b in client.messages.batches.list()]
    got = {r.custom_id: r.result.type for r in client.messages.batches.results(batch.id)}
    assert got == {"routed": "succeeded", "auto": "succeeded", "explicit": "succeeded"}
    assert client.messages.batches.delete(batch.id).type == "message_batch_deleted"
    assert len([r for r in rows(proxy) if r["batch"]]) == 3


def test_cancel_a_batch_in_progress(proxy):
    proxy.state.upstream.batch_delay = 3600.0  # never ends by itself
    batch = httpx2.post(proxy.url + "/v1/messages/batches", headers=H, json=BATCH).json()
    assert batch["processing_status"] == "in_progress" and batch["results_url"] is None
    r = httpx2.get(f"{proxy.url}/v1/messages/batches/{batch['id']}/results", headers=H)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx2.delete(f"{proxy.url}/v1/messages/batches/{batch['id']}", headers=H)
    assert r.status_code == 400
    done = httpx2.post(f"{proxy.url}/v1/messages/batches/{batch['id']}/cancel", headers=H).json()
    assert done["processing_status"] == "ended" and done["request_counts"]["canceled"] == 3
    lines = httpx2.get(done["results_url"], headers=H).content.splitlines()
    assert {orjson.loads(x)["result"]["type"] for x in lines} == {"canceled"}
    got = [r for r in rows(proxy) if r["batch"]]
    assert len(got) == 3 and all(r["error_type"] == "batch_canceled" and r["cost_nanos"] == 0 for r in got)


def test_a_routed_batch_request_that_cannot_route_names_it(proxy):
    bad = {"requests": [BATCH["requests"][0], {"custom_id": "x", "params": {"model": "tierwise/Bad Name",
                                                                           "max_tokens": 5, "messages": MSG}}]}
    r = httpx2.post(proxy.url + "/v1/messages/batches", headers=H, json=bad)
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("requests.1.params: task type")


def test_unknown_batch_is_the_apis_404(proxy):
    r = httpx2.get(proxy.url + "/v1/messages/batches/msgbatch_nope", headers=H)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


# -- files -----------------------------------------------------------------------------------------
FILES_BETA = {"anthropic-beta": "files-api-2025-04-14"}


def test_files_upload_list_retrieve_download_delete(via_fake, fake_anthropic):
    hdrs = dict(H, **FILES_BETA)
    r = httpx2.post(via_fake.url + "/v1/files?beta=true", headers=hdrs, files={"file": ("notes.txt", b"hello files", "text/plain")})
    assert r.status_code == 200, r.text
    meta = r.json()
    assert meta["type"] == "file" and meta["filename"] == "notes.txt" and meta["size_bytes"] == 11
    path, sent_headers, raw = fake_anthropic.requests[-1]
    assert path == "/v1/files?beta=true" and sent_headers["anthropic-beta"] == "files-api-2025-04-14"
    assert sent_headers["content-type"].startswith("multipart/form-data; boundary=") and b"hello files" in raw
    assert httpx2.get(f"{via_fake.url}/v1/files/{meta['id']}", headers=hdrs).json() == meta
    assert [f["id"] for f in httpx2.get(via_fake.url + "/v1/files", headers=hdrs).json()["data"]] == [meta["id"]]
    # uploads are not downloadable (as on the API); a file the API wrote is, streamed back byte for byte
    r = httpx2.get(f"{via_fake.url}/v1/files/{meta['id']}/content", headers=hdrs)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    data = bytes(range(256)) * 1000
    written = fake_anthropic.rest.add_file("chart.png", data, "image/png")
    r = httpx2.get(f"{via_fake.url}/v1/files/{written['id']}/content", headers=hdrs)
    assert r.status_code == 200 and r.content == data and r.headers["content-type"] == "image/png"
    assert httpx2.delete(f"{via_fake.url}/v1/files/{meta['id']}", headers=hdrs).json() == {"id": meta["id"], "type": "file_deleted"}
    r = httpx2.get(f"{via_fake.url}/v1/files/{meta['id']}", headers=hdrs)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def test_sdk_files(proxy):
    client = anthropic.Anthropic(api_key="k", base_url=proxy.url, max_retries=0)
    meta = client.beta.files.upload(file=("a.md", b"# title", "text/markdown"))
    assert meta.filename == "a.md" and meta.size_bytes == 7
    assert client.beta.files.retrieve_metadata(meta.id).id == meta.id
    assert meta.id in [f.id for f in client.beta.files.list()]
    client.beta.files.delete(meta.id)


class Recording:
    """An upstream that records what ``request`` was given."""

    name = "recording"

    def __init__(self):
        self.bodies = []

    async def send(self, *a, **k):
        raise AssertionError("not a Messages call")

    async def request(self, method, path, *, headers, body=None, stream=False):
        from tierwise.upstream.base import UpstreamResponse

        if body is not None and not isinstance(body, bytes):
            chunks = [c async for c in body]
            self.bodies.append(("stream", len(chunks), sum(map(len, chunks))))
        return UpstreamResponse(200, {"content-type": "application/json"}, body=b'{"id": "file_1", "type": "file"}')

    async def aclose(self):
        pass


def test_uploads_are_streamed_and_capped(tmp_path, monkeypatch):
    from starlette.testclient import TestClient

    from tierwise.server import create_app, files_api

    from ..conftest import make_settings

    up = Recording()
    app = create_app(make_settings(tmp_path), upstream=up, ledger=False)
    with TestClient(app) as c:
        payload = b"x" * 300_000
        r = c.post("/v1/files", headers=H, files={"file": ("big.bin", payload, "application/octet-stream")})
        assert r.status_code == 200
        kind, _, size = up.bodies[-1]
        assert kind == "stream" and size > len(payload)  # handed on as a stream, multipart framing included
        monkeypatch.setattr(files_api, "MAX_FILE_BYTES", 1000)
        r = c.post("/v1/files", headers=H, files={"file": ("big.bin", payload, "application/octet-stream")})
        assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"


def test_a_batch_created_around_the_proxy_is_still_counted_once(via_fake, fake_anthropic):
    # created at the upstream directly (another tool, an older tierwise): no mapping, results still counted once
    direct = {"requests": [dict(BATCH["requests"][2], custom_id=f"d{i}") for i in range(3)]}  # explicit ids only
    r = httpx2.post(fake_anthropic.url + "/v1/messages/batches", headers=dict(H, **{"x-api-key": "sk-x"}), json=direct)
    batch_id = r.json()["id"]
    for _ in range(2):
        assert httpx2.get(f"{via_fake.url}/v1/messages/batches/{batch_id}/results", headers=H).status_code == 200
    got = [r for r in rows(via_fake) if r["batch"]]
    assert len(got) == 3 and {r["requested_model"] for r in got} == {None}
    assert all(r["status"] == 200 and r["model"] == "claude-opus-5-5" and r["cost_nanos"] > 0 for r in got)


def test_record_results_on_postgresql(pg_url, tmp_path):
    from types import SimpleNamespace

    from tierwise.dispatch import Dispatcher
    from tierwise.ledger import Ledger
    from tierwise.server.batches import record_results

    from ..conftest import make_settings

    settings = make_settings(tmp_path)
    led = Ledger(pg_url)
    try:
        state = SimpleNamespace(ledger=led, settings=settings, dispatcher=Dispatcher(settings))
        msg = {"model": "claude-haiku-5-5", "stop_reason": "end_turn", "usage": {"input_tokens": 1000, "output_tokens": 100}}
        results = [{"custom_id": f"c{i}", "result": {"type": "succeeded", "message": msg}} for i in range(3)]
        assert record_results(state, "msgbatch_pg", results, "anthropic") == 3
        assert record_results(state, "msgbatch_pg", results, "anthropic") == 0
        rows_ = [r for r in led.rows() if r["request_id"].startswith("msgbatch_pg:")]
        assert len(rows_) == 3 and all(r["batch"] and r["cost_nanos"] == 75_000 for r in rows_)  # (100,000 + 50,000) nano-USD, half off
    finally:
        led.close()
