"""The prediction server: predictions, validation, routing, following revisions under load,
logging and feedback, metrics, the CLI and real ``heron serve`` processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import heron
from heron._cli import app as cli
from heron._serving._batch import MicroBatcher
from heron._serving._log import Entry, PredictionLogger, RequestIds
from heron.testing import embedded_client, heron_settings
from heron.testing import prediction_server as running

PG_URL = os.environ.get("HERON_TEST_POSTGRES_URL")


@pytest.fixture(scope="module")
def data() -> Any:
    return load_breast_cancer(return_X_y=True, as_frame=True)


@pytest.fixture(scope="module")
def fitted(data: Any) -> tuple[Any, Any]:
    X, y = data
    return (
        LogisticRegression(max_iter=5000).fit(X, y),
        LogisticRegression(C=0.001, max_iter=5000).fit(X, y),
    )


def _register(client: heron.Client, data: Any, fitted: tuple[Any, Any]) -> None:
    X, _ = data
    for model in fitted:
        client.log_model(model, "cancer-clf", input_example=X.head(3))
    client.set_alias("cancer-clf", "champion", 1)
    client.set_alias("cancer-clf", "challenger", 2)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, data: Any, fitted: Any) -> Iterator[Any]:
    """One embedded store with ``cancer-clf`` versions 1 and 2 for the module; each test
    creates its own endpoint."""
    settings = heron_settings(tmp_path_factory.mktemp("serving"))
    client = embedded_client(settings)
    _register(client, data, fitted)
    yield client
    client.close()


_names = iter(range(10_000))


@pytest.fixture
def endpoint(store: heron.Client) -> str:
    name = f"ep-{next(_names)}"
    store.create_endpoint(name, ["cancer-clf@champion"])
    return name


def _records(X: Any, n: int = 1, start: int = 0) -> list[dict[str, float]]:
    return X.iloc[start : start + n].to_dict(orient="records")


def test_predict_records_and_split(store: heron.Client, endpoint: str, data: Any, fitted: Any):
    X, _ = data
    with running(store, endpoint) as (url, _):
        r = httpx.post(f"{url}/predict", json={"instances": _records(X, 5)})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["predictions"] == fitted[0].predict(X.head(5)).tolist()
        assert body["model_version"] == "1"
        assert len(body["request_id"]) == 32 and r.headers["x-request-id"] == body["request_id"]
        split = {"columns": list(X.columns), "data": X.head(5).to_numpy().tolist()}
        r = httpx.post(f"{url}/predict", json={"dataframe_split": split})
        assert r.json()["predictions"] == body["predictions"]


BAD_BODIES = [
    (b"not json", "body"),
    (b'["a list"]', "instances"),
    (b'{"rows": []}', "instances"),
    (b'{"instances": []}', "instances"),
    (b'{"instances": [1, 2]}', "instances"),
    (b'{"instances": [{"mean radius": 1.0}]}', "mean texture"),
    (b'{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}', "dataframe_split"),
    (b'{"dataframe_split": {"columns": "a", "data": [[1]]}}', "dataframe_split"),
    (b'{"instances": [{"x": 1}]} trailing', "body"),
    (b'{"instances": [{"mean radius": 1e400}]}', "body"),
]


@pytest.mark.parametrize(
    ("body", "field"),
    BAD_BODIES,
    ids=[
        "not-json",
        "not-an-object",
        "no-instances",
        "empty-instances",
        "instances-not-records",
        "missing-column",
        "ragged-split",
        "split-columns-not-list",
        "trailing-garbage",
        "number-too-large",
    ],
)
def test_bad_bodies_are_422_naming_the_field(
    store: heron.Client, endpoint: str, body: bytes, field: str
) -> None:
    with running(store, endpoint, log_predictions=False) as (url, _):
        r = httpx.post(f"{url}/predict", content=body)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("value", "problem"),
    [("12.5", "string"), (None, "missing"), (True, "boolean"), ([1, 2], "mixed"), ({}, "mixed")],
    ids=["string", "null", "boolean", "list", "object"],
)
def test_bad_values_are_422_naming_the_column(
    store: heron.Client, endpoint: str, data: Any, value: Any, problem: str
) -> None:
    X, _ = data
    rows = _records(X, 2)
    rows[1]["mean area"] = value
    with running(store, endpoint, log_predictions=False) as (url, _):
        r = httpx.post(f"{url}/predict", json={"instances": rows})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == "mean area"


def test_limits_methods_and_routes(store: heron.Client, endpoint: str, data: Any) -> None:
    X, _ = data
    with running(store, endpoint, max_body_bytes=2000) as (url, _):
        r = httpx.post(f"{url}/predict", json={"instances": _records(X, 10)})
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

        def chunks() -> Iterator[bytes]:  # no content-length: the limit still holds
            yield b'{"instances": ['
            yield b" " * 5000
            yield b"]}"

        assert httpx.post(f"{url}/predict", content=chunks()).status_code == 413
        assert httpx.get(f"{url}/predict").status_code == 405
        assert httpx.get(f"{url}/nowhere").status_code == 404


def test_health_and_metrics(store: heron.Client, endpoint: str, data: Any) -> None:
    X, _ = data
    with running(store, endpoint) as (url, _):
        assert httpx.get(f"{url}/health/live").status_code == 200
        ready = httpx.get(f"{url}/health/ready")
        assert ready.status_code == 200
        assert ready.json()["versions"] == ["cancer-clf/1"] and ready.json()["revision"] == 1
        httpx.post(f"{url}/predict", json={"instances": _records(X)})
        httpx.post(f"{url}/predict", content=b"{}")
        text = httpx.get(f"{url}/metrics").text
    for expected in [
        f'heron_requests_total{{endpoint="{endpoint}",model="cancer-clf",'
        'status="200",version="1"} 1.0',
        'status="422"',
        "heron_request_latency_seconds_bucket",
        "heron_requests_in_flight",
        f'heron_model_load_seconds{{endpoint="{endpoint}",model="cancer-clf",version="1"}}',
        "heron_prediction_log_dropped_total",
        "heron_prediction_log_queue",
        f'heron_endpoint_revision{{endpoint="{endpoint}"}} 1.0',
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ]:
        assert expected in text


def test_until_the_models_are_loaded_only_liveness_answers(
    store: heron.Client, endpoint: str, data: Any
) -> None:
    """``heron serve`` listens while it loads: nothing but /health/live may be answered
    before authentication is decided and the log started."""
    from heron._serving import PredictionServer, ServeOptions
    from heron.testing import serve_in_thread

    X, _ = data
    server = PredictionServer(store, ServeOptions(endpoint, auth=True))  # not started
    with serve_in_thread(server) as url:
        assert httpx.get(f"{url}/health/live").status_code == 200
        assert httpx.get(f"{url}/health/ready").json() == {"status": "loading"}
        for answer in (
            httpx.post(f"{url}/predict", json={"instances": _records(X)}),
            httpx.post(f"{url}/feedback", json={"feedback": [{"request_id": "x", "label": 1}]}),
            httpx.get(f"{url}/metrics"),
        ):
            assert answer.status_code == 503
            assert answer.json()["error"]["code"] == "unavailable"


def test_predictions_are_logged_and_feedback_joins(
    store: heron.Client, endpoint: str, data: Any
) -> None:
    X, _ = data
    with running(store, endpoint) as (url, _):
        ids = [
            httpx.post(f"{url}/predict", json={"instances": _records(X, 2, i)}).json()["request_id"]
            for i in range(3)
        ]
        feedback = [{"request_id": i, "label": [1, 0]} for i in ids[:2]]
        r = httpx.post(
            f"{url}/feedback", json={"feedback": [*feedback, {"request_id": "nope", "label": 1}]}
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"accepted": 2, "unknown": ["nope"]}
        bad = httpx.post(f"{url}/feedback", json={"labels": []})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "feedback"
    records = store.list_predictions(endpoint).items
    assert [r.request_id for r in records] == ids
    assert [r.label for r in records] == [[1, 0], [1, 0], None]
    first = records[0]
    assert (first.model, first.version, first.revision, first.rows) == ("cancer-clf", 1, 1, 2)
    assert first.inputs == {"instances": _records(X, 2, 0)} and len(first.outputs) == 2
    assert first.latency_ms > 0
    frame = store.transport.services.predictions.prediction_frame(endpoint)
    assert len(frame) == 6 and "mean radius" in frame and frame["label"].notna().sum() == 4


def test_metrics_say_what_each_log_sink_costs(
    store: heron.Client, endpoint: str, data: Any
) -> None:
    """CPU and wall time per sink: what logging costs an operator, and which part."""
    from prometheus_client.parser import text_string_to_metric_families

    X, _ = data
    with running(store, endpoint, log_interval=3600) as (url, server):
        before = httpx.get(f"{url}/metrics").text
        for _ in range(3):
            assert httpx.post(f"{url}/predict", json={"instances": _records(X)}).status_code == 200
        server.logger.flush()
        text = httpx.get(f"{url}/metrics").text
    assert "heron_prediction_log_sink_cpu_seconds_total{" not in before  # nothing written yet
    cpu, wall = {}, {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            into = {
                "heron_prediction_log_sink_cpu_seconds_total": cpu,
                "heron_prediction_log_sink_seconds_total": wall,
            }.get(sample.name)
            if into is not None:
                assert sample.labels["endpoint"] == endpoint
                into[sample.labels["sink"]] = sample.value
    assert {"store", "proba"} <= set(cpu) and set(cpu) == set(wall)
    assert cpu["store"] > 0 and all(wall[sink] > 0 for sink in wall)
    assert len(store.list_predictions(endpoint).items) == 3


def test_trimming_the_log_trims_its_class_probabilities(
    store: heron.Client, endpoint: str, data: Any
) -> None:
    """Retention bounds the raw log and the probabilities logged with it (they grew without
    end before)."""
    from sqlalchemy import select

    from heron._store import _tables as t

    X, _ = data
    proba = t.prediction_proba
    services = store.transport.services

    def probabilities() -> list[str]:
        query = select(proba.c.request_id).where(proba.c.endpoint == endpoint)
        with services.metadata.read() as conn:
            return list(conn.execute(query.order_by(proba.c.id)).scalars())

    with running(store, endpoint, log_interval=3600) as (url, server):
        ids = [
            httpx.post(f"{url}/predict", json={"instances": _records(X, 1, i)}).json()["request_id"]
            for i in range(5)
        ]
        server.logger.flush()
    assert probabilities() == ids
    assert services.predictions.trim_predictions(endpoint, 2) == 3
    assert [r.request_id for r in store.list_predictions(endpoint).items] == ids[3:]
    assert probabilities() == ids[3:]
    assert services.predictions.trim_predictions(endpoint, 2) == 0
    assert probabilities() == ids[3:]


def test_a_full_log_queue_drops_and_counts(store: heron.Client, endpoint: str, data: Any):
    X, _ = data
    with running(store, endpoint, log_capacity=2, log_interval=3600) as (url, server):
        for _ in range(5):
            assert httpx.post(f"{url}/predict", json={"instances": _records(X)}).status_code == 200
        text = httpx.get(f"{url}/metrics").text
        assert server.logger.dropped == 3
    assert f'heron_prediction_log_dropped_total{{endpoint="{endpoint}"}} 3.0' in text
    assert len(store.list_predictions(endpoint).items) == 2  # the queued ones, at close


def test_the_log_queue_holds_the_bytes_the_options_say(
    store: heron.Client, endpoint: str, data: Any
) -> None:
    X, _ = data
    body = {"instances": _records(X, 100)}  # ~80 KB of inputs and a 24 KB array a request
    with running(store, endpoint, log_max_bytes=50_000, log_interval=3600) as (url, server):
        for _ in range(3):
            assert httpx.post(f"{url}/predict", json=body).status_code == 200
        assert server.logger.dropped == 3


def test_a_server_process_keeps_pyarrow_on_the_system_allocator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from heron._serving import ServeOptions
    from heron._serving._run import build_server

    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    build_server(heron_settings(tmp_path), ServeOptions("ep"))
    assert os.environ["ARROW_DEFAULT_MEMORY_POOL"] == "jemalloc"  # the user's choice wins
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL")
    build_server(heron_settings(tmp_path), ServeOptions("ep"))
    assert os.environ["ARROW_DEFAULT_MEMORY_POOL"] == "system"


def test_logger_survives_a_failing_sink() -> None:
    class Broken:
        def write(self, endpoint: str, entries: list[Entry]) -> None:
            raise OSError("disk full")

    class Kept:
        entries: list[Entry] = []

        def write(self, endpoint: str, entries: list[Entry]) -> None:
            self.entries.extend(entries)

    failed: list[int] = []
    kept = Kept()
    logger = PredictionLogger("ep", [Broken(), kept], on_error=failed.append)
    for i in range(3):
        logger.put(Entry(f"r{i}", 1, "m", 1, False, time.time(), 1.0, 1, None, b"[1]"))
    logger.flush()
    assert failed == [3] and [e.request_id for e in kept.entries] == ["r0", "r1", "r2"]


def test_the_log_queue_is_bounded_in_bytes_too() -> None:
    dropped: list[int] = []
    logger = PredictionLogger("ep", [], max_bytes=1000, on_drop=dropped.append)
    for i in range(5):
        logger.put(Entry(f"r{i}", 1, "m", 1, False, time.time(), 1.0, 1, b"x" * 300, b"[1]"))
    assert (len(logger), logger.dropped, dropped) == (3, 2, [1, 1])
    logger.flush()
    logger.put(Entry("r9", 1, "m", 1, False, time.time(), 1.0, 1, b"x" * 300, b"[1]"))
    assert len(logger) == 1 and logger.dropped == 2


def test_a_quarter_of_the_byte_bound_wakes_the_flusher_before_its_interval() -> None:
    class Kept:
        def __init__(self) -> None:
            self.entries: list[Entry] = []
            self.written = threading.Event()

        def write(self, endpoint: str, entries: list[Entry]) -> None:
            self.entries.extend(entries)
            self.written.set()

    kept = Kept()
    logger = PredictionLogger("ep", [kept], max_bytes=4000, batch_size=100, interval=3600)
    logger.start()
    try:
        logger.put(Entry("r0", 1, "m", 1, False, time.time(), 1.0, 1, b"x" * 600, b"[1]"))
        assert not kept.written.wait(0.2)  # 603 bytes: below a quarter, it waits
        logger.put(Entry("r1", 1, "m", 1, False, time.time(), 1.0, 1, b"x" * 600, b"[1]"))
        assert kept.written.wait(30)  # a wait, not a timing: an hour is the interval
        assert [e.request_id for e in kept.entries] == ["r0", "r1"]
    finally:
        logger.close()


def test_full_batches_wake_the_flusher_round_after_round() -> None:
    # put() sets the wake-up only when it is not set already: the flusher must still be
    # woken again for every later batch, and no entry that came meanwhile may wait.
    class Kept:
        def __init__(self) -> None:
            self.entries: list[Entry] = []
            self.written = threading.Semaphore(0)

        def write(self, endpoint: str, entries: list[Entry]) -> None:
            self.entries.extend(entries)
            self.written.release()

    kept = Kept()
    logger = PredictionLogger("ep", [kept], batch_size=5, interval=3600)
    logger.start()
    try:
        for round_ in range(3):
            for i in range(12):  # two full batches and two entries over
                logger.put(
                    Entry(f"{round_}-{i}", 1, "m", 1, False, time.time(), 1.0, 1, None, b"[1]")
                )
            assert kept.written.acquire(timeout=30) and kept.written.acquire(timeout=30)
        logger.flush()
        assert len(kept.entries) == 36 and len({e.request_id for e in kept.entries}) == 36
    finally:
        logger.close()


@pytest.mark.parametrize("count", [1, 255, 511, 512, 513, 2100])
def test_log_rows_go_in_whole_in_few_statements(settings: Any, count: int) -> None:
    # Statements of 512 rows and the rest in halves: every size around the boundaries
    # goes in whole, in order, and a full statement stays under the driver's bind limit.
    from heron._predictions import LOG_COLUMNS

    client = embedded_client(settings)
    try:
        services: Any = client.transport.services  # type: ignore[attr-defined]
        rows = [
            (f"r{i}", "ep", 1, "m", 1, False, 1_700_000_000_000 + i, 1.0, 1, None, f"[{i}]")
            for i in range(count)
        ]
        assert len(LOG_COLUMNS) == len(rows[0])
        services.predictions.write_log_rows(rows)
        logged, token = [], None
        while True:
            page = client.list_predictions("ep", max_results=1000, page_token=token)
            logged += page.items
            if (token := page.next_page_token) is None:
                break
        assert [(r.request_id, r.outputs) for r in logged] == [(f"r{i}", [i]) for i in range(count)]
    finally:
        client.close()


def test_allocator_tuning_is_safe_to_call() -> None:
    import sqlite3

    from heron._serving._memory import limit_arenas, limit_sqlite_heap, release_free_memory

    glibc = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION") is not None
    assert limit_arenas(8) is bool(glibc)  # 8: what this test process may keep using
    release_free_memory()
    limit_sqlite_heap(8 << 20)
    try:
        with contextlib.closing(sqlite3.connect(":memory:")) as conn:
            assert conn.execute("PRAGMA soft_heap_limit").fetchone() == (8 << 20,)
    finally:
        limit_sqlite_heap(0)  # process-wide: unlimited again for the other tests


def test_a_frozen_heap_is_left_out_of_garbage_collections() -> None:
    import gc
    import weakref

    from heron._serving._memory import freeze_heap

    class Node:
        pass

    def cycle() -> weakref.ref[Node]:
        node = Node()
        node.me = node  # type: ignore[attr-defined]
        return weakref.ref(node)

    before = cycle()  # garbage already, but only a collection can free a cycle
    freeze_heap()
    try:
        after = cycle()
        gc.collect()
        assert before() is not None and after() is None
    finally:
        gc.unfreeze()  # process-wide: the other tests collect as usual
    gc.collect()
    assert before() is None


def test_a_server_loads_with_the_collector_paused_and_turns_it_back_on() -> None:
    import gc

    from heron._serving._memory import collector_paused
    from heron._serving._run import _serve_until_stopped

    class FailingLoad:
        """Loading fails half-way: what a bad model or a store gone away does."""

        collecting: bool | None = None
        closed = False

        def load(self) -> None:
            self.collecting = gc.isenabled()
            raise RuntimeError("the model would not load")

        def close(self) -> None:
            self.closed = True

    server = FailingLoad()
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="would not load"):
        _serve_until_stopped(server, None, host="127.0.0.1", port=0, sock=None)  # type: ignore[arg-type]
    assert server.collecting is False and server.closed
    assert gc.isenabled()
    gc.disable()  # a collector the caller turned off stays off
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def _wait_for(url: str, predicate: Any, what: str) -> dict[str, Any]:
    """Poll /health/ready until ``predicate`` holds (a wait, not a timing assertion)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = httpx.get(f"{url}/health/ready").json()
        if predicate(state):
            return state
        time.sleep(0.02)
    raise AssertionError(f"the server never reached {what}; last state {state}")


