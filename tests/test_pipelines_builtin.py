"""Built-in steps: data validation, holdout split, train/evaluate, model gate, register."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

import heron
from heron import steps
from heron.testing import embedded_client

TARGET = "label"


def make_data(n: int = 300, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(0, 1, n) + shift
    x2 = rng.normal(0, 1, n)
    color = rng.choice(["red", "green", "blue"], n)
    label = ((x1 + 0.5 * x2 + rng.normal(0, 0.3, n)) > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "color": color, TARGET: label})


@heron.step
def features(data: pd.DataFrame) -> pd.DataFrame:
    return data.drop(columns=["color"])


@heron.pipeline
def retrain(
    dataset: str = "training",
    version: int | None = None,
    estimator: str = "sklearn.linear_model.LogisticRegression",
    margin: float = 0.0,
):
    data = steps.validate_data(
        steps.load_dataset(dataset, version), reference=dataset, reference_version=1
    )
    train, holdout = steps.split_holdout(features(data), TARGET, test_size=0.3, seed=1)
    model = steps.train_sklearn(train, TARGET, estimator=estimator)
    scores = steps.evaluate_sklearn(model, holdout, TARGET, metrics=["accuracy", "f1"])
    verdict = steps.validate_model(
        model,
        holdout,
        TARGET,
        model_name="classifier",
        metric="accuracy",
        margin=margin,
        guard_metrics=["f1"],
        guard_tolerance=0.05,
    )
    registered = steps.register_model(
        model, "classifier", verdict=verdict, description="demo classifier"
    )
    return {"scores": scores, "verdict": verdict, "registered": registered}


@pytest.fixture
def client(settings: heron.Settings) -> Iterator[heron.Client]:
    c = embedded_client(settings)
    c.log_dataset(make_data(), "training")
    yield c
    c.close()


def run(client: heron.Client, **params: object) -> heron.PipelineRun:
    return heron.run_pipeline(retrain, params=params, client=client, progress=False)


def test_train_gate_register_with_lineage(client: heron.Client) -> None:
    first = run(client)
    assert first.status == "succeeded", first.error
    out = first.output
    assert out["verdict"]["passed"] and out["verdict"]["champion"] is None
    assert out["registered"]["registered"] and out["registered"]["version"] == 1
    version = client.get_model_version("classifier", 1)
    assert version.pipeline_run_id == first.id
    assert version.run_id == first.run_id
    assert f"Pipeline run: `{first.id}`" in client.get_model_card("classifier", 1)
    assert client.get_lineage("classifier", 1).pipeline_run_id == first.id
    tracking = client.get_run(first.run_id)
    assert tracking.metrics["holdout/accuracy"] == pytest.approx(out["scores"]["accuracy"])
    assert tracking.metrics["gate/passed"] == 1.0
    # the holdout is recorded with the digest of the data it was split from
    holdout = out["verdict"]["holdout"]
    assert len(holdout["data_digest"]) == 64 and holdout["rows"] == 90


def test_gate_rejects_a_worse_candidate_with_both_figures(client: heron.Client) -> None:
    assert run(client).status == "succeeded"
    client.set_alias("classifier", "champion", 1)
    worse = run(client, estimator="sklearn.dummy.DummyClassifier")
    verdict = worse.output["verdict"]
    assert not verdict["passed"]
    assert verdict["champion_version"] == 1
    assert verdict["candidate"]["accuracy"] < verdict["champion"]["accuracy"]
    assert "gain" in verdict["reason"] and "margin" in verdict["reason"]
    assert worse.output["registered"] == {"registered": False, "reason": verdict["reason"]}
    assert client.get_run(worse.run_id).metrics["gate/passed"] == 0.0
    assert [v.version for v in client.list_model_versions("classifier").items] == [1]
    # the unchanged steps came from the cache: only the model-dependent ones ran
    assert worse.steps["load_dataset"].cached and worse.steps["split_holdout"].cached
    assert worse.steps["validate_model"].cache_reason.startswith("caching is off")


def test_new_dataset_version_invalidates_and_validation_fails_readably(
    client: heron.Client,
) -> None:
    assert run(client).status == "succeeded"
    bad = make_data(seed=3, shift=8.0).drop(columns=["x2"])
    client.log_dataset(bad, "training")
    failed = run(client)
    assert failed.status == "failed"
    load = failed.steps["load_dataset"]
    assert not load.cached and "external input 'dataset:training' changed" in load.cache_reason
    error = failed.steps["validate_data"].error
    assert error.startswith("DataValidationFailed: data validation against training v1")
    assert "FAIL column_removed [x2]" in error
    assert "FAIL out_of_range [x1]" in error
    assert failed.steps["split_holdout"].status == "skipped"
