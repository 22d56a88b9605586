"""The demo's pipeline chapter: retrain the quickstart model through a cached pipeline."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from heron import steps
from heron._client import Client
from heron._pipelines._pipeline import pipeline
from heron._pipelines._runner import run_pipeline

console = Console()


@pipeline
def retrain_cancer(dataset: str = "breast-cancer", c: float = 0.5):
    """Validate the data, train a candidate, gate it against the champion, register it."""
    data = steps.validate_data(steps.load_dataset(dataset), reference=dataset)
    train, holdout = steps.split_holdout(data, "target")
    model = steps.train_sklearn(train, "target", params={"C": c, "max_iter": 5000})
    verdict = steps.validate_model(model, holdout, "target", model_name="cancer-clf", margin=-0.05)
    return steps.register_model(model, "cancer-clf", verdict=verdict, alias="challenger")


def retrain_with_a_pipeline(client: Client, state: dict[str, Any]) -> None:
    """Retrain through a pipeline: validated data, champion gate, cache on the second run."""
    first = run_pipeline(retrain_cancer, params={"c": 0.5}, client=client, progress=False)
    again = run_pipeline(retrain_cancer, params={"c": 0.5}, client=client, progress=False)
    table = Table(title="Pipeline retrain_cancer, run twice", title_justify="left")
    table.add_column("step")
    table.add_column("first run")
    table.add_column("second run")
    table.add_column("why (second run)")
    for name, step_run in again.steps.items():
        before = first.steps[name]
        table.add_row(
            name,
            "cached" if before.cached else str(before.status),
            "cached" if step_run.cached else str(step_run.status),
            step_run.cache_reason or "",
        )
    console.print(table)
    console.print(f"registered: {first.output}")
    state["pipeline_run"] = first
