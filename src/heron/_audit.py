"""The audit trail: every state change is an event written in the same transaction, chained
by hashes so that any later edit, insertion or deletion shows.

Each event stores ``prev_hash`` (the hash of the event before it; ``GENESIS_HASH`` for the
first) and ``hash``, the SHA-256 of its canonical content plus ``prev_hash``. The newest
hash is also kept in ``audit_chain_head``, so deleting the newest events shows too.
Appends are serialized: on SQLite every write transaction holds the write lock from its
start (``BEGIN IMMEDIATE``); on PostgreSQL a transaction-level advisory lock is taken
before the chain head is read, and held until the change commits.

:func:`verify_chain` walks the events in order and names the first one that breaks the
chain. Someone with write access to the database can rebuild a whole chain; what the chain
proves is that nothing was changed *through* Heron or by a naive edit, and an exported
head hash (``heron audit verify --json``) pins the trail at a point in time.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from sqlalchemy import BigInteger, Connection, insert, or_, select, text, type_coerce, update

from heron._entities import AuditEvent, Page
from heron._services import Service, check_limit, next_token, page_offset
from heron._store._tables import audit_chain_head, audit_events, now

if TYPE_CHECKING:
    from heron._services import Caller

GENESIS_HASH = "0" * 64
_CHAIN_LOCK = 742_302  # PostgreSQL advisory lock key (migrations use 742301)
_MODEL_OBJECTS = ("registered_model", "model_version", "model_alias")
_LIMITS = {"actor": 200, "action": 100, "object_type": 50, "object_id": 500, "source": 200}


class AuditVerification(BaseModel):
    """What ``verify_audit_chain`` found: ``ok``, or the first bad event and why."""

    ok: bool
    events_checked: int
    head_hash: str
    first_bad_event_id: int | None = None
    problem: str | None = None


def event_hash(event: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 of an event's content (``time`` in epoch milliseconds) and ``prev_hash``."""
    content = {
        "time": int(event["time"]),
        "actor": event["actor"],
        "action": event["action"],
        "object_type": event["object_type"],
        "object_id": event["object_id"],
        "before": event["before"],
        "after": event["after"],
        "source": event["source"],
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    """Append an event to the chain in ``conn``'s transaction."""
    event = {
        "time": int(now().timestamp() * 1000),
        "actor": caller.actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "source": caller.source,
    }
    event = {
        k: v[: _LIMITS[k]] if isinstance(v, str) and k in _LIMITS else v for k, v in event.items()
    }
    # What is hashed must be exactly what the database gives back: plain JSON.
    event["before"], event["after"] = _plain(before), _plain(after)
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
    head = conn.execute(select(audit_chain_head.c.last_hash).where(audit_chain_head.c.id == 1))
    prev = head.scalar()
    digest = event_hash(event, prev or GENESIS_HASH)
    result = conn.execute(
        insert(audit_events).values(**event, prev_hash=prev or GENESIS_HASH, hash=digest)
    )
    event_id = int(result.inserted_primary_key[0])
    if prev is None:
        conn.execute(
            insert(audit_chain_head).values(id=1, last_event_id=event_id, last_hash=digest)
        )
    else:
        conn.execute(
            update(audit_chain_head)
            .where(audit_chain_head.c.id == 1)
            .values(last_event_id=event_id, last_hash=digest)
        )


def _plain(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return json.loads(json.dumps(value, default=str))  # type: ignore[no-any-return]


def verify_chain(conn: Connection) -> AuditVerification:
    """Walk every event in order; report the first that does not chain to the one before."""
    columns = [c for c in audit_events.c if c.name != "time"]
    query = select(*columns, type_coerce(audit_events.c.time, BigInteger).label("time"))
    rows = conn.execute(query.order_by(audit_events.c.id).execution_options(yield_per=1000))
    prev, prev_id, checked = GENESIS_HASH, None, 0
    try:  # a server-side cursor on PostgreSQL: closed even when the walk stops early
        for row in rows.mappings():
            problem = _event_problem(dict(row), prev, prev_id)
            if problem is not None:
                return AuditVerification(
                    ok=False,
                    events_checked=checked,
                    head_hash=prev,
                    first_bad_event_id=row["id"],
                    problem=problem,
                )
            prev, prev_id, checked = row["hash"], row["id"], checked + 1
    finally:
        rows.close()
    head = conn.execute(select(audit_chain_head).where(audit_chain_head.c.id == 1)).mappings()
    recorded = head.first()
    if recorded is not None and (recorded["last_hash"], recorded["last_event_id"]) != (
        prev,
        prev_id,
    ):
        return AuditVerification(
            ok=False,
            events_checked=checked,
            head_hash=prev,
            first_bad_event_id=recorded["last_event_id"],
            problem=(
                f"the newest event should be #{recorded['last_event_id']} but the trail ends "
                f"at #{prev_id}: events at the end were deleted or the head was edited"
            ),
        )
    if recorded is None and checked:
        return AuditVerification(
            ok=False,
            events_checked=checked,
            head_hash=prev,
            first_bad_event_id=prev_id,
            problem="the chain head is missing",
        )
    return AuditVerification(ok=True, events_checked=checked, head_hash=prev)


def _event_problem(row: dict[str, Any], prev: str, prev_id: int | None) -> str | None:
    after = f"event #{prev_id}" if prev_id is not None else "the start of the trail"
    if row["hash"] is None or row["prev_hash"] is None:
        return "it carries no hash: it was inserted outside Heron"
    if row["prev_hash"] != prev:
        return (
            f"it does not chain to {after}: an event was deleted or inserted before it, "
            "or the event before it was edited and rehashed"
        )
    if event_hash(row, row["prev_hash"]) != row["hash"]:
        return "its content does not match its hash: it was edited"
    return None


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
        model: str | None = None,
        until: datetime | None = None,
    ) -> Page[AuditEvent]:
        """Events oldest first. ``model`` selects everything about one registered model
        (the model, its versions and its aliases)."""
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
        if model is not None:
            oid = audit_events.c.object_id
            query = query.where(
                audit_events.c.object_type.in_(_MODEL_OBJECTS),
                or_(
                    oid == model,
                    oid.startswith(f"{model}/", autoescape=True),
                    oid.startswith(f"{model}@", autoescape=True),
                ),
            )
        if since is not None:
            query = query.where(audit_events.c.time >= since)
        if until is not None:
            query = query.where(audit_events.c.time < until)
        with self.store.read() as conn:
            rows = conn.execute(query.offset(offset).limit(limit)).mappings().all()
        items = [AuditEvent.model_validate(dict(row)) for row in rows]
        return Page(items=items, next_page_token=next_token(offset, len(items), limit))

    def verify_audit_chain(self) -> AuditVerification:
        """Check the whole trail's hash chain; ``ok`` is False at the first bad event."""
        engine = self.store.engine
        if engine.dialect.name == "postgresql":
            # One snapshot for the walk and the head, so a concurrent append is not a gap.
            options = {"isolation_level": "REPEATABLE READ"}
            with engine.connect().execution_options(**options) as conn, conn.begin():
                return verify_chain(conn)
        with self.store.read() as conn:
            return verify_chain(conn)
