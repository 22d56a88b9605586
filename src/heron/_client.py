"""``heron.Client``: one client, two transports (embedded stores or a Heron server).

Every method is written once over ``Transport``; the embedded and HTTP transports return
the same entities and raise the same errors.
"""

from __future__ import annotations

from heron._client_deployments import DeploymentMethods
from heron._client_monitoring import MonitoringMethods
from heron._client_registry import RegistryMethods
from heron._client_security import PipelineMethods, SecurityMethods
from heron._client_tracking import TrackingMethods
from heron._settings import Settings
from heron._transport import Transport


class Client(
    TrackingMethods,
    RegistryMethods,
    DeploymentMethods,
    MonitoringMethods,
    SecurityMethods,
    PipelineMethods,
):
    """Heron's Python client. ``Client()`` uses the embedded store (``./.heron``) unless
    ``url=`` or ``HERON_URL`` names a server."""

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.url = url or self.settings.url
        self._transport: Transport | None = transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
