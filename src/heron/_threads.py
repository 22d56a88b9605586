"""Background threads that the operating system knows by name.

Python before 3.14 names a thread for itself only: ``top -H``, ``ps -L``, ``/proc/PID/task``
and profilers see every thread of a prediction server as ``heron``, so which one spends the
CPU (the log flusher, the endpoint poller, heartbeats) cannot be told from outside. Threads
started here set their kernel name (15 bytes at most: ``heron-log-flusher`` shows as
``heron-log-flush``). Naming is best effort: where it is not possible, threads run unnamed.
"""

from __future__ import annotations

import ctypes
import sys
import threading
from collections.abc import Callable
from functools import cache
from typing import Any

_PR_SET_NAME = 15  # prctl option, from linux/prctl.h
_NAME_BYTES = 15  # the kernel keeps 16 bytes, the last a NUL


@cache
def _prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` in the kernel (truncated to 15 bytes)."""
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_NAME, name.encode()[:_NAME_BYTES], 0, 0, 0)


def start_thread(target: Callable[[], Any], name: str) -> threading.Thread:
    """Start a daemon thread running ``target``, named ``name`` in Python and in the kernel."""

    def run() -> None:
        name_os_thread(name)
        target()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
