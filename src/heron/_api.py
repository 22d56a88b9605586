"""The operation table: each service method exposed over HTTP, in one place.

The REST server builds a route from every entry and the HTTP client builds its request
from the same entry, so a service method, its route and its client call cannot drift apart.
Path, query and body parameters, and the response type, come from the method's signature.
"""

from __future__ import annotations

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

    @property
    def returns(self) -> Any:
        return self.hints.get("return")

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
