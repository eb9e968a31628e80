"""Ledger writes are queued and batched, and a graceful close loses nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from tierwise.ledger import Ledger, calls


def _row(i: int) -> dict:
    return {"ts": 1_700_000_000.0 + i, "day": "2026-11-21", "request_id": f"req_{i}", "status": 200,
            "model": "claude-haiku-5-5", "tier": "fast", "input_tokens": i, "output_tokens": 2 * i,
            "cost_nanos": 100 * i, "default_cost_nanos": 2000 * i, "stream": False, "batch": False,
            "escalations": 0, "fallbacks": 0, "cache_write_5m_tokens": 0, "cache_write_1h_tokens": 0,
            "cache_read_tokens": 0, "client_disconnected": False}


def _many_threads_then_close(url: str, n_threads: int = 8, per_thread: int = 250) -> None:
    led = Ledger(url, batch_size=100, flush_interval=0.05)

    def work(t: int) -> None:
        for j in range(per_thread):
            led.record(_row(t * per_thread + j))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    led.close()  # graceful stop: drains the queue
    total = n_threads * per_thread
    eng = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with eng.connect() as conn:
        count, cost, ids = conn.execute(sa.select(sa.func.count(), sa.func.sum(calls.c.cost_nanos),
                                                  sa.func.count(sa.distinct(calls.c.request_id)))).one()
    eng.dispose()
    assert count == total and ids == total
    assert cost == 100 * total * (total - 1) // 2


def test_sqlite_graceful_close_loses_nothing(tmp_path):
    _many_threads_then_close(f"sqlite:///{tmp_path / 'l.db'}")


def test_postgresql_graceful_close_loses_nothing(pg_url):
    _many_threads_then_close(pg_url)


def test_prompt_text_only_when_enabled(tmp_path):
    off = Ledger(f"sqlite:///{tmp_path / 'a.db'}")
    off.record(dict(_row(1), prompt="secret customer text"))
    off.flush()
    assert off.rows()[0]["prompt"] is None
    off.close()
    on = Ledger(f"sqlite:///{tmp_path / 'b.db'}", store_prompts=True)
    on.record(dict(_row(1), prompt="kept on purpose"))
    on.flush()
    assert on.rows()[0]["prompt"] == "kept on purpose"
    on.close()


def test_sqlite_uses_wal(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'w.db'}")
    with led.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
    led.close()


def _segments(base: str) -> list[str]:
    import glob

    return sorted(glob.glob(glob.escape(base) + ".*.seg"))


def _journaled_bytes(base: str) -> int:
    import os

    return sum(os.path.getsize(p) for p in _segments(base))


def test_journal_survives_a_crash_and_is_recovered_once(tmp_path):
    """A process killed before the writer thread wrote its rows: the journal brings them back."""
    import os

    url = f"sqlite:///{tmp_path / 'j.db'}"
    led = Ledger(url, flush_interval=60)  # the writer thread would not write for a minute
    for i in range(50):
        led.record(_row(i))
    journal = led.journal
    assert journal.endswith("j.db.tierwise-journal") and _journaled_bytes(journal) > 0
    # simulate SIGKILL: the process is gone, its queue and its lock on the segment with it
    led.writer._buf.clear()
    led.writer._j.close(clean=False)
    again = Ledger(url)
    assert again.recovered == 50
    assert len(again.rows()) == 50 and _segments(journal) == []
    assert Ledger(url).recovered == 0  # idempotent: rows already present are not inserted twice
    again.close()
    assert not os.path.exists(journal)


def test_a_live_writers_segment_is_not_adopted(tmp_path):
    """Two processes (replicas) on one journal base: each keeps its own segment; none replays the other's."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    a = Ledger(url, flush_interval=60)
    for i in range(5):
        a.record(_row(i))
    b = Ledger(url, flush_interval=60)
    assert b.recovered == 0 and len(_segments(a.journal)) == 1
    a.close()
    b.close()
    assert sorted(r["request_id"] for r in Ledger(url).rows()) == [f"req_{i}" for i in range(5)]


def test_journal_is_emptied_after_writes_and_removed_on_close(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'k.db'}", flush_interval=0.05)
    for i in range(20):
        led.record(_row(i))
    assert led.flush(10)
    assert _journaled_bytes(led.journal) == 0
    led.close()
    assert _segments(led.journal) == []


def test_a_row_the_database_refuses_costs_only_that_row(pg_url):
    """PostgreSQL enforces column sizes: one bad row must not take its whole batch down with it."""
    led = Ledger(pg_url, flush_interval=60, journal="off")
    rows = [_row(i) for i in range(10)]
    rows[3]["day"] = "x" * 50  # VARCHAR(10)
    for r in rows:
        led.record(r)
    assert led.flush(30)
    ids = {r["request_id"] for r in led.rows()}
    assert ids == {f"req_{i}" for i in range(10)} - {"req_3"}
    assert led.writer.dropped == 1 and led.writer.written == 9
    led.close()
