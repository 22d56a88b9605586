"""The ASGI application ``heron server`` runs, built from ``HERON_*`` settings."""

from heron._server import create_app
from heron._services import Services
from heron._settings import Settings

app = create_app(Services(Settings.from_env()))
