"""Helpers shared by the two benchmark workers; stdlib only, so each venv can import it.

A worker is run as ``python <side>_side.py '<json task>'`` and prints one line
``RESULT <json>`` with its figures; everything else it prints is ignored by the driver.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

RESULT_PREFIX = "RESULT "


def read_task() -> dict[str, Any]:
    return json.loads(sys.argv[1])


def emit(result: dict[str, Any]) -> None:
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def rate(
    call: Callable[[int], object],
    n: int,
    budget_s: float,
    per_call: int = 1,
    finish: Callable[[], object] | None = None,
) -> dict[str, float]:
    """Items per second for ``call(i)`` over up to ``n`` calls, stopping early once the time
    budget is spent; ``finish`` (a flush, say) is timed too, as the items are durable only
    after it. ``per_call`` is how many items one call logs."""
    start = time.perf_counter()
    done = 0
    check_every = max(1, min(1000, n // 20))
    for i in range(n):
        call(i)
        done += 1
        if done % check_every == 0 and time.perf_counter() - start > budget_s:
            break
    if finish is not None:
        finish()
    elapsed = time.perf_counter() - start
    return {"items": done * per_call, "seconds": elapsed, "per_s": done * per_call / elapsed}


def repeated(measure: Callable[[int], dict[str, float]], reps: int) -> dict[str, Any]:
    """Run ``measure(rep)`` ``reps`` times; the median rate is the figure, all are kept."""
    runs = [measure(rep) for rep in range(reps)]
    return {"per_s": statistics.median(r["per_s"] for r in runs), "runs": runs}


def latency(call: Callable[[], object], reps: int, warmup: int = 2) -> dict[str, Any]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "times": times}
