"""How one prediction server behaves: the options of ``heron serve``, in one frozen
dataclass that the CLI, the demo and tests build and ``PredictionServer`` reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeOptions:
    """How one prediction server behaves (``heron serve`` options)."""

    endpoint: str
    poll_interval: float = 1.0
    max_body_bytes: int = 8 * 1024 * 1024
    log_predictions: bool = True
    log_capacity: int = 10_000
    # Bytes queued for the log (inputs, outputs, validated arrays) before requests are
    # dropped, counted. The flusher works through a quarter of this at a time, so the bound
    # and the batch in hand are what logging adds to resident memory under heavy load:
    # 8 MB kept heron serve ~15 MB smaller than 16 MB did under 100-row requests, where the
    # flusher is the bottleneck and the queue a backlog of a second or two either way.
    log_max_bytes: int = 8 * 1024 * 1024
    # Few large batches: each batch costs a transaction per sink and a profile per column
    # and monitor whatever its size (~10 ms of the interpreter the requests share).
    log_batch_size: int = 2_000
    log_interval: float = 2.0
    log_sample: float = 1.0  # share of requests whose inputs are kept in the raw log
    log_input_bytes_per_second: float | None = 4 * 1024 * 1024  # inputs kept at most this fast
    log_retention: int | None = 1_000_000  # rows kept per endpoint in the raw log
    batch_wait_ms: float = 0.0  # adaptive micro-batching: 0 is off
    max_batch_rows: int = 256
    shadow_capacity: int = 1_000
    keep_versions: int = 4  # extra recently served versions kept loaded (fast rollback)
    auth: bool | None = None  # bearer tokens required; None: when the store has users
    profile_traffic: bool = True  # fold every request into per-minute monitor profiles
    proba_rows_per_second: float | None = 2_000  # rows whose class probabilities are logged
    # The sampled raw log as Parquet files in the artifact store (see _parquet): off unless
    # asked for; a file is rolled every parquet_rows rows or parquet_seconds, whichever first.
    parquet_log: bool = False
    parquet_sample: float = 0.1
    parquet_rows: int = 10_000
    parquet_seconds: float = 300.0
