"""Class probabilities of served predictions, for live confidence-based performance
estimation (CBPE), computed off the request path.

The request path keeps the validated input array of a request (``Entry.prepared``) while a
row budget (``RowBudget``, rows per second with one second of burst) allows; the log
flusher predicts probabilities for a whole batch of them in one call per model version
and writes them to ``prediction_proba``, joined to the prediction log by request id. Only
on a local store (through ``HERON_URL`` nothing is written).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from heron._client import Client
    from heron._serving._log import Entry
    from heron._serving._model import ServedModel

log = logging.getLogger("heron.serving")


class RowBudget:
    """A token bucket of rows per second (one second of burst); 0 or None keeps nothing."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate or 0.0
        self._tokens = self.rate
        self._refilled = time.monotonic()

    def take(self, rows: int) -> bool:
        if not self.rate:
            return False
        now = time.monotonic()
        self._tokens = min(self.rate, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now
        if rows > self._tokens:
            return False
        self._tokens -= rows
        return True


class ProbaSink:
    """A ``PredictionSink`` writing class probabilities of entries that kept their input."""

    def __init__(self, client: Client, models: Callable[[str, int], ServedModel | None]) -> None:
        from heron._transport import EmbeddedTransport

        transport = client.transport
        self.services = transport.services if isinstance(transport, EmbeddedTransport) else None
        self.models = models

    @property
    def enabled(self) -> bool:
        return self.services is not None

    def write(self, endpoint: str, entries: list[Entry]) -> None:
        from heron._serving._model import concat_prepared
        from heron._store import _tables as t

        groups: dict[tuple[str, int], list[Entry]] = defaultdict(list)
        for e in entries:
            if e.prepared is not None:
                groups[(e.model, e.version)].append(e)
        rows: list[dict[str, Any]] = []
        for (model, version), group in groups.items():
            served = self.models(model, version)
            if served is None or not served.has_proba:
                continue
            try:
                classes, proba = served.proba_prepared(concat_prepared([e.prepared for e in group]))
            except Exception as exc:  # the user's model may raise anything
                log.warning("%s/%s: no class probabilities: %s", model, version, exc)
                continue
            offset = 0
            for e in group:
                part = proba[offset : offset + e.rows]
                offset += e.rows
                rows.append(
                    {
                        "endpoint": endpoint,
                        "request_id": e.request_id,
                        "model": model,
                        "version": version,
                        "classes": classes,
                        "proba": [[float(x) for x in r] for r in part],
                    }
                )
        if rows and self.services is not None:
            with self.services.metadata.write() as conn:
                conn.execute(t.prediction_proba.insert(), rows)
