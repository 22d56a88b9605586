"""The services container: both stores and every service over them, for one caller.

Services are the product; the REST server, CLI, client and dashboard call into them. A
container is cheap to derive for another caller (``as_caller``): the stores are shared.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from heron._errors import InvalidInput
from heron._settings import Settings
from heron._store._db import MetadataStore

if TYPE_CHECKING:
    from heron._artifacts import ArtifactStore
    from heron._audit import AuditService
    from heron._datasets import DatasetService
    from heron._deployments import DeploymentService
    from heron._monitoring._service import MonitoringService
    from heron._pipelines._service import PipelineService
    from heron._predictions import PredictionService
    from heron._registry import RegistryService
    from heron._security._service import SecurityService
    from heron._tracking import TrackingService


@dataclass(frozen=True)
class Caller:
    """Who is acting: recorded in every audit event."""

    actor: str = "local"
    source: str | None = None


class Services:
    def __init__(
        self,
        settings: Settings,
        *,
        metadata: MetadataStore | None = None,
        artifacts: ArtifactStore | None = None,
        caller: Caller | None = None,
    ) -> None:
        self.settings = settings
        self.metadata = metadata or MetadataStore(settings.resolved_db_url)
        self._artifacts = artifacts
        self.caller = caller or Caller(actor=_local_user())

    @cached_property
    def artifacts(self) -> ArtifactStore:
        if self._artifacts is None:
            from heron._artifacts import ArtifactStore

            self._artifacts = ArtifactStore(
                self.settings.resolved_artifacts, encryption_key=self.settings.encryption_key
            )
        return self._artifacts

    def as_caller(self, caller: Caller) -> Services:
        return Services(
            self.settings, metadata=self.metadata, artifacts=self.artifacts, caller=caller
        )

    @cached_property
    def audit(self) -> AuditService:
        from heron._audit import AuditService

        return AuditService(self)

    @cached_property
    def security(self) -> SecurityService:
        from heron._security._service import SecurityService

        return SecurityService(self)

    @cached_property
    def tracking(self) -> TrackingService:
        from heron._tracking import TrackingService

        return TrackingService(self)

    @cached_property
    def datasets(self) -> DatasetService:
        from heron._datasets import DatasetService

        return DatasetService(self)

    @cached_property
    def registry(self) -> RegistryService:
        import heron._deployments  # noqa: F401  (registers the endpoint reference check)
        from heron._registry import RegistryService

        return RegistryService(self)

    @cached_property
    def deployments(self) -> DeploymentService:
        from heron._deployments import DeploymentService

        return DeploymentService(self)

    @cached_property
    def predictions(self) -> PredictionService:
        from heron._predictions import PredictionService

        return PredictionService(self)

    @cached_property
    def monitoring(self) -> MonitoringService:
        from heron._monitoring._service import MonitoringService

        return MonitoringService(self)

    @cached_property
    def pipelines(self) -> PipelineService:
        from heron._pipelines._service import PipelineService

        return PipelineService(self)

    def close(self) -> None:
        self.metadata.dispose()


class Service:
    """Base of every service: access to the stores and to audit recording."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.metadata

    @property
    def caller(self) -> Caller:
        return self.services.caller

    def record(
        self,
        conn: Connection,
        action: str,
        object_type: str,
        object_id: str,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        """Write an audit event in the caller's transaction, so it commits with the change."""
        from heron._audit import record_event

        record_event(
            conn,
            caller=self.caller,
            action=action,
            object_type=object_type,
            object_id=object_id,
            before=before,
            after=after,
        )


def _local_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "local"


# --- pagination ------------------------------------------------------------------------

MAX_PAGE_SIZE = 1000


def page_offset(page_token: str | None) -> int:
    """Page tokens are opaque to callers; today they carry an offset."""
    if not page_token:
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(page_token.encode()).decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("page_token is not a token Heron issued", field="page_token") from exc
    if offset < 0:
        raise InvalidInput("page_token is not a token Heron issued", field="page_token")
    return offset


def next_token(offset: int, returned: int, limit: int) -> str | None:
    if returned < limit:
        return None
    return base64.urlsafe_b64encode(str(offset + returned).encode()).decode()


def check_limit(max_results: int) -> int:
    if not 1 <= max_results <= MAX_PAGE_SIZE:
        raise InvalidInput(
            f"max_results must be between 1 and {MAX_PAGE_SIZE}", field="max_results"
        )
    return max_results
