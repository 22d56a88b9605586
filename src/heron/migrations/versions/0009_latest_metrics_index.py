"""latest metrics: drop the (key, value) index

Run search filters and sorts on latest values through correlated subqueries that look a
run's metric up by the primary key (run_id, key); no query plan used this index, and keeping
it current was a third of the time of recording the latest values of a batch of metrics.

Revision ID: 0009_latest_metrics_index
Revises: 0001
Create Date: 2026-11-26 00:20:00.000000
"""

from alembic import op

revision = "0009_latest_metrics_index"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index(op.f("ix_latest_metrics_key_value"), table_name="latest_metrics")


def downgrade() -> None:
    op.create_index(
        op.f("ix_latest_metrics_key_value"), "latest_metrics", ["key", "value"], unique=False
    )
