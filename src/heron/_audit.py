"""The audit trail: every state change is an event written in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select

from heron._entities import AuditEvent, Page
from heron._services import Service, check_limit, next_token, page_offset
from heron._store._tables import audit_events, now

if TYPE_CHECKING:
    from heron._services import Caller


def record_event(
    conn: Connection,
    *,
    caller: Caller,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        insert(audit_events).values(
            time=now(),
            actor=caller.actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            before=before,
            after=after,
            source=caller.source,
        )
    )


class AuditService(Service):
    def list_audit_events(
        self,
        object_type: str | None = None,
        object_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[AuditEvent]:
        limit = check_limit(max_results)
        offset = page_offset(page_token)
        query = select(audit_events).order_by(audit_events.c.id)
        for column, value in (
            (audit_events.c.object_type, object_type),
            (audit_events.c.object_id, object_id),
            (audit_events.c.actor, actor),
            (audit_events.c.action, action),
        ):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(audit_events.c.time >= since)
        with self.store.read() as conn:
            rows = conn.execute(query.offset(offset).limit(limit)).mappings().all()
        items = [AuditEvent.model_validate(dict(row)) for row in rows]
        return Page(items=items, next_page_token=next_token(offset, len(items), limit))
