"""Tracking through the client, over both transports and both metadata backends."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import heron
from heron import MetricBatch, MetricPoint, RunStatus
from heron._run import MetricBuffer


def test_experiment_create_get_list(client: heron.Client) -> None:
    created = client.create_experiment("churn", description="weekly churn", tags={"team": "ds"})
    assert client.get_experiment("churn") == created
    assert [e.name for e in client.list_experiments().items] == ["churn"]
    with pytest.raises(heron.AlreadyExists):
        client.create_experiment("churn")


def test_run_lifecycle_records_context(client: heron.Client) -> None:
    with client.start_run(experiment="exp", name="first", tags={"team": "ds"}) as run:
        run.log_params({"C": 0.5, "kernel": "rbf"})
        run.set_tag("stage", "dev")
    stored = client.get_run(run.id)
    assert stored.status == RunStatus.FINISHED and stored.end_time is not None
    assert stored.name == "first" and stored.experiment == "exp"
    assert stored.params == {"C": "0.5", "kernel": "rbf"}
    assert stored.tags == {"team": "ds", "stage": "dev"}
    assert stored.user and stored.host and stored.entry_point


def test_block_that_raises_marks_run_failed(client: heron.Client) -> None:
    with pytest.raises(ZeroDivisionError), client.start_run(experiment="exp") as run:
        run.log_metric("loss", 1.0)
        _ = 1 / 0
    stored = client.get_run(run.id)
    assert stored.status == RunStatus.FAILED
    assert stored.metrics == {"loss": 1.0}  # what was logged before the failure is kept


def test_metric_series_and_latest_value(client: heron.Client) -> None:
    with client.start_run(experiment="exp") as run:
        for step in range(5):
            run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 10}, step=step)
        run.log_metric("loss", 9.0, step=1)  # an old step does not replace the latest value
    history = client.get_metric_history(run.id, "loss")
    assert [(p.step, p.value) for p in history] == [
        (0, 1.0),
        (1, 0.5),
        (1, 9.0),
        (2, 1 / 3),
        (3, 0.25),
        (4, 0.2),
    ]
    assert client.get_run(run.id).metrics == {"loss": 0.2, "acc": 0.4}


def test_metric_keys_with_slashes(client: heron.Client) -> None:
    with client.start_run(experiment="exp") as run:
        run.log_metric("val/loss", 0.3)
    assert [p.value for p in client.get_metric_history(run.id, "val/loss")] == [0.3]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_metrics_are_refused_at_the_call(client: heron.Client, value: float) -> None:
    with client.start_run(experiment="exp") as run:
        run.log_metric("ok", 1.0)
        with pytest.raises(heron.InvalidInput) as info:
            run.log_metric("loss", value)
        assert info.value.field == "metrics.loss"
    assert client.get_run(run.id).metrics == {"ok": 1.0}


def test_a_bad_point_in_a_batch_stores_nothing_of_the_batch(client: heron.Client) -> None:
    with client.start_run(experiment="exp") as run:
        points = [MetricPoint(key="a", value=1.0), MetricPoint(key="b", value=math.nan)]
        with pytest.raises(heron.InvalidInput):
            client.log_metrics(run.id, points)
    assert client.get_run(run.id).metrics == {}
    assert client.get_metric_history(run.id, "a") == []


def test_params_cannot_change_once_logged(client: heron.Client) -> None:
    with client.start_run(experiment="exp") as run:
        run.log_param("C", 1.0)
        run.log_param("C", 1.0)  # the same value again is fine
        with pytest.raises(heron.Conflict) as info:
            run.log_params({"C": 2.0, "new": 1})
        assert info.value.field == "params.C"
    assert client.get_run(run.id).params == {"C": "1.0"}  # "new" was not half-written


def _batch(*values: float) -> MetricBatch:
    return MetricBatch(keys=["a"] * len(values), values=list(values), steps=[0] * len(values))


def test_metric_buffer_flushes_by_count_and_on_flush() -> None:
    sent: list[MetricBatch] = []
    buffer = MetricBuffer(sent.append, flush_every=3, flush_seconds=0)
    buffer.add(_batch(0.0, 1.0))
    assert sent == []
    buffer.add_point("a", 2.0, 0, 1_700_000_000_000)
    assert [b.values for b in sent] == [[0.0, 1.0, 2.0]]
    assert sent[0].timestamps is not None and sent[0].timestamps[2] == 1_700_000_000_000
    buffer.add(_batch(3.0))
    buffer.flush()
    assert [b.values for b in sent] == [[0.0, 1.0, 2.0], [3.0]]
    # Every point carries its own time, taken when it was added.
    assert all(len(b.timestamps or []) == len(b.keys) for b in sent)


def test_metric_buffer_flushes_after_its_interval() -> None:
    import threading

    done = threading.Event()
    sent: list[MetricBatch] = []

    def send(batch: MetricBatch) -> None:
        sent.append(batch)
        done.set()

    buffer = MetricBuffer(send, flush_every=1000, flush_seconds=0.05)
    buffer.add(_batch(1.0))
    assert done.wait(5), "the timer never flushed"
    assert sent[0].values == [1.0]


def test_metric_batch_logs_like_points(client: heron.Client) -> None:
    run = client.start_run(experiment="exp")
    client.log_metrics(
        run.id,
        MetricBatch(
            keys=["loss", "acc", "loss"],
            values=[0.5, 0.8, 0.25],
            steps=[0, 0, 1],
            timestamps=[1_700_000_000_000, 1_700_000_000_000, 1_700_000_001_000],
        ),
    )
    history = client.get_metric_history(run.id, "loss")
    assert [(p.step, p.value) for p in history] == [(0, 0.5), (1, 0.25)]
    assert history[1].timestamp is not None
    assert history[1].timestamp.timestamp() == 1_700_000_001
    assert client.get_run(run.id).metrics == {"loss": 0.25, "acc": 0.8}


@pytest.mark.parametrize(
    ("batch", "field"),
    [
        (MetricBatch(keys=["a", "b"], values=[1.0], steps=[0, 0]), "metrics.values"),
        (MetricBatch(keys=["a"], values=[1.0], steps=[0, 1]), "metrics.steps"),
        (MetricBatch(keys=["a"], values=[1.0], steps=[0], timestamps=[]), "metrics.timestamps"),
        (MetricBatch(keys=["a", "b"], values=[1.0, math.inf], steps=[0, 0]), "metrics.b"),
        (MetricBatch(keys=["a", "../b"], values=[1.0, 2.0], steps=[0, 0]), "metrics.key"),
    ],
    ids=["values", "steps", "timestamps", "non-finite", "bad-key"],
)
def test_a_bad_metric_batch_is_refused_naming_the_field(
    client: heron.Client, batch: MetricBatch, field: str
) -> None:
    run = client.start_run(experiment="exp")
    with pytest.raises(heron.InvalidInput) as info:
        client.log_metrics(run.id, batch)
    assert info.value.field == field
    assert client.get_run(run.id).metrics == {}


@pytest.mark.parametrize("step", [1.5, "x", None], ids=["fraction", "text", "none"])
def test_a_step_that_is_no_integer_is_refused(client: heron.Client, step: object) -> None:
    with client.start_run(experiment="exp") as run:
        run.log_metric("a", 1.0, step=3.0)  # type: ignore[arg-type]  # a whole float is fine
        with pytest.raises(heron.InvalidInput) as info:
            run.log_metric("a", 2.0, step=step)  # type: ignore[arg-type]
        assert info.value.field == "step"
    assert [(p.step, p.value) for p in client.get_metric_history(run.id, "a")] == [(3, 1.0)]


def test_metrics_are_durable_after_flush(client: heron.Client) -> None:
    with client.start_run(experiment="exp") as run:
        for i in range(10):
            run.log_metric("x", float(i), step=i)
        run.flush()
        assert len(client.get_metric_history(run.id, "x")) == 10


def test_search_runs_filter_order_and_pages(client: heron.Client) -> None:
    ids = {}
    for c in (0.1, 1.0, 10.0):
        with client.start_run(experiment="search") as run:
            run.log_param("C", c)
            run.log_metric("accuracy", 0.8 + c / 100)
        ids[c] = run.id
    with client.start_run(experiment="other") as run:
        run.log_metric("accuracy", 0.99)
    found = client.search_runs("metrics.accuracy > 0.805", experiments=["search"])
    assert {r.id for r in found.items} == {ids[1.0], ids[10.0]}
    found = client.search_runs("metrics.accuracy > 0.8 and params.C = '1.0'")
    assert [r.id for r in found.items] == [ids[1.0]]
    ordered = client.search_runs(experiments=["search"], order_by=["metrics.accuracy DESC"])
    assert [r.id for r in ordered.items] == [ids[10.0], ids[1.0], ids[0.1]]
    first = client.search_runs(experiments=["search"], order_by=["params.C"], max_results=2)
    assert first.next_page_token is not None
    second = client.search_runs(
        experiments=["search"],
        order_by=["params.C"],
        max_results=2,
        page_token=first.next_page_token,
    )
    assert [r.id for r in first.items + second.items] == [ids[0.1], ids[1.0], ids[10.0]]
    assert second.next_page_token is None


@pytest.mark.parametrize(
    ("filter_", "token"),
    [
        ("metrics.accuracy >> 0.9", ">>"),
        ("metric.accuracy > 0.9", "metric."),
        ("metrics.accuracy > high", "high"),
        ("params.C = '1.0' and", "end"),
    ],
    ids=["bad-operator", "bad-prefix", "not-a-number", "dangling-and"],
)
def test_malformed_filter_names_the_bad_token(
    client: heron.Client, filter_: str, token: str
) -> None:
    with pytest.raises(heron.InvalidInput) as info:
        client.search_runs(filter_)
    assert info.value.field == "filter"
    assert token in info.value.message


def test_artifacts_file_and_folder_round_trip(client: heron.Client, tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    report.write_text("all good\n")
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("x\n1\n")
    (folder / "sub" / "b.txt").write_text("b")
    with client.start_run(experiment="exp") as run:
        run.log_artifact(report)
        run.log_artifact(folder, path="figures/plots")
    entries = {a.path: a for a in client.list_artifacts(run.id)}
    assert set(entries) == {"report.txt", "figures/plots"}
    assert entries["figures/plots"].is_folder
    out = tmp_path / "out"
    assert client.download_artifact(run.id, "report.txt", out).read_text() == "all good\n"
    fetched = client.download_artifact(run.id, "figures/plots", out)
    assert (fetched / "sub" / "b.txt").read_text() == "b"


@pytest.mark.parametrize(
    "path",
    ["../escape.txt", "/etc/passwd", "a/../../b", "a\\b", "%2e%2e/x", "%252e%252e/x", "a\x00b"],
    ids=["dotdot", "absolute", "nested-dotdot", "backslash", "encoded", "double-encoded", "nul"],
)
def test_artifact_paths_outside_the_run_are_refused(
    client: heron.Client, tmp_path: Path, path: str
) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x")
    with client.start_run(experiment="exp") as run, pytest.raises(heron.InvalidInput):
        run.log_artifact(source, path=path)
    assert client.list_artifacts(run.id) == []


def test_folder_with_symlink_out_of_it_is_refused(client: heron.Client, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "ok.txt").write_text("ok")
    (folder / "link").symlink_to("/etc/passwd")
    with client.start_run(experiment="exp") as run, pytest.raises(heron.InvalidInput):
        run.log_artifact(folder)
    assert client.list_artifacts(run.id) == []


def test_fluent_api_uses_the_active_run(fluent: heron.Client) -> None:
    with pytest.raises(heron.InvalidInput):
        heron.log_metric("x", 1.0)
    with heron.start_run(experiment="fluent") as run:
        heron.log_param("lr", 0.1)
        heron.log_metric("x", 2.0)
        heron.set_tag("t", "v")
        assert heron.active_run() is run
    assert heron.active_run() is None
    stored = fluent.get_run(run.id)
    assert (stored.params, stored.metrics, stored.tags) == ({"lr": "0.1"}, {"x": 2.0}, {"t": "v"})
