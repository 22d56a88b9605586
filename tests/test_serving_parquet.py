"""The sampled raw prediction log as Parquet files in the artifact store: the sink, the file
records and their route, the client's reader, ``heron serve --parquet-log`` end to end and
the ``heron predictions`` commands."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import heron
from heron._cli import app as cli
from heron._errors import HeronError, InvalidInput, NotFound
from heron._serving._log import Entry, PredictionLogger
from heron._serving._parquet import COLUMNS, ParquetSink, sampled
from heron._transport import EmbeddedTransport, HttpTransport
from heron.testing import embedded_client, heron_settings, prediction_server

X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
T0 = 1_790_000_000.0  # seconds since the epoch, in November 2026


@pytest.fixture
def served(client: heron.Client) -> heron.Client:
    """``clf`` version 1 behind endpoint ``ep``, on each transport and backend."""
    client.log_model(LogisticRegression().fit(X, [0, 0, 1, 1]), "clf", input_example=X.head(2))
    client.create_endpoint("ep", ["clf/1"])
    return client


@pytest.fixture
def local(tmp_path: Path) -> Iterator[heron.Client]:
    """An embedded SQLite store with ``clf`` behind ``ep``: for what transports don't change."""
    client = embedded_client(heron_settings(tmp_path))
    client.log_model(LogisticRegression().fit(X, [0, 0, 1, 1]), "clf", input_example=X.head(2))
    client.create_endpoint("ep", ["clf/1"])
    yield client
    client.close()


def _entry(i: int, *, shadow: bool = False, inputs: bytes | None = None, **kw: Any) -> Entry:
    body = inputs if inputs is not None else json.dumps({"instances": [{"a": i, "b": 0}]}).encode()
    return Entry(
        f"{i:032x}",
        1,
        "clf",
        2 if shadow else 1,
        shadow,
        T0 + i,
        1.5,
        1,
        None if shadow else body,
        b"[%d]" % (i % 2),
        **kw,
    )


def _ids(client: heron.Client) -> list[str]:
    return list(client.read_prediction_log("ep")["request_id"])


# --- the sink ------------------------------------------------------------------------------


def test_a_batch_becomes_one_parquet_file_found_and_read_over_both_transports(
    served: heron.Client, tmp_path: Path
) -> None:
    body = b'{"instances": [{"a": 9, "b": 1}]}'
    entries = [_entry(0), _entry(0, shadow=True), _entry(1), _entry(2)]
    # Inputs the raw log did not keep, but the request path kept the body for this sink.
    entries.append(_entry(3)._replace(inputs=None, body=body))
    sink = ParquetSink(served, sample=1.0, max_rows=100)
    sink.write("ep", entries)
    assert served.list_prediction_log_files("ep").items == []  # still open
    sink.close()

    [file] = served.list_prediction_log_files("ep").items
    assert (file.endpoint, file.rows, file.size > 0) == ("ep", 5, True)
    assert (file.first_time, file.last_time) == (_at(T0), _at(T0 + 3))
    table = pq.read_table(served.transport.fetch_blob(file.digest, tmp_path / "log.parquet"))
    assert tuple(table.column_names) == COLUMNS
    assert table.schema.field("time").type == pa.timestamp("ms", tz="UTC")
    rows = table.to_pylist()
    assert [(r["request_id"], r["version"], r["shadow"]) for r in rows] == [
        (f"{0:032x}", 1, False),
        (f"{0:032x}", 2, True),
        (f"{1:032x}", 1, False),
        (f"{2:032x}", 1, False),
        (f"{3:032x}", 1, False),
    ]
    assert json.loads(rows[0]["inputs"]) == {"instances": [{"a": 0, "b": 0}]}
    assert rows[1]["inputs"] is None  # the primary row of the request has them
    assert json.loads(rows[4]["inputs"]) == {"instances": [{"a": 9, "b": 1}]}
    assert [json.loads(r["outputs"]) for r in rows] == [[0], [0], [1], [0], [1]]
    assert rows[2]["time"] == _at(T0 + 1) and rows[2]["latency_ms"] == 1.5
    assert {(r["endpoint"], r["model"], r["revision"], r["rows"]) for r in rows} == {
        ("ep", "clf", 1, 1)
    }

    frame = served.read_prediction_log("ep")
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 5
    window = served.read_prediction_log("ep", since=_at(T0 + 1), until=_at(T0 + 3))
    assert list(window["request_id"]) == [f"{1:032x}", f"{2:032x}"]
    assert served.read_prediction_log("ep", since=_at(T0 + 10)).empty


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def test_the_sample_is_by_request_id_and_keeps_shadows_with_their_request(
    local: heron.Client,
) -> None:
    ids = [f"{i:032x}" for i in range(10_000)]
    share = sum(sampled(i, 0.1) for i in ids) / len(ids)
    assert 0.08 < share < 0.12
    assert not any(sampled(i, 0.0) for i in ids) and all(sampled(i, 1.0) for i in ids)
    assert [sampled(i, 0.1) for i in ids] == [sampled(i, 0.1) for i in ids]  # deterministic

    entries = [e for i in range(200) for e in (_entry(i), _entry(i, shadow=True))]
    sink = ParquetSink(local, sample=0.3)
    sink.write("ep", entries)
    sink.close()
    chosen = [f"{i:032x}" for i in range(200) if sampled(f"{i:032x}", 0.3)]
    assert 30 < len(chosen) < 90
    assert _ids(local) == [i for i in chosen for _ in range(2)]


