"""Heron's half of the tracking benchmark; run by ``run.py`` in Heron's venv.

Tasks (``task`` in the JSON argument): ``tracking`` (metric and param logging rates),
``populate`` (runs for the search figure), ``search``, ``models`` (register model versions
and point the ``champion`` alias at the last). ``mode`` is ``embedded`` (a store on disk in
this process) or ``server`` (``heron server`` at ``url``).
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import emit, latency, rate, read_task, repeated

import heron
from heron import MetricPoint, Settings
from heron.testing import heron_settings


def client_for(task: dict[str, Any]) -> heron.Client:
    if task["mode"] == "server":
        settings = Settings(home=Path(task["client_home"]), token=task["token"])
        return heron.Client(url=task["url"], settings=settings)
    return heron.Client(settings=heron_settings(Path(task["root"])))


def tracking(task: dict[str, Any]) -> dict[str, Any]:
    client = client_for(task)
    sizes, budget, reps = task["sizes"], task["budget_s"], task["reps"]
    out: dict[str, Any] = {}

    def single(rep: int) -> dict[str, float]:
        run = client.start_run(f"bench-{task['mode']}")
        run.log_metric("warmup", 0.0)
        run.flush()
        try:
            return rate(
                lambda i: run.log_metric("loss", 1.0 / (i + 1), step=i),
                sizes["single_metrics"],
                budget,
                finish=run.flush,  # durable: the buffered points are in the store
            )
        finally:
            run.end()

    def batches(rep: int) -> dict[str, float]:
        run = client.start_run(f"bench-{task['mode']}")
        keys = [f"m{k}" for k in range(1000)]
        run.log_metrics(dict.fromkeys(keys, 0.0), step=0)
        run.flush()
        try:
            return rate(
                lambda i: run.log_metrics({k: i + j * 1e-3 for j, k in enumerate(keys)}, i + 1),
                sizes["metric_batches"],
                budget,
                per_call=1000,
                finish=run.flush,
            )
        finally:
            run.end()

    def params(rep: int) -> dict[str, float]:
        run = client.start_run(f"bench-{task['mode']}")
        run.log_param("warmup", 0)
        try:
            return rate(lambda i: run.log_param(f"p{i}", i), sizes["single_params"], budget)
        finally:
            run.end()

    def param_batches(rep: int) -> dict[str, float]:
        run = client.start_run(f"bench-{task['mode']}")
        run.log_param("warmup", 0)
        try:
            return rate(
                lambda i: run.log_params({f"p{i}_{k}": k for k in range(100)}),
                sizes["param_batches"],
                budget,
                per_call=100,
            )
        finally:
            run.end()

    out["single_metrics"] = repeated(single, reps)
    out["metric_batches"] = repeated(batches, reps)
    out["single_params"] = repeated(params, reps)
    out["param_batches"] = repeated(param_batches, reps)
    client.close()
    return out


def populate(task: dict[str, Any]) -> dict[str, Any]:
    """``n`` runs with three metrics and three params each, through the public client."""
    client = heron.Client(settings=heron_settings(Path(task["root"])))
    rng = random.Random(42)
    start = time.perf_counter()
    for i in range(task["n"]):
        run = client.start_run("search", name=f"r{i}")
        client.log_params(run.id, {"C": rng.choice([0.1, 1.0, 10.0]), "max_iter": 100, "i": i})
        client.log_metrics(
            run.id,
            [
                MetricPoint(key="acc", value=rng.random()),
                MetricPoint(key="loss", value=rng.random()),
                MetricPoint(key="f1", value=rng.random()),
            ],
        )
    elapsed = time.perf_counter() - start
    client.close()
    return {"runs": task["n"], "seconds": elapsed, "per_s": task["n"] / elapsed}


def search(task: dict[str, Any]) -> dict[str, Any]:
    client = client_for(task)

    def page() -> None:
        found = client.search_runs("metrics.acc > 0.5", experiments=["search"], max_results=100)
        assert len(found.items) == 100, len(found.items)

    result = latency(page, task["reps"])
    client.close()
    return result


def models(task: dict[str, Any]) -> dict[str, Any]:
    """``n`` versions of ``m``, each trained model logged from its own run (the usual path:
    ``run.log_model(model, name, input_example=...)``); then ``m@champion`` → the last."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    trained = [
        LogisticRegression(C=0.5 + i / 100, max_iter=300).fit(X, y) for i in range(task["n"])
    ]
    client = client_for(task)
    times = []
    start = time.perf_counter()
    for model in trained:
        t0 = time.perf_counter()
        with client.start_run("models") as run:
            mv = run.log_model(model, "m", input_example=X.head(3))
        times.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    client.set_alias("m", "champion", mv.version)
    client.close()
    return {"versions": task["n"], "seconds": elapsed, "per_version_s": times, "last": mv.version}


TASKS = {"tracking": tracking, "populate": populate, "search": search, "models": models}

if __name__ == "__main__":
    task = read_task()
    emit(TASKS[task["task"]](task))
