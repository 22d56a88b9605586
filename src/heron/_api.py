"""The operation table: each service method exposed over HTTP, in one place.

The REST server builds a route from every entry and the HTTP client builds its request
from the same entry, so a service method, its route and its client call cannot drift apart.
Path, query and body parameters, and the response type, come from the method's signature.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

API_PREFIX = "/api/v1"

# Which service class serves each ``Services`` attribute.
SERVICE_CLASSES = {
    "tracking": "heron._tracking:TrackingService",
    "datasets": "heron._datasets:DatasetService",
    "registry": "heron._registry:RegistryService",
    "audit": "heron._audit:AuditService",
    "security": "heron._security._service:SecurityService",
    "deployments": "heron._deployments:DeploymentService",
    "predictions": "heron._predictions:PredictionService",
    "pipelines": "heron._pipelines._service:PipelineService",
    "monitoring": "heron._monitoring._service:MonitoringService",
}


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str
    service: str
    permission: str  # "read", "edit" or "admin" on the object the path names
    status_code: int = 200

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)(?::path)?}", self.path)

    @property
    def has_body(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH")

    @functools.cached_property
    def function(self) -> Callable[..., Any]:
        module, _, cls = SERVICE_CLASSES[self.service].partition(":")
        return getattr(getattr(importlib.import_module(module), cls), self.name)

    @functools.cached_property
    def parameters(self) -> list[inspect.Parameter]:
        sig = inspect.signature(self.function)
        hints = self.hints
        return [
            p.replace(annotation=hints[p.name]) for p in sig.parameters.values() if p.name != "self"
        ]

    @functools.cached_property
    def hints(self) -> dict[str, Any]:
        return typing.get_type_hints(self.function)

    @functools.cached_property
    def returns(self) -> Any:
        """The result type, from ``RESULTS``: the same as the service's annotation (a test
        holds them equal), without importing the service."""
        # The strings are this module's own constants, evaluated as annotations are.
        result = eval(RESULTS[self.name], {"__builtins__": builtins}, _ENTITY_NAMES)
        return type(None) if result is None else result

    @functools.cached_property
    def result_adapter(self) -> Any:
        """Validates (client) and dumps (server) the result type; built on first use."""
        from pydantic import TypeAdapter

        return TypeAdapter(self.returns)


def _op(
    name: str, method: str, path: str, service: str, permission: str, status: int = 200
) -> Operation:
    return Operation(name, method, path, service, permission, status)


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in [
        # tracking
        _op("create_experiment", "POST", "/experiments", "tracking", "edit", 201),
        _op("list_experiments", "GET", "/experiments", "tracking", "read"),
        _op("get_experiment", "GET", "/experiments/{name}", "tracking", "read"),
        _op("create_run", "POST", "/runs", "tracking", "edit", 201),
        _op("search_runs", "POST", "/runs/search", "tracking", "read"),
        _op("get_run", "GET", "/runs/{run_id}", "tracking", "read"),
        _op("end_run", "POST", "/runs/{run_id}/end", "tracking", "edit"),
        _op("log_params", "POST", "/runs/{run_id}/params", "tracking", "edit"),
        _op("log_metrics", "POST", "/runs/{run_id}/metrics", "tracking", "edit"),
        _op("get_metric_history", "GET", "/runs/{run_id}/metrics/{key:path}", "tracking", "read"),
        _op("set_tags", "POST", "/runs/{run_id}/tags", "tracking", "edit"),
        _op("record_artifact", "POST", "/runs/{run_id}/artifacts", "tracking", "edit", 201),
        _op("list_artifacts", "GET", "/runs/{run_id}/artifacts", "tracking", "read"),
        _op("log_inputs", "POST", "/runs/{run_id}/inputs", "tracking", "edit"),
        # datasets
        _op("create_dataset_version", "POST", "/datasets/{name}/versions", "datasets", "edit", 201),
        _op("list_datasets", "GET", "/datasets", "datasets", "read"),
        _op("get_dataset", "GET", "/datasets/{name}", "datasets", "read"),
        _op("list_dataset_versions", "GET", "/datasets/{name}/versions", "datasets", "read"),
        _op(
            "get_dataset_version", "GET", "/datasets/{name}/versions/{version}", "datasets", "read"
        ),
        # registry
        _op("create_registered_model", "POST", "/models", "registry", "edit", 201),
        _op("list_registered_models", "GET", "/models", "registry", "read"),
        _op("get_registered_model", "GET", "/models/{name}", "registry", "read"),
        _op("update_registered_model", "PATCH", "/models/{name}", "registry", "edit"),
        _op("create_model_version", "POST", "/models/{name}/versions", "registry", "edit", 201),
        _op("list_model_versions", "GET", "/models/{name}/versions", "registry", "read"),
        _op("get_model_version", "GET", "/models/{name}/versions/{version}", "registry", "read"),
        _op(
            "update_model_version", "PATCH", "/models/{name}/versions/{version}", "registry", "edit"
        ),
        _op(
            "archive_model_version",
            "POST",
            "/models/{name}/versions/{version}/archive",
            "registry",
            "edit",
        ),
        _op(
            "delete_model_version",
            "DELETE",
            "/models/{name}/versions/{version}",
            "registry",
            "edit",
            204,
        ),
        _op("get_lineage", "GET", "/models/{name}/versions/{version}/lineage", "registry", "read"),
        _op("get_model_card", "GET", "/models/{name}/versions/{version}/card", "registry", "read"),
        _op(
            "get_model_version_by_alias",
            "GET",
            "/models/{name}/aliases/{alias}",
            "registry",
            "read",
        ),
        _op("set_alias", "PUT", "/models/{name}/aliases/{alias}", "registry", "edit"),
        _op("delete_alias", "DELETE", "/models/{name}/aliases/{alias}", "registry", "edit", 204),
        _op("list_alias_changes", "GET", "/models/{name}/alias-history", "registry", "read"),
        # audit
        _op("list_audit_events", "GET", "/audit-events", "audit", "admin"),
        _op("verify_audit_chain", "GET", "/audit-events/verify", "audit", "admin"),
        # security: users, tokens, roles, signals
        _op("whoami", "GET", "/whoami", "security", "authenticated"),
        _op("create_user", "POST", "/users", "security", "admin", 201),
        _op("list_users", "GET", "/users", "security", "admin"),
        _op("get_user", "GET", "/users/{name}", "security", "admin"),
        _op("update_user", "PATCH", "/users/{name}", "security", "admin"),
        _op("create_token", "POST", "/users/{name}/tokens", "security", "admin", 201),
        _op("list_tokens", "GET", "/users/{name}/tokens", "security", "admin"),
        _op("revoke_token", "DELETE", "/users/{name}/tokens/{token_id}", "security", "admin", 204),
        _op(
            "grant_role",
            "PUT",
            "/permissions/{object_type}/{object_id}/{user}",
            "security",
            "admin",
        ),
        _op(
            "revoke_role",
            "DELETE",
            "/permissions/{object_type}/{object_id}/{user}",
            "security",
            "admin",
            204,
        ),
        _op("list_role_grants", "GET", "/permissions", "security", "admin"),
        _op("list_security_signals", "GET", "/security-signals", "security", "admin"),
        # deployments
        _op("create_endpoint", "POST", "/endpoints", "deployments", "edit", 201),
        _op("list_endpoints", "GET", "/endpoints", "deployments", "read"),
        _op("get_endpoint", "GET", "/endpoints/{name}", "deployments", "read"),
        _op("update_endpoint", "PATCH", "/endpoints/{name}", "deployments", "edit"),
        _op("rollback_endpoint", "POST", "/endpoints/{name}/rollback", "deployments", "edit"),
        _op("list_endpoint_revisions", "GET", "/endpoints/{name}/revisions", "deployments", "read"),
        _op("resolve_endpoint", "GET", "/endpoints/{name}/resolved", "deployments", "read"),
        # prediction log and feedback
        _op("log_predictions", "POST", "/predictions", "predictions", "edit", 201),
        _op("list_predictions", "GET", "/endpoints/{endpoint}/predictions", "predictions", "read"),
        _op("log_feedback", "POST", "/endpoints/{endpoint}/feedback", "predictions", "edit"),
        _op(
            "record_prediction_log_file",
            "POST",
            "/endpoints/{endpoint}/prediction-log-files",
            "predictions",
            "edit",
            201,
        ),
        _op(
            "list_prediction_log_files",
            "GET",
            "/endpoints/{endpoint}/prediction-log-files",
            "predictions",
            "read",
        ),
        # monitoring: monitors, checks per window, live checks, operations
        _op("create_monitor", "POST", "/monitors", "monitoring", "edit", 201),
        _op("list_monitors", "GET", "/monitors", "monitoring", "read"),
        _op("get_monitor", "GET", "/monitors/{name}", "monitoring", "read"),
        _op("update_monitor", "PATCH", "/monitors/{name}", "monitoring", "edit"),
        _op("delete_monitor", "DELETE", "/monitors/{name}", "monitoring", "edit", 204),
        _op("get_monitor_reference", "GET", "/monitors/{name}/reference", "monitoring", "read"),
        _op("record_monitor_check", "POST", "/monitors/{name}/checks", "monitoring", "edit", 201),
        _op("list_monitor_checks", "GET", "/monitors/{name}/checks", "monitoring", "read"),
        _op("get_monitor_check", "GET", "/monitors/{name}/checks/{check_id}", "monitoring", "read"),
        _op("run_monitor", "POST", "/monitors/{name}/run", "monitoring", "edit"),
        _op(
            "record_heartbeat",
            "POST",
            "/endpoints/{endpoint}/heartbeats/{instance}",
            "monitoring",
            "edit",
        ),
        _op(
            "stop_serving_instance",
            "DELETE",
            "/endpoints/{endpoint}/heartbeats/{instance}",
            "monitoring",
            "edit",
            204,
        ),
        _op("list_serving_instances", "GET", "/serving-instances", "monitoring", "read"),
        _op("check_heartbeats", "POST", "/serving-instances/check", "monitoring", "edit"),
        _op("list_monitor_events", "GET", "/monitor-events", "monitoring", "read"),
        _op("get_series", "GET", "/series", "monitoring", "read"),
        _op("find_anomalies", "GET", "/anomalies", "monitoring", "read"),
        _op("utilisation_report", "GET", "/utilisation", "monitoring", "read"),
        # pipelines (they execute in the caller's process; the server only records them)
        _op("create_pipeline_run", "POST", "/pipeline-runs", "pipelines", "edit", 201),
        _op("list_pipeline_runs", "GET", "/pipeline-runs", "pipelines", "read"),
        _op("get_pipeline_run", "GET", "/pipeline-runs/{run_id}", "pipelines", "read"),
        _op("finish_pipeline_run", "POST", "/pipeline-runs/{run_id}/end", "pipelines", "edit"),
        _op("cancel_pipeline_run", "POST", "/pipeline-runs/{run_id}/cancel", "pipelines", "edit"),
        _op("record_step_run", "PUT", "/pipeline-runs/{run_id}/steps", "pipelines", "edit"),
        _op("find_cached_step", "GET", "/pipeline-cache/{cache_key}", "pipelines", "read"),
        _op(
            "previous_step_run",
            "GET",
            "/pipelines/{pipeline}/steps/{name}/previous",
            "pipelines",
            "read",
        ),
        _op("list_lineage", "GET", "/pipeline-lineage/{digest}", "pipelines", "read"),
        _op("check_output", "POST", "/pipeline-outputs/{digest}/check", "pipelines", "edit"),
        _op("create_pipeline_trigger", "POST", "/pipeline-triggers", "pipelines", "edit", 201),
        _op("list_pipeline_triggers", "GET", "/pipeline-triggers", "pipelines", "read"),
        _op(
            "delete_pipeline_trigger",
            "DELETE",
            "/pipeline-triggers/{name}",
            "pipelines",
            "edit",
            204,
        ),
        _op(
            "mark_pipeline_trigger", "POST", "/pipeline-triggers/{name}/fired", "pipelines", "edit"
        ),
    ]
}


class _EntityNames(dict[str, Any]):
    """Names of result types, looked up in ``_ENTITY_MODULES`` in order when first used."""

    def __missing__(self, name: str) -> Any:
        for module in _ENTITY_MODULES:
            value = getattr(importlib.import_module(module), name, None)
            if value is not None:
                self[name] = value
                return value
        raise KeyError(name)


# Lightest first: the entities modules import pydantic only; a few entities still live in
# their service's module, which imports the store.
_ENTITY_MODULES = (
    "heron._entities",
    "heron._security._entities",
    "heron._monitoring._entities",
    "heron._pipelines._entities",
    "heron._audit",
    "heron._deployments",
    "heron._predictions",
)
_ENTITY_NAMES = _EntityNames()

# What each operation returns, by the names of ``_ENTITY_MODULES``. The HTTP client reads
# it without importing the services (and with them SQLAlchemy, ~0.2 s of a fresh process);
# tests/test_server.py checks it against the services' signatures.
RESULTS: dict[str, str] = {
    "create_experiment": "Experiment",
    "list_experiments": "Page[Experiment]",
    "get_experiment": "Experiment",
    "create_run": "Run",
    "search_runs": "Page[Run]",
    "get_run": "Run",
    "end_run": "Run",
    "log_params": "None",
    "log_metrics": "None",
    "get_metric_history": "list[MetricPoint]",
    "set_tags": "None",
    "record_artifact": "ArtifactEntry",
    "list_artifacts": "list[ArtifactEntry]",
    "log_inputs": "None",
    "create_dataset_version": "DatasetVersion",
    "list_datasets": "Page[Dataset]",
    "get_dataset": "Dataset",
    "list_dataset_versions": "list[DatasetVersion]",
    "get_dataset_version": "DatasetVersion",
    "create_registered_model": "RegisteredModel",
    "list_registered_models": "Page[RegisteredModel]",
    "get_registered_model": "RegisteredModel",
    "update_registered_model": "RegisteredModel",
    "create_model_version": "ModelVersion",
    "list_model_versions": "Page[ModelVersion]",
    "get_model_version": "ModelVersion",
    "update_model_version": "ModelVersion",
    "archive_model_version": "ModelVersion",
    "delete_model_version": "None",
    "get_lineage": "Lineage",
    "get_model_card": "str",
    "get_model_version_by_alias": "ModelVersion",
    "set_alias": "ModelVersion",
    "delete_alias": "None",
    "list_alias_changes": "list[AliasChange]",
    "list_audit_events": "Page[AuditEvent]",
    "verify_audit_chain": "AuditVerification",
    "whoami": "WhoAmI",
    "create_user": "User",
    "list_users": "list[User]",
    "get_user": "User",
    "update_user": "User",
    "create_token": "NewToken",
    "list_tokens": "list[ApiToken]",
    "revoke_token": "None",
    "grant_role": "RoleGrant",
    "revoke_role": "None",
    "list_role_grants": "list[RoleGrant]",
    "list_security_signals": "list[SecuritySignal]",
    "create_endpoint": "Endpoint",
    "list_endpoints": "Page[Endpoint]",
    "get_endpoint": "Endpoint",
    "update_endpoint": "Endpoint",
    "rollback_endpoint": "Endpoint",
    "list_endpoint_revisions": "list[EndpointRevision]",
    "resolve_endpoint": "ResolvedEndpoint",
    "log_predictions": "int",
    "list_predictions": "Page[PredictionRecord]",
    "log_feedback": "FeedbackResult",
    "record_prediction_log_file": "PredictionLogFile",
    "list_prediction_log_files": "Page[PredictionLogFile]",
    "create_monitor": "Monitor",
    "list_monitors": "Page[Monitor]",
    "get_monitor": "Monitor",
    "update_monitor": "Monitor",
    "delete_monitor": "None",
    "get_monitor_reference": "MonitorReference",
    "record_monitor_check": "CheckOutcome",
    "list_monitor_checks": "Page[MonitorCheck]",
    "get_monitor_check": "MonitorCheck",
    "run_monitor": "list[MonitorCheck]",
    "record_heartbeat": "ServingInstance",
    "stop_serving_instance": "None",
    "list_serving_instances": "list[ServingInstance]",
    "check_heartbeats": "list[MonitorEvent]",
    "list_monitor_events": "list[MonitorEvent]",
    "get_series": "list[Series]",
    "find_anomalies": "list[Anomaly]",
    "utilisation_report": "UtilisationReport",
    "create_pipeline_run": "PipelineRun",
    "list_pipeline_runs": "Page[PipelineRun]",
    "get_pipeline_run": "PipelineRun",
    "finish_pipeline_run": "PipelineRun",
    "cancel_pipeline_run": "PipelineRun",
    "record_step_run": "None",
    "find_cached_step": "StepRun | None",
    "previous_step_run": "StepRun | None",
    "list_lineage": "list[LineageEdge]",
    "check_output": "str | None",
    "create_pipeline_trigger": "PipelineTrigger",
    "list_pipeline_triggers": "list[PipelineTrigger]",
    "delete_pipeline_trigger": "None",
    "mark_pipeline_trigger": "PipelineTrigger",
}
