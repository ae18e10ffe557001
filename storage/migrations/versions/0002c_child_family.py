"""Cases belong to a child (and a family): identifiers from the council's case-management system.

Revision ID: 0004_child_family
Revises: 0003_outbox_channel

``history.recorded_at`` (when a row was written, as opposed to ``happened_at``, when the event
happened) exists since 0001 and is always filled; rows that somehow lack it are backfilled from
``happened_at`` here so that ``report --known-at`` can rely on it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_child_family"
down_revision = "0003_outbox_channel"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("child", sa.String(200), nullable=True))
        batch.add_column(sa.Column("family", sa.String(200), nullable=True))
    op.create_index("ix_instances_child", "instances", ["child"])
    op.create_index("ix_instances_family", "instances", ["family"])
    op.execute("UPDATE history SET recorded_at = happened_at WHERE recorded_at IS NULL")


def downgrade() -> None:
    op.drop_index("ix_instances_family", table_name="instances")
    op.drop_index("ix_instances_child", table_name="instances")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("family")
        batch.drop_column("child")
