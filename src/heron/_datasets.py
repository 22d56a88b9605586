"""Datasets: named, versioned data. Same content gives the same version.

The client computes a version's digest, schema and column profile where the data is (the
caller's process) and uploads the data itself to the artifact store; the service records
the version, so both transports share one code path.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from heron._entities import ColumnSchema, Dataset, DatasetVersion, Page
from heron._errors import InvalidInput, NotFound
from heron._names import check_name
from heron._services import Service, check_limit, next_token, page_offset
from heron._store import _tables as t
from heron._store._sql import insert_unique, latest_version

_DIGEST_LEN = 64


class DatasetService(Service):
    def create_dataset_version(
        self,
        name: str,
        digest: str,
        columns: list[ColumnSchema],
        row_count: int,
        profile: dict[str, Any] | None = None,
        data_digest: str | None = None,
        format: str = "parquet",
        source: str = "",
    ) -> DatasetVersion:
        """Register a version; content already registered under ``name`` returns that one."""
        check_name(name)
        _check_digest(digest, "digest")
        if data_digest is not None:
            _check_digest(data_digest, "data_digest")
            if not self.services.artifacts.exists(data_digest):
                raise NotFound(
                    f"data {data_digest} is not in the artifact store", field="data_digest"
                )
        if row_count < 0:
            raise InvalidInput("row_count must not be negative", field="row_count")
        with self.store.write() as conn:
            dataset_id = self._dataset_id(conn, name, create=True)
            existing = conn.execute(
                select(t.dataset_versions.c.version).where(
                    t.dataset_versions.c.dataset_id == dataset_id,
                    t.dataset_versions.c.digest == digest,
                )
            ).scalar()
            if existing is not None:
                return self._version(conn, name, existing)
            versions = t.dataset_versions.c
            version = 1 + (
                latest_version(conn, versions.version, versions.dataset_id, dataset_id) or 0
            )
            conn.execute(
                insert(t.dataset_versions).values(
                    dataset_id=dataset_id,
                    version=version,
                    digest=digest,
                    data_digest=data_digest,
                    format=format,
                    columns=[c.model_dump() for c in columns],
                    row_count=row_count,
                    profile=profile or {},
                    source=source,
                    created_at=t.now(),
                    created_by=self.caller.actor,
                )
            )
            self.record(
                conn, "create", "dataset_version", f"{name}/{version}", after={"digest": digest}
            )
            return self._version(conn, name, version)

    def get_dataset(self, name: str) -> Dataset:
        with self.store.read() as conn:
            return self._dataset(conn, name)

    def list_datasets(self, max_results: int = 100, page_token: str | None = None) -> Page[Dataset]:
        limit, offset = check_limit(max_results), page_offset(page_token)
        with self.store.read() as conn:
            names = (
                conn.execute(
                    select(t.datasets.c.name)
                    .order_by(t.datasets.c.name)
                    .offset(offset)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
            items = [self._dataset(conn, n) for n in names]
        return Page(items=items, next_page_token=next_token(offset, len(items), limit))

    def get_dataset_version(self, name: str, version: int | None = None) -> DatasetVersion:
        """A version of ``name``; the newest when ``version`` is None."""
        with self.store.read() as conn:
            if version is None:
                version = self._dataset(conn, name).latest_version
                if version is None:
                    raise NotFound(f"dataset {name!r} has no versions", field="name")
            return self._version(conn, name, version)

    def list_dataset_versions(self, name: str) -> list[DatasetVersion]:
        with self.store.read() as conn:
            dataset_id = self._dataset_id(conn, name)
            versions = conn.execute(
                select(t.dataset_versions.c.version)
                .where(t.dataset_versions.c.dataset_id == dataset_id)
                .order_by(t.dataset_versions.c.version)
            ).scalars()
            return [self._version(conn, name, v) for v in versions]

    # --- shared with other services ------------------------------------------------------

    def version_id(self, conn: Connection, name: str, version: int) -> int:
        row = conn.execute(
            select(t.dataset_versions.c.id)
            .join(t.datasets, t.datasets.c.id == t.dataset_versions.c.dataset_id)
            .where(t.datasets.c.name == name, t.dataset_versions.c.version == version)
        ).scalar()
        if row is None:
            raise NotFound(f"dataset {name!r} has no version {version}", field="datasets")
        return int(row)

    def _dataset_id(self, conn: Connection, name: str, *, create: bool = False) -> int:
        found = conn.execute(select(t.datasets.c.id).where(t.datasets.c.name == name)).scalar()
        if found is not None:
            return int(found)
        if not create:
            raise NotFound(f"dataset {name!r} does not exist", field="name")
        stmt = insert(t.datasets).values(name=name, description="", created_at=t.now())
        result = insert_unique(conn, stmt, f"dataset {name!r}")
        self.record(conn, "create", "dataset", name)
        return int(result.inserted_primary_key[0])

    def _dataset(self, conn: Connection, name: str) -> Dataset:
        row = conn.execute(select(t.datasets).where(t.datasets.c.name == name)).mappings().first()
        if row is None:
            raise NotFound(f"dataset {name!r} does not exist", field="name")
        versions = t.dataset_versions.c
        latest = latest_version(conn, versions.version, versions.dataset_id, row["id"])
        return Dataset(
            name=row["name"],
            description=row["description"],
            created_at=row["created_at"],
            latest_version=latest,
        )

    def _version(self, conn: Connection, name: str, version: int) -> DatasetVersion:
        row = (
            conn.execute(
                select(t.dataset_versions)
                .join(t.datasets, t.datasets.c.id == t.dataset_versions.c.dataset_id)
                .where(t.datasets.c.name == name, t.dataset_versions.c.version == version)
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"dataset {name!r} has no version {version}", field="version")
        data = {k: v for k, v in row.items() if k not in ("id", "dataset_id")}
        return DatasetVersion(name=name, **data)


def _check_digest(value: str, field: str) -> None:
    if len(value) != _DIGEST_LEN or any(c not in "0123456789abcdef" for c in value):
        raise InvalidInput(f"{field} must be a SHA-256 hex digest", field=field)
