"""Monitoring: monitors over windows of batch data or live traffic, their stored checks
(drift, data quality, performance realized and estimated), operations (heartbeats, resource
and traffic series, anomalies, utilisation) and reports. The computation lives in
``heron._profiles``, ``heron._drift``, ``heron._quality`` and ``heron._multivariate``;
this package stores, schedules and presents it."""

from heron._monitoring._entities import (
    Anomaly,
    CheckOutcome,
    Monitor,
    MonitorCheck,
    MonitorEvent,
    MonitorReference,
    Performance,
    Series,
    ServerStats,
    ServingInstance,
    UtilisationReport,
    WindowSpec,
    WindowSummary,
)

__all__ = [
    "Anomaly",
    "CheckOutcome",
    "Monitor",
    "MonitorCheck",
    "MonitorEvent",
    "MonitorReference",
    "Performance",
    "Series",
    "ServerStats",
    "ServingInstance",
    "UtilisationReport",
    "WindowSpec",
    "WindowSummary",
]
