"""``heron users``, ``heron tokens`` and ``heron audit``: access control and the audit trail.

On the embedded store (no ``HERON_URL``) these act directly on the database, which is how
the first users of a server sharing that database are made; against a server they need an
admin's token (``HERON_TOKEN``), except for managing one's own tokens.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta

import typer

from heron._cli._common import client
from heron._cli._output import (
    JSON_OPTION,
    console,
    emit,
    err_console,
    handle_errors,
    print_entity,
    print_json,
)
from heron._errors import IntegrityError, InvalidInput

users = typer.Typer(help="Users, their global roles and per-object grants.", no_args_is_help=True)
tokens = typer.Typer(help="API tokens (only a hash is stored).", no_args_is_help=True)
audit = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)

ROLE_HELP = "none, viewer, editor or admin."


def register(app: typer.Typer) -> None:
    app.add_typer(users, name="users")
    app.add_typer(tokens, name="tokens")
    app.add_typer(audit, name="audit")


# --- users -------------------------------------------------------------------------------


@users.command("create")
@handle_errors
def users_create(
    name: str,
    role: str = typer.Option("viewer", help=f"Global role: {ROLE_HELP}"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a user (then give it a token with ``heron tokens create``)."""
    print_entity(client().create_user(name, role), as_json=as_json)


@users.command("list")
@handle_errors
def users_list(as_json: bool = JSON_OPTION) -> None:
    """List users with their global roles and grants."""
    emit("Users", client().list_users(), ["name", "role", "disabled", "grants"], as_json=as_json)


