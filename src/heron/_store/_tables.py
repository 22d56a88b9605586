"""The metadata store's tables: private to the store, never seen outside services.

Times are stored as integer milliseconds since the epoch (UTC) so SQLite and PostgreSQL
sort and compare them the same way; ``Millis`` turns them into aware datetimes.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


class Millis(TypeDecorator[datetime]):
    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, int | float):
            return int(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        return from_millis(value)


def from_millis(value: int | None) -> datetime | None:
    """A stored time, for the hand-written queries that read it without ``Millis``."""
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """32 hex digits: the time in milliseconds (12), then 80 random bits (20).

    Time first, so the rows of a new run (metrics, params, tags: all indexed by run id
    first) append at the end of their indexes, on pages already cached, instead of landing
    on a random page of indexes that grow with every run ever logged.
    """
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Millis, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("object_type", String(50), nullable=False),
    Column("object_id", String(500), nullable=False),
    Column("before", JSON),
    Column("after", JSON),
    Column("source", String(200)),
    Index(None, "object_type", "object_id"),
    Index(None, "actor"),
    Index(None, "time"),
)

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("tags", JSON, nullable=False, default=dict),
    Column("created_at", Millis, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("start_time", Millis, nullable=False),
    Column("end_time", Millis),
    Column("user", String(200), nullable=False, default=""),
    Column("host", String(200), nullable=False, default=""),
    Column("entry_point", String(1000), nullable=False, default=""),
    Column("git_commit", String(64)),
    Column("git_dirty", Boolean),
    Index(None, "experiment_id", "start_time"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Index(None, "key", "value"),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

metrics = Table(
    "metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Float, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", Millis, nullable=False),
    Index(None, "run_id", "key", "step"),
)

# The newest value of each metric of each run (highest step, then latest time): what run
# search filters and sorts on, so a search never scans the series.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Float, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", Millis, nullable=False),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("is_folder", Boolean, nullable=False, default=False),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", Millis, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("data_digest", String(64)),
    Column("format", String(20), nullable=False),
    Column("columns", JSON, nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("profile", JSON, nullable=False),
    Column("source", Text, nullable=False, default=""),
    Column("created_at", Millis, nullable=False),
    Column("created_by", String(200), nullable=False, default=""),
    UniqueConstraint("dataset_id", "version"),
    UniqueConstraint("dataset_id", "digest"),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("dataset_version_id", Integer, ForeignKey("dataset_versions.id"), primary_key=True),
)

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("tags", JSON, nullable=False, default=dict),
    Column("created_at", Millis, nullable=False),
    Column("updated_at", Millis, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", String(64), nullable=False),
    Column("flavor", String(50), nullable=False),
    Column("signature", JSON),
    Column("status", String(20), nullable=False),
    Column("run_id", String(32), ForeignKey("runs.id")),
    Column("git_commit", String(64)),
    Column("pipeline_run_id", String(64)),
    Column("datasets", JSON, nullable=False, default=list),
    Column("tags", JSON, nullable=False, default=dict),
    Column("card", JSON, nullable=False, default=dict),
    Column("created_at", Millis, nullable=False),
    Column("created_by", String(200), nullable=False, default=""),
    UniqueConstraint("model_id", "version"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("alias", String(200), primary_key=True),
    Column("version", Integer, nullable=False),
)


# --- serving (migration 0002_serving) ----------------------------------------------------

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("revision", Integer, nullable=False),  # the current revision
    Column("created_at", Millis, nullable=False),
    Column("updated_at", Millis, nullable=False),
)

endpoint_revisions = Table(
    "endpoint_revisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint_id", Integer, ForeignKey("endpoints.id"), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("spec", JSON, nullable=False),  # targets, shadow, sticky
    Column("action", String(20), nullable=False),
    Column("restored", Integer),  # for a rollback: the revision whose spec it restored
    Column("comment", Text, nullable=False, default=""),
    Column("created_at", Millis, nullable=False),
    Column("created_by", String(200), nullable=False, default=""),
    UniqueConstraint("endpoint_id", "revision"),
)

prediction_log = Table(
    "prediction_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("request_id", String(32), nullable=False),
    Column("endpoint", String(200), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("model", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("shadow", Boolean, nullable=False, default=False),
    Column("time", Millis, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("inputs", Text),  # the request body as sent (JSON); NULL when not sampled
    Column("outputs", Text, nullable=False),  # JSON list of predictions
    Index(None, "endpoint", "time"),
    Index(None, "request_id"),
)

prediction_feedback = Table(
    "prediction_feedback",
    metadata,
    Column("endpoint", String(200), primary_key=True),
    Column("request_id", String(32), primary_key=True),
    Column("label", JSON),
    Column("time", Millis, nullable=False),
)

# --- pipelines ---------------------------------------------------------------------------

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("pipeline", String(200), nullable=False),
    Column("target", String(500), nullable=False, default=""),
    Column("status", String(20), nullable=False),
    Column("executor", String(20), nullable=False),
    Column("params", JSON, nullable=False),
    Column("result", JSON),
    Column("error", Text),
    Column("run_id", String(32)),
    Column("resumed_from", String(32)),
    Column("trigger", String(200)),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("created_at", Millis, nullable=False),
    Column("ended_at", Millis),
    Column("created_by", String(200), nullable=False, default=""),
    Index(None, "pipeline", "created_at"),
)

# One row per step of a pipeline run; ``cache_key`` finds earlier runs of the same work.
pipeline_step_runs = Table(
    "pipeline_step_runs",
    metadata,
    Column(
        "pipeline_run_id",
        String(32),
        ForeignKey("pipeline_runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("name", String(200), primary_key=True),
    Column("position", Integer, nullable=False, default=0),
    Column("state", JSON, nullable=False),  # the StepRun entity, less the indexed columns
    Column("status", String(20), nullable=False),
    Column("cache_key", String(64)),
    Column("ended_at", Millis),
    Index(None, "cache_key", "status"),
)

# Lineage: which step run read or wrote which artifact digest.
pipeline_lineage = Table(
    "pipeline_lineage",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "pipeline_run_id",
        String(32),
        ForeignKey("pipeline_runs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("step", String(200), nullable=False),
    Column("direction", String(3), nullable=False),
    Column("name", String(200), nullable=False),
    Column("digest", String(64), nullable=False),
    Index(None, "digest"),
    Index(None, "pipeline_run_id"),
)

pipeline_triggers = Table(
    "pipeline_triggers",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("target", String(500), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("spec", String(200), nullable=False),
    Column("params", JSON, nullable=False),
    Column("executor", String(20), nullable=False),
    Column("dataset_param", String(200)),
    Column("last_fired_at", Millis),
    Column("last_dataset_version", Integer),
    Column("last_run_id", String(32)),
    Column("created_at", Millis, nullable=False),
)


# --- security (migration 0005_security) --------------------------------------------------

# The audit trail is hash-chained: each event stores the SHA-256 of its content and of the
# event before it; ``audit_chain_head`` holds the newest hash, so deleting the tail shows.
audit_events.append_column(Column("prev_hash", String(64)))
audit_events.append_column(Column("hash", String(64)))

audit_chain_head = Table(
    "audit_chain_head",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1
    Column("last_event_id", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("role", String(20), nullable=False),  # global role: none, viewer, editor, admin
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", Millis, nullable=False),
    Column("created_by", String(200), nullable=False, default=""),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256; never the token
    Column("prefix", String(16), nullable=False),
    Column("created_at", Millis, nullable=False),
    Column("expires_at", Millis),
    Column("revoked_at", Millis),
    Column("last_used_at", Millis),
    Column("last_used_from", String(200)),
    Column("known_sources", JSON, nullable=False, default=list),
    Index(None, "user_id"),
)

role_grants = Table(
    "role_grants",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("object_type", String(50), primary_key=True),
    Column("object_id", String(500), primary_key=True),
    Column("role", String(20), nullable=False),
)

security_signals = Table(
    "security_signals",
    metadata,
    Column("kind", String(50), primary_key=True),
    Column("subject", String(200), primary_key=True),
    Column("window_start", Millis, primary_key=True),
    Column("count", Integer, nullable=False),
    Column("last_seen", Millis, nullable=False),
    Index(None, "window_start"),
)


# --- monitoring (migration 0003_monitoring) ---------------------------------------------

monitors = Table(
    "monitors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("spec", JSON, nullable=False),  # the Monitor entity's settings, less what is below
    Column("reference_profile", JSON, nullable=False),
    Column("reference_predictions", JSON),
    Column("reference_performance", JSON),
    Column("live_cursor", JSON),  # {"time": ms, "log_id": n}: serving logs checked so far
    Column("created_at", Millis, nullable=False),
    Column("created_by", String(200), nullable=False, default=""),
    Column("updated_at", Millis, nullable=False),
)

# One row per window (and per model version, for live traffic) of a monitor.
monitor_checks = Table(
    "monitor_checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor_id", Integer, ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False),
    Column("window_start", Millis, nullable=False),
    Column("window_end", Millis, nullable=False),
    Column("source", String(10), nullable=False),
    Column("model", String(200)),
    Column("version", Integer),
    Column("rows", Integer, nullable=False),
    Column("drift_share", Float, nullable=False),
    Column("drifted", Boolean, nullable=False),
    Column("result", JSON, nullable=False),  # the CheckResult entity
    Column("profile", JSON, nullable=False),  # the window's feature profile (mergeable)
    Column("prediction_profile", JSON),
    Column("created_at", Millis, nullable=False),
    Index(None, "monitor_id", "window_start"),
)

# Prediction servers' heartbeats: one row per running server process.
serving_instances = Table(
    "serving_instances",
    metadata,
    Column("endpoint", String(200), primary_key=True),
    Column("instance", String(100), primary_key=True),
    Column("host", String(200), nullable=False, default=""),
    Column("pid", Integer),
    Column("status", String(10), nullable=False),  # up, down
    Column("started_at", Millis, nullable=False),
    Column("last_seen", Millis, nullable=False),
    Column("interval", Float, nullable=False),
    Column("stats", JSON, nullable=False),
)

# Resource and traffic samples sent with heartbeats: the operations series.
serving_samples = Table(
    "serving_samples",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("endpoint", String(200), nullable=False),
    Column("instance", String(100), nullable=False),
    Column("time", Millis, nullable=False),
    Column("stats", JSON, nullable=False),
    Index(None, "endpoint", "time"),
)

# Operational events: a server went down (missed heartbeats) or came back up.
monitor_events = Table(
    "monitor_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(30), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("time", Millis, nullable=False),
    Column("details", JSON, nullable=False),
    Index(None, "kind", "time"),
)

# --- serving profiles --------------------------------------------------------------------

# Partial per-minute profiles of serving traffic (within the servers' profile row budget),
# one row per server process and minute flushed; readers merge the rows of a window
# (profiles merge exactly). ``reference`` is the digest of the reference profile whose bin
# edges they use: a monitor reads only rows built on its own reference.
serving_profiles = Table(
    "serving_profiles",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("endpoint", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("reference", String(64), nullable=False),
    Column("window_start", Millis, nullable=False),  # the minute, epoch ms
    Column("requests", Integer, nullable=False),  # requests profiled
    # requests beyond the server's profile row budget: counted, not profiled
    Column("unprofiled", Integer, nullable=False, server_default="0"),
    Column("rows", Integer, nullable=False),
    Column("profile", JSON, nullable=False),
    Column("predictions", JSON),
    Index(None, "endpoint", "window_start"),
)

# Class probabilities of logged predictions (classifiers with predict_proba), computed by
# the prediction server's flusher for a bounded number of rows per second: what live
# confidence-based performance estimation (CBPE) reads. Joined to prediction_log by
# (endpoint, request_id, model, version).
prediction_proba = Table(
    "prediction_proba",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("endpoint", String(200), nullable=False),
    Column("request_id", String(32), nullable=False),
    Column("model", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("classes", JSON, nullable=False),
    Column("proba", JSON, nullable=False),  # one list of class probabilities per row
    Index(None, "endpoint", "request_id"),
)

# The sampled raw prediction log as Parquet files in the artifact store (``heron serve
# --parquet-log``): one row per file a prediction server rolled, so readers find the files
# of an endpoint and a time range without listing the store.
prediction_log_files = Table(
    "prediction_log_files",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("endpoint", String(200), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("first_time", Millis, nullable=False),
    Column("last_time", Millis, nullable=False),
    Column("created_at", Millis, nullable=False),
    UniqueConstraint("endpoint", "digest"),
    Index(None, "endpoint", "last_time"),
)