def test_files_roll_every_n_rows_and_at_close(local: heron.Client) -> None:
    sink = ParquetSink(local, sample=1.0, max_rows=4)
    sink.write("ep", [_entry(i) for i in range(3)])
    sink.write("ep", [_entry(i) for i in range(3, 10)])
    assert [f.rows for f in local.list_prediction_log_files("ep").items] == [4, 4]
    assert sink.pending == 2
    sink.close()
    files = local.list_prediction_log_files("ep").items
    assert [f.rows for f in files] == [4, 4, 2]
    assert [f.first_time for f in files] == [_at(T0), _at(T0 + 4), _at(T0 + 8)]
    assert _ids(local) == [f"{i:032x}" for i in range(10)]
    page = local.list_prediction_log_files("ep", max_results=2)
    rest = local.list_prediction_log_files("ep", page_token=page.next_page_token)
    assert [f.id for f in page.items + rest.items] == [f.id for f in files]
    assert rest.next_page_token is None
    after = local.list_prediction_log_files("ep", since=_at(T0 + 6))
    assert [f.rows for f in after.items] == [4, 2]


def test_the_flusher_rolls_an_old_file_when_no_request_comes(local: heron.Client) -> None:
    sink = ParquetSink(local, sample=1.0, max_seconds=3600)
    logger = PredictionLogger("ep", [sink], interval=0.01)
    logger.put(_entry(0))
    logger.flush()
    assert sink.pending == 1
    logger.start()
    try:
        sink.max_seconds = 0  # the file is old now: the next wake-up rolls it
        _eventually(lambda: bool(local.list_prediction_log_files("ep").items))
    finally:
        logger.close()
    assert _ids(local) == [f"{0:032x}"]


def _eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def test_a_failing_artifact_store_loses_the_file_counted(
    local: heron.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: Path) -> str:
        raise OSError("the artifact store is down")

    failed: list[int] = []
    sink = ParquetSink(local, sample=1.0, max_rows=2)
    logger = PredictionLogger("ep", [sink], on_error=failed.append)
    monkeypatch.setattr(local.transport, "put_blob", broken)
    for i in range(3):
        logger.put(_entry(i))
    logger.flush()
    assert failed == [3] and sink.pending == 0  # the half-written file was dropped
    monkeypatch.undo()
    logger.put(_entry(3))
    logger.close()
    assert _ids(local) == [f"{3:032x}"]


# --- the record route ------------------------------------------------------------------


GOOD = {"rows": 1, "first_time": _at(T0), "last_time": _at(T0 + 1)}
BAD_RECORDS = [
    ({"digest": "not-a-digest"}, InvalidInput, "digest"),
    ({"digest": "0" * 64}, NotFound, "digest"),  # not in the artifact store
    ({"rows": 0}, InvalidInput, "rows"),
    ({"rows": 2**31}, InvalidInput, "rows"),
    ({"last_time": _at(T0 - 1)}, InvalidInput, "last_time"),
    ({"endpoint": "nope"}, NotFound, "endpoint"),
]


@pytest.mark.parametrize(
    ("change", "error", "field"),
    BAD_RECORDS,
    ids=["digest", "unknown-blob", "no-rows", "too-many-rows", "backwards", "no-endpoint"],
)
def test_bad_file_records_are_refused_naming_the_field(
    served: heron.Client, tmp_path: Path, change: dict[str, Any], error: type, field: str
) -> None:
    blob = tmp_path / "f.parquet"
    blob.write_bytes(b"PAR1")
    args = {"endpoint": "ep", "digest": served.transport.put_blob(blob), **GOOD, **change}
    with pytest.raises(error) as raised:
        served._call("record_prediction_log_file", **args)
    assert isinstance(raised.value, HeronError) and raised.value.field == field
    assert 400 <= raised.value.status_code < 500
    assert served.list_prediction_log_files("ep").items == []


