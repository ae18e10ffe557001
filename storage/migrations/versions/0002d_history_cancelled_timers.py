"""History says which timers a transition cancelled before they fired, and when they were due.

Revision ID: 0005_history_cancelled_timers
Revises: 0004_child_family

A reminder that never went out must be explained by the case's history: the transition that
left its state (or ended its deadline) lists it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_history_cancelled_timers"
down_revision = "0004_child_family"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("history") as batch:
        batch.add_column(sa.Column("cancelled_timers", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("history") as batch:
        batch.drop_column("cancelled_timers")
