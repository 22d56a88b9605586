"""``heron monitors``: create monitors, check data against them, read their history, report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from heron._cli._common import client
from heron._cli._output import JSON_OPTION, console, emit, handle_errors, print_entity, print_json
from heron._errors import InvalidInput

monitors = typer.Typer(
    help="Monitors: drift, data quality, performance, operations.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(monitors, name="monitors")


@monitors.command("create")
@handle_errors
def monitors_create(
    name: str,
    reference: str = typer.Option(..., help="Dataset NAME or NAME/VERSION to compare with."),
    model: str = typer.Option(None, help="Model watched: NAME@ALIAS or NAME/VERSION."),
    endpoint: str = typer.Option(None, help="Endpoint watched (instead of a model)."),
    window: str = typer.Option("day", help="Windows: hour, day, or a row count (e.g. 500)."),
    label_column: str = typer.Option(None, help="Ground-truth column (default: guessed)."),
    time_column: str = typer.Option(None, help="Column of event times, to cut batch windows."),
    task: str = typer.Option(None, help="classification or regression (default: guessed)."),
    test: list[str] = typer.Option([], help="Per-column drift test: COLUMN=TEST (repeatable)."),
    threshold: list[str] = typer.Option([], help="Per-column threshold: COLUMN=VALUE."),
    skip: list[str] = typer.Option([], help="Columns not tested for drift (repeatable)."),
    multivariate: bool = typer.Option(False, help="Also run the domain-classifier check."),
    description: str = typer.Option("", help="What the monitor is for."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a monitor of a model or endpoint against a reference dataset."""
    drift = {"columns": _column_settings(test, threshold, skip)}
    monitor = client().create_monitor(
        name, reference, model=model, endpoint=endpoint, window=window,
        label_column=label_column, time_column=time_column, task=task, drift=drift,
        multivariate=multivariate, description=description,
    )  # fmt: skip
    if as_json:
        print_json(monitor)
    else:
        ref = monitor.reference
        console.print(
            f"monitor {monitor.name}: {monitor.model or monitor.endpoint or 'data'} against "
            f"{ref.dataset}/{ref.version} ({len(monitor.features)} columns, label "
            f"{monitor.label_column or '-'}, window {monitor.window})"
        )


