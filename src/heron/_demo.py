"""``heron demo``: Heron end to end on the embedded store (``./.heron``), no server to start.

Each chapter is a function taking the client and what earlier chapters produced; later
areas (serving, monitoring, pipelines) add their chapter to ``CHAPTERS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from heron._client import Client
from heron._monitoring._demo import monitor_drift
from heron._pipelines._demo import retrain_with_a_pipeline
from heron._serving._demo import serve_predictions

console = Console()
Chapter = Callable[[Client, dict[str, Any]], None]


def track_and_register(client: Client, state: dict[str, Any]) -> None:
    """Train a classifier, track the run, version the data, register and alias the model."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    with client.start_run(experiment="quickstart", name="logreg") as run:
        run.log_params({"C": 1.0, "max_iter": 5000})
        model = LogisticRegression(C=1.0, max_iter=5000).fit(X_train, y_train)
        for step, fraction in enumerate((0.25, 0.5, 1.0)):
            n = int(len(X_test) * fraction)
            run.log_metric("accuracy", model.score(X_test[:n], y_test[:n]), step=step)
        run.log_dataset(X_train.assign(target=y_train), name="breast-cancer")
        mv = run.log_model(model, name="cancer-clf", input_example=X.head(3))
    client.set_alias("cancer-clf", "champion", mv.version)
    loaded = client.load_model("models:/cancer-clf@champion")
    state.update(X=X, y=y, X_test=X_test, y_test=y_test, model_version=mv, run_id=run.id)

    table = Table(title="Tracked and registered", show_header=False, title_justify="left")
    table.add_row("run", f"{run.id} (experiment quickstart)")
    table.add_row("test accuracy", f"{model.score(X_test, y_test):.4f}")
    table.add_row("dataset", "breast-cancer, " + f"{len(X_train)} rows")
    table.add_row("model", f"cancer-clf version {mv.version} → alias champion")
    table.add_row("predictions", ", ".join(str(p) for p in loaded.predict(X.head(5)).tolist()))
    console.print(table)


CHAPTERS: list[Chapter] = [
    track_and_register,
    serve_predictions,
    monitor_drift,
    retrain_with_a_pipeline,
]


def run_demo(client: Client | None = None) -> dict[str, Any]:
    client = client or Client()
    state: dict[str, Any] = {}
    for chapter in CHAPTERS:
        console.rule(f"[bold]{(chapter.__doc__ or chapter.__name__).splitlines()[0]}")
        chapter(client, state)
    console.rule("[bold green]Demo finished")
    console.print(
        "Try: [cyan]heron runs list[/cyan] · [cyan]heron models show cancer-clf 1[/cyan] · "
        "[cyan]heron models card cancer-clf 1[/cyan]"
    )
    return state
