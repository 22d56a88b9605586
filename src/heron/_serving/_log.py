"""Prediction logging off the request path: a bounded queue and a background flusher.

The request path appends one tuple of references to a deque (never blocks, never copies,
never touches storage); when the queue holds ``capacity`` entries or ``max_bytes`` of inputs,
outputs and kept arrays, the new entry is dropped and counted. A flusher thread wakes every
``interval`` seconds, or as soon as a batch is full or a quarter of ``max_bytes`` is queued
(large requests are written in smaller batches rather than dropped), drains up to
``batch_size`` entries or a quarter of ``max_bytes`` and hands them to each sink as one
batch; entries count against ``max_bytes`` until written, so the bound covers them too.
A sink is anything with ``write(endpoint, entries)``: :class:`StoreSink` writes the
``prediction_log`` table; its ``name`` (else its class name) labels the CPU and wall time
each sink spends, reported through ``on_written`` (the server's Prometheus metrics: what
logging costs, sink by sink, and how long the flusher waited for the interpreter). A
failing sink loses that batch, counted, and never stops the others or the server. A sink
may also have ``tick()``, called at every wake-up, for work due by time rather than by
batch (``_parquet`` rolls its files so).

The flusher shares the interpreter with the request path, so sinks work on whole batches
(one query, one DataFrame, one model call per batch), never per entry where avoidable.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from heron._serving._budget import RateBudget
from heron._serving._memory import release_free_memory
from heron._threads import start_thread

if TYPE_CHECKING:
    from heron._client import Client

log = logging.getLogger("heron.serving")

TRIM_INTERVAL = 5.0  # seconds between returning freed memory to the system


class RequestIds:
    """Request ids for one thread: 12 hex digits of the time in milliseconds, then 20 of
    randomness (80 bits, from ``os.urandom``), 32 in all.

    Time first because the prediction log and the class-probability table index request
    ids (feedback finds its request by id): random ids (uuid4) land on a random page of
    that index each, so a batch of 2,000 rows dirtied ~2,000 pages, each written to the
    WAL and checkpointed, and cost 12-16 ms of the flusher's CPU per 1,000 rows on SQLite
    (growing with the table), against ~3 ms for ids that append. The random part keeps
    ids unique across replicas and not guessable from a neighbour's; it is read from
    ``os.urandom`` 40 KB at a time (one system call per 4,096 ids, not one per request).
    Not thread-safe: the event loop makes the ids of the requests it answers. A process
    needs its own (workers are spawned, not forked: no two share a pool).
    """

    _RANDOM_BYTES = 10
    _POOL_IDS = 4096

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def __call__(self) -> str:
        at = self._at
        if at >= len(self._pool):
            self._pool = os.urandom(self._RANDOM_BYTES * self._POOL_IDS)
            at = 0
        self._at = at + self._RANDOM_BYTES
        return f"{int(time.time() * 1000):012x}{self._pool[at : self._at].hex()}"


class Entry(NamedTuple):
    """One answered request, as the request path enqueues it (cheap to build)."""

    request_id: str
    revision: int
    model: str
    version: int
    shadow: bool
    time: float  # seconds since the epoch
    latency_ms: float
    rows: int
    inputs: bytes | None  # the request body, when sampled
    outputs: bytes  # JSON of the predictions
    body: bytes | None = None  # the whole request body, for profiles (when not in inputs)
    prepared: Any = None  # the validated model input, for profiles and class probabilities
    served: Any = None  # the ServedModel that answered (reads ``prepared``)
    proba: bool = False  # within the class-probability row budget
    predictions: Any = None  # what the model returned (``outputs`` before JSON), with prepared
    profiled: bool = False  # within the profile row budget, while a monitor watches


class PredictionSink(Protocol):
    def write(self, endpoint: str, entries: list[Entry]) -> None: ...


def sink_name(sink: PredictionSink) -> str:
    """The label of a sink's metrics: its ``name``, else its class name."""
    return str(getattr(sink, "name", type(sink).__name__))


