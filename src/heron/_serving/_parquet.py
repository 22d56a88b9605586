"""The sampled raw prediction log as Parquet files in the artifact store (``--parquet-log``).

A request is in the sample when a hash of its id falls under ``sample``: the same answer
for its shadow answers (they land beside the primary one) and on every replica, and cheap
enough for the request path to ask, which keeps the request body for sampled requests
whose inputs the raw log did not keep (``PredictionServer._log``). Shadow rows carry no
inputs, as in the ``prediction_log`` table: the primary row of the same request id has them.

Each batch the log flusher hands over is appended to a local temporary Parquet file as one
row group, so memory holds one batch whatever the file holds. The file is rolled (closed,
put into the artifact store under its digest, recorded with ``record_prediction_log_file``)
every ``max_rows`` rows or ``max_seconds`` seconds, whichever comes first (the flusher
ticks the sink when no batch comes), and when the server stops. Both steps go through the
client, so a server reading the store through ``HERON_URL`` uploads a blob and calls the
operation. All of it runs in the flusher's thread: a failure loses the open file's rows,
is counted as a sink error, and never reaches a request.

pyarrow is imported only when the sink writes or a reader reads, so ``heron serve``
without ``--parquet-log`` starts as fast as before.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
import time
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heron._predictions import LOG_COLUMNS

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from heron._client import Client
    from heron._serving._log import Entry

log = logging.getLogger("heron.serving")

COLUMNS = LOG_COLUMNS  # the same columns as the ``prediction_log`` table


@functools.cache
def schema() -> pa.Schema:
    """The columns of every file (``inputs`` and ``outputs`` are JSON text)."""
    import pyarrow as pa

    types = [pa.string(), pa.string(), pa.int32(), pa.string(), pa.int32(), pa.bool_()]
    types += [pa.timestamp("ms", tz="UTC"), pa.float64(), pa.int32(), pa.string(), pa.string()]
    nullable = {"inputs"}
    return pa.schema(
        [pa.field(n, t, nullable=n in nullable) for n, t in zip(COLUMNS, types, strict=True)]
    )


def sampled(request_id: str, fraction: float) -> bool:
    """Whether ``request_id`` is in a sample of ``fraction`` of requests (deterministic)."""
    if fraction >= 1.0:
        return True
    return zlib.crc32(request_id.encode()) < fraction * 2**32


class ParquetSink:
    """A ``PredictionSink`` writing a sample of requests as Parquet files (see the module)."""

    name = "parquet"

    def __init__(
        self,
        client: Client,
        *,
        sample: float = 0.1,
        max_rows: int = 10_000,
        max_seconds: float = 300.0,
    ) -> None:
        self.client = client
        self.sample = sample
        self.max_rows = max(1, max_rows)  # a file holds at least one row
        self.max_seconds = max_seconds
        self._file: _OpenFile | None = None

    @property
    def pending(self) -> int:
        """Rows written to the open file, not yet in the artifact store."""
        return self._file.rows if self._file is not None else 0

    def takes(self, request_id: str) -> bool:
        return sampled(request_id, self.sample)

    def write(self, endpoint: str, entries: list[Entry]) -> None:
        chosen = [e for e in entries if self.takes(e.request_id)]
        while chosen:
            file = self._open(endpoint)
            room = self.max_rows - file.rows
            self._guarded(file.append, endpoint, chosen[:room])
            chosen = chosen[room:]
            if file.rows >= self.max_rows:
                self._roll()
        self.tick()

    def tick(self) -> None:
        """Roll the open file once it is ``max_seconds`` old (the flusher calls this)."""
        file = self._file
        if file is not None and time.monotonic() - file.opened >= self.max_seconds:
            self._roll()

    def close(self) -> None:
        if self._file is not None:
            self._roll()

    def _open(self, endpoint: str) -> _OpenFile:
        if self._file is None or self._file.endpoint != endpoint:
            self.close()
            self._file = _OpenFile(endpoint)
        return self._file

    def _roll(self) -> None:
        """Close the file, put it into the artifact store and record it."""
        file = self._file
        assert file is not None
        try:
            file.finish()
            digest = self.client.transport.put_blob(file.path)
            self.client._call(
                "record_prediction_log_file",
                endpoint=file.endpoint,
                digest=digest,
                rows=file.rows,
                first_time=_datetime(file.first_ms),
                last_time=_datetime(file.last_ms),
            )
        finally:
            self._discard()

    def _guarded(self, action: Any, *args: Any) -> None:
        # A file that failed half-way cannot be trusted: drop it, the flusher counts the loss.
        try:
            action(*args)
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.remove()


class _OpenFile:
    """The local Parquet file being written: row groups appended batch by batch."""

    def __init__(self, endpoint: str) -> None:
        fd, name = tempfile.mkstemp(prefix="heron-prediction-log-", suffix=".parquet")
        os.close(fd)
        self.endpoint = endpoint
        self.path = Path(name)
        self.opened = time.monotonic()
        self.rows = 0
        self.first_ms = 2**63 - 1
        self.last_ms = -(2**63)
        self._writer: pq.ParquetWriter | None = None

    def append(self, endpoint: str, entries: list[Entry]) -> None:
        import pyarrow.parquet as pq

        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, schema(), compression="zstd")
        times = [int(e.time * 1000) for e in entries]
        self._writer.write_table(_table(endpoint, entries, times))
        self.rows += len(entries)
        self.first_ms = min(self.first_ms, *times)
        self.last_ms = max(self.last_ms, *times)

    def finish(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def remove(self) -> None:
        try:
            self.finish()
        finally:
            self.path.unlink(missing_ok=True)


def _table(endpoint: str, entries: list[Entry], times: list[int]) -> pa.Table:
    import pyarrow as pa

    columns = [
        [e.request_id for e in entries],
        [endpoint] * len(entries),
        [e.revision for e in entries],
        [e.model for e in entries],
        [e.version for e in entries],
        [e.shadow for e in entries],
        times,
        [e.latency_ms for e in entries],
        [e.rows for e in entries],
        [_text(e.inputs if e.inputs is not None else e.body) for e in entries],
        [e.outputs.decode() for e in entries],
    ]
    return pa.Table.from_arrays(
        [pa.array(c, f.type) for c, f in zip(columns, schema(), strict=True)], schema=schema()
    )


def _text(body: bytes | None) -> str | None:
    # Bodies reached the log only after parsing as JSON, so they are UTF-8 already.
    return body.decode("utf-8", "replace") if body is not None else None


def _datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def read_log_files(
    paths: Iterable[Path], since: datetime | None = None, until: datetime | None = None
) -> pd.DataFrame:
    """The rows of Parquet log files with ``since <= time < until``, in time order (a file
    spans a range of time, so rows at its edges may fall outside the one asked for)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tables = [pq.read_table(path, schema=schema()) for path in paths]
    table = pa.concat_tables(tables) if tables else schema().empty_table()
    moment = schema().field("time").type
    if since is not None:
        table = table.filter(pc.greater_equal(table["time"], pa.scalar(_aware(since), moment)))
    if until is not None:
        table = table.filter(pc.less(table["time"], pa.scalar(_aware(until), moment)))
    return table.sort_by("time").to_pandas()


def _aware(moment: datetime) -> datetime:
    # Naive times are UTC, as everywhere in Heron's stores.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
