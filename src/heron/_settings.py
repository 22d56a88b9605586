"""Settings, read once from ``HERON_*`` environment variables into one object passed down.

- HERON_HOME: folder of the embedded store (default ./.heron)
- HERON_DB_URL: SQLAlchemy URL of the metadata store (default sqlite:///HOME/heron.db)
- HERON_ARTIFACTS: artifact store, a folder or any fsspec URL (default HOME/artifacts)
- HERON_URL: a Heron server; when set the client talks HTTP to it (default: embedded)
- HERON_TOKEN: API token the client sends to a server
- HERON_ADMIN_TOKEN: token of an admin the server makes sure exists at start
- HERON_ALLOW_PICKLE: 0 refuses pickle-based model flavors altogether (default 1)
- HERON_ENCRYPTION_KEY: Fernet key that encrypts artifacts at rest
- HERON_AUTH: 0 runs ``heron server`` without authentication, like --no-auth (default 1)
- HERON_SECRET_KEY: Fernet key(s), comma-separated, newest first, that encrypt secrets
  kept in the database (default: a key file HOME/secret.key made on first use)
- HERON_ALLOW_PRIVATE_WEBHOOKS: 1 lets webhooks target loopback/private addresses (default 0)
- HERON_MAX_UPLOAD_MB: largest artifact upload the server accepts (default 10240)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path(".heron"))
    db_url: str | None = None
    artifacts: str | None = None
    url: str | None = None
    token: str | None = None
    admin_token: str | None = None
    allow_pickle: bool = True
    encryption_key: str | None = None
    auth: bool = True
    secret_key: str | None = None
    allow_private_webhooks: bool = False
    max_upload_mb: int = 10240

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            home=Path(env.get("HERON_HOME", ".heron")),
            db_url=env.get("HERON_DB_URL") or None,
            artifacts=env.get("HERON_ARTIFACTS") or None,
            url=env.get("HERON_URL") or None,
            token=env.get("HERON_TOKEN") or None,
            admin_token=env.get("HERON_ADMIN_TOKEN") or None,
            allow_pickle=env.get("HERON_ALLOW_PICKLE", "1") not in ("0", "false", "no"),
            encryption_key=env.get("HERON_ENCRYPTION_KEY") or None,
            auth=env.get("HERON_AUTH", "1") not in ("0", "false", "no"),
            secret_key=env.get("HERON_SECRET_KEY") or None,
            allow_private_webhooks=env.get("HERON_ALLOW_PRIVATE_WEBHOOKS", "0")
            in ("1", "true", "yes"),
            max_upload_mb=int(env.get("HERON_MAX_UPLOAD_MB") or 10240),
        )

    @property
    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{(self.home / 'heron.db').resolve()}"

    @property
    def resolved_artifacts(self) -> str:
        return self.artifacts or str((self.home / "artifacts").resolve())

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]
