"""The prediction server's Prometheus metrics, in a registry of its own (one per server, so
several servers in one test process do not collide).

With several workers (``heron serve --workers N``) a scrape reaches one of them, so the
workers keep their metrics in files of a shared folder (prometheus-client's multiprocess
mode, switched on by ``MULTIPROCESS_ENV`` before they start) and every worker answers with
the sum over all of them: requests and latency of every worker, and the CPU and memory of
the whole worker group under the usual ``process_*`` names.

Labelled children are looked up once and cached: ``Counter.labels`` takes a lock and
builds a tuple on every call, which the request path should not pay for.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

# prometheus-client reads it when first imported: the parent of the workers sets it.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_WORKER_MARK = "heron-worker-"

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0, 2.5, 5.0,
)  # fmt: skip

CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServerMetrics:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.shared = _shared_folder()
        self.registry = registry = CollectorRegistry()
        if self.shared is None:
            ProcessCollector(registry=registry)  # process CPU seconds, resident memory, fds
        else:
            (self.shared / f"{_WORKER_MARK}{os.getpid()}").touch()
        self.requests = Counter(
            "heron_requests",
            "Prediction requests answered, by endpoint, model version and HTTP status.",
            ["endpoint", "model", "version", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "heron_request_latency_seconds",
            "Time from reading the request to the response, for /predict.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ).labels(endpoint)
        self.in_flight = Gauge(
            "heron_requests_in_flight",
            "Prediction requests being answered now.",
            ["endpoint"],
            registry=registry,
            multiprocess_mode="livesum",
        ).labels(endpoint)
        self.model_load = Gauge(
            "heron_model_load_seconds",
            "Time to fetch, verify, load and warm a model version.",
            ["endpoint", "model", "version"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.revision = Gauge(
            "heron_endpoint_revision",
            "The endpoint revision being served.",
            ["endpoint"],
            registry=registry,
            multiprocess_mode="livemax",
        ).labels(endpoint)
        self.log_dropped = Counter(
            "heron_prediction_log_dropped",
            "Prediction log entries dropped because the queue was full.",
            ["endpoint"],
            registry=registry,
        ).labels(endpoint)
        self.log_failed = Counter(
            "heron_prediction_log_write_failed",
            "Prediction log entries lost because a sink failed to write them.",
            ["endpoint"],
            registry=registry,
        ).labels(endpoint)
        self.log_queue = Gauge(
            "heron_prediction_log_queue",
            "Prediction log entries waiting to be written.",
            ["endpoint"],
            registry=registry,
            multiprocess_mode="livesum",
        ).labels(endpoint)
        self.sink_cpu = Counter(
            "heron_prediction_log_sink_cpu_seconds",
            "CPU time the log flusher spent in each sink (store, proba, profiles, parquet).",
            ["endpoint", "sink"],
            registry=registry,
        )
        self.sink_wall = Counter(
            "heron_prediction_log_sink_seconds",
            "Wall time the log flusher spent in each sink: over its CPU time, the time it "
            "waited for the interpreter shared with the requests, or for storage.",
            ["endpoint", "sink"],
            registry=registry,
        )
        self.shadow_dropped = Counter(
            "heron_shadow_dropped",
            "Shadow predictions skipped because the shadow queue was full.",
            ["endpoint"],
            registry=registry,
        ).labels(endpoint)
        self._children: dict[tuple[str, str, int], Any] = {}
        self._sinks: dict[str, tuple[Any, Any]] = {}

    def request(self, model: str, version: str, status: int) -> Any:
        key = (model, version, status)
        child = self._children.get(key)
        if child is None:
            child = self.requests.labels(self.endpoint, model, version, str(status))
            self._children[key] = child
        return child

    def sink_written(self, sink: str, cpu: float, wall: float) -> None:
        """Time one sink took for one batch (in the flusher, or a request flushing the log)."""
        children = self._sinks.get(sink)
        if children is None:
            children = (
                self.sink_cpu.labels(self.endpoint, sink),
                self.sink_wall.labels(self.endpoint, sink),
            )
            self._sinks[sink] = children
        children[0].inc(cpu)
        children[1].inc(wall)

    def render(self) -> bytes:
        if self.shared is None:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.shared))
        registry.register(_WorkerGroupCollector(self.shared))
        return generate_latest(registry)

    def close(self) -> None:
        """A stopped worker's live gauges (in flight, queue, revision) leave the sums."""
        if self.shared is None:
            return
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(os.getpid(), str(self.shared))
        (self.shared / f"{_WORKER_MARK}{os.getpid()}").unlink(missing_ok=True)


def _shared_folder() -> Path | None:
    from prometheus_client import values

    folder = os.environ.get(MULTIPROCESS_ENV)
    # The mode is fixed when prometheus-client is first imported; only then are the files
    # what the other workers read.
    if not folder or values.ValueClass is values.MutexValue:
        return None
    return Path(folder)


class _WorkerGroupCollector:
    """CPU, memory and open files of all live workers, under ProcessCollector's names."""

    def __init__(self, shared: Path) -> None:
        self.shared = shared

    def collect(self) -> Iterator[Metric]:
        import psutil

        cpu = rss = vms = fds = 0.0
        workers = 0
        for mark in self.shared.glob(f"{_WORKER_MARK}*"):
            try:
                process = psutil.Process(int(mark.name.removeprefix(_WORKER_MARK)))
                with process.oneshot():
                    times, memory = process.cpu_times(), process.memory_info()
                    fds += process.num_fds()
            except (ValueError, psutil.Error):
                continue  # a worker that has gone, or a stray file
            cpu += times.user + times.system
            rss, vms = rss + memory.rss, vms + memory.vms
            workers += 1
        yield CounterMetricFamily(
            "process_cpu_seconds", "Total user and system CPU time of all workers.", cpu
        )
        yield GaugeMetricFamily(
            "process_resident_memory_bytes", "Resident memory of all workers.", rss
        )
        yield GaugeMetricFamily(
            "process_virtual_memory_bytes", "Virtual memory of all workers.", vms
        )
        yield GaugeMetricFamily("process_open_fds", "Open file descriptors of all workers.", fds)
        yield GaugeMetricFamily("heron_workers", "Worker processes serving.", workers)
