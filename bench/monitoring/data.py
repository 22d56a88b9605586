"""Seeded synthetic reference/current frames with known shifts (numpy + pandas only).

20 numeric columns (5 normal, 5 lognormal, 5 uniform, 5 integer counts) and 5 categorical
ones (3, 5, 10, 20 and 50 categories). The current frame is a fresh sample of the same
distributions except for five columns that truly shift, and two that shift by an amount too
small to matter (a drift tool should flag the first five and nothing else).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CARDINALITIES = (3, 5, 10, 20, 50)

SHIFTED = {
    "normal_0": "mean +0.5 sd",
    "lognormal_1": "sigma 0.5 -> 0.8",
    "uniform_2": "range [0, 1] -> [0.25, 1.25]",
    "count_3": "poisson mean 5 -> 7",
    "cat_2": "20% of the mass moved to the rarest categories",
}
NEGLIGIBLE = {
    "normal_1": "mean +0.02 sd",
    "cat_0": "one point of share moved",
}
NUMERIC = [f"{kind}_{i}" for kind in ("normal", "lognormal", "uniform", "count") for i in range(5)]
CATEGORICAL = [f"cat_{i}" for i in range(len(CARDINALITIES))]


def category_shares(rng: np.random.Generator, k: int) -> np.ndarray:
    return rng.dirichlet(np.full(k, 2.0))


def make_frames(rows: int, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    shares = {
        name: category_shares(rng, k) for name, k in zip(CATEGORICAL, CARDINALITIES, strict=True)
    }
    reference = _frame(rng, rows, shares, shifted=False)
    current = _frame(rng, rows, shares, shifted=True)
    return reference, current


def _frame(rng, n, shares, shifted: bool) -> pd.DataFrame:
    columns: dict[str, np.ndarray] = {}
    for i in range(5):
        shift = {0: 0.5, 1: 0.02}.get(i, 0.0) if shifted else 0.0
        columns[f"normal_{i}"] = rng.normal(10.0 * i, 1.0 + i, n) + shift * (1.0 + i)
    for i in range(5):
        sigma = 0.8 if (shifted and i == 1) else 0.5
        columns[f"lognormal_{i}"] = rng.lognormal(0.2 * i, sigma, n)
    for i in range(5):
        low = 0.25 if (shifted and i == 2) else 0.0
        columns[f"uniform_{i}"] = rng.uniform(low, low + 1.0, n) * (i + 1)
    for i in range(5):
        lam = 7.0 if (shifted and i == 3) else 5.0
        columns[f"count_{i}"] = rng.poisson(lam * (i + 1) / 3, n)
    for name, k in zip(CATEGORICAL, CARDINALITIES, strict=True):
        p = shares[name].copy()
        if shifted and name == "cat_2":
            order = np.argsort(p)
            moved = 0.2 * p / p.sum()
            p = p - moved
            p[order[:3]] += 0.2 / 3
        if shifted and name == "cat_0":
            p[0] -= 0.01
            p[1] += 0.01
        labels = np.array([f"{name}_v{j:02d}" for j in range(k)])
        columns[name] = labels[rng.choice(k, size=n, p=p / p.sum())]
    return pd.DataFrame(columns)
