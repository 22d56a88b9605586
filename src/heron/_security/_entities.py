"""Entities of users, tokens, roles and security signals (shared by service, REST, client)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from heron._entities import Entity


class Role(StrEnum):
    """Roles rank none < viewer < editor < admin; a role includes those below it."""

    NONE = "none"
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"


ROLE_RANK = {Role.NONE: 0, Role.VIEWER: 1, Role.EDITOR: 2, Role.ADMIN: 3}
# What each declared route permission needs; "public" and "authenticated" need no role.
PERMISSION_RANK = {"read": 1, "edit": 2, "admin": 3}
PERMISSIONS = ("public", "authenticated", "read", "edit", "admin")
# Object types a role can be granted on (besides the global role).
GRANTABLE = ("experiment", "registered_model", "endpoint")


class RoleGrant(Entity):
    user: str
    object_type: str
    object_id: str
    role: Role


class User(Entity):
    name: str
    role: Role
    disabled: bool = False
    created_at: datetime
    created_by: str = ""
    grants: list[RoleGrant] = []


class ApiToken(Entity):
    """A token's record; the token itself is shown once, when created, and never stored."""

    id: int
    user: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    last_used_from: str | None = None


class NewToken(ApiToken):
    token: str


class WhoAmI(Entity):
    name: str
    role: Role
    grants: list[RoleGrant] = []


class SecuritySignal(Entity):
    """How often a security-relevant thing happened to ``subject`` in one window."""

    kind: str
    subject: str
    window_start: datetime
    count: int
    last_seen: datetime
