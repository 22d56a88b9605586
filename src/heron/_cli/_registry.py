"""``heron models``: registered models, versions, aliases, lineage and cards."""

from __future__ import annotations

import typer

from heron._cli._common import client
from heron._cli._output import JSON_OPTION, console, emit, handle_errors, print_entity, print_json

models = typer.Typer(help="The model registry.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(models, name="models")


@models.command("list")
@handle_errors
def models_list(as_json: bool = JSON_OPTION) -> None:
    """List registered models."""
    page = client().list_registered_models()
    emit(
        "Registered models",
        page.items,
        ["name", "latest_version", "aliases", "updated_at"],
        as_json=as_json,
    )


@models.command("show")
@handle_errors
def models_show(
    name: str,
    version: int = typer.Argument(None, help="A version; without it, the registered model."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a registered model, or one of its versions."""
    c = client()
    entity = (
        c.get_model_version(name, version) if version is not None else c.get_registered_model(name)
    )
    print_entity(entity, as_json=as_json)


@models.command("versions")
@handle_errors
def models_versions(name: str, as_json: bool = JSON_OPTION) -> None:
    """List the versions of a registered model."""
    page = client().list_model_versions(name)
    emit(
        f"Versions of {name}",
        page.items,
        ["version", "status", "flavor", "aliases", "run_id", "created_at", "created_by"],
        as_json=as_json,
    )


@models.command("alias")
@handle_errors
def models_alias(name: str, alias: str, version: int, as_json: bool = JSON_OPTION) -> None:
    """Point ALIAS (e.g. champion) of model NAME at VERSION."""
    mv = client().set_alias(name, alias, version)
    if as_json:
        print_json(mv)
    else:
        console.print(f"{name}@{alias} → version {mv.version}")


@models.command("aliases")
@handle_errors
def models_aliases(
    name: str, alias: str = typer.Option(None, help="Only this alias."), as_json: bool = JSON_OPTION
) -> None:
    """History of alias moves: who moved which alias from which version to which, when."""
    emit(
        f"Alias history of {name}",
        client().list_alias_changes(name, alias),
        ["alias", "from_version", "to_version", "actor", "time"],
        as_json=as_json,
    )


@models.command("card")
@handle_errors
def models_card(name: str, version: int) -> None:
    """Print a version's model card as Markdown."""
    typer.echo(client().get_model_card(name, version), nl=False)


@models.command("lineage")
@handle_errors
def models_lineage(name: str, version: int, as_json: bool = JSON_OPTION) -> None:
    """Where a version came from: run, datasets, code commit, pipeline run."""
    print_entity(client().get_lineage(name, version), as_json=as_json)


@models.command("archive")
@handle_errors
def models_archive(name: str, version: int) -> None:
    """Archive a version (refused while an alias or a deployment uses it)."""
    client().archive_model_version(name, version)
    console.print(f"archived {name} version {version}")


@models.command("delete")
@handle_errors
def models_delete(name: str, version: int) -> None:
    """Delete a version (refused while an alias or a deployment uses it)."""
    client().delete_model_version(name, version)
    console.print(f"deleted {name} version {version}")
