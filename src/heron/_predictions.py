"""The prediction log and feedback: what prediction servers answered, and the truth later.

Prediction servers write batches here off the request path (``write_log_rows``); monitoring
reads them back by endpoint and time window (``list_predictions``, ``prediction_frame``),
joined with the ground truth that arrived as feedback. Each row keeps the request body as
sent (``inputs``, NULL when the server did not sample it) and the predictions as JSON; rows
beyond a retention count per endpoint are trimmed by the servers (``trim_predictions``), so
the raw log stays a bounded sample while monitoring keeps its profiles.

Where a server is asked to (``heron serve --parquet-log``), a sample of requests is also
written as Parquet files into the artifact store; each file is recorded here
(``record_prediction_log_file``) so it can be found by endpoint and time
(``list_prediction_log_files``); ``heron._serving._parquet`` writes and reads them.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from pydantic import Field, ValidationError
from sqlalchemy import Connection, delete, select

from heron._artifacts import check_digest
from heron._entities import Entity, Page
from heron._errors import InvalidInput, NotFound
from heron._services import Service, check_limit, page_offset
from heron._store import _tables as t
from heron._store._sql import insert_unique, upsert

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")

MAX_FEEDBACK = 10_000
LOG_COLUMNS = (
    "request_id",
    "endpoint",
    "revision",
    "model",
    "version",
    "shadow",
    "time",
    "latency_ms",
    "rows",
    "inputs",
    "outputs",
)
_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s", "numeric": "?"}
_ROWS_PER_INSERT = 512  # a power of two; see insert_rows


def insert_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert many rows with few multi-row ``INSERT ... VALUES (...), (...)`` statements,
    straight to the driver (no per-row SQLAlchemy work).

    Written for the prediction server's log flusher, which shares the interpreter with the
    request path: the driver's executemany releases and retakes the GIL once per row, and
    each retake makes the request thread wait its turn; a statement of many rows releases
    it once. Statements hold 512 rows, the rest goes in 256, 128, ... 1 rows, so a
    connection caches at most ten distinct statements (drivers cache them by text) and the
    prediction server's full batch of 2,048 takes four. Larger statements would take fewer,
    but SQLite keeps ~1.2 KB per row of a cached statement (1.2 MB at 1,024 rows of the
    log's 11 columns), and the server's resident memory is a goal of its own.
    """
    mark = _PLACEHOLDER[conn.dialect.paramstyle]
    one = "(" + ", ".join([mark] * len(columns)) + ")"
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    start, size = 0, _ROWS_PER_INSERT
    while start < len(rows):
        if len(rows) - start < size:
            size //= 2
            continue
        chunk = rows[start : start + size]
        conn.exec_driver_sql(
            head + ", ".join([one] * size), tuple(itertools.chain.from_iterable(chunk))
        )
        start += size


def _trim_probabilities(conn: Connection, endpoint: str, last_request_id: str) -> None:
    """Delete the class probabilities whose log row is gone, up to ``last_request_id``, the
    newest request trimmed. Request ids are time-ordered, so the range is what the trims
    since the last one left; a request answered in the same millisecond as that one may
    sort either side of it, so each row in the range is deleted only when its log row is
    really gone."""
    log, proba = t.prediction_log, t.prediction_proba
    logged = (
        select(log.c.id)
        .where(log.c.endpoint == endpoint, log.c.request_id == proba.c.request_id)
        .exists()
    )
    conn.execute(
        delete(proba).where(
            proba.c.endpoint == endpoint, proba.c.request_id <= last_request_id, ~logged
        )
    )


class PredictionRecord(Entity):
    """One answered request (one model version; a shadow answer is a record of its own)."""

    request_id: str = Field(min_length=1, max_length=32)
    endpoint: str
    revision: int
    model: str
    version: int
    shadow: bool = False
    time: datetime
    latency_ms: float
    rows: int
    inputs: dict[str, Any] | None = Field(
        default=None, description='the request body: {"instances": ...} or {"dataframe_split": ...}'
    )
    outputs: list[Any]
    label: Any = Field(default=None, description="ground truth, once feedback arrived")
    label_time: datetime | None = None


class FeedbackItem(Entity):
    request_id: str = Field(min_length=1, max_length=32)
    label: Any


class FeedbackResult(Entity):
    accepted: int
    unknown: list[str] = Field(
        default_factory=list, description="request ids this endpoint never answered"
    )


class PredictionLogFile(Entity):
    """One Parquet file of an endpoint's sampled raw prediction log, in the artifact store:
    columns request_id, endpoint, revision, model, version, shadow, time (UTC), latency_ms,
    rows, inputs and outputs (JSON text), one row per answered request (shadow answers too)."""

    id: int
    endpoint: str
    digest: str
    rows: int
    size: int = Field(description="bytes")
    first_time: datetime
    last_time: datetime
    created_at: datetime


