"""prediction log files: the sampled raw log as Parquet files in the artifact store

Revision ID: 0008_prediction_log_files
Revises: 0001
Create Date: 2026-11-25 19:07:05.045369
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_prediction_log_files"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_log_files",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("first_time", sa.BigInteger(), nullable=False),
        sa.Column("last_time", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_log_files")),
        sa.UniqueConstraint(
            "endpoint", "digest", name=op.f("uq_prediction_log_files_endpoint_digest")
        ),
    )
    op.create_index(
        op.f("ix_prediction_log_files_endpoint_last_time"),
        "prediction_log_files",
        ["endpoint", "last_time"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_prediction_log_files_endpoint_last_time"), table_name="prediction_log_files"
    )
    op.drop_table("prediction_log_files")
