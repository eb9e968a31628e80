"""A cascade through the real proxy: cheap rung first, verify, escalate; every attempt is paid for."""

from __future__ import annotations

import anthropic

from ..server.test_sdk_end_to_end import ledger_rows, sdk

CASCADE = {
    "routing": {
        "strategies": {"extract_entities": "cascade"},
        # the offline upstream names its model in every answer: this check passes from Sonnet on
        "task_options": {"extract_entities": {"ladder": ["fast", "balanced", "deep"],
                                              "verifiers": ["stop_reason", {"type": "regex", "pattern": "claude-(sonnet|opus)"}]}},
    }
}


def test_cascade_escalates_and_counts_the_failed_rung(fake_anthropic, proxy_factory):
    proxy = proxy_factory(fake_anthropic.url, **CASCADE)
    client = sdk(proxy)
    raw = client.messages.with_raw_response.create(
        model="tierwise/extract_entities", max_tokens=100, messages=[{"role": "user", "content": "Acme Corp, 3 May"}])
    msg = raw.parse()
    assert msg.model == "claude-sonnet-5-5"
    assert raw.headers["x-tierwise-escalations"] == "1" and raw.headers["x-tierwise-tier"] == "balanced"
    # the upstream saw Haiku first, then Sonnet with a note on why the first answer failed
    models = [b for _, _, b in fake_anthropic.requests[-2:]]
    assert b'"model":"claude-haiku-5-5"' in models[0] and b'"model":"claude-sonnet-5-5"' in models[1]
    assert b"failed an automatic check" in models[1]
    row = ledger_rows(proxy, 1)[-1]
    import orjson

    attempts = orjson.loads(row["attempts"])
    assert [a["model"] for a in attempts] == ["claude-haiku-5-5", "claude-sonnet-5-5"]
    assert [a["verified"] for a in attempts] == [False, True]
    assert row["escalations"] == 1 and row["model"] == "claude-sonnet-5-5"
    assert row["cost_nanos"] == sum(a["cost_nanos"] for a in attempts)  # the failed Haiku attempt counts
    assert row["output_tokens"] == sum(a["output_tokens"] for a in attempts)
    assert abs(float(raw.headers["x-tierwise-cost-usd"]) - row["cost_nanos"] / 1e9) < 1e-9


def test_cascade_streams_the_verified_answer(fake_anthropic, proxy_factory):
    proxy = proxy_factory(fake_anthropic.url, **CASCADE)
    client = sdk(proxy)
    with client.messages.stream(model="tierwise/extract_entities", max_tokens=100,
                                messages=[{"role": "user", "content": "Acme Corp, 3 May"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert isinstance(final, anthropic.types.Message)
    assert final.model == "claude-sonnet-5-5" and "claude-sonnet-5-5" in text
    assert ledger_rows(proxy, 1)[-1]["stream"]


def test_a_full_ledger_refuses_a_cascade_before_its_first_rung(fake_anthropic, proxy_factory, monkeypatch):
    """At the ledger's memory cap (a full disk) a cascade is refused with 529 like a single call: no rung
    reaches the upstream, so nothing is paid that the ledger could not keep."""
    from ..ledger.test_spool_cap import refused_at_the_cap

    proxy = proxy_factory(fake_anthropic.url, **CASCADE)
    body = {"model": "tierwise/extract_entities", "max_tokens": 100,
            "messages": [{"role": "user", "content": "Acme Corp, 3 May"}]}
    ok = refused_at_the_cap(proxy, fake_anthropic, monkeypatch, body)
    assert ok.status_code == 200 and ok.headers["x-tierwise-escalations"] == "1"