@users.command("update")
@handle_errors
def users_update(
    name: str,
    role: str = typer.Option(None, help=f"New global role: {ROLE_HELP}"),
    disabled: bool = typer.Option(None, "--disable/--enable", help="Refuse all its tokens."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Change a user's global role, or disable / enable it."""
    print_entity(client().update_user(name, role=role, disabled=disabled), as_json=as_json)


def _object(experiment: str | None, model: str | None, endpoint: str | None) -> tuple[str, str]:
    given = [
        (kind, value)
        for kind, value in (
            ("experiment", experiment),
            ("registered_model", model),
            ("endpoint", endpoint),
        )
        if value
    ]
    if len(given) != 1:
        raise InvalidInput("name exactly one of --experiment, --model, --endpoint", field="object")
    return given[0]


@users.command("grant")
@handle_errors
def users_grant(
    name: str,
    role: str = typer.Option(..., help="viewer, editor or admin (admin may grant others)."),
    experiment: str = typer.Option(None, help="An experiment."),
    model: str = typer.Option(None, help="A registered model."),
    endpoint: str = typer.Option(None, help="An endpoint."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Give a user a role on one experiment, registered model or endpoint."""
    object_type, object_id = _object(experiment, model, endpoint)
    print_entity(client().grant_role(name, object_type, object_id, role), as_json=as_json)


@users.command("revoke")
@handle_errors
def users_revoke(
    name: str,
    experiment: str = typer.Option(None, help="An experiment."),
    model: str = typer.Option(None, help="A registered model."),
    endpoint: str = typer.Option(None, help="An endpoint."),
) -> None:
    """Take back a user's role on one object."""
    object_type, object_id = _object(experiment, model, endpoint)
    client().revoke_role(name, object_type, object_id)
    console.print(f"revoked {name}'s role on {object_type} {object_id}")


# --- tokens ------------------------------------------------------------------------------


@tokens.command("create")
@handle_errors
def tokens_create(
    user: str = typer.Option(..., help="Whose token."),
    name: str = typer.Option("default", help="A label to tell tokens apart."),
    expires_days: int = typer.Option(None, help="Expire after this many days."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an API token; it is printed this once and cannot be shown again."""
    created = client().create_token(user, name, expires_days)
    if as_json:
        print_json(created)
        return
    console.print(f"token {created.id} for {user} (shown once, store it now):")
    sys.stdout.write(created.token + "\n")


@tokens.command("list")
@handle_errors
def tokens_list(
    user: str = typer.Option(..., help="Whose tokens."), as_json: bool = JSON_OPTION
) -> None:
    """List a user's tokens (never the tokens themselves)."""
    columns = ["id", "name", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at"]
    emit(
        f"Tokens of {user}",
        client().list_tokens(user),
        [*columns, "last_used_from"],
        as_json=as_json,
    )


@tokens.command("revoke")
@handle_errors
def tokens_revoke(token_id: int, user: str = typer.Option(..., help="Whose token.")) -> None:
    """Revoke a token: it is refused from now on."""
    client().revoke_token(user, token_id)
    console.print(f"token {token_id} of {user} revoked")


# --- audit -------------------------------------------------------------------------------


@audit.command("log")
@handle_errors
def audit_log(
    model: str = typer.Option(None, help="Events of one registered model (versions, aliases)."),
    actor: str = typer.Option(None, help="Events by one user."),
    action: str = typer.Option(None, help="One action, e.g. set_alias."),
    object_type: str = typer.Option(None, help="One object type, e.g. model_alias."),
    since: str = typer.Option(None, help="ISO time, or an age such as 30m, 12h, 7d."),
    until: str = typer.Option(None, help="ISO time, or an age such as 1h."),
    limit: int = typer.Option(None, help="At most this many events (oldest first)."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines: one object per event."),
) -> None:
    """Who did what to which object, when and from where, oldest first."""
    c = client()
    events, shown, token = [], 0, None
    while limit is None or shown < limit:
        page = c.list_audit_events(
            object_type=object_type,
            actor=actor,
            action=action,
            model=model,
            since=parse_time(since, "since"),
            until=parse_time(until, "until"),
            max_results=1000 if limit is None else max(1, min(1000, limit - shown)),
            page_token=token,
        )
        for event in page.items:
            if as_json:
                sys.stdout.write(event.model_dump_json() + "\n")
            else:
                events.append(event)
        shown += len(page.items)
        token = page.next_page_token
        if token is None:
            break
    if not as_json:
        columns = ["id", "time", "actor", "action", "object_type", "object_id", "before", "after"]
        emit("Audit events", events, [*columns, "source"], as_json=False)


@audit.command("verify")
@handle_errors
def audit_verify(as_json: bool = JSON_OPTION) -> None:
    """Check the hash chain: exit 0 if intact, else name the first bad event (exit 8)."""
    report = client().verify_audit_chain()
    if as_json:
        sys.stdout.write(json.dumps(report.model_dump(mode="json")) + "\n")
    elif report.ok:
        console.print(
            f"audit trail intact: {report.events_checked} events, head {report.head_hash}"
        )
    else:
        err_console.print(
            f"[red]audit trail broken at event #{report.first_bad_event_id}:[/red] "
            f"{report.problem} ({report.events_checked} events before it are intact)",
            highlight=False,
        )
    if not report.ok:
        raise typer.Exit(IntegrityError.exit_code)


@audit.command("signals")
@handle_errors
def audit_signals(
    kind: str = typer.Option(None, help="auth_failure, revoked_token, expired_token, ..."),
    since: str = typer.Option("24h", help="ISO time, or an age such as 30m, 12h, 7d."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Security signals per minute: failed logins, revoked or expired token use, new
    addresses, bulk downloads."""
    rows = client().list_security_signals(kind=kind, since=parse_time(since, "since"))
    emit("Security signals", rows, ["window_start", "kind", "subject", "count"], as_json=as_json)


_AGE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_time(value: str | None, field: str) -> datetime | None:
    """``2026-11-25T10:00``, ``2026-11-25`` or an age (``30m``, ``12h``, ``7d``)."""
    if value is None:
        return None
    match = _AGE.match(value.strip())
    if match:
        return datetime.now(UTC) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{field} must be an ISO time or an age such as 30m, 12h, 7d", field=field
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- server start ------------------------------------------------------------------------


def prepare_server_auth(no_auth: bool) -> None:
    """Before ``heron server`` starts: warn when auth is off; else make sure an admin can
    get in (``HERON_ADMIN_TOKEN``, or a first admin token shown once on an empty store)."""
    import os

    from heron._services import Services
    from heron._settings import Settings

    settings = Settings.from_env()
    if no_auth or not settings.auth:
        err_console.print(
            "[yellow]warning:[/yellow] authentication is OFF: anyone who can reach this "
            "server can read and change everything, as 'anonymous'",
            highlight=False,
        )
        # The app module reads its settings when uvicorn imports it (in each worker).
        os.environ["HERON_AUTH"] = "0"
        return
    services = Services(settings)
    try:
        if settings.admin_token:
            services.security.ensure_admin_token(settings.admin_token)
            if len(settings.admin_token) < 20:
                err_console.print(
                    "[yellow]warning:[/yellow] HERON_ADMIN_TOKEN is short; use a long random "
                    "value, e.g. from `python -c 'import secrets; print(secrets.token_hex(32))'`",
                    highlight=False,
                )
            return
        token = services.security.bootstrap_first_admin()
    finally:
        services.close()
    if token:
        console.print(
            "No users yet: created user 'admin'. Its API token is shown this once; store it "
            "and use it as HERON_TOKEN (or Authorization: Bearer <token>):",
            highlight=False,
        )
        sys.stdout.write(token + "\n")
        sys.stdout.flush()
