"""The task-type registry as a history of changes: every edit of ``[registry]`` is recorded and can be undone.

Changes come from ``tierwise registry set``, ``tierwise eval apply`` and the monitor's revert. Each
one edits ``tierwise.toml`` in place with tomlkit (comments and every other table are kept; the
file is replaced atomically) and appends a row to the ``registry_history`` table of the ledger DB:
who changed what, from which tier to which, and why.
"""

from __future__ import annotations

import getpass
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import sqlalchemy as sa

from .config import TASK_NAME
from .errors import ConfigError
from .ledger.evidence_schema import registry_history

if TYPE_CHECKING:
    from .config import Settings

__all__ = ["open_db", "Change", "config_path_of", "read_toml", "edit_registry_text", "write_registry_entry", "RegistryHistory",
           "default_actor"]


@dataclass(frozen=True, slots=True)
class Change:
    id: int
    ts: float
    task: str
    old_tier: str | None
    new_tier: str | None
    actor: str
    source: str
    reason: str | None
    config_path: str | None
    undoes: int | None

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> "Change":
        return cls(id=int(r["id"]), ts=float(r["ts"]), task=r["task"], old_tier=r["old_tier"], new_tier=r["new_tier"],
                   actor=r["actor"], source=r["source"], reason=r["reason"], config_path=r["config_path"],
                   undoes=r["undoes"])

    def describe(self) -> str:
        old = self.old_tier or "(not set)"
        new = self.new_tier or "(removed)"
        return f"{self.task}: {old} -> {new}"


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"


def config_path_of(settings: "Settings") -> Path:
    """The tierwise.toml that registry changes edit: the one settings came from, else ./tierwise.toml."""
    if settings.source and settings.source != "defaults":
        return Path(settings.source)
    return Path(os.environ.get("TIERWISE_CONFIG") or "tierwise.toml")


def read_toml(path: Path) -> Any:
    import tomlkit

    if not path.exists():
        return tomlkit.document()
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - tomlkit raises several parse error types
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def edit_registry_text(text: str, changes: Mapping[str, str | None]) -> str:
    """``text`` (a tierwise.toml) with ``[registry]`` entries set (or removed, for None), all else kept."""
    import tomlkit

    doc = tomlkit.parse(text) if text.strip() else tomlkit.document()
    if "registry" not in doc:
        table = tomlkit.table()
        table.add(tomlkit.comment("task type -> tier; edited by tierwise (history: tierwise registry history)"))
        doc.add("registry", table)
    reg = doc["registry"]
    for task, tier in changes.items():
        if tier is None:
            if task in reg:
                del reg[task]
        else:
            reg[task] = tier
    return tomlkit.dumps(doc)


def _atomic_write(path: Path, text: str) -> None:
    path = path.resolve()
    fd, tmp = tempfile.mkstemp(prefix=".tierwise-", suffix=".toml", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_registry_entry(path: Path, changes: Mapping[str, str | None]) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        new = edit_registry_text(text, changes)
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"{path}: cannot edit [registry]: {exc}") from None
    _atomic_write(path, new)


