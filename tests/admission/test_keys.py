"""Proxy keys: hashed storage, allow/deny pools, the CLI."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tierwise.admission.keys import KeyStore, check_model_allowed, hash_key, model_tier
from tierwise.config import load_settings
from tierwise.errors import AuthenticationError, ConfigError, PermissionDeniedError
from tierwise.ledger import make_engine
from tierwise.ledger.schema import migrate

CATALOG = load_settings(None, environ={}).catalog


@pytest.fixture
def store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    migrate(engine)
    return KeyStore(engine)


def test_create_stores_only_a_hash(store):
    assert not store.enforced
    rec, key = store.create("ci", allow=["fast", "balanced"], rpm=5, budget_usd="0.25", tiers=CATALOG.tiers)
    assert store.enforced and key.startswith("tw-") and len(key) > 40
    with store.engine.connect() as conn:
        dump = repr([tuple(r) for r in conn.execute(sa.text("select * from tierwise_keys"))])
    assert key not in dump and hash_key(key) in dump
    assert rec.budget_nanos == 250_000_000 and rec.rpm == 5
    assert store.authenticate({"x-api-key": key}).id == rec.id
    assert store.authenticate({"authorization": f"Bearer {key}"}).id == rec.id
    with pytest.raises(AuthenticationError) as exc:
        store.authenticate({"x-api-key": key + "x"})
    assert key not in str(exc.value)
    with pytest.raises(AuthenticationError):
        store.authenticate({})
    assert store.revoke(rec.id) and not store.revoke(rec.id)
    with pytest.raises(AuthenticationError):
        store.authenticate({"x-api-key": key})
    assert store.enforced  # keys exist (revoked): still enforced


def test_bad_input(store):
    with pytest.raises(ConfigError):
        store.create("x", allow=["nope"], tiers=CATALOG.tiers)
    with pytest.raises(ConfigError):
        store.create("x", rpm=0)


def test_pools_cover_models_outside_the_tiers(store):
    rec, _ = store.create("p", allow=["fast", "balanced"])
    assert rec.tier_allowed("fast") and not rec.tier_allowed("deep") and not rec.tier_allowed(None)
    assert model_tier(CATALOG, "claude-opus-4-7") == "deep"
    with pytest.raises(PermissionDeniedError):
        check_model_allowed(rec, CATALOG, "claude-opus-4-7")
    with pytest.raises(PermissionDeniedError):
        check_model_allowed(rec, CATALOG, "claude-opus-5-5")
    check_model_allowed(rec, CATALOG, "claude-haiku-5-5")
    rec2, _ = store.create("d", deny=["frontier"])
    assert rec2.tier_allowed("deep") and not rec2.tier_allowed("frontier")


def test_cli_create_list_revoke(tmp_path, capsys):
    from tierwise.cli import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["keys", "create", "bot", "--tiers", "fast", "--rpm", "3", "--ledger-url", url]) == 0
    out = capsys.readouterr().out
    key = [ln for ln in out.splitlines() if ln.startswith("tw-")][0]
    assert main(["keys", "list", "--ledger-url", url]) == 0
    listing = capsys.readouterr().out
    assert key not in listing and "bot" in listing and "tiers=fast" in listing
    kid = listing.split()[0]
    assert main(["keys", "revoke", kid, "--ledger-url", url]) == 0
    assert main(["keys", "create", "x", "--tiers", "nope", "--ledger-url", url]) == 2
