"""Endpoints: named, revisioned traffic specs over model versions.

An endpoint says which model versions answer its requests and in what shares::

    endpoint "cancer"                       current revision 3
    ├── revision 1  create    cancer-clf@champion 100
    ├── revision 2  update    cancer-clf@champion 90 · cancer-clf@challenger 10
    │                         shadow: cancer-clf/4
    └── revision 3  rollback  (the spec of revision 1 again)

Every change writes a new revision (who, when, what) and an audit event in the same
transaction; nothing is edited in place, so a rollback is just another revision. Targets name
a version (``cancer-clf/3``) or an alias (``cancer-clf@champion``); aliases are resolved when
a prediction server asks (:meth:`DeploymentService.resolve_endpoint`), so moving an alias
moves the traffic. A version the current revision of any endpoint names cannot be archived
or deleted (a ``RegistryService.reference_checks`` hook, registered below).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from sqlalchemy import Connection, bindparam, insert, select, update

from heron._entities import Entity, ModelVersionStatus, Page
from heron._errors import Conflict, InvalidInput, NotFound
from heron._names import check_name
from heron._registry import RegistryService
from heron._services import Service, check_limit, next_token, page_offset
from heron._store import _tables as t
from heron._store._sql import insert_unique

MAX_TARGETS = 16
_TARGET = re.compile(
    r"^(?P<model>[^/@:]+)(?:/(?P<version>\d+)|@(?P<alias>[^/@:]+))(?::(?P<weight>\d+))?$"
)


class Target(Entity):
    """A model version (``name/3``) or alias (``name@champion``) and its traffic weight.

    Weights are relative (90 and 10, or 1 and 1); a string ``"name@alias:90"`` is read as a
    target too, so the CLI, the client and the REST API all accept the short form.
    """

    model: str
    version: int | None = None
    alias: str | None = None
    weight: int = Field(default=100, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_target(value)
        return value

    @model_validator(mode="after")
    def _version_or_alias(self) -> Target:
        if (self.version is None) == (self.alias is None):
            raise ValueError("a target names either a version or an alias")
        return self

    @property
    def ref(self) -> str:
        return (
            f"{self.model}/{self.version}" if self.alias is None else f"{self.model}@{self.alias}"
        )


def parse_target(text: str) -> dict[str, Any]:
    """``"name/3"``, ``"name@alias"``, either with ``":weight"`` → Target fields."""
    match = _TARGET.match(text.strip())
    if match is None:
        raise InvalidInput(
            f"{text!r} is not a model reference (NAME/VERSION or NAME@ALIAS, then :WEIGHT)",
            field="targets",
        )
    fields: dict[str, Any] = {"model": match["model"]}
    if match["version"]:
        fields["version"] = int(match["version"])
    else:
        fields["alias"] = match["alias"]
    if match["weight"]:
        fields["weight"] = int(match["weight"])
    return fields


class StickyKey(Entity):
    """What makes A-B routing sticky: requests with equal keys reach the same variant.

    ``"header:x-user-id"`` or ``"column:customer_id"`` is read as a sticky key too.
    """

    source: Literal["header", "column"]
    name: str = Field(min_length=1, max_length=200)

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, str):
            source, sep, name = value.partition(":")
            if not sep:
                raise ValueError("a sticky key is 'header:NAME' or 'column:NAME'")
            return {"source": source, "name": name}
        return value

    def __str__(self) -> str:
        return f"{self.source}:{self.name}"


class EndpointSpec(Entity):
    """What one revision of an endpoint says."""

    targets: list[Target]
    shadow: list[Target] = Field(default_factory=list)
    sticky: StickyKey | None = None


class Endpoint(Entity):
    name: str
    description: str = ""
    revision: int
    targets: list[Target]
    shadow: list[Target] = Field(default_factory=list)
    sticky: StickyKey | None = None
    created_at: datetime
    updated_at: datetime
    updated_by: str = ""


class EndpointRevision(Entity):
    endpoint: str
    revision: int
    action: Literal["create", "update", "rollback"]
    restored: int | None = Field(
        default=None, description="for a rollback, the revision whose spec it restored"
    )
    targets: list[Target]
    shadow: list[Target] = Field(default_factory=list)
    sticky: StickyKey | None = None
    comment: str = ""
    created_at: datetime
    created_by: str = ""


class ResolvedTarget(Entity):
    """A target with its alias resolved: what a prediction server loads."""

    ref: str
    model: str
    version: int
    weight: int
    source: str
    flavor: str
    signature: dict[str, Any] | None = None


class ResolvedEndpoint(Entity):
    """An endpoint's current revision with every alias resolved to a version."""

    name: str
    revision: int
    targets: list[ResolvedTarget]
    shadow: list[ResolvedTarget] = Field(default_factory=list)
    sticky: StickyKey | None = None

    @property
    def state(self) -> tuple[Any, ...]:
        """Equal when a server would serve exactly the same thing."""
        return (
            self.revision,
            tuple((r.model, r.version, r.weight) for r in self.targets),
            tuple((r.model, r.version) for r in self.shadow),
        )


