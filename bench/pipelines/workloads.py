"""Pipelines the benchmark runs: trivial chains and two CPU-bound branches."""

from __future__ import annotations

import heron

CPU_SECONDS = 2.0


@heron.step
def start(n: int) -> int:
    return n


@heron.step
def inc(x: int) -> int:
    return x + 1


def chain(length: int) -> heron.Pipeline:
    def body(n: int = 0):
        x = start(n)
        for _ in range(length - 1):
            x = inc(x)
        return x

    body.__name__ = f"chain{length}"
    return heron.pipeline(body)


chain3 = chain(3)
chain20 = chain(20)


@heron.step(cache=False)
def burn(seconds: float, label: str) -> int:
    """Busy CPU work for about ``seconds`` (calibrated once per process)."""
    import time

    count, end = 0, time.process_time() + seconds
    while time.process_time() < end:
        for _ in range(10_000):
            count += 1
    return count


@heron.step(cache=False)
def join(a: int, b: int) -> int:
    return a + b


@heron.pipeline
def branches(seconds: float = CPU_SECONDS):
    return join(burn(seconds, "a"), burn(seconds, "b"))
