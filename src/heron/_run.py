"""``ActiveRun``: a run being logged to, with client-side metric buffering.

Single ``log_metric`` calls are buffered and sent in batches (every ``flush_every`` points,
every ``flush_seconds`` seconds, and when the run ends), so a training loop never waits on
the store per point; ``flush()`` makes everything logged so far durable.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from heron._entities import (
    ArtifactEntry,
    DatasetVersion,
    MetricPoint,
    ModelVersion,
    Run,
    RunContext,
    RunStatus,
)
from heron._names import check_metric


@functools.cache
def _points() -> TypeAdapter[list[MetricPoint]]:
    return TypeAdapter(list[MetricPoint])  # built on first use: import heron stays cheap


if TYPE_CHECKING:
    from heron._client import Client

FLUSH_EVERY = 1000
FLUSH_SECONDS = 5.0


class MetricBuffer:
    def __init__(
        self, send: Any, flush_every: int = FLUSH_EVERY, flush_seconds: float = FLUSH_SECONDS
    ) -> None:
        self._send = send
        self._flush_every = flush_every
        self._flush_seconds = flush_seconds
        self._points: list[MetricPoint] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def add(self, points: list[MetricPoint]) -> None:
        for point in points:
            check_metric(point)  # refuse bad values at the call, not at a later flush
        with self._lock:
            self._points.extend(points)
            full = len(self._points) >= self._flush_every
            if not full and self._timer is None and self._flush_seconds > 0:
                self._timer = threading.Timer(self._flush_seconds, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            points, self._points = self._points, []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if points:
                self._send(points)


class ActiveRun:
    """A run being logged to. As a context manager it ends the run, failed if the block raised."""

    def __init__(self, client: Client, run: Run) -> None:
        self.client = client
        self.id = run.id
        self._run = run
        self._metrics = MetricBuffer(lambda pts: client.log_metrics(run.id, pts))

    @property
    def run(self) -> Run:
        """The run as stored now (buffered metrics are flushed first)."""
        self.flush()
        return self.client.get_run(self.id)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.client.log_params(self.id, dict(params))

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        self._metrics.add([MetricPoint(key=key, value=float(value), step=step, timestamp=_now())])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        stamp = _now()
        # One validation call for the whole dict: 2.7x faster than a MetricPoint per key.
        self._metrics.add(
            _points().validate_python(
                [
                    {"key": k, "value": float(v), "step": step, "timestamp": stamp}
                    for k, v in metrics.items()
                ]
            )
        )

    def set_tag(self, key: str, value: Any) -> None:
        self.client.set_tags(self.id, {key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.client.set_tags(self.id, dict(tags))

    def log_artifact(self, local_path: str | Path, path: str | None = None) -> ArtifactEntry:
        return self.client.log_artifact(self.id, local_path, path)

    def log_dataset(self, data: Any, name: str) -> DatasetVersion:
        return self.client.log_dataset(data, name=name, run_id=self.id)

    def log_model(self, model: Any, name: str, **kwargs: Any) -> ModelVersion:
        self.flush()  # the version's lineage shows the run's metrics as of now
        return self.client.log_model(model, name, run_id=self.id, **kwargs)

    def flush(self) -> None:
        self._metrics.flush()

    def end(self, status: RunStatus = RunStatus.FINISHED) -> Run:
        try:
            self.flush()
        finally:
            self._run = self.client.end_run(self.id, status)
        return self._run

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.end(RunStatus.FINISHED)
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end(RunStatus.KILLED)
        else:
            self.end(RunStatus.FAILED)


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(time.time(), tz=UTC)


def caller_context() -> RunContext:
    """User, host, entry point and git state of the process starting a run."""
    import getpass

    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = os.environ.get("USER", "")
    entry = sys.argv[0] if sys.argv and sys.argv[0] else "<interactive>"
    commit, dirty = _git_state(
        Path(entry).resolve().parent if os.path.isfile(entry) else Path.cwd()
    )
    return RunContext(
        user=user, host=socket.gethostname(), entry_point=entry, git_commit=commit, git_dirty=dirty
    )


def _git_state(folder: Path) -> tuple[str | None, bool | None]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None
