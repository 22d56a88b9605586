"""Operations monitoring: heartbeats and down events, series, anomalies, security signals,
utilisation; and the pure pieces (performance figures, CBPE, anomaly detection)."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from sqlalchemy import update

import heron
from heron._monitoring import _anomaly
from heron._monitoring._performance import estimated_performance, realized_performance
from heron._monitoring._resources import ServerTraffic, _bucket_quantile, sample_resources
from heron._predictions import PredictionRecord
from heron._services import Services
from heron._settings import Settings
from heron._store import _tables as t


def _backdate(settings: Settings, seconds: float) -> None:
    """Age every heartbeat by ``seconds`` (instead of waiting)."""
    services = Services(settings)
    try:
        si = t.serving_instances
        with services.metadata.write() as conn:
            for row in conn.execute(si.select()).mappings().all():
                conn.execute(
                    update(si)
                    .where(si.c.endpoint == row["endpoint"], si.c.instance == row["instance"])
                    .values(last_seen=row["last_seen"] - timedelta(seconds=seconds))
                )
    finally:
        services.close()


def test_missed_heartbeats_are_a_down_event(client: heron.Client, settings: Settings) -> None:
    beat = client.record_heartbeat("cancer", "a", stats={"cpu_percent": 12.5}, interval=5)
    assert beat.status == "up" and beat.stats.cpu_percent == 12.5
    client.record_heartbeat("cancer", "b", interval=5)
    assert client.check_heartbeats() == []
    _backdate(settings, 16)  # more than three intervals of silence
    assert {i.status for i in client.list_serving_instances("cancer")} == {"down"}
    events = client.check_heartbeats()
    assert sorted(e.subject for e in events) == ["cancer/a", "cancer/b"]
    assert all(e.kind == "down" and e.details["silent_seconds"] >= 16 for e in events)
    assert client.check_heartbeats() == []  # reported once
    audit = client.list_audit_events(object_type="endpoint", action="serving_down").items
    assert len(audit) == 2
    client.record_heartbeat("cancer", "a", interval=5)
    assert [e.kind for e in client.list_monitor_events(subject="cancer/a")] == ["up", "down"]
    client.stop_serving_instance("cancer", "b")
    assert [(i.instance, i.status) for i in client.list_serving_instances()] == [("a", "up")]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"instance": "x" * 101}, "instance"),
        ({"interval": 0}, "interval"),
        ({"interval": 99999}, "interval"),
        ({"stats": {"cpu_percent": "lots"}}, "stats"),
        ({"stats": {"requests": -1}}, "stats"),
    ],
    ids=["long-instance", "zero-interval", "huge-interval", "text-cpu", "negative-requests"],
)
def test_bad_heartbeats(client: heron.Client, kwargs: dict[str, Any], field: str) -> None:
    args = {"endpoint": "cancer", "instance": "a", **kwargs}
    with pytest.raises(heron.InvalidInput):
        client.record_heartbeat(**args)
    assert client.list_serving_instances() == []


def test_endpoint_series_and_anomalies(client: heron.Client) -> None:
    for latency in [10, 11, 9, 10, 12, 10, 11, 250, 10, 11, 0.5]:
        stats = {"latency_p95_ms": latency, "requests": 100, "errors": 1, "cpu_percent": 20}
        client.record_heartbeat("cancer", "a", stats=stats, interval=10)
    series = client.get_series("endpoint:cancer", "latency_p95_ms")
    assert [s.key for s in series] == ["a"] and len(series[0].points) == 11
    errors = client.get_series("endpoint:cancer", "error_rate")[0]
    assert {p.value for p in errors.points} == {0.01}
    found = client.find_anomalies("endpoint:cancer", "latency_p95_ms")
    assert [(a.value, a.direction) for a in found] == [(250, "spike"), (0.5, "drop")]
    assert found[0].baseline == 10.0
    with pytest.raises(heron.InvalidInput, match="unknown endpoint metric"):
        client.get_series("endpoint:cancer", "nope")
    with pytest.raises(heron.InvalidInput, match="subject"):
        client.get_series("cancer", "latency_p95_ms")
    with pytest.raises(heron.NotFound):
        client.get_series("monitor:nope", "drift_share")


def test_security_signals_are_series(client: heron.Client, settings: Settings) -> None:
    services = Services(settings)
    try:
        for address in ["10.0.0.1", "10.0.0.1", "10.0.0.2"]:
            services.security.record_signal("auth_failure", address, audit=False)
    finally:
        services.close()
    series = client.get_series("security:auth_failure", "count")
    assert {s.key: sum(p.value for p in s.points) for s in series} == {
        "10.0.0.1": 2,
        "10.0.0.2": 1,
    }
    assert client.find_anomalies("security:auth_failure", "count") == []  # too little history


def test_utilisation_names_under_and_over_used_models(client: heron.Client) -> None:
    from sklearn.dummy import DummyClassifier

    X = np.zeros((4, 1))
    for _ in range(2):
        client.log_model(DummyClassifier().fit(X, [0, 1, 0, 1]), "clf")
    client.create_endpoint("busy", ["clf/1:90", "clf/2:10"])
    now = t.now()
    records = [
        PredictionRecord(
            request_id=f"r{i}", endpoint="busy", revision=1, model="clf", version=1,
            time=now - timedelta(minutes=i), latency_ms=900.0, rows=1, outputs=[0],
        )
        for i in range(50)
    ]  # fmt: skip
    client._call("log_predictions", records=records)
    client.record_heartbeat("busy", "a", stats={"latency_p95_ms": 900.0, "cpu_percent": 40})
    report = client.utilisation_report(latency_limit_ms=500)
    by_version = {u.version: u for u in report.usage}
    assert by_version[1].verdict == "over-used" and by_version[1].requests == 50
    assert "p95 latency" in by_version[1].reasons[0]
    assert by_version[2].verdict == "under-used" and by_version[2].requests == 0
    assert report.under_used == ["clf/2"] and report.over_used == ["clf/1"]
    with pytest.raises(heron.InvalidInput):
        client.utilisation_report(start=now, end=now - timedelta(hours=1))


# --- the pure pieces -----------------------------------------------------------------------------


def test_realized_classification_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    proba = np.clip(y * 0.6 + rng.uniform(0, 0.4, 500), 0, 1)
    pred = (proba > 0.5).astype(int)
    both = np.column_stack([1 - proba, proba])
    perf = realized_performance("classification", y.astype(object), pred, both, [0, 1])
    assert perf is not None
    assert perf.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert perf.metrics["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert perf.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba))
    assert perf.metrics["log_loss"] == pytest.approx(skm.log_loss(y, both))


def test_realized_regression_and_missing_labels() -> None:
    truth = np.array([1.0, 2.0, 3.0, None, 5.0], dtype=object)
    guess = np.array([1.5, 2.0, 2.0, 9.0, 5.5])
    perf = realized_performance("regression", truth, guess)
    assert perf is not None and perf.rows == 4
    assert perf.metrics["mae"] == pytest.approx(0.5)
    assert perf.metrics["r2"] == pytest.approx(skm.r2_score([1, 2, 3, 5], [1.5, 2, 2, 5.5]))
    assert realized_performance("regression", np.array([None, None]), guess[:2]) is None


@pytest.mark.parametrize(
    ("labels", "proba", "missing"),
    [
        ([1, 1, 1], [[0.2, 0.8]] * 3, "roc_auc"),
        (["a", "b", "c"], None, "log_loss"),
    ],
    ids=["one-class", "no-probabilities"],
)
def test_undefined_figures_are_none_with_a_note(labels: list[Any], proba: Any, missing: str):
    proba = None if proba is None else np.array(proba)
    perf = realized_performance("classification", np.array(labels, dtype=object), labels, proba)
    assert perf is not None and perf.metrics.get(missing) is None and perf.notes


def test_cbpe_estimates_realized_accuracy_for_calibrated_models() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20_000)
    y = rng.uniform(0, 1, p.size) < p  # calibrated: P(y=1) is p
    pred = (p > 0.5).astype(int)
    estimate = estimated_performance(pred, np.column_stack([1 - p, p]), [0, 1])
    assert estimate.estimated
    assert estimate.metrics["accuracy"] == pytest.approx((pred == y).mean(), abs=0.01)
    assert estimate.metrics["f1"] == pytest.approx(skm.f1_score(y, pred), abs=0.01)
    assert estimate.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=0.01)
    three = estimated_performance(None, rng.dirichlet([1, 1, 1], 100), None)
    assert 0 < three.metrics["accuracy"] <= 1 and three.metrics["roc_auc"] is not None


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([10, 11, 9, 10, 12, 10, 11, 40], [(7, "spike")]),
        ([10, 11, 9, 10, 12, 10, 11, 1], [(7, "drop")]),
        ([5.0] * 10, []),
        ([5, 5, 5, 5, 5, 5, 9], [(6, "spike")]),
        ([10, 11, 40], []),  # too little history for a verdict
        ([10, 11, 9, 10, 12, float("nan"), float("inf"), 11], []),
        ([], []),
    ],
    ids=["spike", "drop", "flat", "flat-then-move", "short", "non-finite", "empty"],
)
def test_anomaly_detection(values: list[float], expected: list[tuple[int, str]]) -> None:
    found = [(f.index, f.direction) for f in _anomaly.detect(values)]
    assert found == expected


def test_resources_report_gpus_as_absent_without_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails as if not installed
    stats = sample_resources()
    assert stats.cpu_percent is not None and stats.memory_mb and stats.memory_mb > 0
    assert stats.gpu_available is False and stats.gpus == []


def test_latency_percentiles_from_histogram_buckets() -> None:
    buckets = {0.001: 50.0, 0.002: 90.0, 0.004: 100.0, float("inf"): 100.0}
    assert _bucket_quantile(buckets, 0.5) == pytest.approx(0.001)
    assert _bucket_quantile(buckets, 0.95) == pytest.approx(0.003)
    assert _bucket_quantile({}, 0.5) is None


def test_prediction_servers_send_heartbeats(client: heron.Client) -> None:
    from sklearn.dummy import DummyClassifier

    from heron._serving import PredictionServer, ServeOptions

    client.log_model(DummyClassifier().fit(np.zeros((4, 1)), [0, 1, 0, 1]), "clf")
    client.create_endpoint("hb", ["clf/1"])
    server = PredictionServer(client, ServeOptions("hb", log_predictions=False))
    server.start()
    try:
        server._heartbeat.beat()  # type: ignore[attr-defined]
        [instance] = client.list_serving_instances("hb")
        assert instance.status == "up" and instance.stats.memory_mb
        traffic = ServerTraffic(server)()
        assert traffic["requests"] == 0 and traffic["latency_p95_ms"] is None
    finally:
        server.close()
    assert client.list_serving_instances("hb") == []  # a clean stop is not a down event
