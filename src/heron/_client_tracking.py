"""``heron.Client`` methods for experiments, runs, their artifacts, and datasets."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron._client_base import ClientBase
from heron._entities import (
    ArtifactEntry,
    Dataset,
    DatasetRef,
    DatasetVersion,
    Experiment,
    MetricBatch,
    MetricPoint,
    Page,
    Run,
    RunStatus,
)
from heron._errors import NotFound
from heron._names import check_relative_path

if TYPE_CHECKING:
    import pandas as pd

    from heron._client import Client
    from heron._run import ActiveRun


class TrackingMethods(ClientBase):
    """Experiments, runs, artifacts and datasets; ``Client`` inherits these."""

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
        self: Client,
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

    def log_metrics(self, run_id: str, metrics: list[MetricPoint] | MetricBatch) -> None:
        """Log many points at once, as ``MetricPoint``s or as the columns of a
        ``MetricBatch`` (the faster form for large batches)."""
        from heron._names import check_metric, check_metric_batch

        # JSON cannot carry NaN: refuse it here, on both transports.
        if isinstance(metrics, MetricBatch):
            check_metric_batch(metrics)
        else:
            for point in metrics:
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
