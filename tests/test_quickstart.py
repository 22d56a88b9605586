"""The foundation issue's acceptance script, over both transports and both backends."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import heron


@pytest.fixture(scope="module")
def data():
    return load_breast_cancer(return_X_y=True, as_frame=True)


def test_quickstart(fluent: heron.Client, data) -> None:
    X, y = data
    with heron.start_run(experiment="quickstart") as run:
        run.log_params({"C": 1.0, "max_iter": 5000})
        model = LogisticRegression(C=1.0, max_iter=5000).fit(X, y)
        run.log_metric("accuracy", model.score(X, y))
        heron.log_dataset(X.assign(target=y), name="breast-cancer")
        mv = run.log_model(model, name="cancer-clf", input_example=X.head(3))
    heron.set_alias("cancer-clf", "champion", mv.version)
    loaded = heron.load_model("models:/cancer-clf@champion")
    np.testing.assert_array_equal(loaded.predict(X.head(5)), model.predict(X.head(5)))

    stored = fluent.get_run(run.id)
    assert stored.status == heron.RunStatus.FINISHED
    assert stored.params == {"C": "1.0", "max_iter": "5000"}
    assert stored.metrics["accuracy"] == pytest.approx(model.score(X, y))
    assert [d.name for d in stored.inputs] == ["breast-cancer"]
    lineage = fluent.get_lineage("cancer-clf", mv.version)
    assert lineage.run is not None and lineage.run.id == run.id
    assert lineage.datasets[0].row_count == len(X)
    card = fluent.get_model_card("cancer-clf", mv.version)
    assert "| C | 1.0 |" in card and "breast-cancer" in card