def entry_size(outputs: bytes, inputs: bytes | None, body: bytes | None, prepared: Any) -> int:
    """Bytes an entry of these parts holds against ``max_bytes`` (the request path has them
    at hand: reading them back from the entry cost half a microsecond)."""
    size = len(outputs)
    if inputs is not None:
        size += len(inputs)
    if body is not None and body is not inputs:
        size += len(body)
    if prepared is not None:
        size += getattr(prepared, "nbytes", 0)  # an int already; a DataFrame has none
    return size


def _size(e: Entry) -> int:
    return entry_size(e.outputs, e.inputs, e.body, e.prepared)


class StoreSink:
    """Writes batches into the metadata store's prediction log (trimming it now and then)."""

    name = "store"

    def __init__(self, client: Client, retention: int | None) -> None:
        from heron._transport import EmbeddedTransport

        self.client = client
        self.retention = retention
        embedded = client.transport
        self._services = embedded.services if isinstance(embedded, EmbeddedTransport) else None
        self._last_trim = time.monotonic()

    def write(self, endpoint: str, entries: list[Entry]) -> None:
        if self._services is None:
            self._send(endpoint, entries)
            return
        self._services.predictions.write_log_rows(
            [
                (
                    e.request_id,
                    endpoint,
                    e.revision,
                    e.model,
                    e.version,
                    e.shadow,
                    int(e.time * 1000),
                    e.latency_ms,
                    e.rows,
                    e.inputs.decode() if e.inputs is not None else None,
                    e.outputs.decode(),
                )
                for e in entries
            ]
        )
        if self.retention and time.monotonic() - self._last_trim > 60:
            self._last_trim = time.monotonic()
            self._services.predictions.trim_predictions(endpoint, self.retention)

    def _send(self, endpoint: str, entries: list[Entry]) -> None:
        """Through a Heron server (HERON_URL): the ``log_predictions`` operation."""
        from datetime import UTC, datetime

        import orjson

        from heron._predictions import PredictionRecord

        records = [
            PredictionRecord(
                request_id=e.request_id,
                endpoint=endpoint,
                revision=e.revision,
                model=e.model,
                version=e.version,
                shadow=e.shadow,
                time=datetime.fromtimestamp(e.time, tz=UTC),
                latency_ms=e.latency_ms,
                rows=e.rows,
                inputs=orjson.loads(e.inputs) if e.inputs is not None else None,
                outputs=orjson.loads(e.outputs),
            )
            for e in entries
        ]
        self.client._call("log_predictions", records=records)


