"""The ledger journal: every finished call's row as a JSON line in a per-process segment file, kept
until the database has confirmed the row.

A writer owns its segments (``<base>.<pid>-<random>.<n>.seg``) and holds an exclusive ``flock`` on
each while it lives. A segment is emptied or removed only once every row in it is confirmed by the
database (written, or refused for its content). A segment whose lock is free belongs to a process
that is gone (SIGKILL, a crash, a stop while the database was down): any writer sharing the base
path adopts it and inserts the rows the database does not have yet (by ``request_id``: a replay
never makes a duplicate), then removes it.

Writing never raises: a full disk or an unwritable journal is counted (``errors``), logged loudly
(at most every 10 seconds) and reported as ``healthy = False``; the row stays in memory and the
writer thread journals it again once the disk takes writes.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import logging
import os
import time
from typing import Any, Iterator

import orjson

__all__ = ["Journal", "Segment", "read_rows"]

log = logging.getLogger("tierwise.ledger")

SEGMENT_BYTES = 8 * 1024 * 1024  # rotate the current segment past this size


class Segment:
    __slots__ = ("path", "fd", "pending", "size", "sealed", "torn")

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.pending = 0      # rows in this segment the database has not confirmed
        self.size = 0
        self.sealed = False   # no more appends: removed once pending reaches 0
        self.torn = False     # the last write failed part-way: start the next line on a fresh line


def read_rows(path: str) -> list[dict[str, Any]]:
    with open(path, "rb") as fh:
        data = fh.read()
    rows = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            log.warning("ledger journal %s: skipping a torn line", path)
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


class Journal:
    def __init__(self, base: str, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.base = base
        self.segment_bytes = segment_bytes
        self._tag = f"{os.getpid()}-{os.urandom(3).hex()}"
        self._n = 0
        self.current: Segment | None = None
        self.sealed: list[Segment] = []
        self.errors = 0          # rows that could not be journaled (disk full, I/O error)
        self.healthy = True
        self.last_error: str | None = None
        self._logged_at = 0.0

    # -- appending (the caller holds the writer's journal lock) ------------------------
    def _open(self) -> Segment:
        self._n += 1
        path = f"{self.base}.{self._tag}.{self._n}.seg"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise
        return Segment(path, fd)

    def append(self, line: bytes) -> Segment | None:
        """Write one line; the segment now holding it, or None when it could not be written."""
        try:
            seg = self.current
            if seg is None:
                seg = self.current = self._open()
            elif seg.size >= self.segment_bytes and seg.pending > 0:
                seg.sealed = True
                self.sealed.append(seg)
                seg = self.current = self._open()
            data = (b"\n" + line) if seg.torn else line
            view = memoryview(data)
            while view:
                try:
                    n = os.write(seg.fd, view)
                except OSError:
                    seg.torn = True  # part of the line may be on disk: the next one starts on a fresh line
                    raise
                seg.size += n
                view = view[n:]
            seg.torn = False
        except OSError as exc:
            self._failed(exc)
            return None
        seg.pending += 1
        if not self.healthy:
            self.healthy = True
            log.warning("ledger journal %s is writable again", self.base)
        return seg

    def _failed(self, exc: OSError) -> None:
        self.errors += 1
        self.healthy = False
        self.last_error = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        now = time.monotonic()
        if now - self._logged_at >= 10.0:
            self._logged_at = now
            log.error("LEDGER JOURNAL UNWRITABLE (%s: %s): rows are held in memory until the journal or the "
                      "database takes them; a crash now would lose them (%d failed journal writes so far)",
                      self.base, exc.strerror or exc, self.errors)

    def confirmed(self, seg: Segment) -> None:
        """One row of ``seg`` is in the database (the caller holds the journal lock)."""
        seg.pending -= 1
        if seg.pending == 0 and seg.sealed:
            self._remove(seg)
            self.sealed.remove(seg)

    def compact(self) -> None:
        """Empty the current segment when all of its rows are confirmed (the caller holds the lock)."""
        seg = self.current
        if seg is not None and seg.pending == 0 and seg.size > 0 and seg.fd >= 0:
            try:
                os.ftruncate(seg.fd, 0)
                seg.size = 0
                seg.torn = False
            except OSError:
                pass

    def _remove(self, seg: Segment) -> None:
        try:
            os.unlink(seg.path)
        except OSError:
            pass
        self._close_fd(seg)

    @staticmethod
    def _close_fd(seg: Segment) -> None:
        if seg.fd >= 0:
            try:
                os.close(seg.fd)
            except OSError:
                pass
            seg.fd = -1

    def close(self, *, clean: bool) -> None:
        """Release the segments: removed when ``clean`` (everything confirmed), else left for adoption."""
        segs = self.sealed + ([self.current] if self.current is not None else [])
        for seg in segs:
            if clean and seg.pending == 0:
                self._remove(seg)
            else:
                self._close_fd(seg)  # the lock goes with it: the next writer adopts the rows
        self.sealed, self.current = [], None

    # -- adoption of other processes' segments ---------------------------------------
    def own_paths(self) -> set[str]:
        return {s.path for s in self.sealed} | ({self.current.path} if self.current is not None else set())

    def orphans(self) -> Iterator[tuple[str, int]]:
        """(path, locked fd) of each segment no live writer holds, and of a journal file from before segments."""
        mine = self.own_paths()
        paths = sorted(glob.glob(glob.escape(self.base) + ".*.seg"))
        if os.path.exists(self.base):
            paths.insert(0, self.base)
        for path in paths:
            if path in mine:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.fstat(fd).st_nlink == 0:  # adopted and removed by someone else meanwhile
                    raise OSError("gone")
            except OSError:
                os.close(fd)
                continue
            yield path, fd
