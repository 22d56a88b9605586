"""pipelines: pipeline runs, step runs, lineage, triggers

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-26 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("pipeline", sa.String(length=200), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("executor", sa.String(length=20), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("resumed_from", sa.String(length=32), nullable=True),
        sa.Column("trigger", sa.String(length=200), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_runs")),
    )
    op.create_index(
        op.f("ix_pipeline_runs_pipeline_created_at"),
        "pipeline_runs",
        ["pipeline", "created_at"],
        unique=False,
    )
    op.create_table(
        "pipeline_step_runs",
        sa.Column("pipeline_run_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("cache_key", sa.String(length=64), nullable=True),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["pipeline_run_id"],
            ["pipeline_runs.id"],
            name=op.f("fk_pipeline_step_runs_pipeline_run_id_pipeline_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pipeline_run_id", "name", name=op.f("pk_pipeline_step_runs")),
    )
    op.create_index(
        op.f("ix_pipeline_step_runs_cache_key_status"),
        "pipeline_step_runs",
        ["cache_key", "status"],
        unique=False,
    )
    op.create_table(
        "pipeline_lineage",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pipeline_run_id", sa.String(length=32), nullable=False),
        sa.Column("step", sa.String(length=200), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_run_id"],
            ["pipeline_runs.id"],
            name=op.f("fk_pipeline_lineage_pipeline_run_id_pipeline_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_lineage")),
    )
    op.create_index(
        op.f("ix_pipeline_lineage_digest"), "pipeline_lineage", ["digest"], unique=False
    )
    op.create_index(
        op.f("ix_pipeline_lineage_pipeline_run_id"),
        "pipeline_lineage",
        ["pipeline_run_id"],
        unique=False,
    )
    op.create_table(
        "pipeline_triggers",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("spec", sa.String(length=200), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("executor", sa.String(length=20), nullable=False),
        sa.Column("dataset_param", sa.String(length=200), nullable=True),
        sa.Column("last_fired_at", sa.BigInteger(), nullable=True),
        sa.Column("last_dataset_version", sa.Integer(), nullable=True),
        sa.Column("last_run_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_pipeline_triggers")),
    )


def downgrade() -> None:
    op.drop_table("pipeline_triggers")
    op.drop_index(op.f("ix_pipeline_lineage_pipeline_run_id"), table_name="pipeline_lineage")
    op.drop_index(op.f("ix_pipeline_lineage_digest"), table_name="pipeline_lineage")
    op.drop_table("pipeline_lineage")
    op.drop_index(op.f("ix_pipeline_step_runs_cache_key_status"), table_name="pipeline_step_runs")
    op.drop_table("pipeline_step_runs")
    op.drop_index(op.f("ix_pipeline_runs_pipeline_created_at"), table_name="pipeline_runs")
    op.drop_table("pipeline_runs")
