"""``heron.Client``: one client, two transports (embedded stores or a Heron server).

Every method is written once over ``Transport``; the embedded and HTTP transports return
the same entities and raise the same errors.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron._entities import (
    AliasChange,
    ArtifactEntry,
    AuditEvent,
    Dataset,
    DatasetRef,
    DatasetVersion,
    Experiment,
    Lineage,
    MetricPoint,
    ModelCardFields,
    ModelVersion,
    Page,
    RegisteredModel,
    Run,
    RunStatus,
)
from heron._errors import InvalidInput, NotFound
from heron._names import check_relative_path
from heron._settings import Settings
from heron._transport import EmbeddedTransport, HttpTransport, Transport

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

    from heron._audit import AuditVerification
    from heron._deployments import (
        Endpoint,
        EndpointRevision,
        ResolvedEndpoint,
        StickyKey,
        Target,
    )
    from heron._models import LoadedModel
    from heron._monitoring._entities import (
        Anomaly,
        CheckOutcome,
        Monitor,
        MonitorCheck,
        MonitorEvent,
        MonitorReference,
        Series,
        ServerStats,
        ServingInstance,
        UtilisationReport,
    )
    from heron._pipelines._entities import PipelineRun
    from heron._predictions import FeedbackItem, FeedbackResult, PredictionRecord
    from heron._run import ActiveRun
    from heron._security._entities import (
        ApiToken,
        NewToken,
        Role,
        RoleGrant,
        SecuritySignal,
        User,
        WhoAmI,
    )

_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/@]+))$")


class Client:
    """Heron's Python client. ``Client()`` uses the embedded store (``./.heron``) unless
    ``url=`` or ``HERON_URL`` names a server."""

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.url = url or self.settings.url
        self._transport: Transport | None = transport

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            if self.url:
                self._transport = HttpTransport(self.url, token=self.settings.token)
            else:
                from heron._services import Services

                self._transport = EmbeddedTransport(Services(self.settings))
        return self._transport

    def _call(self, op: str, **kwargs: Any) -> Any:
        return self.transport.call(op, **kwargs)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- experiments and runs ----------------------------------------------------------

    def create_experiment(
        self, name: str, description: str = "", tags: dict[str, str] | None = None
    ) -> Experiment:
        return self._call("create_experiment", name=name, description=description, tags=tags)

    def get_experiment(self, name: str) -> Experiment:
        return self._call("get_experiment", name=name)

    def list_experiments(
        self, max_results: int = 100, page_token: str | None = None
    ) -> Page[Experiment]:
        return self._call("list_experiments", max_results=max_results, page_token=page_token)

    def start_run(
        self,
        experiment: str = "default",
        name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> ActiveRun:
        """Start a run; use it as a context manager so it ends (failed if the block raises)."""
        from heron._run import ActiveRun, caller_context

        run = self._call(
            "create_run", experiment=experiment, name=name, context=caller_context(), tags=tags
        )
        return ActiveRun(self, run)

    def get_run(self, run_id: str) -> Run:
        return self._call("get_run", run_id=run_id)

    def end_run(self, run_id: str, status: RunStatus = RunStatus.FINISHED) -> Run:
        return self._call("end_run", run_id=run_id, status=status)

    def search_runs(
        self,
        filter: str = "",
        experiments: list[str] | None = None,
        order_by: list[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[Run]:
        return self._call(
            "search_runs",
            experiments=experiments,
            filter=filter,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
        )

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        self._call("log_params", run_id=run_id, params={k: str(v) for k, v in params.items()})

    def log_metrics(self, run_id: str, metrics: list[MetricPoint]) -> None:
        from heron._names import check_metric

        for point in metrics:  # JSON cannot carry NaN: refuse it here, on both transports
            check_metric(point)
        self._call("log_metrics", run_id=run_id, metrics=metrics)

    def get_metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        return self._call("get_metric_history", run_id=run_id, key=key)

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        self._call("set_tags", run_id=run_id, tags={k: str(v) for k, v in tags.items()})

    # --- artifacts ---------------------------------------------------------------------

    def log_artifact(
        self, run_id: str, local_path: str | Path, path: str | None = None
    ) -> ArtifactEntry:
        """Store a file or folder and attach it to the run as ``path`` (default: its name)."""
        local = Path(local_path)
        target = check_relative_path(path or local.name)
        if local.is_dir():
            digest, size = self._put_folder(local), 0
        elif local.is_file():
            digest, size = self.transport.put_blob(local), local.stat().st_size
        else:
            raise NotFound(f"no file or folder at {local}", field="local_path")
        return self._call(
            "record_artifact",
            run_id=run_id,
            path=target,
            digest=digest,
            size=size,
            is_folder=local.is_dir(),
        )

    def list_artifacts(self, run_id: str) -> list[ArtifactEntry]:
        return self._call("list_artifacts", run_id=run_id)

    def download_artifact(self, run_id: str, path: str, dest: str | Path) -> Path:
        """Fetch a run's artifact into ``dest`` (a folder), verifying every digest."""
        entry = next((a for a in self.list_artifacts(run_id) if a.path == path), None)
        if entry is None:
            raise NotFound(f"run {run_id} has no artifact {path!r}", field="path")
        target = Path(dest) / Path(entry.path).name
        if entry.is_folder:
            return self._get_folder(entry.digest, target)
        return self.transport.fetch_blob(entry.digest, target)

    def _put_folder(self, folder: Path) -> str:
        """Upload a folder's files (skipping content the store has) and its manifest."""
        from heron._artifacts import ArtifactStore

        if isinstance(self.transport, EmbeddedTransport):
            return self.transport.services.artifacts.put_folder(folder).digest
        with tempfile.TemporaryDirectory(prefix="heron-manifest-") as scratch:
            # A throwaway local store computes the manifest exactly as the server's would.
            local = ArtifactStore(scratch)
            manifest_digest = local.put_folder(folder).digest
            for entry in local.read_manifest(manifest_digest).files:
                if not self.transport.has_blob(entry.digest):
                    self.transport.put_blob(folder / entry.path)
            manifest_path = Path(scratch) / "manifest.json"
            local.copy_to(manifest_digest, manifest_path)
            return self.transport.put_blob(manifest_path)

    def _get_folder(self, digest: str, dest: Path) -> Path:
        if isinstance(self.transport, EmbeddedTransport):
            return self.transport.services.artifacts.get_folder(digest, dest, verify=True)
        from heron._artifacts import ArtifactStore

        with tempfile.TemporaryDirectory(prefix="heron-fetch-") as scratch:
            local = ArtifactStore(scratch)
            manifest_file = self.transport.fetch_blob(digest, Path(scratch) / "manifest")
            local.put_file(manifest_file)
            for entry in local.read_manifest(digest).files:
                blob = self.transport.fetch_blob(entry.digest, Path(scratch) / "in" / entry.digest)
                local.put_file(blob)
            return local.get_folder(digest, dest, verify=True)

    # --- datasets ----------------------------------------------------------------------

    def log_dataset(
        self, data: pd.DataFrame | str | Path, name: str, run_id: str | None = None
    ) -> DatasetVersion:
        """Register a dataset version (same content → same version); record it on the run."""
        from heron._dataset_io import describe_dataset

        with tempfile.TemporaryDirectory(prefix="heron-dataset-") as scratch:
            described = describe_dataset(data, Path(scratch))
            data_digest = self.transport.put_blob(described.data_file)
            version = self._call(
                "create_dataset_version",
                name=name,
                digest=described.digest,
                columns=described.columns,
                row_count=described.row_count,
                profile=described.profile,
                data_digest=data_digest,
                format=described.format,
                source=described.source,
            )
        if run_id is not None:
            ref = DatasetRef(name=name, version=version.version, digest=version.digest)
            self._call("log_inputs", run_id=run_id, datasets=[ref])
        return version

    def get_dataset(self, name: str) -> Dataset:
        return self._call("get_dataset", name=name)

    def list_datasets(self, max_results: int = 100, page_token: str | None = None) -> Page[Dataset]:
        return self._call("list_datasets", max_results=max_results, page_token=page_token)

    def get_dataset_version(self, name: str, version: int | None = None) -> DatasetVersion:
        if version is None:
            latest = self.get_dataset(name).latest_version
            if latest is None:
                raise NotFound(f"dataset {name!r} has no versions", field="name")
            version = latest
        return self._call("get_dataset_version", name=name, version=version)

    def list_dataset_versions(self, name: str) -> list[DatasetVersion]:
        return self._call("list_dataset_versions", name=name)

    def load_dataset(self, name: str, version: int | None = None) -> pd.DataFrame:
        """The data of a dataset version as a DataFrame (digest-checked)."""
        import pandas as pd

        dv = self.get_dataset_version(name, version)
        if dv.data_digest is None:
            raise NotFound(f"dataset {name!r} version {dv.version} has no stored data")
        with tempfile.TemporaryDirectory(prefix="heron-dataset-") as scratch:
            path = self.transport.fetch_blob(dv.data_digest, Path(scratch) / "data")
            return pd.read_parquet(path) if dv.format == "parquet" else pd.read_csv(path)

    # --- registry ----------------------------------------------------------------------

    def log_model(
        self,
        model: Any,
        name: str,
        *,
        run_id: str | None = None,
        input_example: Any = None,
        signature: Any = None,
        flavor: str | None = None,
        card: ModelCardFields | None = None,
        pipeline_run_id: str | None = None,
        **save_options: Any,
    ) -> ModelVersion:
        """Save ``model`` in Heron's model format and register it as a new version."""
        from heron._models import save_model

        with tempfile.TemporaryDirectory(prefix="heron-model-") as scratch:
            folder = Path(scratch) / "model"
            manifest = save_model(
                model,
                folder,
                flavor=flavor,
                input_example=input_example,
                signature=signature,
                **save_options,
            )
            return self.register_model(
                folder,
                name,
                run_id=run_id,
                card=card,
                pipeline_run_id=pipeline_run_id,
                _manifest=manifest,
            )

    def register_model(
        self,
        path: str | Path,
        name: str,
        *,
        run_id: str | None = None,
        card: ModelCardFields | None = None,
        pipeline_run_id: str | None = None,
        _manifest: Any = None,
    ) -> ModelVersion:
        """Register a model folder already in Heron's format (``heron-model.yaml``)."""
        from heron._models import read_manifest

        folder = Path(path)
        manifest = _manifest or read_manifest(folder)
        source = self._put_folder(folder)
        signature = manifest.signature.model_dump(mode="json") if manifest.signature else None
        return self._call(
            "create_model_version",
            name=name,
            source=source,
            flavor=manifest.flavor,
            signature=signature,
            run_id=run_id,
            card=card,
            pipeline_run_id=pipeline_run_id,
        )

    def create_registered_model(
        self, name: str, description: str = "", tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        return self._call("create_registered_model", name=name, description=description, tags=tags)

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self._call("get_registered_model", name=name)

    def list_registered_models(
        self, max_results: int = 100, page_token: str | None = None
    ) -> Page[RegisteredModel]:
        return self._call("list_registered_models", max_results=max_results, page_token=page_token)

    def update_registered_model(
        self, name: str, description: str | None = None, tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        return self._call("update_registered_model", name=name, description=description, tags=tags)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return self._call("get_model_version", name=name, version=version)

    def list_model_versions(
        self, name: str, max_results: int = 100, page_token: str | None = None
    ) -> Page[ModelVersion]:
        return self._call(
            "list_model_versions", name=name, max_results=max_results, page_token=page_token
        )

    def update_model_version(
        self,
        name: str,
        version: int,
        tags: dict[str, str] | None = None,
        card: ModelCardFields | None = None,
    ) -> ModelVersion:
        return self._call("update_model_version", name=name, version=version, tags=tags, card=card)

    def archive_model_version(self, name: str, version: int) -> ModelVersion:
        return self._call("archive_model_version", name=name, version=version)

    def delete_model_version(self, name: str, version: int) -> None:
        self._call("delete_model_version", name=name, version=version)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        return self._call("set_alias", name=name, alias=alias, version=int(version))

    def delete_alias(self, name: str, alias: str) -> None:
        self._call("delete_alias", name=name, alias=alias)

    def list_alias_changes(self, name: str, alias: str | None = None) -> list[AliasChange]:
        return self._call("list_alias_changes", name=name, alias=alias)

    def get_lineage(self, name: str, version: int) -> Lineage:
        return self._call("get_lineage", name=name, version=version)

    def get_model_card(self, name: str, version: int) -> str:
        return self._call("get_model_card", name=name, version=version)

    def resolve_model(self, uri: str) -> ModelVersion:
        """``models:/name/3`` or ``models:/name@champion`` → the model version."""
        match = _MODEL_URI.match(uri)
        if match is None:
            raise InvalidInput(
                f"{uri!r} is not a model URI (models:/NAME/VERSION or models:/NAME@ALIAS)",
                field="uri",
            )
        if match["alias"]:
            return self._call(
                "get_model_version_by_alias", name=match["name"], alias=match["alias"]
            )
        return self.get_model_version(match["name"], int(match["version"]))

    def load_model(self, uri: str) -> LoadedModel:
        """Load a registered model; its files are verified against their digests first."""
        from heron._models import load_model

        mv = self.resolve_model(uri)
        return load_model(
            self.model_folder(mv), verify=True, allow_pickle=self.settings.allow_pickle
        )

    def model_folder(self, mv: ModelVersion) -> Path:
        """A local copy of a version's folder, fetched once into the cache and reused.

        A cached copy is checked against the artifact store's manifest every time (not
        only against its own ``heron-model.yaml``, which an edit could change too)."""
        cache = (self.settings.home / "cache" / "models" / mv.source).resolve()
        if cache.exists():
            from heron._security._integrity import verify_cached_folder

            verify_cached_folder(self, cache, mv.source)
        else:
            cache.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=cache.parent))
            try:
                fetched = self._get_folder(mv.source, staging / "model")
                # Another process may have cached it first: then theirs is used.
                with contextlib.suppress(OSError):
                    fetched.rename(cache)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return cache

    # --- endpoints and predictions -----------------------------------------------------

    def create_endpoint(
        self,
        name: str,
        targets: list[Target | str],
        shadow: list[Target | str] | None = None,
        sticky: StickyKey | str | None = None,
        description: str = "",
        comment: str = "",
    ) -> Endpoint:
        """An endpoint serving ``targets``: ``["cancer-clf@champion"]``, or weighted
        ``["cancer-clf@champion:90", "cancer-clf@challenger:10"]``."""
        return self._call(
            "create_endpoint",
            name=name,
            targets=targets,
            shadow=shadow,
            sticky=sticky,
            description=description,
            comment=comment,
        )

    def get_endpoint(self, name: str) -> Endpoint:
        return self._call("get_endpoint", name=name)

    def list_endpoints(
        self, max_results: int = 100, page_token: str | None = None
    ) -> Page[Endpoint]:
        return self._call("list_endpoints", max_results=max_results, page_token=page_token)

    def update_endpoint(
        self,
        name: str,
        targets: list[Target | str] | None = None,
        shadow: list[Target | str] | None = None,
        sticky: StickyKey | str | None = None,
        clear_sticky: bool = False,
        description: str | None = None,
        comment: str = "",
    ) -> Endpoint:
        return self._call(
            "update_endpoint",
            name=name,
            targets=targets,
            shadow=shadow,
            sticky=sticky,
            clear_sticky=clear_sticky,
            description=description,
            comment=comment,
        )

    def rollback_endpoint(self, name: str, to_revision: int | None = None) -> Endpoint:
        return self._call("rollback_endpoint", name=name, to_revision=to_revision)

    def list_endpoint_revisions(self, name: str) -> list[EndpointRevision]:
        return self._call("list_endpoint_revisions", name=name)

    def resolve_endpoint(self, name: str) -> ResolvedEndpoint:
        return self._call("resolve_endpoint", name=name)

    def list_predictions(
        self,
        endpoint: str,
        start: datetime | None = None,
        end: datetime | None = None,
        include_shadow: bool = True,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[PredictionRecord]:
        return self._call(
            "list_predictions",
            endpoint=endpoint,
            start=start,
            end=end,
            include_shadow=include_shadow,
            max_results=max_results,
            page_token=page_token,
        )

    def log_feedback(
        self, endpoint: str, feedback: list[FeedbackItem | dict[str, Any]]
    ) -> FeedbackResult:
        """Ground truth for earlier requests: ``[{"request_id": ..., "label": ...}]``."""
        return self._call("log_feedback", endpoint=endpoint, feedback=feedback)

    # --- monitoring --------------------------------------------------------------------

    def create_monitor(
        self,
        name: str,
        reference: str,
        *,
        model: str | None = None,
        endpoint: str | None = None,
        window: str | int = "day",
        time_column: str | None = None,
        label_column: str | None = None,
        task: str | None = None,
        drift: Any = None,
        quality: Any = None,
        multivariate: bool = False,
        description: str = "",
    ) -> Monitor:
        """Monitor ``model`` (``cancer-clf@champion``) or ``endpoint`` against a dataset version
        (``breast-cancer`` or ``breast-cancer/2``), by ``window`` ("hour", "day" or a row
        count). The model's outputs on the reference are computed here, as its baseline."""
        from heron._monitoring._client import create_monitor

        return create_monitor(
            self, name, reference, model=model, endpoint=endpoint, window=window,
            time_column=time_column, label_column=label_column, task=task, drift=drift,
            quality=quality, multivariate=multivariate, description=description,
        )  # fmt: skip

    def get_monitor(self, name: str) -> Monitor:
        return self._call("get_monitor", name=name)

    def list_monitors(self, max_results: int = 100, page_token: str | None = None) -> Page[Monitor]:
        return self._call("list_monitors", max_results=max_results, page_token=page_token)

    def update_monitor(
        self,
        name: str,
        description: str | None = None,
        drift: Any = None,
        quality: Any = None,
        window: str | int | None = None,
        multivariate: bool | None = None,
        reference_check: int | None = None,
    ) -> Monitor:
        return self._call(
            "update_monitor", name=name, description=description, drift=drift, quality=quality,
            window=window, multivariate=multivariate, reference_check=reference_check,
        )  # fmt: skip

    def delete_monitor(self, name: str) -> None:
        self._call("delete_monitor", name=name)

    def get_monitor_reference(self, name: str) -> MonitorReference:
        return self._call("get_monitor_reference", name=name)

    def check_monitor(self, name: str, data: pd.DataFrame | str | Path) -> CheckOutcome:
        """Batch monitoring: profile ``data`` (a DataFrame, .parquet or .csv) here, per window,
        and store drift, data quality and performance against the monitor's reference."""
        from heron._monitoring._client import check_monitor

        return check_monitor(self, name, data)

    def list_monitor_checks(
        self,
        name: str,
        start: datetime | None = None,
        end: datetime | None = None,
        model: str | None = None,
        version: int | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[MonitorCheck]:
        return self._call(
            "list_monitor_checks", name=name, start=start, end=end, model=model, version=version,
            max_results=max_results, page_token=page_token,
        )  # fmt: skip

    def get_monitor_check(self, name: str, check_id: int) -> MonitorCheck:
        return self._call("get_monitor_check", name=name, check_id=check_id)

    def run_monitor(self, name: str, until: datetime | None = None) -> list[MonitorCheck]:
        """Check the windows of live traffic (the prediction log) closed since the last run."""
        return self._call("run_monitor", name=name, until=until)

    def write_monitor_report(self, name: str, out: str | Path) -> Path:
        """A self-contained HTML report (and the same as JSON beside it)."""
        from heron._monitoring._client import write_report

        return write_report(self, name, out)

    def record_heartbeat(
        self,
        endpoint: str,
        instance: str,
        stats: ServerStats | dict[str, Any] | None = None,
        interval: float = 10.0,
        host: str = "",
        pid: int | None = None,
    ) -> ServingInstance:
        return self._call(
            "record_heartbeat", endpoint=endpoint, instance=instance, stats=stats,
            interval=interval, host=host, pid=pid,
        )  # fmt: skip

    def stop_serving_instance(self, endpoint: str, instance: str) -> None:
        self._call("stop_serving_instance", endpoint=endpoint, instance=instance)

    def list_serving_instances(self, endpoint: str | None = None) -> list[ServingInstance]:
        return self._call("list_serving_instances", endpoint=endpoint)

    def check_heartbeats(self) -> list[MonitorEvent]:
        return self._call("check_heartbeats")

    def list_monitor_events(
        self,
        kind: str | None = None,
        subject: str | None = None,
        since: datetime | None = None,
        max_results: int = 100,
    ) -> list[MonitorEvent]:
        return self._call(
            "list_monitor_events", kind=kind, subject=subject, since=since,
            max_results=max_results,
        )  # fmt: skip

    def get_series(
        self,
        subject: str,
        metric: str,
        start: datetime | None = None,
        end: datetime | None = None,
        key: str | None = None,
    ) -> list[Series]:
        return self._call(
            "get_series", subject=subject, metric=metric, start=start, end=end, key=key
        )

    def find_anomalies(
        self,
        subject: str,
        metric: str,
        start: datetime | None = None,
        end: datetime | None = None,
        key: str | None = None,
        threshold: float = 3.5,
        baseline: int = 24,
    ) -> list[Anomaly]:
        return self._call(
            "find_anomalies", subject=subject, metric=metric, start=start, end=end, key=key,
            threshold=threshold, baseline=baseline,
        )  # fmt: skip

    def utilisation_report(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        min_requests_per_hour: float = 1.0,
        latency_limit_ms: float = 250.0,
        cpu_limit_percent: float = 85.0,
        queue_limit: float = 0.8,
    ) -> UtilisationReport:
        return self._call(
            "utilisation_report", start=start, end=end,
            min_requests_per_hour=min_requests_per_hour, latency_limit_ms=latency_limit_ms,
            cpu_limit_percent=cpu_limit_percent, queue_limit=queue_limit,
        )  # fmt: skip

    # --- audit -------------------------------------------------------------------------

    def list_audit_events(
        self,
        object_type: str | None = None,
        object_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        *,
        model: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Page[AuditEvent]:
        """Audit events, oldest first; ``model`` selects a registered model's events (the
        model, its versions and aliases)."""
        return self._call(
            "list_audit_events",
            object_type=object_type,
            object_id=object_id,
            actor=actor,
            action=action,
            max_results=max_results,
            page_token=page_token,
            model=model,
            since=since,
            until=until,
        )

    def verify_audit_chain(self) -> AuditVerification:
        """Check the audit trail's hash chain (admin); ``ok`` is False at the first bad event."""
        return self._call("verify_audit_chain")

    # --- security: users, tokens, roles (admin, except your own tokens) ---------------

    def whoami(self) -> WhoAmI:
        return self._call("whoami")

    def create_user(self, name: str, role: Role | str = "viewer") -> User:
        return self._call("create_user", name=name, role=role)

    def list_users(self) -> list[User]:
        return self._call("list_users")

    def get_user(self, name: str) -> User:
        return self._call("get_user", name=name)

    def update_user(
        self, name: str, role: Role | str | None = None, disabled: bool | None = None
    ) -> User:
        return self._call("update_user", name=name, role=role, disabled=disabled)

    def create_token(
        self, user: str, token_name: str = "default", expires_in_days: int | None = None
    ) -> NewToken:
        """A new API token for ``user``; ``.token`` is shown this once and never again."""
        return self._call(
            "create_token", name=user, token_name=token_name, expires_in_days=expires_in_days
        )

    def list_tokens(self, user: str) -> list[ApiToken]:
        return self._call("list_tokens", name=user)

    def revoke_token(self, user: str, token_id: int) -> None:
        self._call("revoke_token", name=user, token_id=token_id)

    def grant_role(
        self, user: str, object_type: str, object_id: str, role: Role | str
    ) -> RoleGrant:
        return self._call(
            "grant_role", object_type=object_type, object_id=object_id, user=user, role=role
        )

    def revoke_role(self, user: str, object_type: str, object_id: str) -> None:
        self._call("revoke_role", object_type=object_type, object_id=object_id, user=user)

    def list_role_grants(
        self, user: str | None = None, object_type: str | None = None, object_id: str | None = None
    ) -> list[RoleGrant]:
        return self._call(
            "list_role_grants", user=user, object_type=object_type, object_id=object_id
        )

    def list_security_signals(
        self, kind: str | None = None, subject: str | None = None, since: datetime | None = None
    ) -> list[SecuritySignal]:
        return self._call("list_security_signals", kind=kind, subject=subject, since=since)

    # --- pipelines (run them with heron.run_pipeline; these read and steer runs) --------

    def get_pipeline_run(self, run_id: str) -> PipelineRun:
        return self._call("get_pipeline_run", run_id=run_id)

    def list_pipeline_runs(
        self,
        pipeline: str | None = None,
        status: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[PipelineRun]:
        return self._call(
            "list_pipeline_runs",
            pipeline=pipeline,
            status=status,
            max_results=max_results,
            page_token=page_token,
        )

    def cancel_pipeline_run(self, run_id: str) -> PipelineRun:
        return self._call("cancel_pipeline_run", run_id=run_id)

    def get_step_log(self, run_id: str, step: str) -> str:
        """The captured stdout/stderr of one step of a pipeline run."""
        from heron._pipelines._runner import read_step_log

        return read_step_log(self, run_id, step)
