"""The two solvers the learned router trains with: ridge regression by conjugate gradients on a
sparse design matrix (:class:`SparseRows`, what :class:`.features.Featurizer` builds), and a small
dense L2-regularised logistic regression (cascade verifiers)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["SparseRows", "ridge_cg", "logistic_fit"]


class SparseRows:
    """A minimal CSR matrix (rows = prompts) with the two products ridge regression needs."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, n_cols: int) -> None:
        self.indptr, self.indices, self.data, self.n_cols = indptr, indices, data, n_cols
        self.n_rows = len(indptr) - 1
        self._row_of = np.repeat(np.arange(self.n_rows), np.diff(indptr))

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[np.ndarray, np.ndarray]], n_cols: int) -> "SparseRows":
        lens = np.array([len(i) for i, _ in rows], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        indices = np.concatenate([i for i, _ in rows]) if rows else np.zeros(0, np.int64)
        data = np.concatenate([v for _, v in rows]) if rows else np.zeros(0)
        return cls(indptr, indices.astype(np.int64), data.astype(np.float64), n_cols)

    def subset(self, rows: np.ndarray) -> "SparseRows":
        return SparseRows.from_rows([(self.indices[self.indptr[r]:self.indptr[r + 1]],
                                      self.data[self.indptr[r]:self.indptr[r + 1]]) for r in rows], self.n_cols)

    def dot(self, w: np.ndarray) -> np.ndarray:
        """X @ w for w of shape (n_cols,) or (n_cols, k)."""
        if w.ndim == 1:
            return np.bincount(self._row_of, weights=self.data * w[self.indices], minlength=self.n_rows)
        return np.stack([np.bincount(self._row_of, weights=self.data * w[self.indices, j], minlength=self.n_rows)
                         for j in range(w.shape[1])], axis=1)

    def tdot(self, u: np.ndarray) -> np.ndarray:
        """X.T @ u for u of shape (n_rows,) or (n_rows, k)."""
        if u.ndim == 1:
            return np.bincount(self.indices, weights=self.data * u[self._row_of], minlength=self.n_cols)
        return np.stack([np.bincount(self.indices, weights=self.data * u[self._row_of, j], minlength=self.n_cols)
                         for j in range(u.shape[1])], axis=1)


def ridge_cg(X: SparseRows, Y: np.ndarray, lam: float, iters: int = 200, tol: float = 1e-5,
             sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression ``min |X w + mu - y|^2 + lam |w|^2`` for every column of Y, by conjugate
    gradients on the normal equations (X sparse). Returns (W of shape (n_cols, k), intercepts mu)."""
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    sw = np.ones(Y.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    mu = (Y * sw[:, None]).sum(0) / sw.sum()
    Yc = (Y - mu) * sw[:, None]
    B = X.tdot(Yc)
    W = np.zeros_like(B)
    R = B.copy()
    P = R.copy()
    rs = (R * R).sum(0)
    bnorm = np.sqrt(rs) + 1e-12
    for _ in range(iters):
        AP = X.tdot(X.dot(P) * sw[:, None]) + lam * P
        alpha = rs / np.maximum((P * AP).sum(0), 1e-30)
        W += alpha * P
        R -= alpha * AP
        rn = (R * R).sum(0)
        if np.all(np.sqrt(rn) <= tol * bnorm):
            break
        P = R + (rn / np.maximum(rs, 1e-30)) * P
        rs = rn
    return W, mu


def logistic_fit(X: np.ndarray, y: np.ndarray, lam: float = 1.0, iters: int = 50) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (dense, small X). Returns (w, b)."""
    n, d = X.shape
    Xb = np.hstack([X, np.ones((n, 1))])
    w = np.zeros(d + 1)
    reg = np.full(d + 1, lam)
    reg[-1] = 1e-6
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(Xb @ w, -30, 30)))
        g = Xb.T @ (p - y) + reg * w
        H = (Xb * (p * (1 - p))[:, None]).T @ Xb + np.diag(reg)
        step = np.linalg.solve(H, g)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w[:-1], float(w[-1])