def test_switches_and_rollbacks_under_load_fail_no_request(
    store: heron.Client, endpoint: str, data: Any
) -> None:
    X, _ = data
    body = json.dumps({"instances": _records(X, 3)}).encode()
    stop = threading.Event()
    failures: list[str] = []
    versions: dict[str, int] = {}
    lock = threading.Lock()

    def hammer() -> None:
        with httpx.Client() as http:
            while not stop.is_set():
                try:
                    r = http.post(f"{url}/predict", content=body)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text}")
                    continue
                with lock:
                    v = r.json()["model_version"]
                    versions[v] = versions.get(v, 0) + 1

    with running(store, endpoint) as (url, _):
        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            for i in range(20):
                if i % 2 == 0:
                    ep = store.update_endpoint(endpoint, targets=[f"cancer-clf/{2 - i % 4 // 2}"])
                else:
                    ep = store.rollback_endpoint(endpoint)
                _wait_for(
                    url, lambda s, r=ep.revision: s["revision"] == r, f"revision {ep.revision}"
                )
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert failures == []
    assert set(versions) == {"1", "2"} and sum(versions.values()) > 20


def test_alias_moves_are_followed(store: heron.Client, data: Any, fitted: Any) -> None:
    X, _ = data
    store.set_alias("cancer-clf", "canary", 1)
    store.create_endpoint("follows-alias", ["cancer-clf@canary"])
    with running(store, "follows-alias") as (url, _):
        store.set_alias("cancer-clf", "canary", 2)
        _wait_for(url, lambda s: s["versions"] == ["cancer-clf/2"], "version 2")
        r = httpx.post(f"{url}/predict", json={"instances": _records(X, 4)})
        assert r.json()["model_version"] == "2"
        assert r.json()["predictions"] == fitted[1].predict(X.head(4)).tolist()


