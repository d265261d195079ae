"""Least squares on log errors, for fits whose parameters span decades (latencies in log10(us)). Torch-free."""

from __future__ import annotations

import numpy as np


def least_squares_log(residuals, x0: list[float], bounds, iters: int = 40) -> list[float]:
    """Minimise sum(residuals(x)**2) by Levenberg-Marquardt (Marquardt 1963, doi:10.1137/0111030) with a
    forward-difference Jacobian, every x kept inside ``bounds`` (one (low, high) pair for all, or one per
    parameter). Directions the residuals do not see stay where they start (the damping term)."""
    pairs = list(bounds) if isinstance(bounds[0], (tuple, list)) else [tuple(bounds)] * len(x0)
    lo, hi = np.array([b[0] for b in pairs], dtype=float), np.array([b[1] for b in pairs], dtype=float)
    x = np.clip(np.asarray(x0, dtype=float), lo, hi)
    r = np.asarray(residuals(list(x)))
    cost, lam, h = float(r @ r), 1e-3, 1e-4
    for _ in range(iters):
        jac = np.empty((len(r), len(x)))
        for i in range(len(x)):
            step = h if x[i] + h <= hi[i] else -h
            xi = x.copy()
            xi[i] += step
            jac[:, i] = (np.asarray(residuals(list(xi))) - r) / step
        grad, hess = jac.T @ r, jac.T @ jac
        improved = False
        while lam < 1e8:
            delta = np.linalg.solve(hess + lam * (np.diag(np.diag(hess)) + 1e-9 * np.eye(len(x))), -grad)
            trial = np.clip(x + delta, lo, hi)
            r_trial = np.asarray(residuals(list(trial)))
            c_trial = float(r_trial @ r_trial)
            if c_trial < cost:
                x, r, improved = trial, r_trial, cost - c_trial > 1e-12 * max(cost, 1e-30)
                cost, lam = c_trial, max(lam / 10, 1e-9)
                break
            lam *= 10
        if not improved:
            break
    return list(x)
