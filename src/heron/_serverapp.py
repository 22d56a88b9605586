"""The ASGI application ``heron server`` runs, built from ``HERON_*`` settings."""

from heron._server import create_app
from heron._services import Services
from heron._settings import Settings

_settings = Settings.from_env()
app = create_app(Services(_settings), auth=_settings.auth)