@monitors.command("check")
@handle_errors
def monitors_check(
    name: str,
    data: Path = typer.Option(..., help="A .parquet or .csv file of current data."),
    fail_on_drift: bool = typer.Option(False, help="Exit with status 1 when drift is found."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check a file against the monitor's reference: drift per column, quality, performance."""
    outcome = client().check_monitor(name, data)
    if as_json:
        print_json(outcome)
    else:
        _print_outcome(outcome)
    if fail_on_drift and outcome.drifted:
        raise typer.Exit(1)


@monitors.command("report")
@handle_errors
def monitors_report(
    name: str,
    out: Path = typer.Option(Path("report.html"), help="HTML file to write (JSON beside it)."),
) -> None:
    """Write a self-contained HTML report (and JSON) of the monitor's history."""
    path = client().write_monitor_report(name, out)
    console.print(f"wrote {path} and {path.with_suffix('.json')}")


@monitors.command("list")
@handle_errors
def monitors_list(as_json: bool = JSON_OPTION) -> None:
    """List monitors."""
    page = client().list_monitors()
    emit("Monitors", page.items, ["name", "model", "endpoint", "window", "label_column",
                                  "updated_at"], as_json=as_json)  # fmt: skip


@monitors.command("show")
@handle_errors
def monitors_show(name: str, as_json: bool = JSON_OPTION) -> None:
    """Show a monitor's settings."""
    print_entity(client().get_monitor(name), as_json=as_json)


@monitors.command("history")
@handle_errors
def monitors_history(
    name: str,
    limit: int = typer.Option(100, help="At most this many windows."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Stored window results, oldest first."""
    page = client().list_monitor_checks(name, max_results=limit)
    if as_json:
        print_json(page.items)
        return
    table = Table(title=f"History of {name}", title_justify="left")
    for column in ("id", "window", "source", "model", "rows", "drift share", "drifted columns",
                   "quality", "accuracy/mae"):  # fmt: skip
        table.add_column(column)
    for c in page.items:
        perf = c.performance or c.estimated_performance
        figure = ""
        if perf is not None:
            key = "accuracy" if perf.task == "classification" else "mae"
            value = perf.metrics.get(key)
            figure = "" if value is None else f"{value:.4f}" + (" (est.)" if perf.estimated else "")
        table.add_row(
            str(c.id), f"{c.window_start:%Y-%m-%d %H:%M}", c.source,
            f"{c.model}/{c.version}" if c.model else "", str(c.rows), f"{c.drift_share:.0%}",
            ", ".join(c.drifted_names()),
            "pass" if c.quality.passed else f"{c.quality.failed} failed", figure,
        )  # fmt: skip
    console.print(table)


@monitors.command("run")
@handle_errors
def monitors_run(name: str, as_json: bool = JSON_OPTION) -> None:
    """Check the windows of live traffic closed since the last run."""
    checks = client().run_monitor(name)
    if as_json:
        print_json(checks)
        return
    if not checks:
        console.print("no closed windows with new traffic")
    for c in checks:
        console.print(
            f"{c.window_start:%Y-%m-%d %H:%M} {c.model}/{c.version}: {c.rows} rows, drift share "
            f"{c.drift_share:.0%}"
            + (f" ({', '.join(c.drifted_names())})" if c.drifted_names() else "")
        )


@monitors.command("delete")
@handle_errors
def monitors_delete(name: str) -> None:
    """Delete a monitor and its history."""
    client().delete_monitor(name)
    console.print(f"deleted monitor {name}")


@monitors.command("servers")
@handle_errors
def monitors_servers(
    endpoint: str = typer.Option(None, help="Only this endpoint."), as_json: bool = JSON_OPTION
) -> None:
    """Prediction servers by their heartbeats: up or down, resource use."""
    c = client()
    c.check_heartbeats()
    emit("Prediction servers", c.list_serving_instances(endpoint),
         ["endpoint", "instance", "status", "last_seen", "stats"], as_json=as_json)  # fmt: skip


@monitors.command("utilisation")
@handle_errors
def monitors_utilisation(as_json: bool = JSON_OPTION) -> None:
    """Under-used and over-used models over the last 24 hours."""
    report = client().utilisation_report()
    if as_json:
        print_json(report)
        return
    emit("Model utilisation (last 24 hours)", report.usage,
         ["endpoint", "model", "version", "requests", "latency_p95_ms", "verdict", "reasons"],
         as_json=False)  # fmt: skip


@monitors.command("anomalies")
@handle_errors
def monitors_anomalies(
    subject: str = typer.Argument(..., help="monitor:NAME, endpoint:NAME or security:KIND"),
    metric: str = typer.Argument(..., help="e.g. drift_share, latency_p95_ms, count"),
    threshold: float = typer.Option(3.5, help="Robust z-score that counts as an anomaly."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Spikes and drops of a monitored series against its median/MAD baseline."""
    found = client().find_anomalies(subject, metric, threshold=threshold)
    emit(f"Anomalies of {subject} {metric}", found,
         ["time", "key", "value", "baseline", "score", "direction"], as_json=as_json)  # fmt: skip


def _print_outcome(outcome: Any) -> None:
    table = Table(title=f"Drift of {outcome.monitor} ({outcome.rows} rows)", title_justify="left")
    for column in ("column", "test", "statistic", "threshold", "drifted"):
        table.add_column(column)
    for c in sorted(outcome.columns, key=lambda c: (not c.drifted, c.column)):
        mark = "[red]yes[/red]" if c.drifted else "no"
        table.add_row(c.column, c.test, f"{c.statistic:.4f}", f"{c.threshold:g}", mark)
    console.print(table)
    verdict = "[red]drifted[/red]" if outcome.drifted else "[green]no dataset drift[/green]"
    console.print(
        f"drift share {outcome.drift_share:.0%} ({outcome.drifted_columns}/"
        f"{outcome.tested_columns}, threshold {outcome.share_threshold:.0%}): {verdict}"
    )
    for name, reason in outcome.skipped.items():
        console.print(f"  {name}: {reason}")
    if outcome.quality.failed:
        for q in outcome.quality.checks:
            if q.verdict == "fail":
                console.print(f"[red]quality[/red] {q.check} {q.column or ''}: {q.message}")
    for perf in (outcome.performance, outcome.estimated_performance):
        if perf is not None:
            label = "estimated" if perf.estimated else "performance"
            figures = ", ".join(f"{k} {v:.4f}" for k, v in perf.metrics.items() if v is not None)
            console.print(f"{label} ({perf.rows} rows): {figures}")
    for note in outcome.notes:
        console.print(f"[dim]{note}[/dim]")
    if len(outcome.windows) > 1:
        console.print(f"{len(outcome.windows)} windows stored; see heron monitors history")


def _column_settings(tests: list[str], thresholds: list[str], skip: list[str]) -> dict[str, Any]:
    columns: dict[str, dict[str, Any]] = {}
    for item, key in [(t, "test") for t in tests] + [(t, "threshold") for t in thresholds]:
        column, sep, value = item.rpartition("=")
        if not sep or not column:
            raise InvalidInput(f"{item!r} is not COLUMN=VALUE", field=key)
        if key == "threshold":
            try:
                columns.setdefault(column, {})[key] = float(value)
            except ValueError:
                raise InvalidInput(f"{value!r} is not a number", field=key) from None
        else:
            columns.setdefault(column, {})[key] = value
    for column in skip:
        columns.setdefault(column, {})["skip"] = True
    return columns