def test_a_loaded_server_follows_its_endpoint_from_follow_on(store: heron.Client) -> None:
    """``heron serve`` loads, listens, then follows (poller and heartbeats after
    readiness)."""
    from heron._serving import PredictionServer, ServeOptions
    from heron.testing import serve_in_thread

    store.create_endpoint("follows-late", ["cancer-clf/1"])
    server = PredictionServer(store, ServeOptions("follows-late", poll_interval=0.05))
    server.load()
    try:
        with serve_in_thread(server) as url:
            store.update_endpoint("follows-late", targets=["cancer-clf/2"])
            time.sleep(0.3)  # six poll intervals: nothing polls yet
            assert httpx.get(f"{url}/health/ready").json()["versions"] == ["cancer-clf/1"]
            server.follow()
            _wait_for(url, lambda s: s["versions"] == ["cancer-clf/2"], "version 2")
    finally:
        server.close()


def test_weighted_and_sticky_routing(store: heron.Client, data: Any) -> None:
    X, _ = data
    name = f"ab-{next(_names)}"
    store.create_endpoint(name, ["cancer-clf/1:1", "cancer-clf/2:1"])
    body = {"instances": _records(X)}
    with running(store, name, log_predictions=False) as (url, _), httpx.Client() as http:
        seen = {http.post(f"{url}/predict", json=body).json()["model_version"] for _ in range(60)}
        assert seen == {"1", "2"}
        store.update_endpoint(name, sticky="header:x-user")
        _wait_for(url, lambda s: s["revision"] == 2, "revision 2")
        by_user = {}
        for user in [f"user-{i}" for i in range(30)]:
            answers = {
                http.post(f"{url}/predict", json=body, headers={"x-user": user}).json()[
                    "model_version"
                ]
                for _ in range(3)
            }
            assert len(answers) == 1, user
            by_user[user] = answers.pop()
        assert set(by_user.values()) == {"1", "2"}


