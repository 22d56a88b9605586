"""``heron.Client`` methods for the audit trail, security (users, tokens, roles, signals)
and pipeline runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from heron._client_base import ClientBase
from heron._entities import AuditEvent, Page

if TYPE_CHECKING:
    from datetime import datetime

    from heron._audit import AuditVerification
    from heron._client import Client
    from heron._pipelines._entities import PipelineRun
    from heron._security._entities import (
        ApiToken,
        NewToken,
        Role,
        RoleGrant,
        SecuritySignal,
        User,
        WhoAmI,
    )


class SecurityMethods(ClientBase):
    """The audit trail, users, tokens, roles and security signals; ``Client`` inherits these."""

    # --- audit -------------------------------------------------------------------------

    def list_audit_events(
        self,
        object_type: str | None = None,
        object_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        *,
        model: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Page[AuditEvent]:
        """Audit events, oldest first; ``model`` selects a registered model's events (the
        model, its versions and aliases)."""
        return self._call(
            "list_audit_events",
            object_type=object_type,
            object_id=object_id,
            actor=actor,
            action=action,
            max_results=max_results,
            page_token=page_token,
            model=model,
            since=since,
            until=until,
        )

    def verify_audit_chain(self) -> AuditVerification:
        """Check the audit trail's hash chain (admin); ``ok`` is False at the first bad event."""
        return self._call("verify_audit_chain")

    # --- security: users, tokens, roles (admin, except your own tokens) ---------------

    def whoami(self) -> WhoAmI:
        return self._call("whoami")

    def create_user(self, name: str, role: Role | str = "viewer") -> User:
        return self._call("create_user", name=name, role=role)

    def list_users(self) -> list[User]:
        return self._call("list_users")

    def get_user(self, name: str) -> User:
        return self._call("get_user", name=name)

    def update_user(
        self, name: str, role: Role | str | None = None, disabled: bool | None = None
    ) -> User:
        return self._call("update_user", name=name, role=role, disabled=disabled)

    def create_token(
        self, user: str, token_name: str = "default", expires_in_days: int | None = None
    ) -> NewToken:
        """A new API token for ``user``; ``.token`` is shown this once and never again."""
        return self._call(
            "create_token", name=user, token_name=token_name, expires_in_days=expires_in_days
        )

    def list_tokens(self, user: str) -> list[ApiToken]:
        return self._call("list_tokens", name=user)

    def revoke_token(self, user: str, token_id: int) -> None:
        self._call("revoke_token", name=user, token_id=token_id)

    def grant_role(
        self, user: str, object_type: str, object_id: str, role: Role | str
    ) -> RoleGrant:
        return self._call(
            "grant_role", object_type=object_type, object_id=object_id, user=user, role=role
        )

    def revoke_role(self, user: str, object_type: str, object_id: str) -> None:
        self._call("revoke_role", object_type=object_type, object_id=object_id, user=user)

    def list_role_grants(
        self, user: str | None = None, object_type: str | None = None, object_id: str | None = None
    ) -> list[RoleGrant]:
        return self._call(
            "list_role_grants", user=user, object_type=object_type, object_id=object_id
        )

    def list_security_signals(
        self, kind: str | None = None, subject: str | None = None, since: datetime | None = None
    ) -> list[SecuritySignal]:
        return self._call("list_security_signals", kind=kind, subject=subject, since=since)


class PipelineMethods(ClientBase):
    """Reading and steering pipeline runs; ``Client`` inherits these."""

    # --- pipelines (run them with heron.run_pipeline; these read and steer runs) --------

    def get_pipeline_run(self, run_id: str) -> PipelineRun:
        return self._call("get_pipeline_run", run_id=run_id)

    def list_pipeline_runs(
        self,
        pipeline: str | None = None,
        status: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[PipelineRun]:
        return self._call(
            "list_pipeline_runs",
            pipeline=pipeline,
            status=status,
            max_results=max_results,
            page_token=page_token,
        )

    def cancel_pipeline_run(self, run_id: str) -> PipelineRun:
        return self._call("cancel_pipeline_run", run_id=run_id)

    def get_step_log(self: Client, run_id: str, step: str) -> str:
        """The captured stdout/stderr of one step of a pipeline run."""
        from heron._pipelines._runner import read_step_log

        return read_step_log(self, run_id, step)
