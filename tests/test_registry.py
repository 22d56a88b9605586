"""Model registry and datasets through the client, over both transports and backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import heron
from heron import ModelCardFields, ModelVersionStatus


@pytest.fixture(scope="module")
def trained() -> tuple[LogisticRegression, pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    y = pd.Series((X["a"] + X["b"] > 0).astype(int), name="y")
    return LogisticRegression().fit(X, y), X, y


def _register(client: heron.Client, trained, name: str = "clf", **kwargs) -> heron.ModelVersion:
    model, X, _ = trained
    with client.start_run(experiment="reg") as run:
        run.log_param("C", 1.0)
        run.log_metric("accuracy", 0.9)
        return run.log_model(model, name=name, input_example=X.head(3), **kwargs)


def test_versions_number_up_and_load_by_version_and_alias(client: heron.Client, trained) -> None:
    model, X, _ = trained
    v1 = _register(client, trained)
    v2 = _register(client, trained)
    assert (v1.version, v2.version) == (1, 2)
    assert v1.flavor == "sklearn" and v1.signature is not None
    assert [c["name"] for c in v1.signature["inputs"]] == ["a", "b", "c"]
    client.set_alias("clf", "champion", 1)
    client.set_alias("clf", "challenger", 2)
    assert client.get_registered_model("clf").aliases == {"champion": 1, "challenger": 2}
    expected = model.predict(X.head(4))
    for uri in ("models:/clf/1", "models:/clf@champion", "models:/clf@challenger"):
        np.testing.assert_array_equal(client.load_model(uri).predict(X.head(4)), expected)
    assert client.resolve_model("models:/clf@challenger").version == 2


def test_alias_moves_are_recorded_with_actor(client: heron.Client, trained) -> None:
    _register(client, trained)
    _register(client, trained)
    client.set_alias("clf", "champion", 1)
    client.set_alias("clf", "champion", 2)
    client.delete_alias("clf", "champion")
    changes = client.list_alias_changes("clf", "champion")
    assert [(c.from_version, c.to_version) for c in changes] == [(None, 1), (1, 2), (2, None)]
    assert all(c.actor for c in changes)
    with pytest.raises(heron.NotFound):
        client.resolve_model("models:/clf@champion")


def test_delete_refused_while_an_alias_points_at_it(client: heron.Client, trained) -> None:
    _register(client, trained)
    client.set_alias("clf", "champion", 1)
    with pytest.raises(heron.Conflict) as info:
        client.delete_model_version("clf", 1)
    assert "champion" in info.value.message
    with pytest.raises(heron.Conflict):
        client.archive_model_version("clf", 1)
    assert client.get_model_version("clf", 1).status == ModelVersionStatus.READY
    client.delete_alias("clf", "champion")
    client.delete_model_version("clf", 1)
    with pytest.raises(heron.NotFound):
        client.get_model_version("clf", 1)


def test_archived_versions_cannot_take_an_alias(client: heron.Client, trained) -> None:
    _register(client, trained)
    archived = client.archive_model_version("clf", 1)
    assert archived.status == ModelVersionStatus.ARCHIVED
    with pytest.raises(heron.Conflict):
        client.set_alias("clf", "champion", 1)


def test_lineage_links_run_data_and_code(client: heron.Client, trained) -> None:
    model, X, y = trained
    with client.start_run(experiment="reg") as run:
        run.log_param("C", 1.0)
        dv = run.log_dataset(X.assign(y=y), name="training")
        mv = run.log_model(model, name="clf", input_example=X.head(2))
    lineage = client.get_lineage("clf", mv.version)
    assert lineage.run is not None and lineage.run.id == run.id
    assert [(d.name, d.version, d.digest) for d in lineage.datasets] == [
        ("training", dv.version, dv.digest)
    ]
    assert lineage.git_commit == client.get_run(run.id).git_commit


def test_model_card_renders_purpose_params_data_and_metrics(client: heron.Client, trained) -> None:
    card_fields = ModelCardFields(
        description="Flags risky loans.",
        intended_use="Pre-screening only.",
        limitations="Not validated on applicants under 21.",
    )
    mv = _register(client, trained, card=card_fields)
    card = client.get_model_card("clf", mv.version)
    for text in (
        "Flags risky loans.",
        "Pre-screening only.",
        "under 21",
        "| C | 1.0 |",
        "accuracy",
    ):
        assert text in card
    updated = client.update_model_version(
        "clf",
        mv.version,
        tags={"reviewed": "yes"},
        card=card_fields.model_copy(update={"limitations": "None known."}),
    )
    assert updated.tags == {"reviewed": "yes"}
    assert "None known." in client.get_model_card("clf", mv.version)


def test_register_model_from_a_folder(client: heron.Client, trained, tmp_path: Path) -> None:
    from heron._models import save_model

    model, X, _ = trained
    save_model(model, tmp_path / "m", input_example=X.head(2))
    mv = client.register_model(tmp_path / "m", "from-folder")
    assert mv.run_id is None and mv.version == 1
    np.testing.assert_array_equal(
        client.load_model("models:/from-folder/1").predict(X.head(3)), model.predict(X.head(3))
    )


@pytest.mark.parametrize(
    "uri",
    ["clf", "models:/clf", "models:/clf/x", "models:/clf@", "models://clf/1", "runs:/abc/model"],
    ids=["bare-name", "no-version", "non-numeric", "empty-alias", "double-slash", "other-scheme"],
)
def test_malformed_model_uris(client: heron.Client, uri: str) -> None:
    with pytest.raises(heron.InvalidInput) as info:
        client.load_model(uri)
    assert info.value.field == "uri"


def test_tampered_model_is_refused(client: heron.Client, trained, tmp_path: Path) -> None:
    mv = _register(client, trained)
    folder = client.model_folder(mv)
    target = next(p for p in folder.iterdir() if p.suffix in (".joblib", ".pkl"))
    target.write_bytes(b"not the model")
    with pytest.raises(heron.IntegrityError) as info:
        client.load_model("models:/clf/1")
    assert target.name in str(info.value)


# --- datasets --------------------------------------------------------------------------


def test_same_content_same_version(client: heron.Client) -> None:
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    v1 = client.log_dataset(frame, name="tiny")
    again = client.log_dataset(frame.copy(), name="tiny")
    changed = client.log_dataset(frame.assign(x=[1, 2, 4]), name="tiny")
    assert (v1.version, again.version, changed.version) == (1, 1, 2)
    assert v1.digest == again.digest != changed.digest
    assert [v.version for v in client.list_dataset_versions("tiny")] == [1, 2]
    assert client.get_dataset("tiny").latest_version == 2


def test_dataset_schema_profile_and_data(client: heron.Client) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, None, 4.0], "city": ["a", "b", "a", "c"]})
    dv = client.log_dataset(frame, name="cities")
    assert dv.row_count == 4
    assert [(c.name, c.dtype) for c in dv.columns] == [
        ("x", "float64"),
        ("city", str(frame.dtypes["city"])),
    ]
    assert dv.profile  # the column profile monitoring reuses
    pd.testing.assert_frame_equal(client.load_dataset("cities", dv.version), frame)
    assert client.get_dataset_version("cities").version == dv.version


def test_dataset_from_a_csv_path(client: heron.Client, tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    pd.DataFrame({"a": [1, 2], "b": [3, 4]}).to_csv(path, index=False)
    dv = client.log_dataset(path, name="from-csv")
    assert dv.row_count == 2 and dv.source == str(path.resolve())


@pytest.mark.parametrize(
    ("data", "error"),
    [("missing.csv", heron.NotFound), (42, heron.InvalidInput), ("notes.txt", heron.InvalidInput)],
    ids=["missing-file", "not-a-frame", "unknown-format"],
)
def test_bad_dataset_inputs(client: heron.Client, tmp_path: Path, data, error) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(error):
        client.log_dataset(data, name="bad")
    with pytest.raises(heron.NotFound):
        client.get_dataset("bad")