def test_sticky_by_input_column(store: heron.Client, data: Any) -> None:
    X, _ = data
    name = f"col-{next(_names)}"
    store.create_endpoint(name, ["cancer-clf/1:1", "cancer-clf/2:1"], sticky="column:customer")
    with running(store, name, log_predictions=False) as (url, _), httpx.Client() as http:
        seen = set()
        for customer in range(20):
            rows = [{**_records(X)[0], "customer": customer}]
            answers = {
                http.post(f"{url}/predict", json={"instances": rows}).json()["model_version"]
                for _ in range(3)
            }
            assert len(answers) == 1
            seen |= answers
        assert seen == {"1", "2"}


def test_shadow_answers_are_logged_not_returned(store: heron.Client, data: Any) -> None:
    X, _ = data
    name = f"shadow-{next(_names)}"
    store.create_endpoint(name, ["cancer-clf/1"], shadow=["cancer-clf@challenger"])
    with running(store, name) as (url, _):
        r = httpx.post(f"{url}/predict", json={"instances": _records(X, 2)})
        assert r.json()["model_version"] == "1"
    records = store.list_predictions(name).items
    assert sorted((x.version, x.shadow) for x in records) == [(1, False), (2, True)]
    assert {x.request_id for x in records} == {r.json()["request_id"]}


