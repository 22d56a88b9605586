"""What a prediction server reports about itself, and the thread that sends its heartbeats.

``sample_resources`` reads CPU and memory of this process (psutil) and, where nvidia-ml-py
is installed and a GPU is present, each GPU's utilisation and memory; otherwise the GPU is
reported absent (``gpu_available=False``), never guessed. ``HeartbeatSender`` calls
``Client.record_heartbeat`` every ``interval`` seconds off the request path, with what
``traffic()`` (a callable the server gives it) says about requests, errors, latency and its
queue since the last beat; ``stop()`` tells the store the server stopped on purpose.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from heron._monitoring._entities import GpuStats, ServerStats
from heron._threads import start_thread

if TYPE_CHECKING:
    from heron._client import Client

log = logging.getLogger("heron.monitoring")


def sample_resources(process: Any = None) -> ServerStats:
    """CPU (% of one core since the previous call), memory and GPUs of this process."""
    import psutil

    process = process or psutil.Process()
    with process.oneshot():
        cpu = process.cpu_percent(interval=None)
        memory = process.memory_info().rss / 2**20
        memory_percent = process.memory_percent()
    gpus = gpu_stats()
    return ServerStats(
        cpu_percent=cpu,
        memory_mb=memory,
        memory_percent=memory_percent,
        gpu_available=bool(gpus),
        gpus=gpus,
    )


def gpu_stats() -> list[GpuStats]:
    """One entry per NVIDIA GPU, or [] when nvidia-ml-py or a GPU is missing."""
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver, no device: NVMLError subclasses
        return []
    try:
        out = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            usage = pynvml.nvmlDeviceGetUtilizationRates(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            out.append(
                GpuStats(
                    index=index,
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    utilization_percent=float(usage.gpu),
                    memory_used_mb=memory.used / 2**20,
                    memory_total_mb=memory.total / 2**20,
                )
            )
        return out
    except Exception:
        return []
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            log.debug("nvmlShutdown failed", exc_info=True)


class HeartbeatSender:
    """Sends ``record_heartbeat`` every ``interval`` seconds from a daemon thread."""

    def __init__(
        self,
        client: Client,
        endpoint: str,
        *,
        interval: float = 10.0,
        instance: str | None = None,
        traffic: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.client = client
        self.endpoint = endpoint
        self.interval = interval
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.traffic = traffic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        """Send one heartbeat now; a failure is logged, never raised into the server."""
        try:
            stats = sample_resources()
            if self.traffic is not None:
                stats = stats.model_copy(update=self.traffic())
            self.client.record_heartbeat(
                self.endpoint,
                self.instance,
                stats=stats,
                interval=self.interval,
                host=socket.gethostname(),
                pid=os.getpid(),
            )
        except Exception:
            log.warning("heartbeat of %s failed", self.endpoint, exc_info=True)

    def start(self) -> None:
        self._thread = start_thread(self._run, "heron-heartbeat")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
        try:
            self.client.stop_serving_instance(self.endpoint, self.instance)
        except Exception:
            log.warning("could not deregister %s/%s", self.endpoint, self.instance, exc_info=True)

    def _run(self) -> None:
        while True:
            self.beat()
            if self._stop.wait(self.interval):
                return


HEARTBEAT_INTERVAL = 10.0


class ServerTraffic:
    """What a prediction server did since the previous heartbeat, read off its Prometheus
    metrics (requests and errors by status, the latency histogram), its in-flight count and
    its prediction-log queue. Latency percentiles interpolate within histogram buckets."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self._requests = self._errors = 0.0
        self._buckets: dict[float, float] = {}

    def __call__(self) -> dict[str, Any]:
        requests = errors = 0.0
        buckets: dict[float, float] = {}
        for family in self.server.metrics.registry.collect():
            for sample in family.samples:
                if sample.name == "heron_requests_total":
                    requests += sample.value
                    if sample.labels.get("status", "200")[:1] in ("4", "5"):
                        errors += sample.value
                elif sample.name == "heron_request_latency_seconds_bucket":
                    buckets[float(sample.labels["le"])] = sample.value
        out: dict[str, Any] = {
            "requests": int(requests - self._requests),
            "errors": int(errors - self._errors),
        }
        delta = {le: n - self._buckets.get(le, 0.0) for le, n in buckets.items()}
        self._requests, self._errors, self._buckets = requests, errors, buckets
        for name, q in (("latency_p50_ms", 0.5), ("latency_p95_ms", 0.95)):
            value = _bucket_quantile(delta, q)
            out[name] = None if value is None else value * 1000
        out["in_flight"] = getattr(self.server, "_in_flight", None)
        logger = getattr(self.server, "logger", None)
        if logger is not None:
            out["queue"], out["queue_limit"] = len(logger), logger.capacity
        return out


def _bucket_quantile(cumulative: dict[float, float], q: float) -> float | None:
    bounds = sorted(cumulative)
    total = cumulative.get(float("inf"), 0.0)
    if not bounds or total <= 0:
        return None
    rank, low, below = q * total, 0.0, 0.0
    for le in bounds:
        count = cumulative[le]
        if count >= rank:
            if le == float("inf"):
                return low
            share = (rank - below) / (count - below) if count > below else 1.0
            return low + (le - low) * share
        low, below = le, count
    return low


def start_heartbeats(server: Any, interval: float = HEARTBEAT_INTERVAL) -> HeartbeatSender:
    """Start sending a prediction server's heartbeats (called by ``PredictionServer.start``)."""
    sender = HeartbeatSender(
        server.client, server.endpoint, interval=interval, traffic=ServerTraffic(server)
    )
    sender.start()
    return sender
