"""Anomalies on a monitored series: a robust baseline (median and MAD) of the points before.

Each point is compared with the ``baseline`` points before it: its robust z-score is
``(value - median) / (1.4826 * MAD)``; past ``threshold`` (3.5, Iglewicz and Hoaglin's
cut-off) upwards it is a spike, downwards a drop. Medians ignore the odd outlier in the
baseline, so one spike does not hide the next. When the baseline is flat (MAD 0) the scale
falls back to the mean absolute deviation, then to 5% of the median's size, so a flat series
that moves by a real amount is flagged and one that jitters by rounding noise is not. A point
needs ``min_history`` points before it (5) to be judged at all: no verdict from too little.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

DEFAULT_THRESHOLD = 3.5
DEFAULT_BASELINE = 24
MIN_HISTORY = 5
MAD_TO_SD = 1.4826
MEAN_AD_TO_SD = 1.2533
FLAT_FLOOR = 0.05


class Flag(NamedTuple):
    index: int
    baseline: float
    scale: float
    score: float
    direction: str  # "spike" or "drop"


def robust_scale(history: np.ndarray) -> tuple[float, float]:
    """Median and a robust standard deviation of ``history``."""
    median = float(np.median(history))
    deviations = np.abs(history - median)
    scale = MAD_TO_SD * float(np.median(deviations))
    if scale == 0:
        scale = MEAN_AD_TO_SD * float(deviations.mean())
    if scale == 0:
        scale = max(abs(median) * FLAT_FLOOR, 1e-9)
    return median, scale


def detect(
    values: Sequence[float],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    baseline: int = DEFAULT_BASELINE,
    min_history: int = MIN_HISTORY,
) -> list[Flag]:
    """Indices of spikes and drops; non-finite values are skipped, never flagged."""
    data = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(data)
    flags = []
    for i in range(len(data)):
        if not finite[i]:
            continue
        history = data[max(0, i - baseline) : i]
        history = history[np.isfinite(history)]
        if history.size < min_history:
            continue
        median, scale = robust_scale(history)
        score = (data[i] - median) / scale
        if abs(score) >= threshold:
            flags.append(Flag(i, median, scale, float(score), "spike" if score > 0 else "drop"))
    return flags
