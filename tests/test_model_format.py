"""The model folder format, its flavors and signature validation."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from heron._errors import AlreadyExists, IntegrityError, InvalidInput, NotFound, PermissionDenied
from heron._models import (
    FLAVORS,
    MANIFEST_NAME,
    ColumnSpec,
    LoadedModel,
    Signature,
    frame_from_payload,
    infer_signature,
    load_model,
    read_manifest,
    register_flavor,
    save_model,
    unpack_payload,
    verify_model,
)

# -- fixtures and helper models -------------------------------------------------------------


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def classifier(cancer: tuple[pd.DataFrame, pd.Series]) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = cancer
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)


class SumModel:
    """A python-function model: the row sums of its numeric input, doubled."""

    def predict(self, data: pd.DataFrame) -> np.ndarray:
        return data.to_numpy(dtype=float).sum(axis=1) * 2


class Tripwire:
    """Unpickling it writes a marker file, so a test can tell whether it was ever loaded."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def predict(self, data: Any) -> np.ndarray:
        return np.zeros(len(data))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_spring_tripwire, (self.marker,))


def _spring_tripwire(marker: str) -> Tripwire:
    Path(marker).write_text("unpickled")
    return Tripwire(marker)


def test_package_exports_are_pinned() -> None:
    import heron._models

    assert heron._models.__all__ == [
        "FLAVORS",
        "FORMAT_VERSION",
        "MANIFEST_NAME",
        "PICKLE_SERIALIZATIONS",
        "ColumnSpec",
        "Flavor",
        "LoadedModel",
        "ModelManifest",
        "ObjectPredictor",
        "OutputSpec",
        "Predictor",
        "SaveResult",
        "Signature",
        "frame_from_payload",
        "get_flavor",
        "infer_signature",
        "load_model",
        "read_manifest",
        "register_flavor",
        "save_model",
        "unpack_payload",
        "verify_model",
    ]


# -- round trips ----------------------------------------------------------------------------


def test_sklearn_roundtrip(tmp_path: Path, cancer: Any, classifier: Any) -> None:
    import sklearn

    X, _ = cancer
    manifest = save_model(classifier, tmp_path / "m", input_example=X.head(5), metadata={"a": 1})

    assert manifest.flavor == "sklearn"
    assert manifest.serialization == "joblib"
    assert f"scikit-learn=={sklearn.__version__}" in manifest.requirements
    assert {"python", "scikit-learn", "numpy"} <= set(manifest.library_versions)
    assert set(manifest.files) == {"model.joblib", "input_example.json"}
    assert all(len(digest) == 64 for digest in manifest.files.values())
    assert manifest.metadata == {"a": 1}
    on_disk = yaml.safe_load((tmp_path / "m" / MANIFEST_NAME).read_text())
    assert on_disk["flavor"] == "sklearn"
    assert read_manifest(tmp_path / "m") == manifest

    model = load_model(tmp_path / "m")
    assert model.flavor == "sklearn"
    assert model.manifest == manifest
    assert model.raw.__class__ is classifier.__class__
    expected = classifier.predict(X.head(10))
    records = X.head(10).to_dict(orient="records")
    np.testing.assert_array_equal(model.predict(X.head(10)), expected)
    np.testing.assert_array_equal(model.predict(records), expected)
    np.testing.assert_array_equal(model.predict(X.head(10).to_dict(orient="list")), expected)
    np.testing.assert_allclose(model.predict_proba(records), classifier.predict_proba(X.head(10)))
    assert len(model.input_example) == 5


def test_sklearn_signature_describes_outputs(tmp_path: Path, cancer: Any, classifier: Any) -> None:
    X, _ = cancer
    signature = save_model(classifier, tmp_path / "m", input_example=X.head(3)).signature

    assert signature is not None
    assert signature.column_names == list(X.columns)
    assert {c.type for c in signature.inputs} == {"double"}
    predictions, probabilities = signature.outputs
    assert (predictions.name, predictions.type, predictions.shape) == ("predictions", "long", [-1])
    assert (probabilities.name, probabilities.shape) == ("probabilities", [-1, 2])
    assert probabilities.classes == [0, 1]
    assert Signature.model_validate_json(signature.model_dump_json()) == signature


def test_sklearn_skops_loads_without_pickle(tmp_path: Path, cancer: Any, classifier: Any) -> None:
    pytest.importorskip("skops")
    X, _ = cancer
    manifest = save_model(
        classifier, tmp_path / "m", input_example=X.head(3), serialization="skops"
    )
    assert manifest.serialization == "skops"
    assert any(line.startswith("skops==") for line in manifest.requirements)

    model = load_model(tmp_path / "m", allow_pickle=False)
    np.testing.assert_array_equal(model.predict(X.head(5)), classifier.predict(X.head(5)))


