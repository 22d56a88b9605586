"""``heron endpoints``: endpoints and their revisions; ``heron serve``: the prediction server."""

from __future__ import annotations

import typer

from heron._cli._common import client
from heron._cli._output import (
    JSON_OPTION,
    console,
    emit,
    err_console,
    handle_errors,
    print_entity,
)

endpoints = typer.Typer(help="Endpoints: what a prediction server serves.", no_args_is_help=True)

MODEL_HELP = (
    "A model version NAME/VERSION or alias NAME@ALIAS, with an optional :WEIGHT "
    "(repeat for canary or A-B: --model m@champion:90 --model m@challenger:10)."
)
SHADOW_HELP = "A version or alias that gets a copy of each request; its answers are only logged."
STICKY_HELP = "Route equal keys to the same variant: header:NAME or column:NAME."


def register(app: typer.Typer) -> None:
    app.add_typer(endpoints, name="endpoints")
    app.command("serve")(serve)


@endpoints.command("create")
@handle_errors
def endpoints_create(
    name: str,
    model: list[str] = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    shadow: list[str] = typer.Option(None, "--shadow", help=SHADOW_HELP),
    sticky: str = typer.Option(None, help=STICKY_HELP),
    description: str = typer.Option("", help="What the endpoint is for."),
    comment: str = typer.Option("", help="Why: kept with the revision."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create endpoint NAME serving one or more models."""
    ep = client().create_endpoint(
        name,
        list(model),
        shadow=list(shadow or []),
        sticky=sticky,
        description=description,
        comment=comment,
    )
    _print_endpoint(ep, as_json)


@endpoints.command("update")
@handle_errors
def endpoints_update(
    name: str,
    model: list[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    shadow: list[str] = typer.Option(None, "--shadow", help=SHADOW_HELP),
    no_shadow: bool = typer.Option(False, "--no-shadow", help="Drop every shadow target."),
    sticky: str = typer.Option(None, help=STICKY_HELP),
    no_sticky: bool = typer.Option(False, "--no-sticky", help="Drop stickiness."),
    description: str = typer.Option(None, help="What the endpoint is for."),
    comment: str = typer.Option("", help="Why: kept with the revision."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Change what NAME serves: a new revision (what is not given is kept)."""
    ep = client().update_endpoint(
        name,
        targets=list(model) if model else None,
        shadow=[] if no_shadow else (list(shadow) if shadow else None),
        sticky=sticky,
        clear_sticky=no_sticky,
        description=description,
        comment=comment,
    )
    _print_endpoint(ep, as_json)


@endpoints.command("rollback")
@handle_errors
def endpoints_rollback(
    name: str,
    to: int = typer.Option(None, "--to", help="The revision to restore (default: the previous)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Return NAME to its previous revision (as a new revision)."""
    ep = client().rollback_endpoint(name, to)
    _print_endpoint(ep, as_json)


@endpoints.command("show")
@handle_errors
def endpoints_show(
    name: str,
    revisions: bool = typer.Option(False, "--revisions", help="List every revision too."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show an endpoint (and, with --revisions, its history)."""
    c = client()
    if revisions:
        emit(
            f"Revisions of {name}",
            c.list_endpoint_revisions(name),
            ["revision", "action", "restored", "targets", "shadow", "sticky", "created_by",
             "created_at", "comment"],
            as_json=as_json,
        )  # fmt: skip
        return
    _print_endpoint(c.get_endpoint(name), as_json)


@endpoints.command("list")
@handle_errors
def endpoints_list(as_json: bool = JSON_OPTION) -> None:
    """List endpoints."""
    emit(
        "Endpoints",
        client().list_endpoints().items,
        ["name", "revision", "targets", "shadow", "sticky", "updated_at", "updated_by"],
        as_json=as_json,
    )


def _print_endpoint(ep: object, as_json: bool) -> None:
    from heron._deployments import Endpoint

    assert isinstance(ep, Endpoint)
    if as_json:
        print_entity(ep, as_json=True)
        return
    targets = ", ".join(f"{t.ref} ({t.weight})" for t in ep.targets)
    console.print(f"endpoint [bold]{ep.name}[/bold] revision {ep.revision}: {targets}")
    if ep.shadow:
        console.print("  shadow: " + ", ".join(t.ref for t in ep.shadow))
    if ep.sticky:
        console.print(f"  sticky: {ep.sticky}")


@handle_errors
def serve(
    endpoint: str = typer.Argument(..., help="The endpoint to serve."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8088, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes sharing the port."),
    poll_interval: float = typer.Option(1.0, help="Seconds between checks for a new revision."),
    log_predictions: bool = typer.Option(
        True, "--log/--no-log", help="Log predictions to the store (off the request path)."
    ),
    log_sample: float = typer.Option(
        1.0, help="Share of requests whose inputs are kept in the raw log (0-1)."
    ),
    log_input_mb_per_s: float = typer.Option(
        0.5, help="Budget for request inputs kept in the raw log, MB/s (0: no limit)."
    ),
    log_retention: int = typer.Option(
        1_000_000, help="Raw log rows kept per endpoint (older ones are trimmed); 0 keeps all."
    ),
    profile_rows_per_s: float = typer.Option(
        2_000,
        min=0.0,
        help="Rows a second folded into monitor profiles; requests beyond are counted, not "
        "profiled (0: all).",
    ),
    proba_rows_per_s: float = typer.Option(
        200,
        min=0.0,
        help="Rows a second whose class probabilities are logged for estimated performance "
        "(0: none).",
    ),
    batch_wait_ms: float = typer.Option(
        0.0, help="Adaptive micro-batching: wait up to this long for concurrent requests."
    ),
    max_body_mb: float = typer.Option(8.0, help="Largest request body accepted (413 above)."),
    parquet_log: bool = typer.Option(
        False,
        "--parquet-log/--no-parquet-log",
        help="Also write a sample of requests as Parquet files into the artifact store.",
    ),
    parquet_sample: float = typer.Option(
        0.1, help="Share of requests in the Parquet log (0-1; by request id)."
    ),
    parquet_rows: int = typer.Option(10_000, min=1, help="Rows per Parquet file at most."),
    parquet_seconds: float = typer.Option(
        300.0, min=0.0, help="Seconds after which an open Parquet file is rolled."
    ),
    auth: bool | None = typer.Option(
        None,
        "--auth/--no-auth",
        help="Require Authorization: Bearer tokens on /predict, /feedback and /metrics "
        "(default: on when the store has users, or through a Heron server).",
        show_default=False,
    ),
) -> None:
    """Serve ENDPOINT's predictions over HTTP (POST /predict, /feedback, /metrics, /health/*).

    The server follows the endpoint: a new revision, or a moved alias, is loaded and warmed,
    then traffic moves to it without a restart. Ready when GET /health/ready answers 200.
    """
    from heron._serving._options import ServeOptions
    from heron._serving._run import serve as run
    from heron._settings import Settings

    for value, hint in ((log_sample, "--log-sample"), (parquet_sample, "--parquet-sample")):
        if not 0.0 <= value <= 1.0:
            raise typer.BadParameter("must be between 0 and 1", param_hint=hint)
    options = ServeOptions(
        endpoint=endpoint,
        poll_interval=poll_interval,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        log_predictions=log_predictions,
        log_sample=log_sample,
        log_input_bytes_per_second=log_input_mb_per_s * 1024 * 1024 or None,
        log_retention=log_retention or None,
        profile_rows_per_second=profile_rows_per_s or None,
        proba_rows_per_second=proba_rows_per_s or None,
        batch_wait_ms=batch_wait_ms,
        auth=auth,
        parquet_log=parquet_log,
        parquet_sample=parquet_sample,
        parquet_rows=parquet_rows,
        parquet_seconds=parquet_seconds,
    )
    if auth is False:
        err_console.print(
            "[yellow]warning:[/yellow] authentication is OFF: anyone who can reach this "
            "server can predict and send feedback",
            highlight=False,
        )

    def ready(server: object) -> None:
        console.print(f"Heron serving endpoint {endpoint!r} on http://{host}:{port}")

    run(Settings.from_env(), options, host=host, port=port, workers=workers, on_ready=ready)
