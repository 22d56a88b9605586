"""The demo's monitoring chapter (listed in ``heron._demo.CHAPTERS``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from heron._errors import AlreadyExists

if TYPE_CHECKING:
    from heron._client import Client

console = Console()


def monitor_drift(client: Client, state: dict[str, Any]) -> None:
    """Monitor the model: check shifted data for drift, write a report."""
    import tempfile
    from pathlib import Path

    X, y = state["X_test"], state["y_test"]
    try:
        monitor = client.create_monitor(
            "cancer-batch", "breast-cancer", model="cancer-clf@champion"
        )
    except AlreadyExists:  # the demo ran before on this store
        monitor = client.get_monitor("cancer-batch")
    shifted = X.assign(target=y)
    shifted["mean radius"] = shifted["mean radius"] * 1.3
    shifted["worst texture"] = shifted["worst texture"] + 8
    with tempfile.TemporaryDirectory(prefix="heron-demo-") as scratch:
        current = Path(scratch) / "current.parquet"
        shifted.to_parquet(current)
        outcome = client.check_monitor(monitor.name, current)
    report = client.write_monitor_report(
        monitor.name, client.settings.home / "reports" / f"{monitor.name}.html"
    )
    state.update(monitor=monitor, check=outcome, report=report)

    table = Table(title="Drift against the training data", title_justify="left")
    for column in ("column", "test", "statistic", "threshold"):
        table.add_column(column)
    for c in outcome.columns:
        if c.drifted:
            table.add_row(c.column, c.test, f"{c.statistic:.3f}", f"{c.threshold:g}")
    console.print(table)
    console.print(
        f"drifted columns: {', '.join(outcome.drifted_names()) or 'none'} "
        f"(drift share {outcome.drift_share:.0%} of {outcome.tested_columns})"
    )
    if outcome.performance is not None:
        realized = outcome.performance.metrics.get("accuracy")
        estimated = (outcome.estimated_performance or outcome.performance).metrics.get("accuracy")
        console.print(f"accuracy on the shifted data: {realized:.4f} (estimated {estimated:.4f})")
    console.print(f"report: {report} (and {report.with_suffix('.json').name})")
