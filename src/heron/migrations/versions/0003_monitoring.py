"""monitoring: monitors, per-window check results, serving heartbeats and samples, events

Revision ID: 0003_monitoring
Revises: 0001
Create Date: 2026-11-26 12:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_monitoring"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_events")),
    )
    op.create_index(
        op.f("ix_monitor_events_kind_time"), "monitor_events", ["kind", "time"], unique=False
    )
    op.create_table(
        "monitors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("reference_profile", sa.JSON(), nullable=False),
        sa.Column("reference_predictions", sa.JSON(), nullable=True),
        sa.Column("reference_performance", sa.JSON(), nullable=True),
        sa.Column("live_cursor", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors")),
        sa.UniqueConstraint("name", name=op.f("uq_monitors_name")),
    )
    op.create_table(
        "serving_instances",
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("instance", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.BigInteger(), nullable=False),
        sa.Column("interval", sa.Float(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", "instance", name=op.f("pk_serving_instances")),
    )
    op.create_table(
        "serving_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("instance", sa.String(length=100), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_samples")),
    )
    op.create_index(
        op.f("ix_serving_samples_endpoint_time"),
        "serving_samples",
        ["endpoint", "time"],
        unique=False,
    )
    op.create_table(
        "monitor_checks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("monitor_id", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("window_end", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("drift_share", sa.Float(), nullable=False),
        sa.Column("drifted", sa.Boolean(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("prediction_profile", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["monitor_id"],
            ["monitors.id"],
            name=op.f("fk_monitor_checks_monitor_id_monitors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_checks")),
    )
    op.create_index(
        op.f("ix_monitor_checks_monitor_id_window_start"),
        "monitor_checks",
        ["monitor_id", "window_start"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_monitor_checks_monitor_id_window_start"), table_name="monitor_checks")
    op.drop_table("monitor_checks")
    op.drop_index(op.f("ix_serving_samples_endpoint_time"), table_name="serving_samples")
    op.drop_table("serving_samples")
    op.drop_table("serving_instances")
    op.drop_table("monitors")
    op.drop_index(op.f("ix_monitor_events_kind_time"), table_name="monitor_events")
    op.drop_table("monitor_events")
