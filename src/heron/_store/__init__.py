"""Metadata store (SQLAlchemy) internals; nothing here is public API."""
