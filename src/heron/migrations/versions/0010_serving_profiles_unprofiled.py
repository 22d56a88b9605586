"""serving profiles: count the requests beyond the profile row budget

Prediction servers profile at most ``profile_rows_per_second`` rows a second; the requests
beyond it are counted per minute so a live check can say what share its profiles stand on.

Revision ID: 0010_serving_profiles_unprofiled
Revises: 0006_serving_profiles
Create Date: 2026-12-07 21:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_serving_profiles_unprofiled"
down_revision = "0006_serving_profiles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("serving_profiles") as batch:
        batch.add_column(sa.Column("unprofiled", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("serving_profiles") as batch:
        batch.drop_column("unprofiled")
