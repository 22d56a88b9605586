"""Pipeline entities: what the store keeps of a pipeline run and its step runs.

The REST API serializes exactly these, and ``heron.run_pipeline`` returns a ``PipelineRun``
with its ``output`` loaded.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr


class PipelineRunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # an upstream step failed or the run stopped first
    CANCELLED = "cancelled"


class OutputRef(BaseModel):
    """One stored output of a step run: a folder in the artifact store."""

    name: str
    digest: str
    materializer: str
    type: str = ""


class StepRun(BaseModel):
    """One step of one pipeline run: status, cache decision, lineage, logs and timing."""

    name: str
    pipeline_run_id: str | None = None
    step: str = ""  # the step function, module:qualname
    status: StepStatus = StepStatus.PENDING
    cached: bool = False
    cache_key: str | None = None
    key_parts: dict[str, Any] = Field(default_factory=dict)
    cache_reason: str = ""
    cached_from: str | None = None  # the pipeline run whose outputs were reused
    upstream: list[str] = Field(default_factory=list)
    inputs: dict[str, str] = Field(default_factory=dict)  # argument -> artifact digest
    outputs: list[OutputRef] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    attempts: int = 0
    error: str | None = None
    log_digest: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


class PipelineRun(BaseModel):
    """A pipeline run. ``output`` is the pipeline's return value, loaded by ``run_pipeline``;
    ``result`` is how it is stored (output references in the same structure)."""

    id: str
    pipeline: str
    target: str = ""  # module:attribute, so the CLI can rebuild it to resume
    status: PipelineRunStatus = PipelineRunStatus.RUNNING
    executor: str = "inprocess"
    params: dict[str, Any] = Field(default_factory=dict)
    steps: dict[str, StepRun] = Field(default_factory=dict)
    result: Any = None
    error: str | None = None
    run_id: str | None = None  # the tracking run that mirrors this pipeline run
    resumed_from: str | None = None
    trigger: str | None = None
    cancel_requested: bool = False
    created_at: datetime
    ended_at: datetime | None = None
    created_by: str = ""

    _output: Any = PrivateAttr(default=None)

    @property
    def output(self) -> Any:
        return self._output


class LineageEdge(BaseModel):
    """An artifact digest read or written by a step run."""

    pipeline_run_id: str
    step: str
    direction: str  # "in" or "out"
    name: str
    digest: str


class TriggerKind(StrEnum):
    CRON = "cron"
    DATASET = "dataset"


class PipelineTrigger(BaseModel):
    """What ``heron scheduler`` runs: a pipeline on a cron schedule or on new dataset versions."""

    name: str
    target: str
    kind: TriggerKind
    spec: str  # a cron expression, or a dataset name
    params: dict[str, Any] = Field(default_factory=dict)
    executor: str = "inprocess"
    dataset_param: str | None = None  # pipeline param that receives the new version number
    last_fired_at: datetime | None = None
    last_dataset_version: int | None = None
    last_run_id: str | None = None
    created_at: datetime
