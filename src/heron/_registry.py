"""Model registry: registered models, versions, aliases with history, lineage, model cards.

A model version points at a model folder in the artifact store by its manifest digest
(``source``); the folder itself is written by the client (``heron._models``) so both
transports upload the same way and no server-local path can ever be a model source.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from sqlalchemy import Connection, delete, insert, select, update

from heron._entities import (
    AliasChange,
    DatasetRef,
    Lineage,
    ModelCardFields,
    ModelVersion,
    ModelVersionStatus,
    Page,
    RegisteredModel,
)
from heron._errors import Conflict, InvalidInput, NotFound
from heron._names import check_name
from heron._services import Service, check_limit, next_token, page_offset
from heron._store import _tables as t
from heron._store._sql import insert_unique, latest_version, upsert

# (connection, model name, version) -> a description of what still uses the version, or None.
ReferenceCheck = Callable[[Connection, str, int], "str | None"]


class RegistryService(Service):
    reference_checks: ClassVar[list[ReferenceCheck]] = []

    # --- registered models -------------------------------------------------------------

    def create_registered_model(
        self, name: str, description: str = "", tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        check_name(name)
        with self.store.write() as conn:
            self._create_model(conn, name, description, tags or {})
            return self._model(conn, name)

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self.store.read() as conn:
            return self._model(conn, name)

    def list_registered_models(
        self, max_results: int = 100, page_token: str | None = None
    ) -> Page[RegisteredModel]:
        limit, offset = check_limit(max_results), page_offset(page_token)
        with self.store.read() as conn:
            names = (
                conn.execute(
                    select(t.registered_models.c.name)
                    .order_by(t.registered_models.c.name)
                    .offset(offset)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
            items = [self._model(conn, n) for n in names]
        return Page(items=items, next_page_token=next_token(offset, len(items), limit))

    def update_registered_model(
        self, name: str, description: str | None = None, tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        with self.store.write() as conn:
            before = self._model(conn, name)
            values: dict[str, Any] = {"updated_at": t.now()}
            if description is not None:
                values["description"] = description
            if tags is not None:
                values["tags"] = {**before.tags, **tags}
            conn.execute(
                update(t.registered_models).where(t.registered_models.c.name == name).values(values)
            )
            after = self._model(conn, name)
            self.record(
                conn,
                "update",
                "registered_model",
                name,
                before=before.model_dump(mode="json", include={"description", "tags"}),
                after=after.model_dump(mode="json", include={"description", "tags"}),
            )
            return after

    # --- versions ----------------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        flavor: str,
        signature: dict[str, Any] | None = None,
        run_id: str | None = None,
        datasets: list[DatasetRef] | None = None,
        git_commit: str | None = None,
        pipeline_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        card: ModelCardFields | None = None,
    ) -> ModelVersion:
        """A new version of ``name`` (created on first use) from a stored model folder."""
        check_name(name)
        if not self.services.artifacts.exists(source):
            raise NotFound(f"model folder {source} is not in the artifact store", field="source")
        with self.store.write() as conn:
            model_id = self._model_id(conn, name, create=True, lock=True)
            if run_id is not None:
                run = self.services.tracking._run(conn, run_id)
                git_commit = git_commit or run.git_commit
                datasets = datasets if datasets is not None else run.inputs
            for ref in datasets or []:
                self.services.datasets.version_id(conn, ref.name, ref.version)
            versions = t.model_versions.c
            version = 1 + (latest_version(conn, versions.version, versions.model_id, model_id) or 0)
            conn.execute(
                insert(t.model_versions).values(
                    model_id=model_id,
                    version=version,
                    source=source,
                    flavor=flavor,
                    signature=signature,
                    status=ModelVersionStatus.READY.value,
                    run_id=run_id,
                    git_commit=git_commit,
                    pipeline_run_id=pipeline_run_id,
                    datasets=[d.model_dump() for d in datasets or []],
                    tags=tags or {},
                    card=(card or ModelCardFields()).model_dump(),
                    created_at=t.now(),
                    created_by=self.caller.actor,
                )
            )
            self._touch(conn, model_id)
            created = self._version(conn, name, version)
            self.record(
                conn,
                "create",
                "model_version",
                f"{name}/{version}",
                after={"source": source, "run_id": run_id, "flavor": flavor},
            )
            return created

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        with self.store.read() as conn:
            return self._version(conn, name, version)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self.store.read() as conn:
            model_id = self._model_id(conn, name)
            version = conn.execute(
                select(t.model_aliases.c.version).where(
                    t.model_aliases.c.model_id == model_id, t.model_aliases.c.alias == alias
                )
            ).scalar()
            if version is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}", field="alias")
            return self._version(conn, name, version)

    def list_model_versions(
        self, name: str, max_results: int = 100, page_token: str | None = None
    ) -> Page[ModelVersion]:
        limit, offset = check_limit(max_results), page_offset(page_token)
        with self.store.read() as conn:
            model_id = self._model_id(conn, name)
            versions = (
                conn.execute(
                    select(t.model_versions.c.version)
                    .where(t.model_versions.c.model_id == model_id)
                    .order_by(t.model_versions.c.version.desc())
                    .offset(offset)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
            items = [self._version(conn, name, v) for v in versions]
        return Page(items=items, next_page_token=next_token(offset, len(items), limit))

    def update_model_version(
        self,
        name: str,
        version: int,
        tags: dict[str, str] | None = None,
        card: ModelCardFields | None = None,
    ) -> ModelVersion:
        with self.store.write() as conn:
            before = self._version(conn, name, version)
            values: dict[str, Any] = {}
            if tags is not None:
                values["tags"] = {**before.tags, **tags}
            if card is not None:
                values["card"] = card.model_dump()
            if values:
                conn.execute(self._version_update(conn, name, version).values(values))
            after = self._version(conn, name, version)
            self.record(
                conn,
                "update",
                "model_version",
                f"{name}/{version}",
                before=before.model_dump(mode="json", include={"tags", "card"}),
                after=after.model_dump(mode="json", include={"tags", "card"}),
            )
            return after

    def archive_model_version(self, name: str, version: int) -> ModelVersion:
        with self.store.write() as conn:
            before = self._version(conn, name, version)
            self._refuse_if_used(conn, name, version, "archived")
            conn.execute(
                self._version_update(conn, name, version).values(
                    status=ModelVersionStatus.ARCHIVED.value
                )
            )
            self.record(
                conn,
                "archive",
                "model_version",
                f"{name}/{version}",
                before={"status": before.status},
                after={"status": ModelVersionStatus.ARCHIVED},
            )
            return self._version(conn, name, version)

    def delete_model_version(self, name: str, version: int) -> None:
        """Refused while an alias or a deployment still points at the version."""
        with self.store.write() as conn:
            before = self._version(conn, name, version)
            self._refuse_if_used(conn, name, version, "deleted")
            model_id = self._model_id(conn, name)
            conn.execute(
                delete(t.model_versions).where(
                    t.model_versions.c.model_id == model_id, t.model_versions.c.version == version
                )
            )
            self.record(
                conn,
                "delete",
                "model_version",
                f"{name}/{version}",
                before=before.model_dump(mode="json", include={"source", "run_id", "flavor"}),
            )

    # --- aliases -----------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` (e.g. ``champion``) at ``version``; the move is audited."""
        check_name(alias, "alias")
        if alias.isdigit():
            raise InvalidInput(
                "an alias cannot be a number (it would read as a version)", field="alias"
            )
        with self.store.write() as conn:
            model_id = self._model_id(conn, name, lock=True)
            target = self._version(conn, name, version)
            if target.status == ModelVersionStatus.ARCHIVED:
                raise Conflict(f"version {version} of {name!r} is archived", field="version")
            previous = self._alias_version(conn, model_id, alias)
            upsert(
                conn,
                t.model_aliases,
                [{"model_id": model_id, "alias": alias, "version": version}],
                ["model_id", "alias"],
                ["version"],
            )
            self._touch(conn, model_id)
            self.record(
                conn,
                "set_alias",
                "model_alias",
                f"{name}@{alias}",
                before={"version": previous},
                after={"version": version},
            )
            return self._version(conn, name, version)

    def delete_alias(self, name: str, alias: str) -> None:
        with self.store.write() as conn:
            model_id = self._model_id(conn, name, lock=True)
            previous = self._alias_version(conn, model_id, alias)
            if previous is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}", field="alias")
            conn.execute(
                delete(t.model_aliases).where(
                    t.model_aliases.c.model_id == model_id, t.model_aliases.c.alias == alias
                )
            )
            self.record(
                conn,
                "delete_alias",
                "model_alias",
                f"{name}@{alias}",
                before={"version": previous},
                after={"version": None},
            )

    def list_alias_changes(self, name: str, alias: str | None = None) -> list[AliasChange]:
        """Who moved which alias of ``name`` from which version to which, and when."""
        query = select(t.audit_events).where(t.audit_events.c.object_type == "model_alias")
        if alias is not None:
            query = query.where(t.audit_events.c.object_id == f"{name}@{alias}")
        else:
            query = query.where(t.audit_events.c.object_id.like(f"{name}@%"))
        with self.store.read() as conn:
            self._model_id(conn, name)
            rows = conn.execute(query.order_by(t.audit_events.c.id)).mappings().all()
        return [
            AliasChange(
                model=name,
                alias=row["object_id"].split("@", 1)[1],
                from_version=(row["before"] or {}).get("version"),
                to_version=(row["after"] or {}).get("version"),
                actor=row["actor"],
                time=row["time"],
            )
            for row in rows
        ]

    # --- lineage and cards -------------------------------------------------------------

    def get_lineage(self, name: str, version: int) -> Lineage:
        mv = self.get_model_version(name, version)
        run = self.services.tracking.get_run(mv.run_id) if mv.run_id else None
        datasets = [
            self.services.datasets.get_dataset_version(ref.name, ref.version) for ref in mv.datasets
        ]
        return Lineage(
            model=name,
            version=version,
            run=run,
            datasets=datasets,
            git_commit=mv.git_commit,
            git_dirty=run.git_dirty if run else None,
            pipeline_run_id=mv.pipeline_run_id,
        )

    def get_model_card(self, name: str, version: int) -> str:
        """The version's model card as Markdown, from its card fields and its lineage."""
        from heron._cards import render_model_card

        return render_model_card(
            self.get_model_version(name, version), self.get_lineage(name, version)
        )

    # --- internals ---------------------------------------------------------------------

    def _create_model(
        self, conn: Connection, name: str, description: str, tags: dict[str, str]
    ) -> int:
        stamp = t.now()
        stmt = insert(t.registered_models).values(
            name=name, description=description, tags=tags, created_at=stamp, updated_at=stamp
        )
        result = insert_unique(conn, stmt, f"registered model {name!r}")
        self.record(conn, "create", "registered_model", name, after={"description": description})
        return int(result.inserted_primary_key[0])

    def _model_id(
        self, conn: Connection, name: str, *, create: bool = False, lock: bool = False
    ) -> int:
        query = select(t.registered_models.c.id).where(t.registered_models.c.name == name)
        if lock:  # serialises version numbering and alias moves on PostgreSQL
            query = query.with_for_update()
        found = conn.execute(query).scalar()
        if found is not None:
            return int(found)
        if not create:
            raise NotFound(f"registered model {name!r} does not exist", field="name")
        return self._create_model(conn, name, "", {})

    def _model(self, conn: Connection, name: str) -> RegisteredModel:
        row = (
            conn.execute(select(t.registered_models).where(t.registered_models.c.name == name))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"registered model {name!r} does not exist", field="name")
        aliases = dict(
            conn.execute(
                select(t.model_aliases.c.alias, t.model_aliases.c.version).where(
                    t.model_aliases.c.model_id == row["id"]
                )
            ).all()
        )
        versions = t.model_versions.c
        latest = latest_version(conn, versions.version, versions.model_id, row["id"])
        return RegisteredModel(
            name=row["name"],
            description=row["description"],
            tags=row["tags"] or {},
            aliases=aliases,
            latest_version=latest,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def _version(self, conn: Connection, name: str, version: int) -> ModelVersion:
        model_id = self._model_id(conn, name)
        row = (
            conn.execute(
                select(t.model_versions).where(
                    t.model_versions.c.model_id == model_id, t.model_versions.c.version == version
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"registered model {name!r} has no version {version}", field="version")
        aliases = (
            conn.execute(
                select(t.model_aliases.c.alias).where(
                    t.model_aliases.c.model_id == model_id, t.model_aliases.c.version == version
                )
            )
            .scalars()
            .all()
        )
        data = {k: v for k, v in row.items() if k not in ("id", "model_id")}
        return ModelVersion(name=name, aliases=sorted(aliases), **data)

    def _version_update(self, conn: Connection, name: str, version: int) -> Any:
        model_id = self._model_id(conn, name)
        return update(t.model_versions).where(
            t.model_versions.c.model_id == model_id, t.model_versions.c.version == version
        )

    def _alias_version(self, conn: Connection, model_id: int, alias: str) -> int | None:
        return conn.execute(
            select(t.model_aliases.c.version).where(
                t.model_aliases.c.model_id == model_id, t.model_aliases.c.alias == alias
            )
        ).scalar()

    def _touch(self, conn: Connection, model_id: int) -> None:
        conn.execute(
            update(t.registered_models)
            .where(t.registered_models.c.id == model_id)
            .values(updated_at=t.now())
        )

    def _refuse_if_used(self, conn: Connection, name: str, version: int, verb: str) -> None:
        model_id = self._model_id(conn, name)
        aliases = (
            conn.execute(
                select(t.model_aliases.c.alias).where(
                    t.model_aliases.c.model_id == model_id, t.model_aliases.c.version == version
                )
            )
            .scalars()
            .all()
        )
        users = [f"alias {a!r}" for a in aliases]
        users += [u for check in self.reference_checks if (u := check(conn, name, version))]
        if users:
            raise Conflict(
                f"version {version} of {name!r} cannot be {verb}: still used by "
                + ", ".join(users),
                field="version",
            )
