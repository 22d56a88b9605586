"""``heron predictions``: the Parquet prediction log that ``heron serve --parquet-log`` writes."""

from __future__ import annotations

from pathlib import Path

import typer

from heron._cli._common import client
from heron._cli._output import JSON_OPTION, console, emit, handle_errors
from heron._cli._security import parse_time

predictions = typer.Typer(
    help="Predictions: the sampled raw log of prediction servers.", no_args_is_help=True
)

SINCE_HELP = "Requests answered at or after this ISO time, or an age such as 30m, 12h, 7d."
UNTIL_HELP = "Requests answered before this ISO time (or age)."


def register(app: typer.Typer) -> None:
    app.add_typer(predictions, name="predictions")


@predictions.command("files")
@handle_errors
def predictions_files(
    endpoint: str,
    since: str = typer.Option(None, help=SINCE_HELP),
    until: str = typer.Option(None, help=UNTIL_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """List the Parquet files of ENDPOINT's prediction log (first 1000, oldest first)."""
    page = client().list_prediction_log_files(
        endpoint,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        max_results=1000,
    )
    columns = ["id", "digest", "rows", "size", "first_time", "last_time", "created_at"]
    emit(f"Prediction log files of {endpoint}", page.items, columns, as_json=as_json)


@predictions.command("export")
@handle_errors
def predictions_export(
    endpoint: str,
    out: Path = typer.Argument(..., help="The Parquet file to write."),
    since: str = typer.Option(None, help=SINCE_HELP),
    until: str = typer.Option(None, help=UNTIL_HELP),
) -> None:
    """Write ENDPOINT's Parquet prediction log (between --since and --until) to one file."""
    frame = client().read_prediction_log(
        endpoint, since=parse_time(since, "since"), until=parse_time(until, "until")
    )
    frame.to_parquet(out, index=False)
    console.print(f"{len(frame)} predictions of {endpoint!r} written to {out}")
