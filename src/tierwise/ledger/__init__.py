"""The ledger: one row per call, SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

import logging
import os
import re
import time
from typing import TYPE_CHECKING, Any, Callable, cast

import sqlalchemy as sa

from ..errors import ConfigError
from .schema import calls, migrate
from .writer import LedgerWriter, recover_journal

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["Ledger", "make_engine", "calls", "journal_path", "recover_journal"]

log = logging.getLogger("tierwise.ledger")


def _normalise_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _fast_sqlite_binds() -> None:
    """Bind ``None`` and ``bool`` through a registered adapter (what they are bound as is unchanged: NULL,
    0/1). The sqlite3 module binds only exact int, float and str directly; any other value, a ledger
    row's dozen NULLs and three booleans included, first has its type's adapter looked up and, with none,
    ``__adapt__``/``__conform__`` searched for on the value and the protocol: ~38k instructions a row
    (bench/hotpath_parts.py --callgrind). A registered adapter is one dict hit and a C call."""
    import sqlite3

    sqlite3.register_adapter(bool, int)
    null = cast("Callable[[None], None]", {}.get)  # a C call: {}.get(None) is None, bound as NULL as before
    sqlite3.register_adapter(type(None), null)


def make_engine(url: str) -> sa.Engine:
    url = _normalise_url(url)
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        shown = re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)  # never repeat a password
        raise ConfigError(f"ledger.url: not a database URL: {shown!r} (try sqlite:///tierwise.db or postgresql://host/db)") from None
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            parent = os.path.dirname(os.path.abspath(db))
            if not os.path.isdir(parent):
                raise ConfigError(f"ledger.url: directory {parent!r} does not exist")
        _fast_sqlite_binds()
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _rec: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = 5  # an unreachable server costs seconds, not the OS's minutes
    try:
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True,
                                pool_timeout=10, connect_args=connect_args)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"ledger.url: the driver for {parsed.get_backend_name()} is not installed ({exc.name}); "
                          "pip install 'tierwise[postgres]'") from None


def journal_path(url: str, journal: str | None) -> str | None:
    """Where finished calls are journaled until they are in the database (see ``writer``).

    ``auto``: beside a SQLite file (``<db>.tierwise-journal``); for a server database, a file named
    after the URL in the working directory. ``off``/None: no journal (a SIGKILL then also loses the
    rows not yet written, at most ``flush_interval`` seconds of calls)."""
    if not journal or journal == "off":
        return None
    if journal != "auto":
        return journal
    parsed = sa.engine.make_url(_normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        return None if not db or db == ":memory:" else os.path.abspath(db) + ".tierwise-journal"
    import hashlib

    digest = hashlib.blake2b(parsed.render_as_string(hide_password=True).encode(), digest_size=6).hexdigest()
    return os.path.abspath(f"tierwise-ledger-{digest}.journal")


class Ledger:
    """Opens (and migrates) the database; writes through a background ``LedgerWriter``.

    With ``serve_while_down`` (the proxy), a database that cannot be reached at start (refused,
    timed out) does not stop the process: the ledger starts degraded (``available`` False, logged, reported by
    ``/healthz``), journals every row, and the writer thread migrates and writes once it is back.
    A database URL that is wrong (bad scheme, missing driver, missing directory) still fails at start,
    and so does an unreachable database for the commands that read it (``tierwise report``...)."""

    def __init__(self, url: str, *, batch_size: int = 500, flush_interval: float = 0.25, store_prompts: bool = False,
                 journal: str | None = "auto", serve_while_down: bool = False, spool_dir: str = "",
                 max_unjournaled_rows: int = 100_000) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.store_prompts = store_prompts
        self.journal = journal_path(url, journal)
        self.version = 0
        self.start_error: str | None = None
        try:
            self.version = migrate(self.engine)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            if not serve_while_down:
                self.engine.dispose()
                raise ConfigError(f"ledger.url: cannot open the ledger database ({exc.orig})") from None
            self.start_error = str(exc.orig).splitlines()[0][:300] if exc.orig is not None else type(exc).__name__
            log.error("LEDGER DATABASE UNAVAILABLE AT START (%s): serving anyway; rows are journaled%s and written "
                      "when it is back", self.start_error, f" to {self.journal}.*.seg" if self.journal else " in memory only")
        self.writer = LedgerWriter(self.engine, batch_size=batch_size, flush_interval=flush_interval, journal=self.journal,
                                   prepare=self._migrate if self.start_error else None, spool=spool_dir or None,
                                   max_unjournaled=max_unjournaled_rows)
        self.recovered = 0
        if self.start_error is None and self.journal:
            try:
                self.recovered = self.writer.adopt()
            except Exception:
                log.exception("ledger: recovering the journal failed; retrying in the background")
        if self.start_error:
            self.writer.db_ok = False
            self.writer.db_error = "unavailable at start"
            self.writer._down_since = time.monotonic()
            self.writer.start()

    def _migrate(self) -> None:
        self.version = migrate(self.engine)

    @property
    def available(self) -> bool:
        return self.writer.db_ok

    def status(self) -> dict[str, Any]:
        return self.writer.status()

    def admit(self) -> None:
        """Refuse new work (529) while the rows held in memory only are at their cap (writer.py)."""
        if not self.writer.accepting:
            from ..errors import OverloadedError

            raise OverloadedError(f"the ledger cannot keep more rows: its journal cannot be written (disk full?) and "
                                  f"{self.writer.max_unjournaled:,} rows wait in memory; try again shortly",
                                  headers={"retry-after": "5"})

    @classmethod
    def from_settings(cls, settings: "Settings", *, serve_while_down: bool = False) -> "Ledger":
        lg = settings.ledger
        return cls(lg["url"], batch_size=int(lg["batch_size"]), flush_interval=float(lg["flush_interval"]),
                   store_prompts=bool(lg["store_prompts"]), journal=str(lg.get("journal", "auto")),
                   serve_while_down=serve_while_down, spool_dir=str(lg.get("spool_dir") or ""),
                   max_unjournaled_rows=int(lg.get("max_unjournaled_rows", 100_000)))

    def record(self, row: dict[str, Any]) -> None:
        if not self.store_prompts and row.get("prompt") is not None:
            # NULL, not a missing key: a row with every column takes the writer's one-call-per-row insert
            # (a missing key sent each batch down the per-column path, ~37k instructions a row)
            row["prompt"] = None
        self.writer.record(row)

    def flush(self, timeout: float = 30.0) -> bool:
        return self.writer.flush(timeout)

    def close(self) -> None:
        self.writer.close()
        self.engine.dispose()

    def rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        q = sa.select(calls).order_by(calls.c.id)
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]