def test_skops_refuses_untrusted_types_when_saving(tmp_path: Path) -> None:
    pytest.importorskip("skops")
    from sklearn.base import BaseEstimator

    class Custom(BaseEstimator):
        def predict(self, data: Any) -> np.ndarray:
            return np.zeros(len(data))

    with pytest.raises(InvalidInput) as info:
        save_model(Custom(), tmp_path / "m", serialization="skops")
    assert info.value.field == "serialization"
    assert not (tmp_path / "m").exists()


def test_python_model_roundtrip(tmp_path: Path) -> None:
    example = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})
    manifest = save_model(SumModel(), tmp_path / "m", input_example=example)

    assert manifest.flavor == "python"
    assert manifest.serialization == "cloudpickle"
    assert [(c.name, c.type) for c in manifest.signature.inputs] == [("a", "double"), ("b", "long")]
    assert manifest.signature.outputs[0].type == "double"

    model = load_model(tmp_path / "m")
    assert isinstance(model.raw, SumModel)
    np.testing.assert_allclose(model.predict([{"a": 1.5, "b": 2, "extra": "x"}]), [7.0])
    assert not model.supports_proba
    with pytest.raises(InvalidInput):
        model.predict_proba([{"a": 1.0, "b": 2}])


def test_onnx_roundtrip(tmp_path: Path, cancer: Any, classifier: Any) -> None:
    try:
        import onnxruntime  # noqa: F401
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError as exc:
        pytest.skip(f"onnxruntime or skl2onnx is not installed: {exc}")
    X, _ = cancer
    proto = convert_sklearn(
        classifier,
        initial_types=[("input", FloatTensorType([None, X.shape[1]]))],
        options={"zipmap": False},
    )

    manifest = save_model(proto, tmp_path / "proto", input_example=X.head(5))
    assert manifest.flavor == "onnx"
    assert any(line.startswith("onnxruntime==") for line in manifest.requirements)
    save_model(proto.SerializeToString(), tmp_path / "bytes")

    model = load_model(tmp_path / "proto", allow_pickle=False)
    records = X.head(20).to_dict(orient="records")
    np.testing.assert_array_equal(model.predict(records), classifier.predict(X.head(20)))
    np.testing.assert_allclose(
        model.predict_proba(records), classifier.predict_proba(X.head(20)), atol=1e-4
    )
    without_signature = load_model(tmp_path / "bytes")
    np.testing.assert_array_equal(without_signature.predict(X.head(20)), model.predict(records))


