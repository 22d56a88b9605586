"""Entities of monitoring: monitors, window summaries, check results, serving heartbeats,
series and anomalies (shared by the service, the REST API and the client)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from heron._drift import ColumnDrift, DriftConfig, DriftReport
from heron._entities import Entity
from heron._multivariate import MultivariateDrift
from heron._profiles import DatasetProfile
from heron._quality import QualityConfig
from heron._quality import QualityReport as QualityReport

Task = Literal["classification", "regression"]
_COUNT = re.compile(r"^\d+$")


class WindowSpec(Entity):
    """How a monitor cuts traffic into windows: by hour, by day, or every ``size`` rows.

    The strings ``"hour"``, ``"day"`` and ``"500"`` are read as window specs too.
    """

    kind: Literal["hour", "day", "count"] = "day"
    size: int = Field(default=1, ge=1, le=10_000_000)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"kind": "count", "size": value}
        if isinstance(value, str):
            text = value.strip().lower()
            if _COUNT.match(text):
                return {"kind": "count", "size": int(text)}
            if text in ("hour", "day"):
                return {"kind": text}
            raise ValueError("a window is 'hour', 'day' or a row count such as '500'")
        return value

    def __str__(self) -> str:
        return f"{self.size} rows" if self.kind == "count" else self.kind

    @property
    def seconds(self) -> int | None:
        return {"hour": 3600, "day": 86400}.get(self.kind)


class ReferenceInfo(Entity):
    """What a monitor compares with: a dataset version, or an earlier window's profile."""

    kind: Literal["dataset", "window"]
    dataset: str | None = None
    version: int | None = None
    check_id: int | None = None
    rows: int = 0


class Monitor(Entity):
    name: str
    description: str = ""
    model: str | None = Field(default=None, description="NAME@ALIAS or NAME/VERSION")
    endpoint: str | None = None
    reference: ReferenceInfo
    window: WindowSpec
    time_column: str | None = None
    label_column: str | None = None
    task: Task | None = None
    drift: DriftConfig = Field(default_factory=DriftConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    multivariate: bool = False
    features: list[str] = Field(default_factory=list, description="reference columns compared")
    has_reference_predictions: bool = False
    live_cursor: datetime | None = Field(
        default=None, description="serving logs are checked up to here"
    )
    created_at: datetime
    created_by: str = ""
    updated_at: datetime


class Performance(Entity):
    """Model quality on one window: realized from labels, or estimated from confidence."""

    task: Task
    rows: int = Field(description="rows the figures are computed on")
    metrics: dict[str, float | None] = Field(default_factory=dict)
    estimated: bool = False
    notes: list[str] = Field(default_factory=list)


class MonitorReference(Entity):
    """A monitor's baseline: the feature profile, and the model's outputs on it."""

    profile: DatasetProfile
    predictions: DatasetProfile | None = None
    performance: Performance | None = None


class WindowSummary(Entity):
    """What a client (batch) or the service (serving logs) learned from one window's rows;
    profiles are built against the monitor's reference, so they are O(bins) to send."""

    window_start: datetime
    window_end: datetime
    rows: int = Field(ge=0)
    model: str | None = None
    version: int | None = None
    profile: DatasetProfile
    predictions: DatasetProfile | None = None
    performance: Performance | None = None
    estimated_performance: Performance | None = None
    multivariate: MultivariateDrift | None = None
    notes: list[str] = Field(default_factory=list)


class CheckResult(Entity):
    """Drift, data quality and performance of a window against the monitor's reference."""

    monitor: str
    source: Literal["batch", "live"] = "batch"
    window_start: datetime
    window_end: datetime
    model: str | None = None
    version: int | None = None
    rows: int
    columns: list[ColumnDrift] = Field(default_factory=list)
    skipped: dict[str, str] = Field(default_factory=dict, description="column -> reason")
    tested_columns: int = 0
    drifted_columns: int = 0
    drift_share: float = 0.0
    share_threshold: float = 0.5
    drifted: bool = False
    prediction_drift: DriftReport | None = None
    quality: QualityReport
    performance: Performance | None = None
    estimated_performance: Performance | None = None
    multivariate: MultivariateDrift | None = None
    notes: list[str] = Field(default_factory=list)

    def drifted_names(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]


class MonitorCheck(CheckResult):
    """One stored window result; ``profile`` only when asked for a single check."""

    id: int
    created_at: datetime
    profile: DatasetProfile | None = None


class CheckOutcome(CheckResult):
    """A check over all given data (window profiles merged), with each window's result."""

    windows: list[MonitorCheck] = Field(default_factory=list)


# --- operations: heartbeats, resources, utilisation ------------------------------------------


class GpuStats(Entity):
    index: int
    name: str = ""
    utilization_percent: float | None = None
    memory_used_mb: float | None = None
    memory_total_mb: float | None = None


class ServerStats(Entity):
    """What a prediction server reports with each heartbeat (all fields optional)."""

    cpu_percent: float | None = None
    memory_mb: float | None = None
    memory_percent: float | None = None
    gpu_available: bool = False
    gpus: list[GpuStats] = Field(default_factory=list)
    requests: int | None = Field(default=None, ge=0, description="answered since the last beat")
    errors: int | None = Field(default=None, ge=0, description="failed since the last beat")
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    in_flight: int | None = None
    queue: int | None = None
    queue_limit: int | None = None


class ServingInstance(Entity):
    endpoint: str
    instance: str
    host: str = ""
    pid: int | None = None
    status: Literal["up", "down"]
    started_at: datetime
    last_seen: datetime
    interval: float
    stats: ServerStats = Field(default_factory=ServerStats)


class MonitorEvent(Entity):
    id: int
    kind: str = Field(description="down, up, ...")
    subject: str
    time: datetime
    details: dict[str, Any] = Field(default_factory=dict)


class ModelUsage(Entity):
    endpoint: str
    model: str | None = None
    version: int | None = None
    requests: int
    requests_per_hour: float
    latency_p95_ms: float | None = None
    cpu_percent: float | None = None
    queue_fill: float | None = None
    verdict: Literal["under-used", "over-used", "ok"]
    reasons: list[str] = Field(default_factory=list)


class UtilisationReport(Entity):
    start: datetime
    end: datetime
    usage: list[ModelUsage]
    under_used: list[str]
    over_used: list[str]


# --- series and anomalies ----------------------------------------------------------------------


class SeriesPoint(Entity):
    time: datetime
    value: float


class Series(Entity):
    """One monitored series: ``subject`` (monitor:NAME, endpoint:NAME, security:KIND), the
    metric, and a key (a column, a model version, a token or an address) when it has one."""

    subject: str
    metric: str
    key: str | None = None
    points: list[SeriesPoint]


class Anomaly(Entity):
    subject: str
    metric: str
    key: str | None = None
    time: datetime
    value: float
    baseline: float
    scale: float
    score: float
    direction: Literal["spike", "drop"]


__all__ = [
    "Anomaly",
    "CheckOutcome",
    "CheckResult",
    "ColumnDrift",
    "DriftConfig",
    "DriftReport",
    "GpuStats",
    "ModelUsage",
    "Monitor",
    "MonitorCheck",
    "MonitorEvent",
    "MonitorReference",
    "MultivariateDrift",
    "Performance",
    "QualityConfig",
    "QualityReport",
    "ReferenceInfo",
    "Series",
    "SeriesPoint",
    "ServerStats",
    "ServingInstance",
    "Task",
    "UtilisationReport",
    "WindowSpec",
    "WindowSummary",
]