class RegistryHistory:
    """Registry changes: apply (edit the file + record), list, and undo."""

    def __init__(self, settings: "Settings", engine: sa.Engine, *, path: Path | None = None,
                 live: bool = False) -> None:
        self.settings = settings
        self.engine = engine
        self.path = path or config_path_of(settings)
        # live: ``settings`` is a running proxy's; a change swaps its registry so it takes effect at once
        self.live = live

    # -- queries ------------------------------------------------------------------
    def list(self, task: str | None = None, limit: int = 50) -> list[Change]:
        q = sa.select(registry_history).order_by(registry_history.c.id.desc()).limit(limit)
        if task:
            q = q.where(registry_history.c.task == task)
        with self.engine.connect() as conn:
            return [Change.from_row(r._mapping) for r in conn.execute(q)]

    def get(self, change_id: int) -> Change | None:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(registry_history).where(registry_history.c.id == change_id)).first()
        return Change.from_row(r._mapping) if r else None

    def last_changes(self) -> dict[str, Change]:
        """The latest change of every task type that has one."""
        out: dict[str, Change] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(sa.select(registry_history).order_by(registry_history.c.id)):
                c = Change.from_row(r._mapping)
                out[c.task] = c
        return out

    def previous_change(self, change: Change) -> Change | None:
        q = (sa.select(registry_history).where(registry_history.c.task == change.task, registry_history.c.id < change.id)
             .order_by(registry_history.c.id.desc()).limit(1))
        with self.engine.connect() as conn:
            r = conn.execute(q).first()
        return Change.from_row(r._mapping) if r else None

    def current(self) -> dict[str, str]:
        """The registry in force: the file's ``[registry]`` over the defaults (as the proxy loads it)."""
        from .config import load_settings

        if self.path.exists():
            return dict(load_settings(self.path, environ={}).registry)
        return dict(self.settings.registry)

    # -- changes ------------------------------------------------------------------
    def set(self, task: str, tier: str | None, *, reason: str | None = None, actor: str | None = None,
            source: str = "cli", undoes: int | None = None) -> Change | None:
        """Set (or remove, with ``tier=None``) one entry. Returns None when nothing changes."""
        return self.set_many({task: tier}, reason=reason, actor=actor, source=source, undoes=undoes)[0]

    def set_many(self, changes: Mapping[str, str | None], *, reason: str | None = None, actor: str | None = None,
                 source: str = "cli", undoes: int | None = None) -> list[Change | None]:
        tiers = self.settings.catalog.tiers
        for task, tier in changes.items():
            if not TASK_NAME.match(task):
                raise ConfigError(f"task type {task!r} is not a valid name (lower-case letters, digits, '_', '-', '.')")
            if tier is not None and tier not in tiers:
                raise ConfigError(f"unknown tier {tier!r} for {task} (tiers: {', '.join(self.settings.catalog.tier_order)})")
        before = self.current()
        real = {t: v for t, v in changes.items() if before.get(t) != v}
        if not real:
            return [None for _ in changes]
        write_registry_entry(self.path, real)
        actor = (actor or default_actor())[:128]
        now = time.time()
        made: dict[str, Change] = {}
        with self.engine.begin() as conn:
            for task, tier in real.items():
                res = conn.execute(registry_history.insert().values(
                    ts=now, task=task, old_tier=before.get(task), new_tier=tier, actor=actor, source=source[:32],
                    reason=(reason or "")[:4000] or None, config_path=str(self.path), undoes=undoes))
                made[task] = Change(id=int(res.inserted_primary_key[0]), ts=now, task=task, old_tier=before.get(task),
                                    new_tier=tier, actor=actor, source=source, reason=reason, config_path=str(self.path),
                                    undoes=undoes)
        if self.live:
            reg = dict(self.settings.registry)
            for task, tier in real.items():
                if tier is None:
                    reg.pop(task, None)
                else:
                    reg[task] = tier
            self.settings.replace_registry(reg)
        return [made.get(t) for t in changes]

    def undo(self, change_id: int, *, reason: str | None = None, actor: str | None = None,
             source: str = "undo") -> Change | None:
        """Restore the entry a change replaced. Refuses when the entry changed again since."""
        change = self.get(change_id)
        if change is None:
            raise ConfigError(f"no registry change #{change_id} (see: tierwise registry history)")
        now_tier = self.current().get(change.task)
        if now_tier != change.new_tier:
            raise ConfigError(f"change #{change_id} set {change.task} to {change.new_tier or '(removed)'}, but it is "
                              f"{now_tier or '(not set)'} now; undo the later change first")
        why = reason or f"undo of change #{change_id} ({change.describe()})"
        return self.set(change.task, change.old_tier, reason=why, actor=actor, source=source, undoes=change_id)


def open_db(settings: "Settings") -> sa.Engine:
    """The ledger database of ``settings``, migrated (for CLI commands that read or write evidence)."""
    from .ledger import make_engine
    from .ledger.schema import migrate

    try:
        engine = make_engine(settings.ledger_url)
    except sa.exc.NoSuchModuleError:
        raise ConfigError("ledger.url: unsupported database kind (try sqlite:///tierwise.db or postgresql://host/db)") from None
    except ImportError as exc:
        raise ConfigError(f"ledger.url: the database driver is not installed ({exc})") from None
    try:
        migrate(engine)
    except sa.exc.OperationalError as exc:
        raise ConfigError(f"ledger.url: cannot open the ledger database ({exc.orig})") from None
    return engine
