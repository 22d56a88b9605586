"""serving profiles: per-minute profiles of all serving traffic

Revision ID: 0006_serving_profiles
Revises: 0001
Create Date: 2026-11-25 17:15:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_serving_profiles"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_profiles",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("predictions", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_profiles")),
    )
    op.create_index(
        op.f("ix_serving_profiles_endpoint_window_start"),
        "serving_profiles",
        ["endpoint", "window_start"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_serving_profiles_endpoint_window_start"), table_name="serving_profiles")
    op.drop_table("serving_profiles")
