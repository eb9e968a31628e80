"""The CLI under test: ``cli(*args, columns=200)`` runs ``tierwise ARGS`` in a clean working directory."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tierwise.cli import _load_commands, app


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ("TIERWISE_CONFIG", "TIERWISE_LEDGER_URL"):
        monkeypatch.delenv(var, raising=False)
    _load_commands()
    runner = CliRunner()

    def invoke(*args, columns=200, **kw):
        monkeypatch.setenv("COLUMNS", str(columns))
        return runner.invoke(app, list(args), **kw)

    return invoke
