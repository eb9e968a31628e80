"""The two solvers the learned router trains with: ridge regression by conjugate gradients on a
sparse design matrix, and a small dense L2-regularised logistic regression (cascade verifiers)."""

from __future__ import annotations

import numpy as np

from .features import SparseRows

__all__ = ["ridge_cg", "logistic_fit"]


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