def test_micro_batching_answers_each_request(store: heron.Client, data: Any, fitted: Any):
    X, _ = data
    name = f"batch-{next(_names)}"
    store.create_endpoint(name, ["cancer-clf/1"])
    expected = fitted[0].predict(X.head(40)).tolist()
    answers: dict[int, list[int]] = {}

    def ask(i: int) -> None:
        with httpx.Client() as http:
            for j in range(i, 40, 8):
                r = http.post(f"{url}/predict", json={"instances": _records(X, 1, j)})
                answers[j] = r.json()["predictions"]

    with running(store, name, batch_wait_ms=2, log_predictions=False) as (url, _):
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [answers[j][0] for j in range(40)] == expected


def test_micro_batcher_predicts_concurrent_requests_in_one_call() -> None:
    class Model:
        calls: list[int] = []

        def predict_prepared(self, prepared: Any) -> Any:
            self.calls.append(len(prepared))
            return prepared[:, 0] * 10

    model = Model()

    async def main() -> list[Any]:
        batcher = MicroBatcher(model, wait=0.01, max_rows=100)  # type: ignore[arg-type]
        parts = [np.full((n, 2), float(n)) for n in (1, 2, 3)]
        return await asyncio.gather(*(batcher.predict(p, len(p)) for p in parts))

    results = asyncio.run(main())
    assert model.calls == [6]
    assert [r.tolist() for r in results] == [[10.0], [20.0, 20.0], [30.0, 30.0, 30.0]]