def test_a_record_of_the_wrong_type_is_422_naming_the_field(served: heron.Client) -> None:
    transport = served.transport
    if not isinstance(transport, HttpTransport):
        pytest.skip("the REST route's own validation")
    for body, field in [
        ({"digest": "0" * 64, "rows": "many", **_json_times()}, "rows"),
        ({"digest": "0" * 64, "rows": 1, "first_time": "when", "last_time": "then"}, None),
        ({"rows": 1, **_json_times()}, "digest"),
    ]:
        r = transport.http.post("/api/v1/endpoints/ep/prediction-log-files", json=body)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["field"] == field or (field is None and "time" in error["field"])


def _json_times() -> dict[str, str]:
    return {"first_time": _at(T0).isoformat(), "last_time": _at(T0).isoformat()}


# --- heron serve --parquet-log end to end ----------------------------------------------


def running(client: heron.Client, **options: Any) -> Any:
    return prediction_server(client, "ep", **{"parquet_log": True, **options})


def _headers(client: heron.Client) -> dict[str, str]:
    """Through a Heron server the prediction server checks tokens: send the client's."""
    transport = client.transport
    if isinstance(transport, EmbeddedTransport):
        return {}
    assert isinstance(transport, HttpTransport)
    return {"authorization": transport.http.headers["authorization"]}


def test_served_predictions_end_up_in_the_parquet_log(served: heron.Client) -> None:
    split = {"dataframe_split": {"columns": ["a", "b"], "data": [[3.0, 0.0], [0.0, 1.0]]}}
    bodies = [{"instances": X.head(2).to_dict(orient="records")}, split]
    # The raw log keeps no inputs (--log-sample 0); the Parquet log keeps its sample's.
    with running(served, log_sample=0.0, parquet_sample=1.0) as (url, _):
        answers = [
            httpx.post(f"{url}/predict", json=b, headers=_headers(served)).json() for b in bodies
        ]
    frame = served.read_prediction_log("ep")
    assert list(frame["request_id"]) == [a["request_id"] for a in answers]
    assert [json.loads(x) for x in frame["inputs"]] == bodies
    assert [json.loads(x) for x in frame["outputs"]] == [a["predictions"] for a in answers]
    assert list(frame["rows"]) == [2, 2] and set(frame["model"]) == {"clf"}
    assert frame["time"].dt.tz is not None and (frame["latency_ms"] > 0).all()
    assert [r.inputs for r in served.list_predictions("ep").items] == [None, None]


def test_a_failing_artifact_store_never_breaks_serving(
    local: heron.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: Path) -> Any:
        raise OSError("the artifact store is down")

    with running(local, parquet_sample=1.0, parquet_rows=1) as (url, server):
        monkeypatch.setattr(local.transport.services.artifacts, "put_file", broken)  # type: ignore[attr-defined]
        for _ in range(3):
            r = httpx.post(f"{url}/predict", json={"instances": X.head(1).to_dict("records")})
            assert r.status_code == 200, r.text
    assert 'heron_prediction_log_write_failed_total{endpoint="ep"} 3.0' in (
        server.metrics.render().decode()
    )
    assert local.list_prediction_log_files("ep").items == []
    assert len(local.list_predictions("ep").items) == 3  # the other sinks wrote their batches


def test_without_the_flag_nothing_is_written(local: heron.Client) -> None:
    with running(local, parquet_log=False) as (url, server):
        assert httpx.post(f"{url}/predict", json={"instances": [{"a": 1, "b": 0}]}).is_success
        assert not any(isinstance(s, ParquetSink) for s in server.logger.sinks)  # type: ignore[union-attr]
    assert local.list_prediction_log_files("ep").items == []


# --- heron predictions ---------------------------------------------------------------------


def test_predictions_files_and_export(local: heron.Client, tmp_path: Path) -> None:
    sink = ParquetSink(local, sample=1.0, max_rows=2)
    sink.write("ep", [_entry(i) for i in range(3)])
    sink.close()
    runner = CliRunner()
    listed = runner.invoke(cli, ["predictions", "files", "ep", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [f["rows"] for f in json.loads(listed.stdout)] == [2, 1]
    since = _at(T0 + 1).isoformat()
    out = tmp_path / "out.parquet"
    exported = runner.invoke(cli, ["predictions", "export", "ep", str(out), "--since", since])
    assert exported.exit_code == 0, exported.output
    assert list(pd.read_parquet(out)["request_id"]) == [f"{1:032x}", f"{2:032x}"]
    missing = runner.invoke(cli, ["predictions", "files", "ep", "--since", "yesterday"])
    assert missing.exit_code == 2 and "since" in missing.stderr


def test_serve_takes_the_parquet_flags() -> None:
    result = CliRunner().invoke(cli, ["serve", "ep", "--parquet-sample", "1.5"])
    assert result.exit_code == 2 and "--parquet-sample" in result.output
