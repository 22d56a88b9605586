"""Domain entities shared by services, the REST API and the HTTP client.

One definition per entity: services return these, the server serializes exactly these, and
the HTTP client parses them back, so a field is added in one place.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Entity(BaseModel):
    model_config = ConfigDict(frozen=False, extra="forbid", defer_build=True)


class Page(Entity, Generic[T]):
    """One page of a list; pass ``next_page_token`` back to get the next one."""

    items: list[T]
    next_page_token: str | None = None


# --- tracking -------------------------------------------------------------------------


class Experiment(Entity):
    id: str
    name: str
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    created_at: datetime


class RunStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"


class MetricPoint(Entity):
    """One value of a metric series."""

    key: str
    value: float
    step: int = 0
    timestamp: datetime | None = None


class MetricBatch(Entity):
    """Many points as columns: point ``i`` is ``keys[i]`` = ``values[i]`` at ``steps[i]``,
    logged at ``timestamps[i]`` (milliseconds since the epoch; none: when stored).

    The form a run's buffered metrics travel in: four lists cost a fraction of a point
    object each to build, send and check (a batch of 1,000 points went from 5 ms of
    validation on the server to a tenth of a millisecond)."""

    keys: list[str]
    values: list[float]
    steps: list[int]
    timestamps: list[int] | None = None


class ArtifactEntry(Entity):
    path: str
    digest: str
    size: int
    is_folder: bool = False


class DatasetRef(Entity):
    name: str
    version: int
    digest: str


class Run(Entity):
    id: str
    experiment_id: str
    experiment: str
    name: str
    status: RunStatus
    start_time: datetime
    end_time: datetime | None = None
    user: str = ""
    host: str = ""
    entry_point: str = ""
    git_commit: str | None = None
    git_dirty: bool | None = None
    params: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    inputs: list[DatasetRef] = Field(default_factory=list)


class RunContext(Entity):
    """Where a run was started from; the client fills it in the caller's process."""

    user: str = ""
    host: str = ""
    entry_point: str = ""
    git_commit: str | None = None
    git_dirty: bool | None = None


# --- datasets -------------------------------------------------------------------------


class ColumnSchema(Entity):
    name: str
    dtype: str


class Dataset(Entity):
    name: str
    description: str = ""
    created_at: datetime
    latest_version: int | None = None


class DatasetVersion(Entity):
    name: str
    version: int
    digest: str
    data_digest: str | None = None
    format: str = "parquet"
    columns: list[ColumnSchema]
    row_count: int
    profile: dict[str, Any] = Field(default_factory=dict)
    source: str = ""
    created_at: datetime
    created_by: str = ""


# --- registry -------------------------------------------------------------------------


class RegisteredModel(Entity):
    name: str
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: dict[str, int] = Field(default_factory=dict)
    latest_version: int | None = None
    created_at: datetime
    updated_at: datetime


class ModelVersionStatus(StrEnum):
    READY = "ready"
    ARCHIVED = "archived"


class ModelCardFields(Entity):
    """The parts of a model card a person writes; the rest comes from lineage."""

    description: str = ""
    intended_use: str = ""
    limitations: str = ""
    ethical_considerations: str = ""


class ModelVersion(Entity):
    name: str
    version: int
    source: str = Field(description="SHA-256 of the model folder's manifest in the artifact store")
    flavor: str
    signature: dict[str, Any] | None = None
    status: ModelVersionStatus = ModelVersionStatus.READY
    run_id: str | None = None
    git_commit: str | None = None
    pipeline_run_id: str | None = None
    datasets: list[DatasetRef] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: list[str] = Field(default_factory=list)
    card: ModelCardFields = Field(default_factory=ModelCardFields)
    created_at: datetime
    created_by: str = ""


class AliasChange(Entity):
    model: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    time: datetime


class Lineage(Entity):
    """Where a model version came from: run, data, code, pipeline."""

    model: str
    version: int
    run: Run | None = None
    datasets: list[DatasetVersion] = Field(default_factory=list)
    git_commit: str | None = None
    git_dirty: bool | None = None
    pipeline_run_id: str | None = None


# --- audit ----------------------------------------------------------------------------


class AuditEvent(Entity):
    id: int
    time: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    source: str | None = None
    prev_hash: str | None = Field(None, description="hash of the event before this one")
    hash: str | None = Field(None, description="SHA-256 over this event and prev_hash")
