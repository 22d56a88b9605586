"""Security: users, tokens and roles, secrets, SSRF and integrity checks. The server's auth
layer is ``heron._security._middleware`` (imported by the server only); the audit trail
lives in ``heron._audit``."""

from heron._security._entities import (
    GRANTABLE,
    PERMISSIONS,
    ApiToken,
    NewToken,
    Role,
    RoleGrant,
    SecuritySignal,
    User,
    WhoAmI,
)
from heron._security._integrity import verify_folder
from heron._security._secrets import SecretBox, mask
from heron._security._service import SecurityService
from heron._security._ssrf import check_outbound_url

__all__ = [
    "GRANTABLE",
    "PERMISSIONS",
    "ApiToken",
    "NewToken",
    "Role",
    "RoleGrant",
    "SecretBox",
    "SecurityService",
    "SecuritySignal",
    "User",
    "WhoAmI",
    "check_outbound_url",
    "mask",
    "verify_folder",
]
