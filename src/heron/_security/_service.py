"""Users, API tokens, role grants and security signals: the security service.

Tokens are random (``heron_`` + 43 url-safe characters) and only their SHA-256 is stored;
the token itself is returned once, by ``create_token``. A token can expire and be revoked;
its last use (time, address) is recorded. Every change here is an audit event.
"""

from __future__ import annotations

import hashlib
import importlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from heron._errors import InvalidInput, NotFound, Unauthenticated
from heron._names import check_name
from heron._security._entities import (
    GRANTABLE,
    ROLE_RANK,
    ApiToken,
    NewToken,
    Role,
    RoleGrant,
    SecuritySignal,
    User,
    WhoAmI,
)
from heron._services import Service, check_limit
from heron._store import _tables as t
from heron._store._sql import insert_unique, upsert

TOKEN_PREFIX = "heron_"
SIGNAL_WINDOW_MS = 60_000
_LAST_USE_EVERY_S = 60.0  # last use is written at most this often per token
_MAX_KNOWN_SOURCES = 50
BOOTSTRAP_ADMIN = "admin"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """Who an authenticated request acts as."""

    user_id: int
    name: str
    role: Role
    token_id: int
    token_hash: str
    expires_at: datetime | None = None


class AuthFailure(Unauthenticated):
    """Unauthenticated, with the reason and (when the token was known) its user."""

    def __init__(self, message: str, *, reason: str, user: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.user = user


# Tokens whose last use was written recently, and (token, address) pairs already seen:
# both spare a write transaction on almost every request. Per process, which is enough.
_last_use_written: dict[str, float] = {}
_known_sources: set[tuple[str, str]] = set()
_cache_lock = threading.Lock()


class SecurityService(Service):
    # --- users -------------------------------------------------------------------------

    def create_user(self, name: str, role: Role = Role.VIEWER) -> User:
        """A user with a global role (``none`` means: only what grants give)."""
        check_name(name)
        role = Role(role)
        with self.store.write() as conn:
            self._create_user(conn, name, role)
            return self._user(conn, name)

    def list_users(self) -> list[User]:
        with self.store.read() as conn:
            names = conn.execute(select(t.users.c.name).order_by(t.users.c.name)).scalars()
            return [self._user(conn, n) for n in names.all()]

    def get_user(self, name: str) -> User:
        with self.store.read() as conn:
            return self._user(conn, name)

    def update_user(
        self, name: str, role: Role | None = None, disabled: bool | None = None
    ) -> User:
        """Change a user's global role, or disable (all tokens refused) / enable them."""
        with self.store.write() as conn:
            before = self._user(conn, name)
            values: dict[str, Any] = {}
            if role is not None:
                values["role"] = Role(role).value
            if disabled is not None:
                values["disabled"] = disabled
            if values:
                conn.execute(update(t.users).where(t.users.c.name == name).values(values))
            after = self._user(conn, name)
            self.record(
                conn,
                "update",
                "user",
                name,
                before=before.model_dump(mode="json", include={"role", "disabled"}),
                after=after.model_dump(mode="json", include={"role", "disabled"}),
            )
            return after

    def whoami(self) -> WhoAmI:
        """The caller: its user, global role and grants."""
        with self.store.read() as conn:
            row = conn.execute(select(t.users).where(t.users.c.name == self.caller.actor)).first()
            if row is None:  # embedded use or a server without auth: full local access
                return WhoAmI(name=self.caller.actor, role=Role.ADMIN)
            user = self._user(conn, self.caller.actor)
        return WhoAmI(name=user.name, role=user.role, grants=user.grants)

    # --- tokens ------------------------------------------------------------------------

    def create_token(
        self, name: str, token_name: str = "default", expires_in_days: int | None = None
    ) -> NewToken:
        """A new API token for user ``name``; the response is the only time it is shown."""
        check_name(token_name, "token_name")
        if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
            raise InvalidInput(
                "expires_in_days must be between 1 and 3650", field="expires_in_days"
            )
        secret = new_token_secret()
        expires = t.now() + timedelta(days=expires_in_days) if expires_in_days else None
        with self.store.write() as conn:
            user_id = self._user_id(conn, name)
            token_id = self._insert_token(conn, user_id, token_name, secret, expires)
            token = self._token(conn, token_id)
            self.record(
                conn,
                "create",
                "api_token",
                str(token_id),
                after=token.model_dump(mode="json", include={"user", "name", "expires_at"}),
            )
        return NewToken(**token.model_dump(), token=secret)

    def list_tokens(self, name: str) -> list[ApiToken]:
        with self.store.read() as conn:
            user_id = self._user_id(conn, name)
            ids = conn.execute(
                select(t.api_tokens.c.id)
                .where(t.api_tokens.c.user_id == user_id)
                .order_by(t.api_tokens.c.id)
            ).scalars()
            return [self._token(conn, i) for i in ids.all()]

    def revoke_token(self, name: str, token_id: int) -> None:
        """Revoke one of user ``name``'s tokens; it is refused from now on."""
        with self.store.write() as conn:
            user_id = self._user_id(conn, name)
            found = conn.execute(
                select(t.api_tokens.c.revoked_at).where(
                    t.api_tokens.c.id == token_id, t.api_tokens.c.user_id == user_id
                )
            ).first()
            if found is None:
                raise NotFound(f"user {name!r} has no token {token_id}", field="token_id")
            if found[0] is None:
                conn.execute(
                    update(t.api_tokens)
                    .where(t.api_tokens.c.id == token_id)
                    .values(revoked_at=t.now())
                )
                self.record(conn, "revoke", "api_token", str(token_id), after={"user": name})

    # --- grants ------------------------------------------------------------------------

    def grant_role(self, object_type: str, object_id: str, user: str, role: Role) -> RoleGrant:
        """Give ``user`` ``role`` on one experiment, registered model or endpoint."""
        _check_grantable(object_type)
        check_name(object_id, "object_id")
        role = Role(role)
        if role == Role.NONE:
            raise InvalidInput("grant viewer, editor or admin; revoke to remove", field="role")
        with self.store.write() as conn:
            user_id = self._user_id(conn, user)
            previous = self._grant(conn, user_id, object_type, object_id)
            upsert(
                conn,
                t.role_grants,
                [
                    {
                        "user_id": user_id,
                        "object_type": object_type,
                        "object_id": object_id,
                        "role": role.value,
                    }
                ],
                ["user_id", "object_type", "object_id"],
                ["role"],
            )
            self.record(
                conn,
                "grant",
                object_type,
                object_id,
                before={"user": user, "role": previous},
                after={"user": user, "role": role.value},
            )
        return RoleGrant(user=user, object_type=object_type, object_id=object_id, role=role)

    def revoke_role(self, object_type: str, object_id: str, user: str) -> None:
        _check_grantable(object_type)
        with self.store.write() as conn:
            user_id = self._user_id(conn, user)
            previous = self._grant(conn, user_id, object_type, object_id)
            if previous is None:
                raise NotFound(
                    f"user {user!r} has no role on {object_type} {object_id!r}", field="user"
                )
            conn.execute(
                delete(t.role_grants).where(
                    t.role_grants.c.user_id == user_id,
                    t.role_grants.c.object_type == object_type,
                    t.role_grants.c.object_id == object_id,
                )
            )
            self.record(
                conn,
                "revoke",
                object_type,
                object_id,
                before={"user": user, "role": previous},
                after={"user": user, "role": None},
            )

    def list_role_grants(
        self, user: str | None = None, object_type: str | None = None, object_id: str | None = None
    ) -> list[RoleGrant]:
        query = (
            select(t.users.c.name, t.role_grants)
            .join(t.users, t.users.c.id == t.role_grants.c.user_id)
            .order_by(t.users.c.name, t.role_grants.c.object_type, t.role_grants.c.object_id)
        )
        for column, value in (
            (t.users.c.name, user),
            (t.role_grants.c.object_type, object_type),
            (t.role_grants.c.object_id, object_id),
        ):
            if value is not None:
                query = query.where(column == value)
        with self.store.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [_grant_entity(row) for row in rows]

    # --- signals -----------------------------------------------------------------------

    def list_security_signals(
        self,
        kind: str | None = None,
        subject: str | None = None,
        since: datetime | None = None,
        max_results: int = 1000,
    ) -> list[SecuritySignal]:
        """Counts of failed logins, revoked or expired token use, new addresses and bulk
        downloads, per minute window, newest first: the series alerts watch."""
        limit = check_limit(max_results)
        s = t.security_signals
        query = select(s).order_by(s.c.window_start.desc(), s.c.kind, s.c.subject)
        if kind is not None:
            query = query.where(s.c.kind == kind)
        if subject is not None:
            query = query.where(s.c.subject == subject)
        if since is not None:
            query = query.where(s.c.window_start >= since)
        with self.store.read() as conn:
            rows = conn.execute(query.limit(limit)).mappings().all()
        return [SecuritySignal.model_validate(dict(row)) for row in rows]

    def record_signal(
        self,
        kind: str,
        subject: str,
        *,
        audit: bool = True,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Count one ``kind`` event for ``subject`` in the current window (and audit it)."""
        with self.store.write() as conn:
            self._count_signal(conn, kind, subject)
            if audit:
                self.record(conn, kind, "security", subject[:500], after=details)

    def record_denied(
        self, action: str, object_type: str, object_id: str, details: dict[str, Any]
    ) -> None:
        """An attempt that was refused (401/403): an audit event in its own transaction."""
        with self.store.write() as conn:
            self.record(conn, action, object_type, object_id, after=details)
            if action == "auth_failed":
                self._count_signal(conn, "auth_failure", self.caller.source or "unknown")
                reason = details.get("reason")
                if reason in ("revoked", "expired"):
                    self._count_signal(conn, f"{reason}_token", self.caller.actor)

    # --- authentication and authorization (used by the server) --------------------------

    def authenticate(self, token: str, source: str | None) -> Principal:
        """The principal holding ``token``; raises AuthFailure saying why not."""
        token_hash = hash_token(token)
        with self.store.read() as conn:
            row = (
                conn.execute(
                    select(
                        t.api_tokens.c.id,
                        t.api_tokens.c.expires_at,
                        t.api_tokens.c.revoked_at,
                        t.api_tokens.c.known_sources,
                        t.users.c.id.label("user_id"),
                        t.users.c.name,
                        t.users.c.role,
                        t.users.c.disabled,
                    )
                    .join(t.users, t.users.c.id == t.api_tokens.c.user_id)
                    .where(t.api_tokens.c.token_hash == token_hash)
                )
                .mappings()
                .first()
            )
        if row is None:
            raise AuthFailure("the token is not valid", reason="unknown")
        user = row["name"]
        if row["revoked_at"] is not None:
            raise AuthFailure("the token was revoked", reason="revoked", user=user)
        if row["expires_at"] is not None and row["expires_at"] <= t.now():
            raise AuthFailure("the token has expired", reason="expired", user=user)
        if row["disabled"]:
            raise AuthFailure(f"user {user!r} is disabled", reason="disabled", user=user)
        principal = Principal(
            row["user_id"], user, Role(row["role"]), row["id"], token_hash, row["expires_at"]
        )
        self._note_use(principal, source, list(row["known_sources"] or []))
        return principal

    def effective_role(self, principal: Principal, objects: list[tuple[str, str]]) -> Role:
        """The lowest role ``principal`` has over ``objects`` (global role or a grant)."""
        if not objects:
            return principal.role
        with self.store.read() as conn:
            roles = [self._role_on(conn, principal, o) for o in objects]
        return min(roles, key=lambda r: ROLE_RANK[r])

    def best_role(self, principal: Principal) -> Role:
        """The highest role ``principal`` has anywhere (global or any grant)."""
        with self.store.read() as conn:
            granted = conn.execute(
                select(t.role_grants.c.role).where(t.role_grants.c.user_id == principal.user_id)
            ).scalars()
            roles = [principal.role, *(Role(r) for r in granted.all())]
        return max(roles, key=lambda r: ROLE_RANK[r])

    def experiment_of_run(self, run_id: str) -> str | None:
        with self.store.read() as conn:
            return conn.execute(
                select(t.experiments.c.name)
                .join(t.runs, t.runs.c.experiment_id == t.experiments.c.id)
                .where(t.runs.c.id == run_id)
            ).scalar()

    # --- bootstrap ---------------------------------------------------------------------

    def ensure_admin_token(self, token: str, user: str = BOOTSTRAP_ADMIN) -> None:
        """Make sure an enabled admin holds ``token`` (``HERON_ADMIN_TOKEN``), unrevoked."""
        with self.store.write() as conn:
            row = conn.execute(
                select(t.api_tokens.c.id, t.api_tokens.c.user_id).where(
                    t.api_tokens.c.token_hash == hash_token(token)
                )
            ).first()
            if row is None:
                user_id = self._ensure_admin_user(conn, user)
                token_id = self._insert_token(conn, user_id, "HERON_ADMIN_TOKEN", token, None)
                self.record(conn, "create", "api_token", str(token_id), after={"user": user})
                return
            token_id, user_id = row
            name = conn.execute(select(t.users.c.name).where(t.users.c.id == user_id)).scalar_one()
            self._ensure_admin_user(conn, name)
            changed = conn.execute(
                update(t.api_tokens)
                .where(
                    t.api_tokens.c.id == token_id,
                    (t.api_tokens.c.revoked_at.is_not(None))
                    | (t.api_tokens.c.expires_at.is_not(None)),
                )
                .values(revoked_at=None, expires_at=None)
            )
            if changed.rowcount:
                self.record(conn, "restore", "api_token", str(token_id), after={"user": name})

    def bootstrap_first_admin(self) -> str | None:
        """With no users at all, create an admin and return its new token (else None)."""
        with self.store.write() as conn:
            if conn.execute(select(func.count()).select_from(t.users)).scalar_one():
                return None
            user_id = self._ensure_admin_user(conn, BOOTSTRAP_ADMIN)
            secret = new_token_secret()
            token_id = self._insert_token(conn, user_id, "bootstrap", secret, None)
            self.record(conn, "create", "api_token", str(token_id), after={"user": BOOTSTRAP_ADMIN})
        return secret

    # --- internals ---------------------------------------------------------------------

    def _note_use(self, principal: Principal, source: str | None, known: list[str]) -> None:
        """Record the token's last use, and signal its first use from a new address."""
        address = source or "unknown"
        pair = (principal.token_hash, address)
        clock = time.monotonic()
        with _cache_lock:
            last = _last_use_written.get(principal.token_hash, -1e9)
            seen = pair in _known_sources or address in known
            if clock - last < _LAST_USE_EVERY_S and seen:
                return
            _last_use_written[principal.token_hash] = clock
            _known_sources.add(pair)
        with self.store.write() as conn:
            values: dict[str, Any] = {"last_used_at": t.now(), "last_used_from": address[:200]}
            if address not in known:
                values["known_sources"] = [*known, address][-_MAX_KNOWN_SOURCES:]
            conn.execute(
                update(t.api_tokens).where(t.api_tokens.c.id == principal.token_id).values(values)
            )
            if known and address not in known:
                self._count_signal(conn, "new_address", principal.name)
                self.record(
                    conn,
                    "token_new_address",
                    "api_token",
                    str(principal.token_id),
                    before={"known_sources": known[-5:]},
                    after={"user": principal.name, "source": address},
                )

    def _count_signal(self, conn: Connection, kind: str, subject: str) -> None:
        stamp = t.now()
        window = int(stamp.timestamp() * 1000) // SIGNAL_WINDOW_MS * SIGNAL_WINDOW_MS
        s = t.security_signals
        # By name: the PostgreSQL dialect costs ~40 ms to import, which a prediction server
        # on SQLite would pay before it is ready (its auth check imports this module).
        dialect = importlib.import_module(f"sqlalchemy.dialects.{conn.dialect.name}")
        stmt = dialect.insert(s).values(
            kind=kind, subject=subject[:200], window_start=window, count=1, last_seen=stamp
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["kind", "subject", "window_start"],
                set_={"count": s.c.count + 1, "last_seen": stmt.excluded.last_seen},
            )
        )

    def _role_on(self, conn: Connection, principal: Principal, obj: tuple[str, str]) -> Role:
        object_type, object_id = obj
        if object_type == "user":  # users manage their own tokens
            return Role.ADMIN if object_id == principal.name else principal.role
        granted = self._grant(conn, principal.user_id, object_type, object_id)
        roles = [principal.role] + ([Role(granted)] if granted else [])
        return max(roles, key=lambda r: ROLE_RANK[r])

    def _create_user(self, conn: Connection, name: str, role: Role) -> int:
        stmt = insert(t.users).values(
            name=name,
            role=role.value,
            disabled=False,
            created_at=t.now(),
            created_by=self.caller.actor,
        )
        result = insert_unique(conn, stmt, f"user {name!r}")
        self.record(conn, "create", "user", name, after={"role": role.value})
        return int(result.inserted_primary_key[0])

    def _ensure_admin_user(self, conn: Connection, name: str) -> int:
        row = conn.execute(
            select(t.users.c.id, t.users.c.role, t.users.c.disabled).where(t.users.c.name == name)
        ).first()
        if row is None:
            return self._create_user(conn, name, Role.ADMIN)
        if row.role != Role.ADMIN.value or row.disabled:
            conn.execute(
                update(t.users).where(t.users.c.id == row.id).values(role="admin", disabled=False)
            )
            self.record(
                conn,
                "update",
                "user",
                name,
                before={"role": row.role, "disabled": row.disabled},
                after={"role": "admin", "disabled": False},
            )
        return int(row.id)

    def _insert_token(
        self, conn: Connection, user_id: int, name: str, secret: str, expires: datetime | None
    ) -> int:
        result = conn.execute(
            insert(t.api_tokens).values(
                user_id=user_id,
                name=name,
                token_hash=hash_token(secret),
                prefix=secret[:10],
                created_at=t.now(),
                expires_at=expires,
                known_sources=[],
            )
        )
        return int(result.inserted_primary_key[0])

    def _user_id(self, conn: Connection, name: str) -> int:
        found = conn.execute(select(t.users.c.id).where(t.users.c.name == name)).scalar()
        if found is None:
            raise NotFound(f"user {name!r} does not exist", field="name")
        return int(found)

    def _user(self, conn: Connection, name: str) -> User:
        row = conn.execute(select(t.users).where(t.users.c.name == name)).mappings().first()
        if row is None:
            raise NotFound(f"user {name!r} does not exist", field="name")
        grants = conn.execute(
            select(t.role_grants)
            .where(t.role_grants.c.user_id == row["id"])
            .order_by(t.role_grants.c.object_type, t.role_grants.c.object_id)
        ).mappings()
        return User(
            name=row["name"],
            role=Role(row["role"]),
            disabled=row["disabled"],
            created_at=row["created_at"],
            created_by=row["created_by"],
            grants=[_grant_entity({**g, "name": name}) for g in grants.all()],
        )

    def _token(self, conn: Connection, token_id: int) -> ApiToken:
        row = (
            conn.execute(
                select(t.api_tokens, t.users.c.name.label("user"))
                .join(t.users, t.users.c.id == t.api_tokens.c.user_id)
                .where(t.api_tokens.c.id == token_id)
            )
            .mappings()
            .one()
        )
        keep = set(ApiToken.model_fields)
        return ApiToken.model_validate({k: v for k, v in row.items() if k in keep})

    def _grant(
        self, conn: Connection, user_id: int, object_type: str, object_id: str
    ) -> str | None:
        return conn.execute(
            select(t.role_grants.c.role).where(
                t.role_grants.c.user_id == user_id,
                t.role_grants.c.object_type == object_type,
                t.role_grants.c.object_id == object_id,
            )
        ).scalar()


def _check_grantable(object_type: str) -> None:
    if object_type not in GRANTABLE:
        raise InvalidInput(
            f"roles can be granted on {', '.join(GRANTABLE)}, not {object_type!r}",
            field="object_type",
        )


def _grant_entity(row: Any) -> RoleGrant:
    return RoleGrant(
        user=row["name"],
        object_type=row["object_type"],
        object_id=row["object_id"],
        role=Role(row["role"]),
    )
