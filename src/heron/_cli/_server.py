"""``heron server``, ``heron db upgrade`` and ``heron demo``."""

from __future__ import annotations

import typer

from heron._cli._output import console, handle_errors

db = typer.Typer(help="The metadata store.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("server")(server)
    app.command("demo")(demo)
    app.add_typer(db, name="db")


@handle_errors
def server(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes."),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="Serve without authentication (everyone is admin). Unsafe."
    ),
) -> None:
    """Run the REST API server over the stores named by HERON_DB_URL and HERON_ARTIFACTS.

    Requests need an API token (``Authorization: Bearer``); on a store without users the
    first admin token is printed once, and ``HERON_ADMIN_TOKEN`` makes sure an admin
    holding that token exists."""
    import uvicorn

    from heron._cli._security import prepare_server_auth

    prepare_server_auth(no_auth)
    console.print(f"Heron server on http://{host}:{port} (API under /api/v1, docs at /docs)")
    uvicorn.run(
        "heron._serverapp:app",
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        factory=False,
    )


@db.command("upgrade")
@handle_errors
def db_upgrade() -> None:
    """Migrate the metadata store to the newest schema."""
    from heron._settings import Settings
    from heron._store._db import MetadataStore
    from heron._store._migrate import upgrade

    store = MetadataStore(Settings.from_env().resolved_db_url)
    try:
        upgrade(store.engine)
    finally:
        store.dispose()
    console.print("metadata store is at the newest schema")


@handle_errors
def demo() -> None:
    """Run the end-to-end demo on the embedded store (./.heron)."""
    from heron._demo import run_demo

    run_demo()
