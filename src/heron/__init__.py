"""Heron: one local-first MLOps platform.

Track experiments, version datasets and models, and load them back::

    import heron
    with heron.start_run(experiment="quickstart") as run:
        run.log_metric("accuracy", 0.97)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from heron._client import Client
from heron._entities import (
    AliasChange,
    ArtifactEntry,
    AuditEvent,
    ColumnSchema,
    Dataset,
    DatasetRef,
    DatasetVersion,
    Experiment,
    Lineage,
    MetricBatch,
    MetricPoint,
    ModelCardFields,
    ModelVersion,
    ModelVersionStatus,
    Page,
    RegisteredModel,
    Run,
    RunStatus,
)
from heron._errors import (
    AlreadyExists,
    Conflict,
    HeronError,
    IntegrityError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from heron._fluent import (
    active_run,
    get_client,
    load_model,
    log_artifact,
    log_dataset,
    log_metric,
    log_metrics,
    log_model,
    log_param,
    log_params,
    search_runs,
    set_alias,
    set_client,
    set_tag,
    start_run,
)
from heron._run import ActiveRun
from heron._settings import Settings

if TYPE_CHECKING:
    from heron._pipelines._entities import PipelineRun, StepRun
    from heron._pipelines._external import File, Folder, Url
    from heron._pipelines._materializers import Materializer, register_materializer
    from heron._pipelines._pipeline import Pipeline, pipeline
    from heron._pipelines._runner import run_pipeline
    from heron._pipelines._step import Step, current_step, step

# Pipelines are imported on first use: a process that only loads a model (a server's cold
# start, a batch job) should not pay for them.
_LAZY = {
    "PipelineRun": "_entities",
    "StepRun": "_entities",
    "File": "_external",
    "Folder": "_external",
    "Url": "_external",
    "Materializer": "_materializers",
    "register_materializer": "_materializers",
    "Pipeline": "_pipeline",
    "pipeline": "_pipeline",
    "run_pipeline": "_runner",
    "Step": "_step",
    "current_step": "_step",
    "step": "_step",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'heron' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"heron._pipelines.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ActiveRun",
    "AliasChange",
    "AlreadyExists",
    "ArtifactEntry",
    "AuditEvent",
    "Client",
    "ColumnSchema",
    "Conflict",
    "Dataset",
    "DatasetRef",
    "DatasetVersion",
    "Experiment",
    "File",
    "Folder",
    "HeronError",
    "IntegrityError",
    "InvalidInput",
    "Lineage",
    "Materializer",
    "MetricBatch",
    "MetricPoint",
    "ModelCardFields",
    "ModelVersion",
    "ModelVersionStatus",
    "NotFound",
    "Page",
    "PermissionDenied",
    "Pipeline",
    "PipelineRun",
    "RegisteredModel",
    "Run",
    "RunStatus",
    "Settings",
    "Step",
    "StepRun",
    "Unauthenticated",
    "Unavailable",
    "Url",
    "__version__",
    "active_run",
    "current_step",
    "get_client",
    "load_model",
    "log_artifact",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "pipeline",
    "register_materializer",
    "run_pipeline",
    "search_runs",
    "set_alias",
    "set_client",
    "set_tag",
    "start_run",
    "step",
]
