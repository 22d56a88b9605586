"""``heron.Client`` methods for monitoring: monitors and their checks, serving instances,
events, series, anomalies and utilisation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron._client_base import ClientBase
from heron._entities import Page

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

    from heron._client import Client
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


class MonitoringMethods(ClientBase):
    """Monitors, serving instances, events, series and utilisation; ``Client`` inherits these."""

    # --- monitoring --------------------------------------------------------------------

    def create_monitor(
        self: Client,
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

    def check_monitor(self: Client, name: str, data: pd.DataFrame | str | Path) -> CheckOutcome:
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

    def write_monitor_report(self: Client, name: str, out: str | Path) -> Path:
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
