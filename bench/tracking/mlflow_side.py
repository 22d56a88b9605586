"""MLflow's half of the tracking benchmark; run by ``run.py`` in ``bench/.venv-mlflow``.

Same tasks and JSON argument as ``heron_side.py``; ``uri`` is ``sqlite:///...`` (embedded:
``MlflowClient`` on the database) or ``http://...`` (``mlflow server``).
"""

from __future__ import annotations

import random
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import emit, latency, rate, read_task, repeated

warnings.filterwarnings("ignore")

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param  # noqa: E402


def client_for(task: dict[str, Any]) -> MlflowClient:
    return MlflowClient(tracking_uri=task["uri"], registry_uri=task["uri"])


def experiment(client: MlflowClient, task: dict[str, Any], name: str) -> str:
    """An experiment's id (created on first use); embedded ones keep artifacts in ``root``."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if task["mode"] == "embedded":
        location = (Path(task["root"]) / "artifacts" / name).as_uri()
    return client.create_experiment(name, artifact_location=location)


def now_ms() -> int:
    return int(time.time() * 1000)


def tracking(task: dict[str, Any]) -> dict[str, Any]:
    client = client_for(task)
    sizes, budget, reps = task["sizes"], task["budget_s"], task["reps"]
    exp = experiment(client, task, f"bench-{task['mode']}-{uuid.uuid4().hex[:6]}")

    def new_run() -> str:
        run_id = client.create_run(exp).info.run_id
        client.log_metric(run_id, "warmup", 0.0)
        client.log_param(run_id, "warmup", 0)
        return run_id

    def single(rep: int) -> dict[str, float]:
        run_id = new_run()
        result = rate(
            lambda i: client.log_metric(run_id, "loss", 1.0 / (i + 1), step=i),
            sizes["single_metrics"],
            budget,
        )
        client.set_terminated(run_id)
        return result

    def batches(rep: int) -> dict[str, float]:
        run_id = new_run()
        keys = [f"m{k}" for k in range(1000)]

        def batch(i: int) -> None:
            stamp = now_ms()
            points = [Metric(k, i + j * 1e-3, stamp, i + 1) for j, k in enumerate(keys)]
            client.log_batch(run_id, metrics=points)

        result = rate(batch, sizes["metric_batches"], budget, per_call=1000)
        client.set_terminated(run_id)
        return result

    def params(rep: int) -> dict[str, float]:
        run_id = new_run()
        log_param = lambda i: client.log_param(run_id, f"p{i}", i)  # noqa: E731
        result = rate(log_param, sizes["single_params"], budget)
        client.set_terminated(run_id)
        return result

    def param_batches(rep: int) -> dict[str, float]:
        run_id = new_run()

        def batch(i: int) -> None:
            client.log_batch(run_id, params=[Param(f"p{i}_{k}", str(k)) for k in range(100)])

        result = rate(batch, sizes["param_batches"], budget, per_call=100)
        client.set_terminated(run_id)
        return result

    return {
        "single_metrics": repeated(single, reps),
        "metric_batches": repeated(batches, reps),
        "single_params": repeated(params, reps),
        "param_batches": repeated(param_batches, reps),
    }


def populate(task: dict[str, Any]) -> dict[str, Any]:
    """``n`` runs with three metrics and three params each: ``create_run`` + ``log_batch``."""
    client = client_for(task)
    exp = experiment(client, task, "search")
    rng = random.Random(42)
    start = time.perf_counter()
    for i in range(task["n"]):
        run_id = client.create_run(exp, run_name=f"r{i}").info.run_id
        stamp = now_ms()
        params = {"C": rng.choice([0.1, 1.0, 10.0]), "max_iter": 100, "i": i}
        client.log_batch(
            run_id,
            metrics=[Metric(k, rng.random(), stamp, 0) for k in ("acc", "loss", "f1")],
            params=[Param(k, str(v)) for k, v in params.items()],
        )
    elapsed = time.perf_counter() - start
    return {"runs": task["n"], "seconds": elapsed, "per_s": task["n"] / elapsed}


def search(task: dict[str, Any]) -> dict[str, Any]:
    client = client_for(task)
    exp = client.get_experiment_by_name("search").experiment_id

    def page() -> None:
        found = client.search_runs([exp], "metrics.acc > 0.5", max_results=100)
        assert len(found) == 100, len(found)

    return latency(page, task["reps"])


def models(task: dict[str, Any]) -> dict[str, Any]:
    """``n`` versions of ``m``, each logged from its own run with ``mlflow.sklearn.log_model(
    ..., registered_model_name="m", input_example=...)``; then ``m@champion`` → the last.

    ``pip_requirements`` is given, as Heron pins its flavor's libraries without inferring
    them: MLflow's default inference starts a subprocess per model. ``infer_sample`` more
    versions are logged the default way (inference on) and timed apart."""
    import mlflow
    import mlflow.sklearn
    import sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(task["uri"])
    mlflow.set_registry_uri(task["uri"])
    X, y = load_iris(return_X_y=True, as_frame=True)
    total = task["n"] + task["infer_sample"]
    trained = [LogisticRegression(C=0.5 + i / 100, max_iter=300).fit(X, y) for i in range(total)]
    exp = experiment(client_for(task), task, "models")
    pinned = [f"scikit-learn=={sklearn.__version__}"]

    def log(model: Any, **extra: Any) -> tuple[float, Any]:
        t0 = time.perf_counter()
        with mlflow.start_run(experiment_id=exp):
            info = mlflow.sklearn.log_model(
                model, name="model", registered_model_name="m", input_example=X.head(3), **extra
            )
        return time.perf_counter() - t0, info

    inferred = [log(model)[0] for model in trained[task["n"] :]]
    times = []
    start = time.perf_counter()
    for model in trained[: task["n"]]:
        seconds, info = log(model, pip_requirements=pinned)
        times.append(seconds)
    elapsed = time.perf_counter() - start
    last = int(info.registered_model_version)
    client_for(task).set_registered_model_alias("m", "champion", last)
    return {
        "versions": task["n"],
        "seconds": elapsed,
        "per_version_s": times,
        "inferred_per_version_s": inferred,
        "last": last,
    }


TASKS = {"tracking": tracking, "populate": populate, "search": search, "models": models}

if __name__ == "__main__":
    task = read_task()
    emit(TASKS[task["task"]](task))
