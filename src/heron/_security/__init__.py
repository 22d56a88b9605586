"""Security: users, tokens and roles (``_service``, ``_entities``), secrets (``_secrets``),
SSRF checks (``_ssrf``) and integrity checks (``_integrity``). The server's auth layer is
``heron._security._middleware`` (imported by the server only); the audit trail lives in
``heron._audit``.

This package re-exports nothing: loading a model imports ``_integrity`` alone, and must not
pay for cryptography and the security service on the way.
"""
