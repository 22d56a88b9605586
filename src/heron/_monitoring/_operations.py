"""Operations monitoring: heartbeats and down events, resource and traffic series, anomalies
on any monitored series, security signals as series, and the utilisation report.

Series are named by a subject and a metric, each split by a key:

| subject            | metrics                                                   | key            |
|--------------------|-----------------------------------------------------------|----------------|
| ``monitor:NAME``   | drift_share, rows, drifted_columns, drift (per column     | column, or     |
|                    | statistic / threshold), performance.M, estimated.M,       | MODEL/VERSION  |
|                    | prediction_drift                                          |                |
| ``endpoint:NAME``  | cpu_percent, memory_mb, gpu_percent, requests,            | instance       |
|                    | request_rate, error_rate, latency_p50_ms, latency_p95_ms, |                |
|                    | queue; predictions (logged requests per hour)             | MODEL/VERSION  |
| ``security:KIND``  | count, per minute window, from the security signals       | token/address  |
|                    | (auth_failure, revoked_token, ...); ``security:denied``   |                |
|                    | counts refused requests per hour by token and address     |                |
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from heron._errors import InvalidInput, NotFound
from heron._monitoring import _anomaly
from heron._monitoring._entities import (
    Anomaly,
    ModelUsage,
    MonitorEvent,
    Series,
    SeriesPoint,
    ServerStats,
    ServingInstance,
    UtilisationReport,
)
from heron._names import check_name
from heron._services import Service, check_limit
from heron._store import _tables as t
from heron._store._sql import upsert

DOWN_AFTER_BEATS = 3.0  # missed heartbeats before a server counts as down
HOUR_MS = 3_600_000
ENDPOINT_METRICS = (
    "cpu_percent", "memory_mb", "gpu_percent", "requests", "request_rate", "error_rate",
    "latency_p50_ms", "latency_p95_ms", "queue",
)  # fmt: skip
DENIED_ACTIONS = ("auth_failed", "denied")


class OperationsMixin(Service):
    # --- heartbeats -----------------------------------------------------------------------

    def record_heartbeat(
        self,
        endpoint: str,
        instance: str,
        stats: ServerStats | None = None,
        interval: float = 10.0,
        host: str = "",
        pid: int | None = None,
    ) -> ServingInstance:
        """A prediction server is alive: its resource use and traffic since the last beat.
        A server that was down is up again (an ``up`` event)."""
        check_name(endpoint, field="endpoint")
        if not instance or len(instance) > 100:
            raise InvalidInput("instance must be 1 to 100 characters", field="instance")
        if not 0.1 <= interval <= 3600:
            raise InvalidInput("interval must be between 0.1 and 3600 seconds", field="interval")
        stats = _stats(stats)
        stamp = t.now()
        si = t.serving_instances
        with self.store.write() as conn:
            before = (
                conn.execute(
                    select(si.c.status, si.c.started_at).where(
                        si.c.endpoint == endpoint, si.c.instance == instance
                    )
                )
                .mappings()
                .first()
            )
            data = stats.model_dump(mode="json")
            upsert(
                conn,
                si,
                [
                    {
                        "endpoint": endpoint, "instance": instance, "host": host[:200],
                        "pid": pid, "status": "up",
                        "started_at": before["started_at"] if before else stamp,
                        "last_seen": stamp, "interval": interval, "stats": data,
                    }
                ],
                ["endpoint", "instance"],
                ["host", "pid", "status", "last_seen", "interval", "stats"],
            )  # fmt: skip
            conn.execute(
                insert(t.serving_samples).values(
                    endpoint=endpoint, instance=instance, time=stamp, stats=data
                )
            )
            if before is not None and before["status"] == "down":
                self._event(conn, "up", f"{endpoint}/{instance}", {"host": host})
        return ServingInstance(
            endpoint=endpoint, instance=instance, host=host, pid=pid, status="up",
            started_at=before["started_at"] if before else stamp, last_seen=stamp,
            interval=interval, stats=stats,
        )  # fmt: skip

    def stop_serving_instance(self, endpoint: str, instance: str) -> None:
        """A server shutting down on purpose says so: no down event follows."""
        si = t.serving_instances
        with self.store.write() as conn:
            conn.execute(si.delete().where(si.c.endpoint == endpoint, si.c.instance == instance))

    def list_serving_instances(self, endpoint: str | None = None) -> list[ServingInstance]:
        """Known prediction servers; one whose heartbeats stopped shows as down even before
        ``check_heartbeats`` records the event."""
        si = t.serving_instances
        query = select(si).order_by(si.c.endpoint, si.c.instance)
        if endpoint is not None:
            query = query.where(si.c.endpoint == endpoint)
        now = t.now()
        with self.store.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [_instance(r, "down" if _overdue(r, now) else r["status"]) for r in rows]

    def check_heartbeats(self) -> list[MonitorEvent]:
        """Mark servers that missed their heartbeats as down: one ``down`` event each,
        audited. Returns the new events (call it periodically, e.g. from a scheduler)."""
        si = t.serving_instances
        now = t.now()
        events = []
        with self.store.write() as conn:
            rows = conn.execute(select(si).where(si.c.status == "up")).mappings().all()
            for r in rows:
                if not _overdue(r, now):
                    continue
                conn.execute(
                    update(si)
                    .where(si.c.endpoint == r["endpoint"], si.c.instance == r["instance"])
                    .values(status="down")
                )
                details = {
                    "last_seen": r["last_seen"].isoformat(),
                    "silent_seconds": round((now - r["last_seen"]).total_seconds(), 3),
                    "interval": r["interval"],
                    "host": r["host"],
                }
                subject = f"{r['endpoint']}/{r['instance']}"
                events.append(self._event(conn, "down", subject, details))
                self.record(conn, "serving_down", "endpoint", r["endpoint"], after=details)
        return events

    def list_monitor_events(
        self,
        kind: str | None = None,
        subject: str | None = None,
        since: datetime | None = None,
        max_results: int = 100,
    ) -> list[MonitorEvent]:
        """Operational events (down, up), newest first."""
        e = t.monitor_events
        query = select(e).order_by(e.c.time.desc(), e.c.id.desc()).limit(check_limit(max_results))
        if kind is not None:
            query = query.where(e.c.kind == kind)
        if subject is not None:
            query = query.where(e.c.subject.startswith(subject, autoescape=True))
        if since is not None:
            query = query.where(e.c.time >= since)
        with self.store.read() as conn:
            return [MonitorEvent.model_validate(dict(r)) for r in conn.execute(query).mappings()]

    def _event(
        self, conn: Connection, kind: str, subject: str, details: dict[str, Any]
    ) -> MonitorEvent:
        stamp = t.now()
        event_id = conn.execute(
            insert(t.monitor_events).values(kind=kind, subject=subject, time=stamp, details=details)
        ).inserted_primary_key[0]
        return MonitorEvent(id=event_id, kind=kind, subject=subject, time=stamp, details=details)

    # --- series and anomalies ---------------------------------------------------------------

    def get_series(
        self,
        subject: str,
        metric: str,
        start: datetime | None = None,
        end: datetime | None = None,
        key: str | None = None,
    ) -> list[Series]:
        """A monitored series, one per key (see the module docs for subjects and metrics)."""
        kind, _, name = subject.partition(":")
        if not name:
            raise InvalidInput(
                "subject is monitor:NAME, endpoint:NAME or security:KIND", field="subject"
            )
        with self.store.read() as conn:
            if kind == "monitor":
                points = self._monitor_points(conn, name, metric, start, end)
            elif kind == "endpoint":
                points = self._endpoint_points(conn, name, metric, start, end)
            elif kind == "security":
                points = self._security_points(conn, name, metric, start, end)
            else:
                raise InvalidInput(f"unknown subject kind {kind!r}", field="subject")
        series = [
            Series(subject=subject, metric=metric, key=k, points=sorted(p, key=lambda x: x.time))
            for k, p in sorted(points.items(), key=lambda kv: str(kv[0]))
            if key is None or k == key
        ]
        return series

    def find_anomalies(
        self,
        subject: str,
        metric: str,
        start: datetime | None = None,
        end: datetime | None = None,
        key: str | None = None,
        threshold: float = _anomaly.DEFAULT_THRESHOLD,
        baseline: int = _anomaly.DEFAULT_BASELINE,
    ) -> list[Anomaly]:
        """Spikes and drops of a series against its median/MAD baseline."""
        if threshold <= 0:
            raise InvalidInput("threshold must be positive", field="threshold")
        if not 2 <= baseline <= 10_000:
            raise InvalidInput("baseline must be between 2 and 10000 points", field="baseline")
        found = []
        for series in self.get_series(subject, metric, start, end, key):
            values = [p.value for p in series.points]
            for flag in _anomaly.detect(values, threshold=threshold, baseline=baseline):
                point = series.points[flag.index]
                found.append(
                    Anomaly(
                        subject=subject, metric=metric, key=series.key, time=point.time,
                        value=point.value, baseline=flag.baseline, scale=flag.scale,
                        score=flag.score, direction=flag.direction,  # type: ignore[arg-type]
                    )
                )  # fmt: skip
        return sorted(found, key=lambda a: a.time)

    def _monitor_points(
        self, conn: Connection, name: str, metric: str, start: Any, end: Any
    ) -> dict[str | None, list[SeriesPoint]]:
        c = t.monitor_checks.c
        row = conn.execute(select(t.monitors.c.id).where(t.monitors.c.name == name)).first()
        if row is None:
            raise NotFound(f"monitor {name!r} does not exist", field="subject")
        query = select(c.window_start, c.model, c.version, c.result).where(c.monitor_id == row[0])
        query = _between(query, c.window_start, start, end).order_by(c.window_start, c.id)
        points: dict[str | None, list[SeriesPoint]] = defaultdict(list)
        for r in conn.execute(query).mappings():
            for key, value in _check_values(r["result"], metric, r["model"], r["version"]):
                points[key].append(SeriesPoint(time=r["window_start"], value=value))
        return points

    def _endpoint_points(
        self, conn: Connection, endpoint: str, metric: str, start: Any, end: Any
    ) -> dict[str | None, list[SeriesPoint]]:
        points: dict[str | None, list[SeriesPoint]] = defaultdict(list)
        if metric == "predictions":
            log = t.prediction_log
            query = select(log.c.time, log.c.model, log.c.version).where(log.c.endpoint == endpoint)
            counts: dict[tuple[str, int], dict[int, int]] = defaultdict(lambda: defaultdict(int))
            for when, model, version in conn.execute(_between(query, log.c.time, start, end)):
                hour = int(when.timestamp() * 1000) // HOUR_MS * HOUR_MS
                counts[(model, version)][hour] += 1
            for (model, version), by_hour in counts.items():
                points[f"{model}/{version}"] = [
                    SeriesPoint(time=_from_ms(h), value=float(n))
                    for h, n in sorted(by_hour.items())
                ]
            return points
        if metric not in ENDPOINT_METRICS:
            known = ", ".join((*ENDPOINT_METRICS, "predictions"))
            raise InvalidInput(
                f"unknown endpoint metric {metric!r} (known: {known})", field="metric"
            )
        s = t.serving_samples
        query = select(s.c.instance, s.c.time, s.c.stats).where(s.c.endpoint == endpoint)
        query = _between(query, s.c.time, start, end).order_by(s.c.time, s.c.id)
        previous: dict[str, datetime] = {}
        for instance, when, stats in conn.execute(query):
            value = _sample_value(stats, metric, previous.get(instance), when)
            previous[instance] = when
            if value is not None:
                points[instance].append(SeriesPoint(time=when, value=value))
        return points

    def _security_points(
        self, conn: Connection, kind: str, metric: str, start: Any, end: Any
    ) -> dict[str | None, list[SeriesPoint]]:
        if metric != "count":
            raise InvalidInput("security series have one metric: count", field="metric")
        points: dict[str | None, list[SeriesPoint]] = defaultdict(list)
        if kind == "denied":
            a = t.audit_events
            query = select(a.c.time, a.c.actor, a.c.source).where(a.c.action.in_(DENIED_ACTIONS))
            counts: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
            for when, actor, source in conn.execute(_between(query, a.c.time, start, end)):
                hour = int(when.timestamp() * 1000) // HOUR_MS * HOUR_MS
                counts[f"token:{actor}"][hour] += 1
                counts[f"address:{source or 'unknown'}"][hour] += 1
            for key, by_hour in counts.items():
                points[key] = [
                    SeriesPoint(time=_from_ms(h), value=float(n))
                    for h, n in sorted(by_hour.items())
                ]
            return points
        s = getattr(t, "security_signals", None)
        if s is None:
            return points
        query = select(s.c.subject, s.c.window_start, s.c.count).where(s.c.kind == kind)
        for subject, when, count in conn.execute(_between(query, s.c.window_start, start, end)):
            points[subject].append(SeriesPoint(time=when, value=float(count)))
        return points

    # --- utilisation ------------------------------------------------------------------------

    def utilisation_report(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        min_requests_per_hour: float = 1.0,
        latency_limit_ms: float = 250.0,
        cpu_limit_percent: float = 85.0,
        queue_limit: float = 0.8,
    ) -> UtilisationReport:
        """Which served model versions are under-used (little or no traffic) and which are
        over-used (p95 latency, CPU or queue near their limits), over ``start``..``end``
        (default: the last 24 hours)."""
        end = end or t.now()
        start = start or end - timedelta(days=1)
        if start >= end:
            raise InvalidInput("start must be before end", field="start")
        hours = (end - start).total_seconds() / 3600
        with self.store.read() as conn:
            served = self._served_versions(conn)
            counts = self._request_counts(conn, start, end)
            load = self._endpoint_load(conn, start, end)
        usage = []
        for endpoint, model, version in sorted(set(served) | set(counts)):
            requests = counts.get((endpoint, model, version), 0)
            stats = load.get(endpoint, {})
            reasons = []
            rate = requests / hours
            if rate < min_requests_per_hour:
                reasons.append(f"{rate:.3g} requests/hour < {min_requests_per_hour:g}")
            under = bool(reasons)
            p95, cpu, queue = stats.get("latency"), stats.get("cpu"), stats.get("queue")
            if p95 is not None and p95 > latency_limit_ms:
                reasons.append(f"p95 latency {p95:.1f} ms > {latency_limit_ms:g} ms")
            if cpu is not None and cpu > cpu_limit_percent:
                reasons.append(f"CPU {cpu:.0f}% > {cpu_limit_percent:g}%")
            if queue is not None and queue > queue_limit:
                reasons.append(f"queue {queue:.0%} full > {queue_limit:.0%}")
            verdict = "under-used" if under else "over-used" if reasons else "ok"
            usage.append(
                ModelUsage(
                    endpoint=endpoint, model=model, version=version, requests=requests,
                    requests_per_hour=rate, latency_p95_ms=p95, cpu_percent=cpu,
                    queue_fill=queue, verdict=verdict, reasons=reasons,  # type: ignore[arg-type]
                )
            )  # fmt: skip
        return UtilisationReport(
            start=start,
            end=end,
            usage=usage,
            under_used=sorted({_label(u) for u in usage if u.verdict == "under-used"}),
            over_used=sorted({_label(u) for u in usage if u.verdict == "over-used"}),
        )

    def _served_versions(self, conn: Connection) -> list[tuple[str, str, int]]:
        served = []
        names = conn.execute(select(t.endpoints.c.name)).scalars().all()
        for name in names:
            try:
                resolved = self.services.deployments.resolve_endpoint(name)
            except (NotFound, InvalidInput):
                continue
            served.extend((name, r.model, r.version) for r in resolved.targets)
        return served

    def _request_counts(
        self, conn: Connection, start: datetime, end: datetime
    ) -> dict[tuple[str, str, int], int]:
        log = t.prediction_log
        query = (
            select(log.c.endpoint, log.c.model, log.c.version, func.count())
            .where(log.c.time >= start, log.c.time < end, log.c.shadow.is_(False))
            .group_by(log.c.endpoint, log.c.model, log.c.version)
        )
        return {(e, m, v): int(n) for e, m, v, n in conn.execute(query)}

    def _endpoint_load(
        self, conn: Connection, start: datetime, end: datetime
    ) -> dict[str, dict[str, float]]:
        s = t.serving_samples
        query = select(s.c.endpoint, s.c.stats).where(s.c.time >= start, s.c.time < end)
        worst: dict[str, dict[str, float]] = defaultdict(dict)
        for endpoint, stats in conn.execute(query):
            fill = None
            if stats.get("queue") is not None and stats.get("queue_limit"):
                fill = stats["queue"] / stats["queue_limit"]
            for name, value in (
                ("latency", stats.get("latency_p95_ms")),
                ("cpu", stats.get("cpu_percent")),
                ("queue", fill),
            ):
                if value is not None:
                    worst[endpoint][name] = max(worst[endpoint].get(name, value), value)
        return worst


# --- helpers ------------------------------------------------------------------------------------


def _stats(value: Any) -> ServerStats:
    if value is None:
        return ServerStats()
    if isinstance(value, ServerStats):
        return value
    try:
        return ServerStats.model_validate(value)
    except ValueError as exc:
        raise InvalidInput(f"stats: {exc}", field="stats") from None


def _overdue(row: Any, now: datetime) -> bool:
    silent = (now - row["last_seen"]).total_seconds()
    return row["status"] == "up" and silent > DOWN_AFTER_BEATS * row["interval"]


def _instance(row: Any, status: str) -> ServingInstance:
    return ServingInstance(
        endpoint=row["endpoint"], instance=row["instance"], host=row["host"], pid=row["pid"],
        status=status, started_at=row["started_at"], last_seen=row["last_seen"],  # type: ignore[arg-type]
        interval=row["interval"], stats=ServerStats.model_validate(row["stats"]),
    )  # fmt: skip


def _between(query: Any, column: Any, start: Any, end: Any) -> Any:
    if start is not None:
        query = query.where(column >= start)
    if end is not None:
        query = query.where(column < end)
    return query


def _from_ms(ms: int) -> datetime:
    from datetime import UTC

    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _label(usage: ModelUsage) -> str:
    return f"{usage.model}/{usage.version}" if usage.model else usage.endpoint


def _sample_value(
    stats: dict[str, Any], metric: str, previous: datetime | None, when: datetime
) -> float | None:
    if metric == "gpu_percent":
        gpus = [g.get("utilization_percent") for g in stats.get("gpus", [])]
        known = [g for g in gpus if g is not None]
        return max(known) if known else None
    if metric == "request_rate":
        if stats.get("requests") is None or previous is None:
            return None
        seconds = (when - previous).total_seconds()
        return stats["requests"] / seconds if seconds > 0 else None
    if metric == "error_rate":
        requests, errors = stats.get("requests"), stats.get("errors")
        if not requests or errors is None:
            return None
        return errors / requests
    value = stats.get(metric)
    return None if value is None else float(value)


def _check_values(
    result: dict[str, Any], metric: str, model: str | None, version: int | None
) -> Iterable[tuple[str | None, float]]:
    """The values one stored check contributes to a monitor series, by key."""
    if metric in ("drift_share", "rows", "drifted_columns"):
        yield None, float(result.get(metric) or 0)
    elif metric == "drift":
        for column in result.get("columns", []):
            yield column["column"], float(column["statistic"])
    elif metric == "prediction_drift":
        report = result.get("prediction_drift")
        for column in (report or {}).get("columns", []):
            yield column["column"], float(column["statistic"])
    elif metric.startswith(("performance.", "estimated.")):
        which, _, name = metric.partition(".")
        block = result.get("performance" if which == "performance" else "estimated_performance")
        value = (block or {}).get("metrics", {}).get(name)
        if value is not None:
            yield (f"{model}/{version}" if model else None), float(value)
    else:
        raise InvalidInput(
            f"unknown monitor metric {metric!r} (drift_share, rows, drifted_columns, drift, "
            "prediction_drift, performance.NAME, estimated.NAME)",
            field="metric",
        )