class PredictionService(Service):
    def log_predictions(self, records: list[PredictionRecord]) -> int:
        """Store answered requests (what a remote prediction server sends); returns a count."""
        self.write_log_rows([_row(record) for record in records])
        return len(records)

    def write_log_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert prediction-log rows, tuples in ``LOG_COLUMNS`` order (``time`` in epoch
        milliseconds, ``inputs`` and ``outputs`` JSON text), in one transaction.

        The prediction server's flusher calls this with thousands of rows a second from a
        thread that shares the interpreter with the request path: see ``insert_rows``.
        """
        if not rows:
            return
        with self.store.write() as conn:
            insert_rows(conn, "prediction_log", LOG_COLUMNS, rows)

    def list_predictions(
        self,
        endpoint: str,
        start: datetime | None = None,
        end: datetime | None = None,
        include_shadow: bool = True,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[PredictionRecord]:
        """Predictions of ``endpoint`` with ``start <= time < end``, oldest first, each with
        its feedback label when there is one."""
        limit, after = check_limit(max_results), page_offset(page_token)
        log, fb = t.prediction_log, t.prediction_feedback
        query = (
            select(log, fb.c.label, fb.c.time.label("label_time"))
            .outerjoin(
                fb, (fb.c.endpoint == log.c.endpoint) & (fb.c.request_id == log.c.request_id)
            )
            .where(log.c.endpoint == endpoint, log.c.id > after)
            .order_by(log.c.id)
            .limit(limit)
        )
        if start is not None:
            query = query.where(log.c.time >= start)
        if end is not None:
            query = query.where(log.c.time < end)
        if not include_shadow:
            query = query.where(log.c.shadow.is_(False))
        return self._id_page(query, limit, _record)

    def prediction_frame(
        self,
        endpoint: str,
        start: datetime | None = None,
        end: datetime | None = None,
        include_shadow: bool = False,
    ) -> pd.DataFrame:
        """One row per predicted input row: the input columns, ``prediction``, ``label`` (or
        None), and ``request_id``, ``model``, ``version``, ``shadow``, ``time``. Requests
        whose inputs were not sampled are left out. For monitoring, in-process."""
        import pandas as pd

        from heron._models import frame_from_payload

        frames = []
        token: str | None = None
        while True:
            page = self.list_predictions(
                endpoint, start, end, include_shadow, max_results=1000, page_token=token
            )
            for rec in page.items:
                if rec.inputs is None:
                    continue
                frame = frame_from_payload(rec.inputs)
                frame["prediction"] = rec.outputs
                labels = rec.label if isinstance(rec.label, list) else [rec.label] * rec.rows
                frame["label"] = labels if len(labels) == len(frame) else None
                for key in ("request_id", "model", "version", "shadow", "time"):
                    frame[key] = getattr(rec, key)
                frames.append(frame)
            token = page.next_page_token
            if token is None:
                break
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def log_feedback(self, endpoint: str, feedback: list[FeedbackItem]) -> FeedbackResult:
        """Store ground truth for earlier requests of ``endpoint``; ids it never answered are
        reported back, not stored. A label may be one value, or a list with one per row."""
        if len(feedback) > MAX_FEEDBACK:
            raise InvalidInput(f"at most {MAX_FEEDBACK} labels at once", field="feedback")
        try:
            feedback = [FeedbackItem.model_validate(item) for item in feedback]
        except ValidationError as exc:
            raise InvalidInput(f"feedback: {exc.errors()[0]['msg']}", field="feedback") from None
        ids = list(dict.fromkeys(item.request_id for item in feedback))
        with self.store.write() as conn:
            known = self._known_ids(conn, endpoint, ids)
            stamp = t.now()
            rows = {
                item.request_id: {
                    "endpoint": endpoint,
                    "request_id": item.request_id,
                    "label": item.label,
                    "time": stamp,
                }
                for item in feedback
                if item.request_id in known
            }
            upsert(
                conn,
                t.prediction_feedback,
                list(rows.values()),
                ["endpoint", "request_id"],
                ["label", "time"],
            )
        return FeedbackResult(accepted=len(rows), unknown=[i for i in ids if i not in known])

    def trim_predictions(self, endpoint: str, keep: int) -> int:
        """Delete all but the newest ``keep`` rows of ``endpoint``'s log, and the class
        probabilities of the requests deleted; returns how many log rows went."""
        log = t.prediction_log
        with self.store.write() as conn:
            cutoff = conn.execute(
                select(log.c.id, log.c.request_id)
                .where(log.c.endpoint == endpoint)
                .order_by(log.c.id.desc())
                .offset(keep)
                .limit(1)
            ).first()
            if cutoff is None:
                return 0
            result = conn.execute(
                delete(log).where(log.c.endpoint == endpoint, log.c.id <= cutoff.id)
            )
            _trim_probabilities(conn, endpoint, cutoff.request_id)
            return int(result.rowcount or 0)

    def record_prediction_log_file(
        self,
        endpoint: str,
        digest: str,
        rows: int,
        first_time: datetime,
        last_time: datetime,
    ) -> PredictionLogFile:
        """Record a Parquet file of ``endpoint``'s raw log, already in the artifact store,
        holding ``rows`` requests answered from ``first_time`` to ``last_time``."""
        check_digest(digest)
        if not 1 <= rows < 2**31:
            raise InvalidInput(f"rows must be between 1 and {2**31 - 1}", field="rows")
        if last_time < first_time:
            raise InvalidInput("last_time is before first_time", field="last_time")
        try:
            self.services.deployments.get_endpoint(endpoint)
        except NotFound as exc:  # named as this operation names it
            raise NotFound(exc.message, field="endpoint") from None
        artifacts = self.services.artifacts
        if not artifacts.exists(digest):
            raise NotFound(f"blob {digest} is not in the artifact store", field="digest")
        row = {
            "endpoint": endpoint,
            "digest": digest,
            "rows": rows,
            "size": artifacts.size(digest),
            "first_time": first_time,
            "last_time": last_time,
            "created_at": t.now(),
        }
        files = t.prediction_log_files
        with self.store.write() as conn:
            what = f"prediction log file {digest} of endpoint {endpoint!r}"
            result = insert_unique(conn, files.insert().values(row), what, field="digest")
            row["id"] = result.inserted_primary_key[0]
        return PredictionLogFile.model_validate(row)

    def list_prediction_log_files(
        self,
        endpoint: str,
        since: datetime | None = None,
        until: datetime | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> Page[PredictionLogFile]:
        """Parquet files of ``endpoint``'s raw log holding requests answered at or after
        ``since`` and before ``until``, oldest recorded first."""
        limit, after = check_limit(max_results), page_offset(page_token)
        files = t.prediction_log_files
        query = (
            select(files)
            .where(files.c.endpoint == endpoint, files.c.id > after)
            .order_by(files.c.id)
            .limit(limit)
        )
        if since is not None:
            query = query.where(files.c.last_time >= since)
        if until is not None:
            query = query.where(files.c.first_time < until)
        return self._id_page(query, limit, lambda row: PredictionLogFile.model_validate(dict(row)))

    def _id_page(self, query: Any, limit: int, item: Callable[[Any], T]) -> Page[T]:
        """One page of rows ordered by id, read in one query, and the token of the next."""
        with self.store.read() as conn:
            rows = conn.execute(query).mappings().all()
        token = _id_token(rows[-1]["id"]) if len(rows) == limit else None
        return Page(items=[item(row) for row in rows], next_page_token=token)

    def _known_ids(self, conn: Connection, endpoint: str, ids: list[str]) -> set[str]:
        log = t.prediction_log
        known: set[str] = set()
        for i in range(0, len(ids), 500):  # keep IN lists short
            chunk = ids[i : i + 500]
            known.update(
                conn.execute(
                    select(log.c.request_id)
                    .where(log.c.endpoint == endpoint, log.c.request_id.in_(chunk))
                    .distinct()
                ).scalars()
            )
        return known


def _row(record: PredictionRecord) -> tuple[Any, ...]:
    data = record.model_dump(exclude={"label", "label_time"})
    data["time"] = int(record.time.timestamp() * 1000)
    for column in ("revision", "version", "rows"):  # INTEGER columns: 32 bits
        if not -(2**31) <= data[column] < 2**31:
            raise InvalidInput(f"{column} {data[column]} is out of range", field="records")
    try:
        data["inputs"] = None if record.inputs is None else orjson.dumps(record.inputs).decode()
        data["outputs"] = orjson.dumps(record.outputs, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError as exc:  # e.g. an integer beyond 64 bits: bad input, not a server error
        raise InvalidInput(f"a prediction record cannot be stored: {exc}", field="records") from exc
    return tuple(data[column] for column in LOG_COLUMNS)


def _record(row: Any) -> PredictionRecord:
    data = {k: v for k, v in row.items() if k != "id"}
    data["inputs"] = None if row["inputs"] is None else orjson.loads(row["inputs"])
    data["outputs"] = orjson.loads(row["outputs"])
    return PredictionRecord.model_validate(data)


def _id_token(last_id: int) -> str:
    # Keyset pagination: the token carries the last id seen (page_offset decodes it).
    return base64.urlsafe_b64encode(str(last_id).encode()).decode()
