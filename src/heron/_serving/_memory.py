"""Keeping a prediction server's memory flat and its pauses short (glibc's malloc; CPython's
garbage collector).

glibc gives every thread that allocates under contention an arena of its own and keeps what
is freed in an arena for reuse instead of returning it. A server whose request thread
allocates bodies and arrays that the log flusher frees later would otherwise grow by whole
arenas of free memory. Two process-wide settings fix that:

- ``limit_arenas`` caps the number of arenas (``M_ARENA_MAX``); called once by the process
  that runs the server (``heron serve``), before its threads start;
- ``release_free_memory`` hands free pages back to the system (``malloc_trim``); the log
  flusher calls it after writing, every few seconds at most. It runs without the GIL
  (ctypes releases it), so the request path does not wait for it.

A started server holds ~200k long-lived objects (modules, the model, the store's metadata).
CPython's full (generation-2) collection walks all of them, ~100 ms on a small machine with
the GIL held, so no request is answered meanwhile; and the first one comes within seconds of
traffic, because start-up promoted so many objects (it was the single-row p99 of the serving
benchmark's first round: 45 to 60 ms against 7 ms). ``freeze_heap`` moves them out of the
collector's reach once the server has started: later full collections walk only what was
allocated since (the log queue, profiles), a few ms at most.

Start-up itself (importing scikit-learn, SQLAlchemy and the rest, unpickling the model)
builds those objects a few thousand at a time, and the collector kept walking them as they
grew: three full collections (~0.13 s) and ~490 young ones (~0.07 s), a tenth of a ~1.9 s
start-up on this 2-CPU machine (timed with ``gc.callbacks``). ``collector_paused`` holds
collections off while a server loads; the cycles start-up left behind are then frozen with
the rest (~1 MB more resident, measured), since a collection to find them would walk all
330k objects (~0.15 s).

SQLite keeps up to the store's ``cache_size`` of pages per connection; the log writer's
connection would fill it with pages of the prediction log, which a server never reads
back. ``limit_sqlite_heap`` sets SQLite's process-wide soft heap limit, so it recycles
cached pages instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import sqlite3
import sys
from collections.abc import Iterator
from functools import cache
from typing import Any

M_ARENA_MAX = -8  # mallopt parameter, from glibc's malloc.h


@cache
def _glibc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    # musl and others have no malloc_trim: then there is nothing to tune.
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def limit_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas for this process; True when the setting took."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, arenas))


def release_free_memory() -> None:
    """Return free heap pages to the system (walks the heap: call it every few seconds)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection inside (``gc.disable``); the collector's state before is
    restored after, whatever happens inside."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def freeze_heap() -> None:
    """Exempt every object allocated so far from garbage collection (``gc.freeze``); call it
    once, in the process that runs the server, when its models are loaded and warmed. Cycles
    that are garbage at that moment are kept, not collected: a one-off, bounded cost."""
    gc.freeze()


def limit_sqlite_heap(limit_bytes: int) -> None:
    """Set SQLite's soft heap limit for this process (a cap on cached pages, not on work)."""
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        conn.execute(f"PRAGMA soft_heap_limit={int(limit_bytes)}")
