"""``ActiveRun``: a run being logged to, with client-side metric buffering.

Single ``log_metric`` calls are buffered and sent in batches (every ``flush_every`` points,
every ``flush_seconds`` seconds, and when the run ends), so a training loop never waits on
the store per point; ``flush()`` makes everything logged so far durable.
"""

from __future__ import annotations

import operator
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron._entities import (
    ArtifactEntry,
    DatasetVersion,
    MetricBatch,
    ModelVersion,
    Run,
    RunContext,
    RunStatus,
)
from heron._errors import InvalidInput
from heron._names import check_metric_batch, check_metric_value

if TYPE_CHECKING:
    from heron._client import Client

FLUSH_EVERY = 1000
FLUSH_SECONDS = 5.0


class MetricBuffer:
    """Points logged but not sent yet, kept as columns and sent as one ``MetricBatch``."""

    def __init__(
        self, send: Any, flush_every: int = FLUSH_EVERY, flush_seconds: float = FLUSH_SECONDS
    ) -> None:
        self._send = send
        self._flush_every = flush_every
        self._flush_seconds = flush_seconds
        self._batch = _empty_batch()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def add(self, batch: MetricBatch) -> None:
        check_metric_batch(batch)  # refuse bad values at the call, not at a later flush
        with self._lock:
            pending = self._batch
            pending.keys.extend(batch.keys)
            pending.values.extend(batch.values)
            pending.steps.extend(batch.steps)
            pending.timestamps.extend(batch.timestamps or [_millis_now()] * len(batch.keys))
            full = self._added()
        if full:
            self.flush()

    def add_point(self, key: str, value: float, step: int, timestamp: int) -> None:
        """``add`` for one point, the training loop's call: appends, no batch object."""
        check_metric_value(key, value)
        with self._lock:
            pending = self._batch
            pending.keys.append(key)
            pending.values.append(value)
            pending.steps.append(step)
            pending.timestamps.append(timestamp)
            full = self._added()
        if full:
            self.flush()

    def _added(self) -> bool:
        """Whether the buffer is full; if not, a timer sends it later. Holds ``_lock``."""
        full = len(self._batch.keys) >= self._flush_every
        if not full and self._timer is None and self._flush_seconds > 0:
            self._timer = threading.Timer(self._flush_seconds, self.flush)
            self._timer.daemon = True
            self._timer.start()
        return full

    def flush(self) -> None:
        with self._lock:
            batch, self._batch = self._batch, _empty_batch()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if batch.keys:
                self._send(batch)


def _empty_batch() -> MetricBatch:
    return MetricBatch.model_construct(keys=[], values=[], steps=[], timestamps=[])


def _millis_now() -> int:
    return int(time.time() * 1000)


def _step(step: Any) -> int:
    """``step`` as an int: any integer type, or a float with no fraction (``3.0``)."""
    try:
        return operator.index(step)
    except TypeError:
        if isinstance(step, float) and step.is_integer():
            return int(step)
        raise InvalidInput(f"step must be an integer, not {step!r}", field="step") from None


def _value(key: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"metric {key!r} must be a number, not {value!r}", field=f"metrics.{key}"
        ) from None


class ActiveRun:
    """A run being logged to. As a context manager it ends the run, failed if the block raised."""

    def __init__(self, client: Client, run: Run) -> None:
        self.client = client
        self.id = run.id
        self._run = run
        self._metrics = MetricBuffer(lambda batch: client.log_metrics(run.id, batch))

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
        self._metrics.add_point(key, _value(key, value), _step(step), _millis_now())

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        # Columns, not a MetricPoint per key: nothing per point but a float() and appends.
        keys = list(metrics)
        self._metrics.add(
            MetricBatch.model_construct(
                keys=keys,
                values=[_value(k, v) for k, v in metrics.items()],
                steps=[_step(step)] * len(keys),
                timestamps=[_millis_now()] * len(keys),
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
