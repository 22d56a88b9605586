"""The Ray executor on a local two-CPU cluster, shared by this module's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import heron
from heron.testing import embedded_client, heron_settings

ray = pytest.importorskip("ray", reason="the Ray executor needs ray (pip install 'heron[ray]')")

from test_pipelines import diamond, hanging, parallel, raising, tiny  # noqa: E402


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, logging_level="error", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def client(tmp_path: Path, ray_cluster: None) -> Iterator[heron.Client]:
    c = embedded_client(heron_settings(tmp_path))
    yield c
    c.close()


def run(p: object, client: heron.Client, **kwargs: object) -> heron.PipelineRun:
    return heron.run_pipeline(p, client=client, executor="ray", progress=False, **kwargs)


def test_acceptance_on_ray(client: heron.Client) -> None:
    first = run(tiny, client, params={"n": 10})
    again = run(tiny, client, params={"n": 10})
    assert first.status == "succeeded" and first.output == 45
    assert all(s.cached for s in again.steps.values())
    assert first.executor == "ray"


def test_diamond_metrics_and_lineage_on_ray(client: heron.Client) -> None:
    result = run(diamond, client, params={"n": 5})
    assert result.output == {"a": 20, "b": 30}
    assert client.get_run(result.run_id).metrics["combined"] == 50


def test_branches_run_in_parallel_on_ray(client: heron.Client, tmp_path: Path) -> None:
    params = {"a": str(tmp_path / "a"), "b": str(tmp_path / "b")}
    result = run(parallel, client, params=params)
    assert result.status == "succeeded", result.error


@pytest.mark.parametrize(
    ("p", "step", "error"),
    [
        (raising, "boom", "ValueError: boom: the data is bad"),
        (hanging, "hang", "TimeoutError: step 'hang' ran longer than its timeout"),
    ],
    ids=["raises", "timeout"],
)
def test_failures_on_ray(client: heron.Client, p: object, step: str, error: str) -> None:
    result = run(p, client)
    assert result.status == "failed"
    assert error in result.steps[step].error
    assert result.steps["load"].status == "succeeded"
