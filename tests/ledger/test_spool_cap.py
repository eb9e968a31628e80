"""A full disk under the journal: rows go to the spool directory when one is set; rows held in memory
only are capped, and at the cap new work is refused with a 529 while every paid row is kept."""

from __future__ import annotations

import errno
import glob
import os

import pytest

from tierwise.errors import OverloadedError
from tierwise.ledger import Ledger

from .test_writer import _row


def _full_under(monkeypatch, directory: str) -> dict:
    """os.write raises ENOSPC for files under ``directory`` while ``on``."""
    import tierwise.ledger.journal as jmod

    state = {"on": True}
    real_write = os.write

    def write(fd, data):
        if state["on"] and os.readlink(f"/proc/self/fd/{fd}").startswith(directory):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(jmod.os, "write", write)
    return state


def test_rows_the_journal_refuses_go_to_the_spool_and_are_adopted_from_there(tmp_path, monkeypatch):
    main, spool = tmp_path / "main", tmp_path / "spool"
    main.mkdir()
    spool.mkdir()
    url = f"sqlite:///{main / 'l.db'}"
    led = Ledger(url, flush_interval=60, spool_dir=str(spool))
    _full_under(monkeypatch, str(main))
    for i in range(5):
        led.record(_row(i))
    st = led.status()
    assert st["spooled"] == 5 and st["not_journaled"] == 0 and st["accepting"]
    assert glob.glob(str(spool / "*.seg"))
    led.writer._halt.set()  # a crash: the rows are only in the spool segment
    led.writer._j.close(clean=False)
    led.engine.dispose()
    monkeypatch.undo()
    again = Ledger(url, flush_interval=60, spool_dir=str(spool))  # adopts the spool's orphaned segment
    assert again.recovered == 5
    assert sorted(r["request_id"] for r in again.rows()) == [f"req_{i}" for i in range(5)]
    again.close()


def test_at_the_memory_cap_new_work_is_refused_and_paid_rows_are_kept(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    led = Ledger(url, flush_interval=60, max_unjournaled_rows=3)
    full = _full_under(monkeypatch, str(tmp_path))
    led.admit()  # below the cap: admitted
    for i in range(3):
        led.record(_row(i))
    assert not led.writer.accepting and led.status()["accepting"] is False
    with pytest.raises(OverloadedError) as exc:
        led.admit()
    assert exc.value.status == 529 and exc.value.headers.get("retry-after")
    led.record(_row(3))  # a call that was in flight when the cap was reached: kept
    refusal = dict(_row(4), status=529, cost_nanos=0, input_tokens=0, output_tokens=0)
    led.record(refusal)  # a refused call cost nothing: counted, not kept
    st = led.status()
    assert st["not_journaled"] == 4 and st["refused_unrecorded"] == 1
    full["on"] = False
    led.writer._rejournal()
    assert led.writer.accepting
    led.admit()
    assert led.flush(10)
    assert sorted(r["request_id"] for r in led.rows()) == [f"req_{i}" for i in range(4)]
    led.close()


def test_through_the_proxy_a_full_ledger_refuses_with_anthropics_529_before_the_upstream(
        fake_anthropic, proxy_factory, monkeypatch):
    monkeypatch.setenv("TW_TEST_UPSTREAM_KEY", "sk-upstream")
    proxy = proxy_factory(fake_anthropic.url, upstream={"api_key_env": "TW_TEST_UPSTREAM_KEY"})
    body = {"model": "claude-haiku-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    assert refused_at_the_cap(proxy, fake_anthropic, monkeypatch, body).status_code == 200


def refused_at_the_cap(proxy, fake_anthropic, monkeypatch, body):
    """``body`` sent with the ledger's memory at its cap: a 529 in Anthropic's terms and no upstream
    request (nothing paid); then sent again below the cap, that answer returned."""
    import httpx2

    writer = proxy.app.state.ledger.writer
    headers = {"anthropic-version": "2023-06-01", "x-api-key": "sk-c"}
    before = len(fake_anthropic.requests)
    monkeypatch.setattr(writer, "max_unjournaled", 0)  # as if memory held the cap
    r = httpx2.post(proxy.url + "/v1/messages", json=body, headers=headers, timeout=30)
    assert r.status_code == 529 and r.json()["error"]["type"] == "overloaded_error"
    assert "ledger cannot keep" in r.json()["error"]["message"] and r.headers.get("retry-after")
    assert len(fake_anthropic.requests) == before  # refused before the upstream: nothing paid
    monkeypatch.setattr(writer, "max_unjournaled", 100_000)
    return httpx2.post(proxy.url + "/v1/messages", json=body, headers=headers, timeout=30)
