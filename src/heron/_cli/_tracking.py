"""``heron experiments``, ``heron runs``, ``heron datasets``."""

from __future__ import annotations

import typer

from heron._cli._common import client
from heron._cli._output import JSON_OPTION, emit, handle_errors, print_entity

experiments = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)
runs = typer.Typer(
    help="Runs: params, metrics, tags and artifacts of one training.", no_args_is_help=True
)
datasets = typer.Typer(help="Datasets and their versions.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(experiments, name="experiments")
    app.add_typer(runs, name="runs")
    app.add_typer(datasets, name="datasets")


@experiments.command("list")
@handle_errors
def experiments_list(
    max_results: int = typer.Option(100, "--max", help="How many to list."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List experiments."""
    page = client().list_experiments(max_results=max_results)
    emit("Experiments", page.items, ["id", "name", "description", "created_at"], as_json=as_json)


@experiments.command("show")
@handle_errors
def experiments_show(name: str, as_json: bool = JSON_OPTION) -> None:
    """Show one experiment."""
    print_entity(client().get_experiment(name), as_json=as_json)


@runs.command("list")
@handle_errors
def runs_list(
    experiment: list[str] = typer.Option(
        None, "--experiment", "-e", help="Only these experiments."
    ),
    filter: str = typer.Option(
        "", "--filter", "-f", help="e.g. \"metrics.accuracy > 0.9 and params.C = '1.0'\""
    ),
    order_by: list[str] = typer.Option(None, "--order-by", help="e.g. 'metrics.accuracy DESC'"),
    max_results: int = typer.Option(100, "--max", help="How many to list."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Search runs with a filter expression."""
    page = client().search_runs(
        filter, experiments=experiment or None, order_by=order_by or None, max_results=max_results
    )
    emit(
        "Runs",
        page.items,
        ["id", "experiment", "name", "status", "start_time", "metrics", "params"],
        as_json=as_json,
    )


@runs.command("show")
@handle_errors
def runs_show(run_id: str, as_json: bool = JSON_OPTION) -> None:
    """Show one run with its params, latest metrics, tags and inputs."""
    print_entity(client().get_run(run_id), as_json=as_json)


@datasets.command("list")
@handle_errors
def datasets_list(as_json: bool = JSON_OPTION) -> None:
    """List datasets."""
    emit(
        "Datasets",
        client().list_datasets().items,
        ["name", "latest_version", "created_at"],
        as_json=as_json,
    )


@datasets.command("show")
@handle_errors
def datasets_show(
    name: str,
    version: int = typer.Option(None, "--version", "-v", help="Default: the newest."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a dataset version: digest, schema, row count, profile."""
    dv = client().get_dataset_version(name, version)
    if as_json:
        print_entity(dv, as_json=True)
    else:
        print_entity(
            dv.model_copy(update={"profile": {"columns": len(dv.profile.get("columns", {}))}}),
            as_json=False,
        )


@datasets.command("versions")
@handle_errors
def datasets_versions(name: str, as_json: bool = JSON_OPTION) -> None:
    """List the versions of a dataset."""
    emit(
        f"Versions of {name}",
        client().list_dataset_versions(name),
        ["version", "digest", "row_count", "created_at", "created_by"],
        as_json=as_json,
    )
