"""The prediction server's Prometheus metrics, in a registry of its own (one per server, so
several servers in one test process do not collide).

Labelled children are looked up once and cached: ``Counter.labels`` takes a lock and
builds a tuple on every call, which the request path should not pay for.
"""

from __future__ import annotations

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

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0, 2.5, 5.0,
)  # fmt: skip

CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServerMetrics:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)  # process CPU seconds, resident memory, fds
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
        ).labels(endpoint)
        self.model_load = Gauge(
            "heron_model_load_seconds",
            "Time to fetch, verify, load and warm a model version.",
            ["endpoint", "model", "version"],
            registry=registry,
        )
        self.revision = Gauge(
            "heron_endpoint_revision",
            "The endpoint revision being served.",
            ["endpoint"],
            registry=registry,
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
        ).labels(endpoint)
        self.shadow_dropped = Counter(
            "heron_shadow_dropped",
            "Shadow predictions skipped because the shadow queue was full.",
            ["endpoint"],
            registry=registry,
        ).labels(endpoint)
        self._children: dict[tuple[str, str, int], Any] = {}

    def request(self, model: str, version: str, status: int) -> Any:
        key = (model, version, status)
        child = self._children.get(key)
        if child is None:
            child = self.requests.labels(self.endpoint, model, version, str(status))
            self._children[key] = child
        return child

    def render(self) -> bytes:
        return generate_latest(self.registry)
