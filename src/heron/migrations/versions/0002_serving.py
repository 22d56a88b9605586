"""serving: endpoints, endpoint revisions, prediction log, feedback

Revision ID: 0002_serving
Revises: 0001
Create Date: 2026-11-25 16:05:07.326123
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_serving"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "endpoints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoints")),
        sa.UniqueConstraint("name", name=op.f("uq_endpoints_name")),
    )
    op.create_table(
        "prediction_feedback",
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("label", sa.JSON(), nullable=True),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", "request_id", name=op.f("pk_prediction_feedback")),
    )
    op.create_table(
        "prediction_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=True),
        sa.Column("outputs", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_log")),
    )
    with op.batch_alter_table("prediction_log", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_prediction_log_endpoint_time"), ["endpoint", "time"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_prediction_log_request_id"), ["request_id"], unique=False
        )

    op.create_table(
        "endpoint_revisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("restored", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["endpoints.id"],
            name=op.f("fk_endpoint_revisions_endpoint_id_endpoints"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoint_revisions")),
        sa.UniqueConstraint(
            "endpoint_id", "revision", name=op.f("uq_endpoint_revisions_endpoint_id_revision")
        ),
    )


def downgrade() -> None:
    op.drop_table("endpoint_revisions")
    with op.batch_alter_table("prediction_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prediction_log_request_id"))
        batch_op.drop_index(batch_op.f("ix_prediction_log_endpoint_time"))

    op.drop_table("prediction_log")
    op.drop_table("prediction_feedback")
    op.drop_table("endpoints")
