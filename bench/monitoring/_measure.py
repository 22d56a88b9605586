"""Wall time and peak resident memory of one phase of a process (Linux /proc)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

_STATUS = Path("/proc/self/status")


def _status_kb(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark so the next phase's peak is its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@contextmanager
def phase(results: dict, name: str):
    """Record ``name``: wall and CPU seconds, peak RSS during it, and peak above its start."""
    reset_peak()
    start_rss = rss_mb()
    start, cpu_start = time.perf_counter(), time.process_time()
    yield
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = _status_kb("VmHWM") / 1024
    results[name] = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_mb": peak,
        "peak_extra_mb": max(peak - start_rss, 0.0),
    }


def frames_mb(*frames) -> float:
    return sum(float(f.memory_usage(deep=True).sum()) for f in frames) / 2**20