def test_endpoint_cli(tmp_path: Path, data: Any, fitted: Any) -> None:
    _register(heron.Client(), data, fitted)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    assert "revision 1" in run("endpoints", "create", "cancer", "--model", "cancer-clf@champion")
    out = run(
        "endpoints", "update", "cancer", "-m", "cancer-clf@champion:90", "-m",
        "cancer-clf@challenger:10", "--shadow", "cancer-clf/2", "--comment", "canary",
    )  # fmt: skip
    assert "revision 2" in out and "(90)" in out and "shadow: cancer-clf/2" in out
    assert "revision 3" in run("endpoints", "rollback", "cancer")
    shown = json.loads(run("endpoints", "show", "cancer", "--json"))
    assert shown["revision"] == 3 and shown["targets"][0]["weight"] == 100
    history = json.loads(run("endpoints", "show", "cancer", "--revisions", "--json"))
    assert [h["action"] for h in history] == ["create", "update", "rollback"]
    assert [e["name"] for e in json.loads(run("endpoints", "list", "--json"))] == ["cancer"]
    missing = runner.invoke(cli, ["endpoints", "create", "x", "--model", "nope@champion"])
    assert missing.exit_code == 3 and "nope" in missing.output


def _wait_until_logged(client: heron.Client, endpoint: str, ids: set[str]) -> None:
    deadline = time.monotonic() + 60
    while not ids <= {r.request_id for r in client.list_predictions(endpoint).items}:
        if time.monotonic() > deadline:
            raise AssertionError("the predictions were never logged")
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def heron_serve(
    endpoint: str, env: dict[str, str], *args: str, cwd: Path | None = None
) -> Iterator[str]:
    """``heron serve`` as a real process; yields its URL once /health/ready answers 200."""
    port = _free_port()
    heron_command = str(Path(sys.executable).parent / "heron")
    command = [heron_command, "serve", endpoint, "--port", str(port), *args]
    process = subprocess.Popen(
        command,
        env={**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(process.stdout.read().decode() if process.stdout else "")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health/ready").status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError("heron serve never became ready")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout:
            process.stdout.close()


def test_heron_serve_process_with_workers(tmp_path: Path, data: Any, fitted: Any) -> None:
    X, _ = data
    client = heron.Client()
    _register(client, data, fitted)
    client.create_endpoint("cancer", ["cancer-clf@champion"])
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"TMPDIR": str(scratch)}
    with heron_serve("cancer", env, "--workers", "2", cwd=tmp_path) as url:
        # A connection each, so the kernel hands them to either worker.
        answers = [
            httpx.post(f"{url}/predict", json={"instances": _records(X, 1, i)}).json()
            for i in range(10)
        ]
        assert {a["model_version"] for a in answers} == {"1"}
        # Whichever worker answers a scrape counts the requests of both, as one server.
        for _ in range(6):
            scrape = _samples(httpx.get(f"{url}/metrics").text)
            assert scrape["heron_requests_total"] == 10
            assert scrape["heron_workers"] == 2
            assert scrape["heron_request_latency_seconds_count"] == 10
            assert scrape["process_resident_memory_bytes"] > 50e6  # two Python processes
    assert list(scratch.glob("heron-metrics-*")) == []  # the metric files go with the server


def _samples(text: str) -> dict[str, float]:
    """Each sample name of a Prometheus scrape with its values summed over labels."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def test_heron_serve_writes_its_log_when_terminated(tmp_path: Path, data: Any, fitted: Any) -> None:
    """SIGTERM, what process managers send, ends the server as Ctrl-C does: the queue of
    the prediction log (flushed every 2 s by default) is written first."""
    X, _ = data
    client = heron.Client()
    _register(client, data, fitted)
    client.create_endpoint("cancer", ["cancer-clf@champion"])
    with heron_serve("cancer", {}, cwd=tmp_path) as url:  # terminated on exit
        ids = {
            httpx.post(f"{url}/predict", json={"instances": _records(X, 1, i)}).json()["request_id"]
            for i in range(5)
        }
    assert {r.request_id for r in client.list_predictions("cancer").items} == ids


def test_heron_serve_reports_what_stopped_the_load(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "heron"), "serve", "nowhere", "--port", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == heron.NotFound.exit_code
    assert "error:" in result.stderr and "nowhere" in result.stderr


@pytest.mark.postgres
def test_two_replicas_share_one_postgres_store(tmp_path: Path, data: Any, fitted: Any) -> None:
    if not PG_URL:
        pytest.skip("PostgreSQL tests need HERON_TEST_POSTGRES_URL")
    from heron.testing import postgres_schema

    X, _ = data
    with postgres_schema(PG_URL) as db_url:
        settings = heron_settings(tmp_path, db_url)
        client = embedded_client(settings)
        _register(client, data, fitted)
        client.create_endpoint("cancer", ["cancer-clf@champion"])
        env = {"HERON_DB_URL": db_url, "HERON_ARTIFACTS": settings.resolved_artifacts}
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        with (
            heron_serve("cancer", env, cwd=tmp_path / "a") as a,
            heron_serve("cancer", env, cwd=tmp_path / "b") as b,
        ):
            ids = {
                url: [
                    httpx.post(f"{url}/predict", json={"instances": _records(X, 1, i)}).json()[
                        "request_id"
                    ]
                    for i in range(5)
                ]
                for url in (a, b)
            }
            client.update_endpoint("cancer", targets=["cancer-clf/2"])
            for url in (a, b):
                _wait_for(url, lambda s: s["versions"] == ["cancer-clf/2"], "version 2")
            _wait_until_logged(client, "cancer", set(ids[a]))
            feedback = {"feedback": [{"request_id": ids[a][0], "label": 1}]}
            r = httpx.post(f"{b}/feedback", json=feedback)
            assert r.json() == {"accepted": 1, "unknown": []}
        logged = {r.request_id for r in client.list_predictions("cancer").items}
        assert set(ids[a]) <= logged and set(ids[b]) <= logged
        client.close()


@pytest.mark.parametrize(
    ("row", "column", "split"),
    [(99, "mean area", False), (0, "worst symmetry", False), (50, "mean radius", True)],
    ids=["records-last", "records-first", "split"],
)
def test_a_boolean_in_a_number_column_is_422(
    store: heron.Client, endpoint: str, data: Any, row: int, column: str, split: bool
) -> None:
    X, _ = data
    rows = _records(X, 100)
    rows[row][column] = row % 2 == 0
    body: dict[str, Any] = {"instances": rows}
    if split:
        columns = list(rows[0])
        body = {"dataframe_split": {"columns": columns, "data": [list(r.values()) for r in rows]}}
    with running(store, endpoint, log_predictions=False) as (url, _):
        r = httpx.post(f"{url}/predict", json=body)
        assert r.status_code == 422 and r.json()["error"]["field"] == column


def test_a_boolean_in_a_large_body_is_422(store: heron.Client, endpoint: str, data: Any) -> None:
    X, _ = data
    rows = _records(X, 100)
    rows[99]["mean area"] = False
    with running(store, endpoint, log_predictions=False) as (url, _):
        r = httpx.post(f"{url}/predict", json={"instances": rows})
        assert r.status_code == 422 and r.json()["error"]["field"] == "mean area"


def test_a_server_can_follow_a_heron_server_over_http(tmp_path: Path, data: Any, fitted: Any):
    """With HERON_URL instead of the stores, the server reads endpoints and models and
    writes its log through the REST API."""
    from heron.testing import http_client

    X, _ = data
    remote = http_client(heron_settings(tmp_path))
    try:
        _register(remote, data, fitted)
        remote.create_endpoint("cancer", ["cancer-clf@champion"])
        # Through a server, tokens are required by default and checked by that server.
        bearer = {"authorization": remote.transport.http.headers["authorization"]}  # type: ignore[attr-defined]
        with running(remote, "cancer") as (url, _):
            assert httpx.post(f"{url}/predict", json={"instances": []}).status_code == 401
            r = httpx.post(f"{url}/predict", json={"instances": _records(X, 2)}, headers=bearer)
            assert r.status_code == 200 and r.json()["model_version"] == "1"
        logged = remote.list_predictions("cancer").items
        assert [x.request_id for x in logged] == [r.json()["request_id"]]
        assert logged[0].inputs == {"instances": _records(X, 2)}
    finally:
        remote.close()


def test_request_ids_are_unique_and_sort_by_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # Ids that sort by time append to the log's request-id index instead of landing on a
    # random page each; the random part keeps them unique, across pool refills too.
    make, now = RequestIds(), [1_700_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    first = [make() for _ in range(10_000)]  # more than one pool of randomness
    now[0] += 0.001
    later = make()
    assert len(set(first)) == len(first)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in first)
    assert {i[:12] for i in first} == {f"{1_700_000_000_000:012x}"}
    assert later > max(first)


def test_logged_inputs_keep_to_a_byte_budget() -> None:
    logger = PredictionLogger("ep", [], input_bytes_per_second=1000)
    kept = [logger.keep_inputs(b"x" * 300) is not None for _ in range(5)]
    assert kept == [True, True, True, False, False]  # one second of burst, then refused
    assert logger.keep_inputs(b"x" * 2000) is None
    unlimited = PredictionLogger("ep", [], input_bytes_per_second=None)
    assert all(unlimited.keep_inputs(b"x" * 100_000) for _ in range(50))