class PredictionLogger:
    def __init__(
        self,
        endpoint: str,
        sinks: list[PredictionSink],
        *,
        capacity: int = 10_000,
        max_bytes: int = 16 * 1024 * 1024,
        batch_size: int = 2_048,
        interval: float = 2.0,
        sample: float = 1.0,
        max_input_bytes: int = 256 * 1024,
        input_bytes_per_second: float | None = 4 * 1024 * 1024,
        on_drop: Callable[[int], None] | None = None,
        on_error: Callable[[int], None] | None = None,
        on_written: Callable[[str, float, float], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.sinks = sinks
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.batch_size = batch_size
        self.interval = interval
        self.sample = sample
        self.max_input_bytes = max_input_bytes
        # None: no byte limit (a RateBudget of 0 would keep nothing)
        self._input_budget = RateBudget(input_bytes_per_second) if input_bytes_per_second else None
        self.dropped = 0
        # Bytes queued = added - removed; each counter is written by one thread only.
        self._bytes_added = 0
        self._bytes_removed = 0
        self._due_bytes = max(1, max_bytes // 4)  # wake the flusher; bytes per batch
        self._trimmed = time.monotonic()
        self._on_drop = on_drop
        self._on_error = on_error
        self._on_written = on_written
        # (entry, its size): the flusher counts what it takes without measuring it again
        self._queue: collections.deque[tuple[Entry, int]] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def keep_inputs(self, body: bytes, now: float | None = None) -> bytes | None:
        """The body to log as inputs, or None: not sampled, too large, or over the byte
        budget (a token bucket of ``input_bytes_per_second`` with one second of burst), which
        keeps the raw log's cost flat however large or frequent the requests are. ``now``:
        ``time.monotonic()``, when the caller has read it already."""
        size = len(body)
        if size > self.max_input_bytes:
            return None
        if self.sample < 1.0 and random.random() >= self.sample:
            return None
        budget = self._input_budget
        if budget is not None and not budget.take(size, now):
            return None
        return body

    def put(self, entry: Entry, size: int | None = None) -> None:
        """Enqueue without waiting; when full, drop and count. Called from one thread.
        ``size``: ``entry_size`` of its parts, when the caller has computed it."""
        if size is None:
            size = _size(entry)
        queued = self._bytes_added - self._bytes_removed
        if len(self._queue) >= self.capacity or queued + size > self.max_bytes:
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop(1)
            return
        self._bytes_added += size
        queue = self._queue
        queue.append((entry, size))
        # Once a batch is due, every request until the flusher takes the GIL finds it due:
        # setting the event each time (a lock and a notify, ~1.5 us) is the flusher's job
        # announced again. Reading the flag is free; the flusher re-checks what is due after
        # clearing it, so an entry that found it still set is written in that round.
        wake = self._wake
        if (len(queue) >= self.batch_size or queued + size >= self._due_bytes) and (
            not wake.is_set()
        ):
            wake.set()

    def start(self) -> None:
        self._thread = start_thread(self._run, "heron-log-flusher")

    def close(self) -> None:
        """Stop the flusher after writing what is queued."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("prediction log sink %r failed to close", sink)

    def flush(self) -> None:
        """Write everything queued now, in this thread (feedback waits on this)."""
        while self._queue:
            if not self._flush_batch():
                break

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            while self._queue and not self._stop.is_set():
                self._flush_batch()
                if not self._due():
                    break
            self._tick()
            if time.monotonic() - self._trimmed > TRIM_INTERVAL:
                # What the flushed batches held is free now; give it back to the system.
                self._trimmed = time.monotonic()
                release_free_memory()

    def _due(self) -> bool:
        queued = self._bytes_added - self._bytes_removed
        return len(self._queue) >= self.batch_size or queued >= self._due_bytes

    def _flush_batch(self) -> bool:
        with self._flush_lock:
            entries, size = [], 0
            queue = self._queue
            while queue and len(entries) < self.batch_size and size < self._due_bytes:
                entry, entry_bytes = queue.popleft()
                entries.append(entry)
                size += entry_bytes
            if not entries:
                return False
            try:
                for sink in self.sinks:
                    self._write(sink, entries)
            finally:
                # Counted as queued until written: the bound holds what is being written too.
                self._bytes_removed += size
            return True

    def _tick(self) -> None:
        """Sinks that hold rows between batches (a Parquet file rolled by age) act on time
        even when no request comes; a failure loses the rows the sink held (``pending``)."""
        for sink in self.sinks:
            tick = getattr(sink, "tick", None)
            if tick is not None:
                with self._flush_lock:
                    self._attempt(sink, tick, getattr(sink, "pending", 0))

    def _write(self, sink: PredictionSink, entries: list[Entry]) -> None:
        cpu, wall = time.thread_time(), time.perf_counter()
        self._attempt(sink, functools.partial(sink.write, self.endpoint, entries), len(entries))
        if self._on_written is not None:
            # Wall time over CPU time is how long the flusher waited for the GIL (or I/O).
            self._on_written(sink_name(sink), time.thread_time() - cpu, time.perf_counter() - wall)

    def _attempt(self, sink: PredictionSink, action: Callable[[], None], entries: int) -> None:
        try:
            action()
        except Exception:
            log.exception("prediction log sink %r failed; %d entries lost", sink, entries)
            if self._on_error is not None:
                self._on_error(entries)
