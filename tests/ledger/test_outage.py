"""The ledger never forgets a paid call: a database outage of any length, a start while the database
is down, a full disk under the journal, a crash mid-outage (PostgreSQL behind a gate we shut)."""

from __future__ import annotations

import errno
import glob
import os
import time

import pytest
import sqlalchemy as sa

from tierwise.errors import ConfigError
from tierwise.ledger import Ledger

from ..tcp_gate import TcpGate
from .test_writer import _row


def _gated(pg_url: str, gate: TcpGate) -> str:
    return pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{gate.port}")


def _ids(pg_url: str) -> list[str]:
    eng = sa.create_engine(pg_url)
    with eng.connect() as c:
        ids = [r[0] for r in c.execute(sa.text("SELECT request_id FROM calls ORDER BY request_id"))]
    eng.dispose()
    return ids


def _wait(pred, timeout=30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def test_an_outage_longer_than_any_retry_budget_loses_no_row(pg_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with TcpGate("127.0.0.1", 5432) as gate:
        led = Ledger(_gated(pg_url, gate), flush_interval=0.02)
        led.writer.retry_max = 0.05  # many retries in a short test: the old writer gave up after 6
        for i in range(10):
            led.record(_row(i))
        assert led.flush(10)
        gate.shut()
        for i in range(10, 60):
            led.record(_row(i))
        assert _wait(lambda: led.writer.failed_batches >= 10)
        assert not led.available and led.writer.degraded and led.status()["database"] == "unavailable"
        assert led.writer.dropped == 0 and led.writer.pending == 50
        assert sum(os.path.getsize(p) for p in glob.glob(led.journal + ".*.seg")) > 0  # still journaled
        gate.open()
        assert led.flush(30)
        assert led.available and not led.writer.degraded
        led.close()
    assert _ids(pg_url) == sorted(f"req_{i}" for i in range(60))


def test_a_replica_starts_while_the_database_is_down_and_catches_up(pg_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Ledger(pg_url, journal="off").close()  # the schema exists, as for a replica joining a fleet
    with TcpGate("127.0.0.1", 5432) as gate:
        gate.shut()
        with pytest.raises(ConfigError):  # a command that reads the ledger says so at once
            Ledger(_gated(pg_url, gate))
        led = Ledger(_gated(pg_url, gate), flush_interval=0.02, serve_while_down=True)  # the proxy serves
        assert not led.available and led.start_error
        for i in range(20):
            led.record(_row(i))
        assert not led.flush(0.3)
        gate.open()
        assert led.flush(30)
        led.close()
    assert _ids(pg_url) == sorted(f"req_{i}" for i in range(20))


def test_a_stop_during_an_outage_leaves_the_rows_to_the_next_process(pg_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with TcpGate("127.0.0.1", 5432) as gate:
        url = _gated(pg_url, gate)
        led = Ledger(url, flush_interval=0.02)
        gate.shut()
        for i in range(30):
            led.record(_row(i))
        led.writer.close(timeout=0.5)  # graceful stop, database still down
        led.engine.dispose()
        assert glob.glob(led.journal + ".*.seg")
        gate.open()
        again = Ledger(url)
        assert again.recovered == 30
        again.close()
        assert Ledger(url).recovered == 0
    assert _ids(pg_url) == sorted(f"req_{i}" for i in range(30))


def test_a_commit_whose_answer_is_lost_is_not_written_twice(tmp_path):
    """The database took the batch but the writer saw an error: the retry checks request ids first."""
    led = Ledger(f"sqlite:///{tmp_path / 'd.db'}", flush_interval=60)
    w = led.writer
    real = w._insert
    calls = {"n": 0}

    def flaky(conn, batch):
        real(conn, batch)
        calls["n"] += 1
        if calls["n"] == 1:
            conn.commit()
            raise sa.exc.OperationalError("COMMIT", {}, Exception("connection lost after commit"))

    w._insert = flaky
    for i in range(5):
        led.record(_row(i))
    w.retry_max = 0.01
    assert led.flush(10)
    assert sorted(r["request_id"] for r in led.rows()) == [f"req_{i}" for i in range(5)]
    led.close()


def test_a_full_disk_under_the_journal_never_raises_and_rows_are_written_later(tmp_path, monkeypatch):
    """ENOSPC from the journal (seam: os.write): record() returns, the row is kept, /healthz would say
    degraded, and once the disk takes writes again the row is journaled and written."""
    import tierwise.ledger.journal as jmod

    url = f"sqlite:///{tmp_path / 'f.db'}"
    led = Ledger(url, flush_interval=60)
    full = {"on": True}
    real_write = os.write

    def write(fd, data):
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(jmod.os, "write", write)
    for i in range(10):
        led.record(_row(i))  # must not raise
    st = led.status()
    assert st["journal"] == "unwritable" and st["journal_error"] == "ENOSPC" and st["not_journaled"] == 10
    assert led.writer.degraded
    full["on"] = False
    led.writer._rejournal()
    assert led.status()["not_journaled"] == 0 and led.status()["journal"] == "ok"
    assert led.flush(10)
    assert len(led.rows()) == 10 and not led.writer.degraded
    led.close()


def test_a_torn_journal_line_does_not_swallow_the_next_row(tmp_path, monkeypatch):
    import tierwise.ledger.journal as jmod

    url = f"sqlite:///{tmp_path / 't.db'}"
    led = Ledger(url, flush_interval=60)
    real_write = os.write
    state = {"n": 0}

    def write(fd, data):
        state["n"] += 1
        if state["n"] == 2:  # the second row: half of it lands, then the disk is full
            return real_write(fd, bytes(data)[: len(data) // 2])
        if state["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(jmod.os, "write", write)
    for i in range(3):
        led.record(_row(i))
    led.writer._buf.clear()  # SIGKILL: only the journal remains
    led.writer._j.close(clean=False)
    again = Ledger(url)
    assert sorted(r["request_id"] for r in again.rows()) == ["req_0", "req_2"]  # req_1 was never journaled
    again.close()
