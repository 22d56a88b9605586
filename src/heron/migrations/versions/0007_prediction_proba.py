"""prediction proba: class probabilities of logged predictions (live CBPE)

Revision ID: 0007_prediction_proba
Revises: 0001
Create Date: 2026-11-25 17:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_prediction_proba"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_proba",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("classes", sa.JSON(), nullable=False),
        sa.Column("proba", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_proba")),
    )
    op.create_index(
        op.f("ix_prediction_proba_endpoint_request_id"),
        "prediction_proba",
        ["endpoint", "request_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_prediction_proba_endpoint_request_id"), table_name="prediction_proba")
    op.drop_table("prediction_proba")