def test_onnx_refuses_bytes_it_cannot_run(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    with pytest.raises(InvalidInput):
        save_model(b"not an onnx graph", tmp_path / "m")
    assert not (tmp_path / "m").exists()


# -- signatures -----------------------------------------------------------------------------


def test_infer_signature_from_dataframe() -> None:
    frame = pd.DataFrame(
        {
            "x": [1.5, 2.5],
            "n": [1, 2],
            "flag": [True, False],
            "city": ["Oslo", "Lima"],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "maybe": [1.0, None],
            "f32": np.array([1, 2], dtype=np.float32),
        }
    )
    signature = infer_signature(frame, predictions=np.array(["a", "b"]))

    assert [(c.name, c.type, c.nullable) for c in signature.inputs] == [
        ("x", "double", False),
        ("n", "long", False),
        ("flag", "boolean", False),
        ("city", "string", False),
        ("when", "datetime", False),
        ("maybe", "double", True),
        ("f32", "float", False),
    ]
    assert signature.outputs[0].type == "string"


def test_infer_signature_from_records() -> None:
    signature = infer_signature([{"x": 1.0, "s": "a"}, {"x": 2, "s": "b"}])
    assert [(c.name, c.type) for c in signature.inputs] == [("x", "double"), ("s", "string")]


MIXED = Signature(
    inputs=[
        ColumnSpec(name="x", type="double"),
        ColumnSpec(name="n", type="long"),
        ColumnSpec(name="s", type="string"),
        ColumnSpec(name="maybe", type="double", nullable=True),
    ]
)
NUMERIC = Signature(inputs=[ColumnSpec(name="x", type="double"), ColumnSpec(name="n", type="long")])
GOOD = {"x": 1.0, "n": 2, "s": "a", "maybe": 0.5}


def test_validate_coerces_and_drops_extra_columns() -> None:
    frame = MIXED.validate([{"extra": 1, "s": "b", "n": 3, "x": 4}, GOOD | {"maybe": None}])

    assert list(frame.columns) == ["x", "n", "s", "maybe"]
    assert frame["x"].dtype == np.float64  # ints accepted for a double column
    assert frame["n"].dtype == np.int64
    assert frame["x"].tolist() == [4.0, 1.0]
    assert math.isnan(frame["maybe"].iloc[1])  # nullable


def test_validate_accepts_every_input_form() -> None:
    records = [{"x": 1.0, "n": 2}, {"x": 3.5, "n": 4}]
    expected = NUMERIC.validate(records)
    forms = [
        pd.DataFrame(records),
        {"x": [1.0, 3.5], "n": [2, 4]},
        {"columns": ["n", "x"], "data": [[2, 1.0], [4, 3.5]]},
        np.array([[1.0, 2], [3.5, 4]]),
    ]
    for form in forms:
        pd.testing.assert_frame_equal(NUMERIC.validate(form), expected)
    assert NUMERIC.validate({"x": 1.0, "n": 2})["n"].tolist() == [2]  # one record of scalars


def test_to_array_fast_path_matches_validate() -> None:
    records = [{"n": 2, "x": 1.0, "extra": "ignored"}, {"x": 3, "n": 4}]
    array = NUMERIC.to_array(records)
    assert array.dtype == np.float64
    np.testing.assert_array_equal(array, [[1.0, 2.0], [3.0, 4.0]])
    split = {"columns": ["n", "x"], "data": [[2, 1.0], [4, 3]]}
    np.testing.assert_array_equal(NUMERIC.to_array(split), array)
    with pytest.raises(InvalidInput):
        MIXED.to_array([GOOD])


BAD_INPUTS = [
    ("missing column", MIXED, [{"n": 2, "s": "a", "maybe": 1.0}], "x"),
    ("wrong type", MIXED, [GOOD | {"s": 5}], "s"),
    ("string in numeric column", MIXED, [GOOD | {"x": "1.5"}], "x"),
    ("NaN", MIXED, [GOOD | {"x": float("nan")}], "x"),
    ("null", MIXED, [GOOD | {"x": None}], "x"),
    ("infinity in nullable column", MIXED, [GOOD | {"maybe": float("inf")}], "maybe"),
    ("fraction in long column", MIXED, [GOOD | {"n": 1.5}], "n"),
    ("boolean in numeric column", MIXED, [GOOD | {"x": True}], "x"),
    ("missing in string column", MIXED, [GOOD | {"s": None}], "s"),
    ("numeric: missing column", NUMERIC, [{"x": 1.0}], "n"),
    ("numeric: string", NUMERIC, [{"x": "1", "n": 1}], "x"),
    ("numeric: NaN", NUMERIC, [{"x": 1.0, "n": 1}, {"x": float("nan"), "n": 1}], "x"),
    ("numeric: null", NUMERIC, [{"x": None, "n": 1}], "x"),
    ("no rows", NUMERIC, [], "data"),
    ("list of non-records", NUMERIC, [[1.0, 2]], "data"),
    ("ragged columns", NUMERIC, {"x": [1.0, 2.0], "n": [1]}, "data"),
    ("numeric: true among floats", NUMERIC, [{"x": True, "n": 1}, {"x": 2.5, "n": 2}], "x"),
    ("numeric: false among floats", NUMERIC, [{"x": 2.5, "n": 1}, {"x": False, "n": 2}], "x"),
    ("numeric: true in long column", NUMERIC, [{"x": 1.5, "n": True}], "n"),
    ("numeric: booleans only", NUMERIC, [{"x": True, "n": False}], "x"),
    (
        "numeric: boolean in a split",
        NUMERIC,
        {"columns": ["x", "n"], "data": [[0.5, 1], [1.5, True]]},
        "n",
    ),
    (
        "numeric: boolean in a large input",
        NUMERIC,
        [{"x": 0.5, "n": 3}] * 400 + [{"x": 1.5, "n": False}],
        "n",
    ),
]


@pytest.mark.parametrize(
    ("signature", "data", "field"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_validate_rejects(signature: Signature, data: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        signature.validate(data)
    assert info.value.field == field
    if signature.is_numeric:
        with pytest.raises(InvalidInput) as info:
            signature.to_array(data)
        assert info.value.field == field


def test_exact_zeros_and_ones_are_still_numbers() -> None:
    records = [{"x": 1.0, "n": 0}, {"x": 0.0, "n": 1}] * 300  # past the small-input scan
    np.testing.assert_array_equal(NUMERIC.to_array(records)[:2], [[1.0, 0.0], [0.0, 1.0]])
    assert NUMERIC.validate(records[:2])["x"].tolist() == [1.0, 0.0]
    split = {"columns": ["x", "n", "flag"], "data": [[1.0, 0, True]]}  # unused column
    np.testing.assert_array_equal(NUMERIC.to_array(split), [[1.0, 0.0]])


def test_validate_datetimes() -> None:
    signature = Signature(inputs=[ColumnSpec(name="when", type="datetime")])
    frame = signature.validate([{"when": "2024-05-01T10:00:00"}])
    assert frame["when"].dtype.kind == "M"
    with pytest.raises(InvalidInput) as info:
        signature.validate([{"when": "yesterday"}])
    assert info.value.field == "when"


def test_frame_from_payload() -> None:
    frame = frame_from_payload({"instances": [{"x": 1.0, "n": 2}]})
    assert frame.to_dict(orient="records") == [{"x": 1.0, "n": 2}]
    split = {"columns": ["x", "n"], "data": [[1.0, 2], [3.0, 4]]}
    assert frame_from_payload({"dataframe_split": split})["n"].tolist() == [2, 4]
    assert unpack_payload({"dataframe_split": split}) is split


BAD_PAYLOADS = [
    ("empty instances", {"instances": []}, "instances"),
    ("instances not a list", {"instances": {"x": 1}}, "instances"),
    ("instance not an object", {"instances": [[1, 2]]}, "instances"),
    ("neither form", {"rows": []}, "instances"),
    ("body not an object", [{"x": 1}], "instances"),
    ("split not an object", {"dataframe_split": [[1]]}, "dataframe_split"),
    ("split without data", {"dataframe_split": {"columns": ["x"]}}, "dataframe_split"),
    (
        "split columns not names",
        {"dataframe_split": {"columns": [1], "data": [[1]]}},
        "dataframe_split",
    ),
    (
        "split duplicate columns",
        {"dataframe_split": {"columns": ["x", "x"], "data": [[1, 2]]}},
        "dataframe_split",
    ),
    ("split empty data", {"dataframe_split": {"columns": ["x"], "data": []}}, "dataframe_split"),
    (
        "split ragged rows",
        {"dataframe_split": {"columns": ["x", "n"], "data": [[1, 2], [3]]}},
        "dataframe_split",
    ),
    (
        "split row not a list",
        {"dataframe_split": {"columns": ["x"], "data": [1, 2]}},
        "dataframe_split",
    ),
    ("split nested too deep", {"dataframe_split": {"columns": ["x"], "data": [[1], [[2]]]}}, None),
]


@pytest.mark.parametrize(
    ("payload", "field"), [case[1:] for case in BAD_PAYLOADS], ids=[c[0] for c in BAD_PAYLOADS]
)
def test_frame_from_payload_rejects(payload: Any, field: str | None) -> None:
    if field is None:  # well-formed body whose values are wrong: the column is named
        with pytest.raises(InvalidInput) as info:
            Signature(inputs=[ColumnSpec(name="x", type="double")]).validate(
                frame_from_payload(payload)
            )
        assert info.value.field == "x"
        return
    with pytest.raises(InvalidInput) as info:
        frame_from_payload(payload)
    assert info.value.field == field


def test_loaded_model_validates_inputs(tmp_path: Path, cancer: Any, classifier: Any) -> None:
    X, _ = cancer
    save_model(classifier, tmp_path / "m", input_example=X.head(3))
    model = load_model(tmp_path / "m")
    record = X.head(1).to_dict(orient="records")[0]

    with pytest.raises(InvalidInput) as info:
        model.predict([record | {"mean radius": "12.5"}])
    assert info.value.field == "mean radius"
    del record["worst area"]
    with pytest.raises(InvalidInput) as info:
        model.predict([record])
    assert info.value.field == "worst area"


# -- integrity and pickle safety ------------------------------------------------------------


def test_tampered_pickle_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled.txt"
    save_model(Tripwire(str(marker)), tmp_path / "m")
    assert not marker.exists()

    with open(tmp_path / "m" / "model.pkl", "ab") as f:
        f.write(b"\x00")
    with pytest.raises(IntegrityError, match=r"model\.pkl") as info:
        load_model(tmp_path / "m")
    assert info.value.field == "model.pkl"
    assert not marker.exists()


def test_untampered_tripwire_does_unpickle(tmp_path: Path) -> None:
    # The control for the test above: the marker does appear when the pickle is loaded.
    marker = tmp_path / "unpickled.txt"
    save_model(Tripwire(str(marker)), tmp_path / "m")
    load_model(tmp_path / "m")
    assert marker.exists()


@pytest.mark.parametrize(
    ("change", "name"),
    [
        (lambda folder: (folder / "input_example.json").write_text("[]"), "input_example.json"),
        (lambda folder: (folder / "model.pkl").unlink(), "model.pkl"),
        (lambda folder: (folder / "evil.py").write_text("print(1)"), "evil.py"),
    ],
    ids=["changed", "removed", "added"],
)
def test_integrity_errors_name_the_file(tmp_path: Path, change: Any, name: str) -> None:
    save_model(SumModel(), tmp_path / "m", input_example=[{"a": 1.0}])
    change(tmp_path / "m")
    with pytest.raises(IntegrityError, match=name.replace(".", r"\.")) as info:
        verify_model(tmp_path / "m")
    assert info.value.field == name
    with pytest.raises(IntegrityError):
        load_model(tmp_path / "m")
    if name == "evil.py":  # skipping verification is the caller's explicit choice
        load_model(tmp_path / "m", verify=False)


@pytest.mark.parametrize("serialization", ["joblib", "python"])
def test_allow_pickle_false_refuses_pickles(
    tmp_path: Path, classifier: Any, serialization: str
) -> None:
    model = classifier if serialization == "joblib" else SumModel()
    save_model(model, tmp_path / "m")
    with pytest.raises(PermissionDenied, match="skops"):
        load_model(tmp_path / "m", allow_pickle=False)


# -- the folder and the flavor registry -----------------------------------------------------


def test_save_refuses_an_existing_folder(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("x")
    with pytest.raises(AlreadyExists):
        save_model(SumModel(), tmp_path / "m")
    (tmp_path / "empty").mkdir()
    save_model(SumModel(), tmp_path / "empty")


def test_failed_save_leaves_nothing(tmp_path: Path) -> None:
    class Broken:
        def predict(self, data: Any) -> Any:
            raise RuntimeError("boom")

    with pytest.raises(InvalidInput, match="boom") as info:
        save_model(Broken(), tmp_path / "m", input_example=[{"a": 1.0}])
    assert info.value.field == "input_example"
    assert list(tmp_path.iterdir()) == []


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_model(tmp_path / "nothing")
    save_model(SumModel(), tmp_path / "m")
    manifest = yaml.safe_load((tmp_path / "m" / MANIFEST_NAME).read_text())
    (tmp_path / "m" / MANIFEST_NAME).write_text(yaml.safe_dump(manifest | {"format_version": 99}))
    with pytest.raises(InvalidInput) as info:
        load_model(tmp_path / "m")
    assert info.value.field == "format_version"
    (tmp_path / "m" / MANIFEST_NAME).write_text("flavor: [sklearn\n")
    with pytest.raises(InvalidInput, match="not valid YAML") as info:
        read_manifest(tmp_path / "m")
    assert info.value.field == "manifest"


class JsonLinearFlavor:
    """A third-party flavor: a linear model stored as JSON, no pickle involved."""

    name = "json-linear"

    def can_save(self, obj: Any) -> bool:
        return isinstance(obj, dict) and "weights" in obj

    def save(self, obj: Any, folder: Path, **options: Any) -> dict[str, Any]:
        (folder / "weights.json").write_text(json.dumps(obj["weights"]))
        return {"serialization": "json", "options": {}, "libraries": ["numpy"]}

    def load(self, folder: Path, manifest: Any) -> Any:
        weights = np.array(json.loads((folder / "weights.json").read_text()))

        class Linear:
            raw = weights
            input_kind = "array"

            def predict(self, data: np.ndarray) -> np.ndarray:
                return data @ weights

        return Linear()


@pytest.fixture
def json_flavor() -> Any:
    flavor = register_flavor(JsonLinearFlavor())
    yield flavor
    del FLAVORS[flavor.name]


def test_third_party_flavor(tmp_path: Path, json_flavor: Any) -> None:
    manifest = save_model({"weights": [1.0, 2.0]}, tmp_path / "m", input_example=[{"a": 1, "b": 1}])
    assert manifest.flavor == "json-linear"
    model = load_model(tmp_path / "m", allow_pickle=False)
    assert isinstance(model, LoadedModel)
    np.testing.assert_allclose(model.predict([{"a": 1, "b": 2}]), [5.0])
    with pytest.raises(AlreadyExists):
        register_flavor(JsonLinearFlavor())


def test_unknown_flavor(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        save_model(SumModel(), tmp_path / "m", flavor="nope")
    assert info.value.field == "flavor"
    with pytest.raises(InvalidInput):
        save_model(object(), tmp_path / "m")


def test_import_is_lazy() -> None:
    code = (
        "import heron._models, sys; "
        "heavy = [m for m in ('sklearn', 'pandas', 'onnxruntime') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