class DeploymentService(Service):
    # --- endpoints ---------------------------------------------------------------------

    def create_endpoint(
        self,
        name: str,
        targets: list[Target],
        shadow: list[Target] | None = None,
        sticky: StickyKey | None = None,
        description: str = "",
        comment: str = "",
    ) -> Endpoint:
        """A new endpoint serving ``targets`` (revision 1)."""
        check_name(name)
        spec = _spec(targets, shadow or [], sticky)
        with self.store.write() as conn:
            self._check_spec(conn, spec)
            stamp = t.now()
            stmt = insert(t.endpoints).values(
                name=name, description=description, revision=1, created_at=stamp, updated_at=stamp
            )
            endpoint_id = insert_unique(conn, stmt, f"endpoint {name!r}").inserted_primary_key[0]
            self._add_revision(conn, endpoint_id, 1, spec, "create", comment=comment)
            self.record(conn, "create", "endpoint", name, after=_audit_spec(spec, 1))
            return self._endpoint(conn, name)

    def get_endpoint(self, name: str) -> Endpoint:
        with self.store.read() as conn:
            return self._endpoint(conn, name)

    def list_endpoints(
        self, max_results: int = 100, page_token: str | None = None
    ) -> Page[Endpoint]:
        limit, offset = check_limit(max_results), page_offset(page_token)
        with self.store.read() as conn:
            names = (
                conn.execute(
                    select(t.endpoints.c.name)
                    .order_by(t.endpoints.c.name)
                    .offset(offset)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
            items = [self._endpoint(conn, n) for n in names]
        return Page(items=items, next_page_token=next_token(offset, len(items), limit))

    def update_endpoint(
        self,
        name: str,
        targets: list[Target] | None = None,
        shadow: list[Target] | None = None,
        sticky: StickyKey | None = None,
        clear_sticky: bool = False,
        description: str | None = None,
        comment: str = "",
    ) -> Endpoint:
        """A new revision: what is given replaces the current value (``shadow=[]`` drops
        shadows, ``clear_sticky`` drops stickiness); the rest is carried over."""
        unchanged = targets is None and shadow is None and sticky is None and not clear_sticky
        if unchanged and description is None:
            raise InvalidInput("nothing to change", field="targets")
        with self.store.write() as conn:
            row = self._row(conn, name, lock=True)
            current = self._spec(conn, row["id"], row["revision"])
            spec = _spec(
                current.targets if targets is None else targets,
                current.shadow if shadow is None else shadow,
                None if clear_sticky else (sticky or current.sticky),
            )
            values: dict[str, Any] = {"updated_at": t.now()}
            if description is not None:
                values["description"] = description
            if spec != current:
                self._check_spec(conn, spec)
                values["revision"] = row["revision"] + 1
                self._add_revision(
                    conn, row["id"], values["revision"], spec, "update", comment=comment
                )
            conn.execute(update(t.endpoints).where(t.endpoints.c.id == row["id"]).values(values))
            self.record(
                conn,
                "update",
                "endpoint",
                name,
                before=_audit_spec(current, row["revision"], row["description"]),
                after=_audit_spec(
                    spec, values.get("revision", row["revision"]), values.get("description")
                ),
            )
            return self._endpoint(conn, name)

    def rollback_endpoint(self, name: str, to_revision: int | None = None) -> Endpoint:
        """A new revision restoring the spec of ``to_revision`` (default: the revision before
        the current one). Rolling back twice in a row returns to where you started."""
        with self.store.write() as conn:
            row = self._row(conn, name, lock=True)
            current_revision = row["revision"]
            target = current_revision - 1 if to_revision is None else to_revision
            if target < 1:
                raise Conflict(
                    f"endpoint {name!r} has no revision before {current_revision}",
                    field="to_revision",
                )
            if target == current_revision:
                raise Conflict(
                    f"endpoint {name!r} is at revision {target} already", field="to_revision"
                )
            if target > current_revision:
                raise NotFound(f"endpoint {name!r} has no revision {target}", field="to_revision")
            current = self._spec(conn, row["id"], current_revision)
            spec = self._spec(conn, row["id"], target)
            self._check_spec(conn, spec)
            revision = current_revision + 1
            self._add_revision(conn, row["id"], revision, spec, "rollback", restored=target)
            conn.execute(
                update(t.endpoints)
                .where(t.endpoints.c.id == row["id"])
                .values(revision=revision, updated_at=t.now())
            )
            self.record(
                conn,
                "rollback",
                "endpoint",
                name,
                before=_audit_spec(current, current_revision),
                after={**_audit_spec(spec, revision), "restored": target},
            )
            return self._endpoint(conn, name)

    def list_endpoint_revisions(self, name: str) -> list[EndpointRevision]:
        """Every revision of ``name``, oldest first."""
        with self.store.read() as conn:
            row = self._row(conn, name)
            rows = (
                conn.execute(
                    select(t.endpoint_revisions)
                    .where(t.endpoint_revisions.c.endpoint_id == row["id"])
                    .order_by(t.endpoint_revisions.c.revision)
                )
                .mappings()
                .all()
            )
        return [
            EndpointRevision(
                endpoint=name,
                revision=r["revision"],
                action=r["action"],
                restored=r["restored"],
                comment=r["comment"],
                created_at=r["created_at"],
                created_by=r["created_by"],
                **EndpointSpec.model_validate(r["spec"]).model_dump(),
            )
            for r in rows
        ]

    def resolve_endpoint(self, name: str) -> ResolvedEndpoint:
        """The current revision with aliases resolved: what a prediction server should serve.

        Every prediction server asks this every second or so (``--poll-interval``), from a
        thread that shares the interpreter with its requests, and every replica asks the one
        store: so one statement for the endpoint and one per target, built once (see
        ``_RESOLVE``); a miss takes the general path, which says what is missing."""
        with self.store.read() as conn:
            found = conn.execute(_RESOLVE["endpoint"], {"name": name}).first()
            if found is None:  # the general path raises, saying what is missing
                row = self._row(conn, name)
                revision, spec = row["revision"], self._spec(conn, row["id"], row["revision"])
            else:
                revision, spec = found.revision, EndpointSpec.model_validate(found.spec)
            return ResolvedEndpoint(
                name=name,
                revision=revision,
                targets=[self._resolve_fast(conn, target) for target in spec.targets],
                shadow=[self._resolve_fast(conn, target) for target in spec.shadow],
                sticky=spec.sticky,
            )

    def _resolve_fast(self, conn: Connection, target: Target) -> ResolvedTarget:
        if target.alias is not None:
            params = {"model": target.model, "alias": target.alias}
            row = conn.execute(_RESOLVE["alias"], params).first()
        else:
            params = {"model": target.model, "version": target.version}
            row = conn.execute(_RESOLVE["version"], params).first()
        if row is None or row.status == ModelVersionStatus.ARCHIVED:
            return self._resolve(conn, target)  # raises, saying why
        return _resolved(target, row)

    # --- internals ---------------------------------------------------------------------

    def _row(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        query = select(t.endpoints).where(t.endpoints.c.name == name)
        if lock:  # serialises revision numbering on PostgreSQL
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"endpoint {name!r} does not exist", field="name")
        return row

    def _spec(self, conn: Connection, endpoint_id: int, revision: int) -> EndpointSpec:
        raw = conn.execute(
            select(t.endpoint_revisions.c.spec).where(
                t.endpoint_revisions.c.endpoint_id == endpoint_id,
                t.endpoint_revisions.c.revision == revision,
            )
        ).scalar()
        if raw is None:
            raise NotFound(f"endpoint has no revision {revision}", field="to_revision")
        return EndpointSpec.model_validate(raw)

    def _endpoint(self, conn: Connection, name: str) -> Endpoint:
        row = self._row(conn, name)
        revision = (
            conn.execute(
                select(t.endpoint_revisions).where(
                    t.endpoint_revisions.c.endpoint_id == row["id"],
                    t.endpoint_revisions.c.revision == row["revision"],
                )
            )
            .mappings()
            .one()
        )
        spec = EndpointSpec.model_validate(revision["spec"])
        return Endpoint(
            name=name,
            description=row["description"],
            revision=row["revision"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            updated_by=revision["created_by"],
            **spec.model_dump(),
        )

    def _add_revision(
        self,
        conn: Connection,
        endpoint_id: int,
        revision: int,
        spec: EndpointSpec,
        action: str,
        *,
        restored: int | None = None,
        comment: str = "",
    ) -> None:
        conn.execute(
            insert(t.endpoint_revisions).values(
                endpoint_id=endpoint_id,
                revision=revision,
                spec=spec.model_dump(mode="json"),
                action=action,
                restored=restored,
                comment=comment,
                created_at=t.now(),
                created_by=self.caller.actor,
            )
        )

    def _check_spec(self, conn: Connection, spec: EndpointSpec) -> None:
        """Every target must resolve to a servable version; weights must route something."""
        if not spec.targets:
            raise InvalidInput("an endpoint needs at least one target", field="targets")
        for field, targets in (("targets", spec.targets), ("shadow", spec.shadow)):
            if len(targets) > MAX_TARGETS:
                raise InvalidInput(f"at most {MAX_TARGETS} {field}", field=field)
            refs = [target.ref for target in targets]
            if len(set(refs)) != len(refs):
                raise InvalidInput(f"{field} names the same model version twice", field=field)
            for target in targets:
                self._resolve(conn, target, field=field)
        if sum(target.weight for target in spec.targets) <= 0:
            raise InvalidInput("the target weights add up to 0", field="targets")

    def _resolve(
        self, conn: Connection, target: Target, *, field: str = "targets"
    ) -> ResolvedTarget:
        registry = self.services.registry
        try:
            if target.alias is not None:
                model_id = registry._model_id(conn, target.model)
                version = registry._alias_version(conn, model_id, target.alias)
                if version is None:
                    raise NotFound(f"model {target.model!r} has no alias {target.alias!r}")
            else:
                version = target.version
            assert version is not None
            mv = registry._version(conn, target.model, version)
        except NotFound as exc:
            raise NotFound(f"{target.ref}: {exc.message}", field=field) from exc
        if mv.status == ModelVersionStatus.ARCHIVED:
            raise Conflict(f"{target.ref} is archived and cannot be served", field=field)
        return _resolved(target, mv)


def _resolved(target: Target, found: Any) -> ResolvedTarget:
    """``target`` resolved to ``found``: a ModelVersion, or a row of the same columns."""
    return ResolvedTarget(
        ref=target.ref,
        model=found.name,
        version=found.version,
        weight=target.weight,
        source=found.source,
        flavor=found.flavor,
        signature=found.signature,
    )


def _resolve_statements() -> dict[str, Any]:
    """The statements of ``resolve_endpoint``, built once: building a statement costs more
    than running it here (coercions, cache keys), ~8 of them a second per server."""
    mv, rm, aliases = t.model_versions, t.registered_models, t.model_aliases
    version_row = select(rm.c.name, mv.c.version, mv.c.source, mv.c.flavor, mv.c.signature,
                         mv.c.status).join(rm, rm.c.id == mv.c.model_id)  # fmt: skip
    return {
        "endpoint": select(t.endpoints.c.revision, t.endpoint_revisions.c.spec)
        .join(t.endpoint_revisions, t.endpoint_revisions.c.endpoint_id == t.endpoints.c.id)
        .where(
            t.endpoints.c.name == bindparam("name"),
            t.endpoint_revisions.c.revision == t.endpoints.c.revision,
        ),
        "version": version_row.where(
            rm.c.name == bindparam("model"), mv.c.version == bindparam("version")
        ),
        "alias": version_row.join(
            aliases, (aliases.c.model_id == mv.c.model_id) & (aliases.c.version == mv.c.version)
        ).where(rm.c.name == bindparam("model"), aliases.c.alias == bindparam("alias")),
    }


_RESOLVE = _resolve_statements()


def _spec(targets: Any, shadow: Any, sticky: Any) -> EndpointSpec:
    """Validate a spec given as entities, dicts or short strings (the embedded transport
    passes what the caller gave), turning pydantic's complaint into InvalidInput."""
    try:
        return EndpointSpec.model_validate({"targets": targets, "shadow": shadow, "sticky": sticky})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first.get("loc") else "targets"
        raise InvalidInput(f"{field}: {first['msg']}", field=field) from None


def _audit_spec(
    spec: EndpointSpec, revision: int, description: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "revision": revision,
        "targets": [f"{x.ref}:{x.weight}" for x in spec.targets],
        "shadow": [x.ref for x in spec.shadow],
        "sticky": str(spec.sticky) if spec.sticky else None,
    }
    if description is not None:
        out["description"] = description
    return out


def endpoints_using(conn: Connection, model: str, version: int) -> str | None:
    """The reference check: which endpoints' current revisions name ``model/version``."""
    rows = conn.execute(
        select(t.endpoints.c.name, t.endpoint_revisions.c.spec)
        .join(
            t.endpoint_revisions,
            (t.endpoint_revisions.c.endpoint_id == t.endpoints.c.id)
            & (t.endpoint_revisions.c.revision == t.endpoints.c.revision),
        )
        .order_by(t.endpoints.c.name)
    ).all()
    users = []
    for name, raw in rows:
        spec = EndpointSpec.model_validate(raw)
        if any(x.model == model and x.version == version for x in [*spec.targets, *spec.shadow]):
            users.append(f"endpoint {name!r}")
    return ", ".join(users) or None


if endpoints_using not in RegistryService.reference_checks:
    RegistryService.reference_checks.append(endpoints_using)
