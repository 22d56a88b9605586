"""Class probabilities of served predictions, for live confidence-based performance
estimation (CBPE), computed off the request path.

The request path marks a request (``Entry.proba``, keeping its validated input) while a
row budget (a ``RateBudget`` of rows per second, one second of burst) allows; the log
flusher predicts probabilities for a whole batch of them in one call per model version
and writes them to ``prediction_proba``, joined to the prediction log by request id. Only
on a local store (through ``HERON_URL`` nothing is written).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from heron._client import Client
    from heron._serving._log import Entry

log = logging.getLogger("heron.serving")


class ProbaSink:
    """A ``PredictionSink`` writing class probabilities of the entries within the budget."""

    name = "proba"

    def __init__(self, client: Client) -> None:
        from heron._transport import EmbeddedTransport

        transport = client.transport
        self.services = transport.services if isinstance(transport, EmbeddedTransport) else None

    @property
    def enabled(self) -> bool:
        return self.services is not None

    def write(self, endpoint: str, entries: list[Entry]) -> None:
        groups: dict[int, list[Entry]] = defaultdict(list)  # by the ServedModel
        for e in entries:
            if e.proba and e.prepared is not None and e.served is not None:
                groups[id(e.served)].append(e)
        rows: list[tuple[Any, ...]] = []
        for group in groups.values():
            rows += _proba_rows(endpoint, group)
        if rows and self.services is not None:
            _insert(self.services, rows)


def _proba_rows(endpoint: str, group: list[Entry]) -> list[tuple[Any, ...]]:
    """One row per request of one model version, probabilities predicted in one call."""
    from heron._serving._model import concat_prepared

    served = group[0].served
    try:
        classes, proba = served.proba_prepared(concat_prepared([e.prepared for e in group]))
    except Exception as exc:  # the user's model may raise anything
        log.warning("%s/%s: no class probabilities: %s", served.model, served.version, exc)
        return []
    labels = _json(classes)
    rows, offset = [], 0
    for e in group:
        part = _json(proba[offset : offset + e.rows])
        offset += e.rows
        rows.append((endpoint, e.request_id, served.model, served.version, labels, part))
    return rows


def _json(value: Any) -> str:
    """JSON text of a list or an array (orjson: the JSON column type's encoder is ~20x
    slower, and this runs in the thread that shares the interpreter with requests)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError:  # an array orjson cannot take as is (not contiguous, object dtype)
        return orjson.dumps(value.tolist()).decode()


_COLUMNS = ("endpoint", "request_id", "model", "version", "classes", "proba")


def _insert(services: Any, rows: list[tuple[Any, ...]]) -> None:
    from heron._predictions import insert_rows

    with services.metadata.write() as conn:
        insert_rows(conn, "prediction_proba", _COLUMNS, rows)
