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
    # and monitor whatever its size (~10 ms of the interpreter the requests share). A
    # multiple of the rows an INSERT of the raw log holds (see insert_rows): whole ones.
    log_batch_size: int = 2_048
    log_interval: float = 2.0
    log_sample: float = 1.0  # share of requests whose inputs are kept in the raw log
    # The raw log is a sample (DESIGN: raw rows only bounded): every request's outputs are
    # logged, its inputs while this budget allows; 512 KB/s is ~700 single-row requests a
    # second, and drift does not read them (profiles take the validated inputs).
    log_input_bytes_per_second: float | None = 512 * 1024  # inputs kept at most this fast
    log_retention: int | None = 1_000_000  # rows kept per endpoint in the raw log
    batch_wait_ms: float = 0.0  # adaptive micro-batching: 0 is off
    max_batch_rows: int = 256
    shadow_capacity: int = 1_000
    keep_versions: int = 4  # extra recently served versions kept loaded (fast rollback)
    auth: bool | None = None  # bearer tokens required; None: when the store has users
    profile_traffic: bool = True  # fold requests into per-minute monitor profiles
    # Rows a second folded into profiles; requests beyond it are counted, not profiled
    # (None: all). Under it, all traffic is profiled; over it, a steady sample of 120,000
    # rows a minute, far more than a drift test needs, and the flusher keeps up instead of
    # dropping whole entries (their log rows too) when the queue fills. Measured under
    # saturating load (bench/serving): profiles of 10,000 rows a second cost ~9 % of
    # throughput, of 2,000 1-2 %; profiling is ~5x dearer per row under load than alone.
    profile_rows_per_second: float | None = 2_000
    # Rows whose class probabilities are logged for CBPE: 12,000 a minute estimate accuracy
    # within a fraction of a percent, and the table grows by no more than this.
    proba_rows_per_second: float | None = 200
    # The sampled raw log as Parquet files in the artifact store (see _parquet): off unless
    # asked for; a file is rolled every parquet_rows rows or parquet_seconds, whichever first.
    parquet_log: bool = False
    parquet_sample: float = 0.1
    parquet_rows: int = 10_000
    parquet_seconds: float = 300.0
